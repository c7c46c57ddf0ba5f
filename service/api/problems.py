"""RFC 9457 problem+json responses for every error the API returns."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from service.domain.errors import Conflict, DomainError, Forbidden, NotFound, filled
from service.store.errors import ConcurrencyError, DatabaseUnavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://csperf.dev/problems/"


class Problem(Exception):
    """An error to answer as problem+json.

    ``detail`` may name ``values`` with ``%(name)s`` placeholders, as a ``DomainError``'s
    message does: the API answers it filled in, a page says it in its reader's language.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        values: Mapping[str, object] | None = None,
        **extra: Any,
    ) -> None:
        self.message = detail
        self.values: dict[str, object] = dict(values or {})
        self.detail = filled(detail, self.values)
        super().__init__(self.detail)
        self.status = status
        self.kind = kind or HTTPStatus(status).phrase.lower().replace(" ", "-")
        self.errors = list(errors) if errors is not None else None
        self.headers = headers
        self.extra = extra


class FieldProblem(BaseModel):
    """One bad field of a request."""

    field: str = Field(description="the field, dotted (`scores.service`, `samples[3].value`)")
    reason: str
    location: str | None = Field(default=None, description="body, query, path or header")


class ProblemDocument(BaseModel):
    """An RFC 9457 problem: how every error of this API is answered.

    Some problems carry more members (a 409 on a stream names `current_version`, a refused
    close lists the `missing` evaluations), hence additional properties.
    """

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="a URI naming the kind of problem")
    title: str = Field(description="the HTTP status phrase")
    status: int
    detail: str = Field(description="what went wrong, for people")
    instance: str | None = Field(default=None, description="the request's path")
    request_id: str | None = Field(default=None, description="also in the X-Request-Id header")
    errors: list[FieldProblem] | None = None


def problem_response(
    request: Request | None,
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (kind or HTTPStatus(status).phrase.lower().replace(" ", "-")),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    if errors is not None:
        body["errors"] = list(errors)
    body.update(extra)
    return JSONResponse(printable(body), status_code=status, media_type=PROBLEM_JSON,
                        headers=headers)


def _encodable(text: str) -> str:
    if text.isascii():
        return text
    # A lone UTF-16 surrogate (JSON "\ud800") cannot be encoded as UTF-8: written out as the
    # text \ud800 instead, so the caller still sees which key or value was refused.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def printable(value: Any) -> Any:
    """Return the value with every string (keys too) safe to encode as UTF-8.

    Problems echo what the caller sent (a score's criterion, an agent id, a field path), and
    one unencodable string used to turn the answer into a 500 that also dropped the
    keep-alive connection. Every problem passes through here, so no route needs to care.
    """
    if isinstance(value, str):
        return _encodable(value)
    if isinstance(value, dict):
        return {_encodable(k) if isinstance(k, str) else k: printable(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable(v) for v in value]
    return value


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Turn pydantic's error list into [{field, reason, location}]."""
    return [
        {
            "field": _field(err.get("loc", ())),
            "reason": err.get("msg", "invalid"),
            "location": str(err.get("loc", ("body",))[0]),
        }
        for err in exc.errors()
    ]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Return every method some route of the app answers on the request's path."""
    routes = request.app.router.routes
    allowed = [
        method for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL
               for route in routes)
    ]
    if "GET" in allowed and "HEAD" not in allowed:  # middleware.HeadAsGet answers it
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return allowed


#: The HTTP status of each refusal of the rules, subclasses first: the domain says what was
#: refused, the API how HTTP says it.
DOMAIN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (NotFound, 404), (Conflict, 409), (Forbidden, 403), (DomainError, 422),
)


def status_of(exc: DomainError) -> int:
    """Return the HTTP status a refusal of the rules is answered with."""
    return next(status for kind, status in DOMAIN_STATUS if isinstance(exc, kind))


def install(app: FastAPI) -> None:
    """Register handlers so that every error leaves as problem+json (and is documented so)."""
    install_openapi(app)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            request, exc.status, exc.detail, kind=exc.kind, errors=exc.errors,
            headers=exc.headers, **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem_response(
            request, 422, f"invalid request: {fields}", kind="validation-error", errors=errors
        )

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(
            request, status_of(exc), str(exc), kind=exc.kind,
            errors=[{"field": e.field, "reason": e.reason} for e in exc.errors] or None,
            **exc.extra,
        )

    @app.exception_handler(ConcurrencyError)
    async def _conflict(request: Request, exc: ConcurrencyError) -> JSONResponse:
        return problem_response(
            request, 409, str(exc), kind="concurrency-conflict",
            stream_id=exc.stream_id, expected_version=exc.expected,
            current_version=exc.current,
        )

    @app.exception_handler(DatabaseUnavailable)
    async def _unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return problem_response(
            request, 503, "the database is unavailable; retry shortly",
            kind="database-unavailable", headers={"Retry-After": "2"},
        )

    @app.exception_handler(asyncpg.DataError)
    async def _bad_data(request: Request, exc: asyncpg.DataError) -> JSONResponse:
        # A last line of defence: input is validated before it reaches the database (ids
        # by pattern, text without NUL or lone surrogates), so reaching here is a gap in that
        # validation, logged to be closed. The answer names neither the driver nor the
        # statement.
        log.warning("a value reached the database unvalidated: %s", type(exc).__name__)
        return problem_response(
            request, 422, "the request contains a value the database cannot store",
            kind="invalid-value",
            errors=[{"field": "request", "reason": "a value the database cannot store"}],
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
            # Starlette names only the methods of the first route matching the path; a
            # resource's GET and PUT are two routes, and Allow must list them all (RFC 9110).
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return problem_response(request, exc.status_code, detail, headers=headers,
                                kind=getattr(exc, "kind", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(request, 500, "internal error; it has been logged")


# -- the OpenAPI document ------------------------------------------------------------------

_PROBLEM_REF = "#/components/schemas/Problem"
#: Each documented error status: its name in components/responses and its description.
_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "the body could not be read (not UTF-8, or cut short)"),
    401: ("Unauthorized",
          "no credential, or one that is unknown, revoked, expired or badly signed"),
    403: ("Forbidden",
          "the credential's role, or its scope (team, agent, source), does not allow this"),
    404: ("NotFound", "the addressed thing does not exist"),
    406: ("NotAcceptable", "the endpoint cannot answer in the media type asked for"),
    409: ("Conflict", "the command does not fit the current state, or a concurrent change won"),
    413: ("ContentTooLarge", "the request body is too large"),
    422: ("UnprocessableContent",
          "an invalid request, or one the rules refuse; `errors` names each bad field"),
    429: ("TooManyRequests",
          "too many failed authentications from this client; retry after Retry-After"),
    503: ("ServiceUnavailable",
          "the database is unavailable, or a read model is being built; retry after"
          " Retry-After"),
}
_WITH_RETRY_AFTER = frozenset({429, 503})
_WRITES = frozenset({"post", "put", "patch", "delete"})


def _problem_response(code: int, description: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": _PROBLEM_REF}}},
    }
    if code in _WITH_RETRY_AFTER:
        response["headers"] = {"Retry-After": {
            "description": "seconds to wait before retrying",
            "required": True,
            "schema": {"type": "string"},
        }}
    return response


def _problem_codes(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """Return the error statuses an operation can answer, from what it declares."""
    codes = {int(c) for c in operation.get("responses", {}) if str(c).isdigit() and int(c) >= 400}
    if operation.get("security"):
        # Authentication (401, 429), role and scope checks (403), and every credential lookup
        # and command needs the database (503).
        codes |= {401, 403, 429, 503}
    if "{" in path:
        codes.add(404)
    if method in _WRITES:
        codes.add(409)
    if operation.get("parameters") or operation.get("requestBody"):
        codes.add(422)
    if operation.get("requestBody"):
        codes |= {400, 413}
    return codes


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Document every error response as application/problem+json with the Problem schema.

    FastAPI documents only its own validation error, as application/json in a shape this API
    never sends; this replaces it, and adds the statuses each operation can answer (by its
    security, path parameters, method and body) as shared responses, so clients and fuzzers
    can rely on them. A route's own description of an error status is kept.
    """
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    shared = components.setdefault("responses", {})
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in _problem_codes(path, method, operation):
                name, description = _PROBLEMS.get(code, (f"Status{code}", HTTPStatus(code).phrase))
                own = responses.get(str(code), {}).get("description")
                if own and own != "Validation Error":
                    responses[str(code)] = _problem_response(code, own)
                else:
                    shared.setdefault(name, _problem_response(code, description))
                    responses[str(code)] = {"$ref": f"#/components/responses/{name}"}
            operation["responses"] = dict(sorted(responses.items()))
    components["responses"] = dict(sorted(shared.items()))
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make the app's OpenAPI document describe its problem+json errors."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""Templates, security headers, and errors shown as pages instead of problem+json."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from functools import lru_cache
from http import HTTPStatus
from importlib import resources
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError

from service.api.problems import Problem
from service.domain.errors import DomainError
from service.store.errors import ConcurrencyError
from service.ui import session

#: Everything comes from these pages: no inline script or style, no third party, no framing.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
#: The pages use no camera, microphone, location, payment or sensor: deny them to any script.
PERMISSIONS_POLICY = ("accelerometer=(), camera=(), display-capture=(), geolocation=(), "
                      "gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()")
#: Sent on every /ui response, redirects and static files included: a page opened from another
#: site shares no window (window.opener) with it, and no feature the pages never use is granted.
ISOLATION_HEADERS = {
    "Permissions-Policy": PERMISSIONS_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
}
HEADERS = {
    **ISOLATION_HEADERS,
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml"}


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Return the Jinja environment of the pages (autoescaped, strict about missing names)."""
    env = Environment(
        loader=PackageLoader("service.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = static_url
    return env


@lru_cache(maxsize=16)
def static_file(name: str) -> bytes | None:
    """Return a file shipped in service/ui/static, or None when there is no such file."""
    if "/" in name or "\\" in name or name.startswith(".") or not name.endswith(
        tuple(STATIC_TYPES)
    ):
        return None
    path = resources.files("service.ui").joinpath("static", name)
    return path.read_bytes() if path.is_file() else None


def static_url(name: str) -> str:
    """Return a static file's URL with a content hash, so browsers may cache it for long."""
    body = static_file(name) or b""
    return f"/ui/static/{name}?v={hashlib.sha256(body).hexdigest()[:10]}"


def page(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a template into a response with the pages' security headers."""
    values = {
        "request": request,
        "principal": getattr(request.state, "principal", None),
        "csrf_token": session.csrf_token(request),
        "csrf_field": session.CSRF_FIELD,
        **context,
    }
    html = environment().get_template(template).render(values)
    response = HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})
    session.remember_csrf(response, request)
    return response


def redirect(url: str) -> RedirectResponse:
    """Answer a form post with 303 See Other (post, redirect, get)."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def error_page(
    request: Request,
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    errors: Sequence[Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render an error as a page: what went wrong, in the API's words, and a way back."""
    title = HTTPStatus(status).phrase
    return page(request, "error.html", {
        "status": status, "title": title, "detail": detail,
        "kind": kind or title.lower().replace(" ", "-"), "errors": list(errors),
        "missing": list((extra or {}).get("missing", [])),
    }, status=status, headers=headers)


def signin_redirect(request: Request, exc: session.SignInRequired) -> Response:
    """Send the browser to the sign-in form, forgetting a credential that no longer works."""
    response = redirect(session.signin_url(exc.next_url, exc.reason))
    if exc.reason == "expired":
        session.clear_session(response, request)
    return response


class UiRoute(APIRoute):
    """A page route: errors become pages (or a redirect to sign in), never problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler (which also runs the rule) to render errors as pages."""
        handler = super().get_route_handler()

        async def ui_handler(request: Request) -> Response:
            response = await page_or_error(request)
            for name, value in ISOLATION_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        async def page_or_error(request: Request) -> Response:
            try:
                return await handler(request)
            except session.SignInRequired as exc:
                return signin_redirect(request, exc)
            except Problem as exc:
                return error_page(request, exc.status, exc.detail, kind=exc.kind,
                                  errors=exc.errors or (), extra=exc.extra,
                                  headers=exc.headers)
            except DomainError as exc:
                return error_page(
                    request, exc.status, str(exc), kind=exc.kind,
                    errors=[{"field": e.field, "reason": e.reason} for e in exc.errors],
                    extra=exc.extra,
                )
            except ConcurrencyError as exc:
                return error_page(request, 409, f"someone else changed this meanwhile ({exc});"
                                  " reload and try again", kind="concurrency-conflict")
            except RequestValidationError as exc:
                errors = [{"field": ".".join(str(p) for p in e.get("loc", ())[1:]),
                           "reason": e.get("msg", "invalid")} for e in exc.errors()]
                return error_page(request, 422, "the address or form is not valid",
                                  kind="validation-error", errors=errors)
            except ValidationError as exc:  # an API body the page built from its form
                errors = [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]}
                          for e in exc.errors()]
                return error_page(request, 422, "the form is not valid",
                                  kind="validation-error", errors=errors)

        return ui_handler

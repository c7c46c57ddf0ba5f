"""Templates, security headers, and errors shown as pages instead of problem+json."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from functools import lru_cache
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from babel.support import NullTranslations
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError

from service import i18n
from service.api.problems import Problem, status_of
from service.domain.errors import DomainError
from service.i18n import N_, Np_
from service.store.errors import ConcurrencyError
from service.ui import session
from service.ui.page_language import (
    asked_for,
    gettext,
    language,
    ngettext,
    preferred,
    said,
    translated,
)
from service.ui.reasons import reason_text

#: The language of the template being rendered (set by ``page`` around render).
_rendering: ContextVar[str] = ContextVar("csperf_ui_rendering", default=i18n.DEFAULT_LANGUAGE)


def _catalogue() -> NullTranslations:
    return i18n.translations(_rendering.get(), "ui")

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
    env.globals["warning_text"] = warning_text
    env.filters["reason"] = reason_text
    env.add_extension("jinja2.ext.i18n")
    # {% trans %} blocks written over several lines are one line in the catalogues
    # (babel.cfg extracts with ``trimmed`` too).
    env.policies["ext.i18n.trimmed"] = True
    # newstyle: ``_("... %(name)s", name=x)`` escapes its values and fails on a missing one.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message: _catalogue().gettext(message),
        lambda one, many, n: _catalogue().ngettext(one, many, n),
        newstyle=True,
    )
    # ``| t`` translates a value the code chose (a status, a message by key): unlike ``_()``, it
    # neither marks the text safe nor reads it as a format string, so a value that carries what
    # a person typed is still escaped.
    env.filters["t"] = lambda value: translated(_catalogue(), str(value))
    return env


#: A month's warnings that a page says from a count alone: kind -> (the list counted, the
#: message in the singular and in the plural).
COUNTED_WARNINGS: dict[str, tuple[str, tuple[str, str]]] = {
    "goals_unacknowledged": ("agents", Np_(
        "%(n)s agent has not acknowledged the targets issued to them",
        "%(n)s agents have not acknowledged the targets issued to them")),
    "interviews_missing": ("missing", Np_(
        "%(n)s feedback interview not held yet",
        "%(n)s feedback interviews not held yet")),
    "interviews_overdue": ("missing", Np_(
        "%(n)s feedback interview not held yet; it was due within a week of publication",
        "%(n)s feedback interviews not held yet; they were due within a week of publication")),
    "interview_records_unacknowledged": ("agents", Np_(
        "%(n)s interview record awaits the agent's acknowledgement",
        "%(n)s interview records await the agents' acknowledgement")),
    "plans_overdue": ("plans", Np_(
        "%(n)s improvement plan is past its deadline unsubmitted",
        "%(n)s improvement plans are past their deadline unsubmitted")),
    "kpi_no_data": ("agents", Np_(
        "%(n)s ranked agent has no data for a KPI their teammates are measured on: it scores"
        " 0; fix the feed or record the absence",
        "%(n)s ranked agents have no data for a KPI their teammates are measured on: it scores"
        " 0; fix the feed or record the absence")),
    "kpi_unavailable": ("kpis", Np_(
        "%(n)s KPI has no data for any ranked agent of the team and drops out for everyone",
        "%(n)s KPIs have no data for any ranked agent of the team and drop out for everyone")),
    "invited_ratings_due_soon": ("missing", Np_(
        "%(n)s invited rating not given; the deadline is near",
        "%(n)s invited ratings not given; the deadline is near")),
    "invited_ratings_overdue": ("missing", Np_(
        "%(n)s invited rating not given; the deadline has passed",
        "%(n)s invited ratings not given; the deadline has passed")),
    "evaluations_due_soon": ("missing", Np_(
        "%(n)s evaluation missing; the deadline is near",
        "%(n)s evaluations missing; the deadline is near")),
    "evaluations_overdue": ("missing", Np_(
        "%(n)s evaluation missing; the deadline has passed",
        "%(n)s evaluations missing; the deadline has passed")),
}
#: Where a warning about late samples sends the integrator (the API's words, a request).
_QUARANTINE = re.compile(r"\((GET [^)\s]+)\)")


def warning_text(warning: Mapping[str, Any]) -> str:
    """Return a month's warning as the page's reader reads it (the API's detail is English).

    The kinds the pages know are said again from their data (a count of agents, interviews,
    plans, a metric's name) in the page's language; any other kind shows the API's detail.
    """
    kind = str(warning.get("kind"))
    detail = str(warning.get("detail") or "")

    def count(key: str) -> int:
        value = warning.get(key)
        return len(value) if isinstance(value, list | tuple) else 0

    # A closed month's goals: what the agents were judged on (service.domain.cycle).
    if kind == "goals_unacknowledged" and "judged on" in detail:
        n = count("agents")
        return ngettext("%(n)s agent never acknowledged the targets they were judged on",
                        "%(n)s agents never acknowledged the targets they were judged on",
                        n) % {"n": n}
    if kind == "goals_disputed":
        n = count("agents")
        forced = detail.partition("(closed by force: ")[2]
        if forced:
            return ngettext("%(n)s agent was judged on targets they disputed (closed by force:"
                            " %(reason)s)", "%(n)s agents were judged on targets they disputed"
                            " (closed by force: %(reason)s)", n) % {
                                "n": n, "reason": forced.removesuffix(")")}
        return ngettext("%(n)s dispute of targets awaits a manager's resolution",
                        "%(n)s disputes of targets await a manager's resolution", n) % {"n": n}
    if kind in COUNTED_WARNINGS:
        key, (one, many) = COUNTED_WARNINGS[kind]
        n = count(key)
        return ngettext(one, many, n) % {"n": n}
    if kind == "metric_feed_quiet":
        values = {"metric": warning.get("metric"), "minutes": warning.get("quiet_minutes")}
        if warning.get("last_received_at"):
            return gettext("no source has sent %(metric)s for %(minutes)s minutes or more"
                           ) % values
        return gettext("no source has sent %(metric)s since the month opened") % values
    if kind == "evaluations_late":
        n = count("evaluations")
        return ngettext("%(n)s evaluation was stored after the evaluation deadline"
                        " (%(deadline)s)", "%(n)s evaluations were stored after the evaluation"
                        " deadline (%(deadline)s)", n) % {"n": n,
                                                           "deadline": warning.get("deadline")}
    if kind == "late_samples":
        n = int(warning.get("count") or 0)
        found = _QUARANTINE.search(detail)
        return ngettext("%(n)s sample arrived after the month closed; it is kept in the"
                        " quarantine (%(where)s) and does not change the result; reopen the month"
                        " and replay it to count it",
                        "%(n)s samples arrived after the month closed; they are kept in the"
                        " quarantine (%(where)s) and do not change the result; reopen the month"
                        " and replay them to count them", n) % {
                            "n": n, "where": found.group(1) if found else ""}
    return gettext(detail)


#: What a page says of an address or form field pydantic refused, by the error's type (the
#: API's problem+json keeps pydantic's own English message, with its bounds and patterns).
VALIDATION_REASONS = {
    "missing": N_("required"), "string_pattern_mismatch": N_("not in the expected form"),
    "string_too_long": N_("too long"), "string_too_short": N_("too short"),
    "literal_error": N_("not one of the choices"), "enum": N_("not one of the choices"),
    "int_parsing": N_("enter a whole number"), "float_parsing": N_("enter a number"),
    "too_long": N_("too many"), "string_type": N_("not valid"),
}
#: The titles of the error pages (HTTP's reason phrases), here so the catalogues have them.
STATUS_TITLES = (N_("Bad Request"), N_("Unauthorized"), N_("Forbidden"), N_("Not Found"),
                 N_("Method Not Allowed"), N_("Conflict"), N_("Gone"),
                 N_("Unprocessable Content"), N_("Unprocessable Entity"),
                 N_("Too Many Requests"),
                 N_("Internal Server Error"), N_("Service Unavailable"))
#: Values the templates show through ``| t``: statuses, roles, ledger entries.
SHOWN_VALUES = (N_("open"), N_("closed"), N_("published"), N_("due"), N_("overdue"),
                N_("submitted"), N_("approved"), N_("rejected"), N_("reassign"), N_("retain"),
                N_("pending"), N_("scheduled"), N_("acknowledged"), N_("held"),
                N_("upheld"), N_("amended"), N_("uphold"), N_("amend"), N_("agent"),
                N_("manager"), N_("admin"), N_("self"), N_("Self"), N_("Manager"),
                N_("reversal"), N_("grant"), N_("paid"), N_("cancelled"),
                N_("pending payroll"), N_("interview"), N_("scheduler"), N_("active"),
                N_("automatic"), N_("reversed"), N_("cancellation"), N_("basis change"),
                N_("basis changed"), N_("reassign review"), N_("publication"),
                # A refusal's words (service.domain.errors.Text): rater roles, scheme versions.
                N_("peer"), N_("subordinate"), N_("customer"), N_("expert"), N_("reader"),
                N_("Peer"), N_("Subordinate"), N_("Customer"), N_("Expert"), N_("Approved"),
                N_("Rejected"),
                N_("ingest"), N_("adopted"), N_("superseded"), N_("proposed"))
#: The API's refusals a page shows (service/api/auth.py, which ``make messages`` does not read:
#: none of those a page can meet carries a value).
REFUSALS = (N_("only a manager of this team may do this"),
            N_("an agent may only act on their own data"),
            N_("only the agent and the team's managers may do this"),
            N_("only the agent may submit their own self-evaluation"),
            N_("the address or form is not valid"), N_("the form is not valid"))
#: The built-in KPIs' labels (service/domain/scheme.py): a label a scheme gives its own KPI
#: shows as HR wrote it, in whatever language they wrote it.
BUILTIN_KPI_LABELS = (N_("Consultation conversion rate"), N_("Average response time"),
                      N_("Customer churn rate"), N_("Total order amount"),
                      N_("Valid order ratio"), N_("Payment ratio"), N_("Refund ratio"),
                      N_("Average order value per customer"), N_("Response time"),
                      N_("Order amount"), N_("Report timeliness"),
                      N_("Report data reliability"), N_("Report quality"),
                      # the rated ones' descriptions: the evaluation form's hints
                      N_("timely submission of reports, rated by the manager (management"
                         " duties)"),
                      N_("reliability of report data, rated by the manager (management"
                         " duties)"),
                      N_("overall report quality, rated by the manager (management duties)"))
#: The positions domain.md names (an agent's position is data: another shows as written).
BUILTIN_POSITIONS = (N_("pre-sale"), N_("in-sale"), N_("after-sale"))


def _team_locale(context: Mapping[str, Any]) -> str | None:
    team = context.get("team")
    value = team.get("locale") if isinstance(team, Mapping) else getattr(team, "locale", None)
    return value if isinstance(value, str) else None


def switcher(request: Request, current: str) -> list[dict[str, str]]:
    """Return the language switcher's links: this page in each language, named in itself."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return [{"code": code, "name": i18n.language_name(code),
             "url": request.url.path + "?" + urlencode([*query, ("lang", code)]),
             "current": "true" if code == current else ""} for code in i18n.LANGUAGES]


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
    lang = language(_team_locale(context))
    values = {
        "request": request,
        "lang": lang,
        "html_lang": lang.replace("_", "-"),
        "languages": switcher(request, lang),
        "principal": getattr(request.state, "principal", None),
        "csrf_token": session.csrf_token(request),
        "csrf_field": session.CSRF_FIELD,
        **context,
    }
    token = _rendering.set(lang)
    try:
        html = environment().get_template(template).render(values)
    finally:
        _rendering.reset(token)
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
            with asked_for(preferred(request)):
                response = await page_or_error(request)
            chosen = i18n.language_of(request.query_params.get("lang"))
            if chosen:  # a choice made on the page is kept for the next pages
                response.set_cookie(i18n.COOKIE, chosen, max_age=i18n.COOKIE_MAX_AGE,
                                    path=session.COOKIE_PATH, samesite="lax", httponly=True,
                                    secure=session.secure(request))
            for name, value in ISOLATION_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        async def page_or_error(request: Request) -> Response:
            try:
                return await handler(request)
            except session.SignInRequired as exc:
                return signin_redirect(request, exc)
            except Problem as exc:
                return error_page(request, exc.status, said(exc.message, exc.values),
                                  kind=exc.kind,
                                  errors=exc.errors or (), extra=exc.extra,
                                  headers=exc.headers)
            except DomainError as exc:
                return error_page(
                    request, status_of(exc), said(exc.message, exc.values), kind=exc.kind,
                    errors=[{"field": e.field, "reason": said(e.message or e.reason, e.values)}
                            for e in exc.errors],
                    extra=exc.extra,
                )
            except ConcurrencyError as exc:
                return error_page(request, 409, said(
                    "someone else changed this meanwhile (%(what)s); reload and try again",
                    {"what": str(exc)}), kind="concurrency-conflict")
            except RequestValidationError as exc:
                errors = [{"field": ".".join(str(p) for p in e.get("loc", ())[1:]),
                           "reason": VALIDATION_REASONS.get(e.get("type", ""),
                                                            N_("not valid"))}
                          for e in exc.errors()]
                return error_page(request, 422, "the address or form is not valid",
                                  kind="validation-error", errors=errors)
            except ValidationError as exc:  # an API body the page built from its form
                errors = [{"field": ".".join(str(p) for p in e["loc"]),
                           "reason": VALIDATION_REASONS.get(e["type"], N_("not valid"))}
                          for e in exc.errors()]
                return error_page(request, 422, "the form is not valid",
                                  kind="validation-error", errors=errors)

        return ui_handler

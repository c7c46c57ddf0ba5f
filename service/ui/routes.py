"""The manager's dashboard: server-rendered pages under /ui on top of the API's own handlers.

Every page declares a rule (``ui_allow``: the API's ``Allow`` reading the session cookie) and
gets its data by calling the JSON API's handlers through ``service.ui.api.call``, which applies
the rule of the API route behind each handler. Forms post back here, run the same handlers,
and redirect (post, redirect, get) to the page that shows the outcome.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from service.api import cycles as cycles_api
from service.api import directory as directory_api
from service.api import feedback as feedback_api
from service.api import metrics as metrics_api
from service.api import releases as releases_api
from service.api import sanctions as sanctions_api
from service.api.auth import (
    CredentialError,
    TooManyFailures,
    check_credential,
    ensure_manager_of,
    ensure_rates_as,
    log_failure,
)
from service.api.auth import public as public_rule
from service.api.deps import Ctx
from service.api.pagination import MAX_LIMIT
from service.api.problems import Problem, status_of
from service.api.schemas import (
    AppealDecisionIn,
    AppealIn,
    CloseIn,
    CycleIn,
    EvaluationIn,
    PlanReviewIn,
    ReviewDecisionIn,
    TeamOut,
)
from service.context import ServiceContext
from service.domain import policy
from service.domain.errors import DomainError, NotFound
from service.domain.ids import COMPOUND_ID_PATTERN, ID_PATTERN
from service.domain.periods import next_period, parse_period, period_of, previous_period
from service.domain.principal import Principal
from service.i18n import N_
from service.queries.cycles import pinned_scheme
from service.queries.directory import find_agent
from service.queries.sanctions import managed_teams
from service.ui import api, charts, fmt, queries, render, session
from service.ui.fmt import Fmt
from service.ui.render import UiRoute, page, redirect
from service.ui.session import form_data, require_csrf, safe_next, ui_allow

log = logging.getLogger("csperf.auth")

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=UiRoute)
Id = Annotated[str, Path(pattern=ID_PATTERN)]
Month = Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
MonthQuery = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
Viewer = Annotated[Principal, ui_allow("manager", "agent")]
Manager = Annotated[Principal, ui_allow("manager")]

CRITERIA_LABELS: dict[str, str] = {
    "task_completion": N_("Work-task completion"),
    "work_performance": N_("Work performance (KPI attainment)"),
    "work_ability": N_("Work ability"),
    "cooperation": N_("Cooperation"),
    "service": N_("Service"),
}


def _label(card: Mapping[str, Any] | None, name: str) -> str:
    """Return a KPI's label as its scheme gives it (in the scorecard), or its name."""
    kpi = (card or {}).get("kpis", {}).get(name) or {}
    return str(kpi.get("label") or name)


def _labels(cards: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Return the label of every KPI on the cards, from the schemes that scored them."""
    labels: dict[str, str] = {}
    for card in cards:
        for name, kpi in card.get("kpis", {}).items():
            labels.setdefault(name, str(kpi.get("label") or name))
    return labels


def measured_kpis(cards: Iterable[Mapping[str, Any]]) -> list[str]:
    """Return the measured KPIs on the cards, in their schemes' order: no second catalogue."""
    return list(dict.fromkeys(
        name for c in cards for name, k in c["kpis"].items() if k["kind"] == "measured"))

KIND_LABELS = {"reward": N_("Reward"), "deduction": N_("Deduction"),
               "improvement_plan": N_("Improvement plan"),
               "reassignment_review": N_("Reassignment review")}
#: What a page says after a form worked (the key comes back in ?done=).
DONE = {
    "opened": N_("The month is open."),
    "evaluated": N_("The evaluation is saved."),
    "closed": N_("The month is closed: its numbers are frozen. Publish it to announce the"
                 " results."),
    "published": N_("The month is published. Its rewards, deductions and improvement plans are"
                 " listed under Consequences."),
    "plan-approved": N_("The improvement plan is approved."),
    "plan-rejected": N_("The improvement plan is rejected; the agent may resubmit."),
    "review-decided": N_("The reassignment review is decided."),
    "released": N_("The result is released: the agent sees their rank, score and consequences."),
    "appealed": N_("Your appeal is filed. A manager of your team decides it."),
    "appeal-upheld": N_("The appeal is decided: the result stands."),
    "appeal-amended": N_("The appeal is decided: the month is reopened for its correction."),
}


def month_label(period: str) -> str:
    """Return "Nov 2026" for "2026-11" (``2026년 11월`` on a Korean page)."""
    year, month = parse_period(period)
    return fmt.month(year, month, fmt.page_locale())


def short_month(period: str) -> str:
    """Return "Nov" (or "Jan 2026" in January) for chart ticks."""
    year, month = parse_period(period)
    return fmt.month(year, month, fmt.page_locale(), short=month != 1)


def manages(principal: Principal, team: TeamOut) -> bool:
    """Tell whether to offer the team's manager forms (the form's handler decides again)."""
    # Forms write: a reader, unscoped for reads, is offered none.
    return principal.role != "reader" and policy.may_manage(principal, team.manager_ids)


def team_url(team_id: str, period: str | None = None, done: str | None = None) -> str:
    """Return the board's URL for a team and month."""
    query = {k: v for k, v in (("period", period), ("done", done)) if v}
    return f"/ui/teams/{quote(team_id)}" + (f"?{urlencode(query)}" if query else "")


def with_done(url: str, done: str) -> str:
    """Add ?done= to a page URL (keeping its query)."""
    return url + ("&" if "?" in url else "?") + urlencode({"done": done})


async def team_of(ctx: ServiceContext, principal: Principal, team_id: str) -> TeamOut:
    """Return the team through the API handler (a member, its managers, admins, readers)."""
    return await api.call(principal, directory_api.get_team, team_id=team_id, ctx=ctx,
                          principal=principal)


async def scorecard(
    ctx: ServiceContext, principal: Principal, team_id: str, period: str, agent_id: str
) -> dict[str, Any] | None:
    """Return an agent's scorecard for a month through the API handler, or None if none."""
    try:
        result = await api.call(principal, cycles_api.get_scorecard, team_id=team_id,
                                period=period, agent_id=agent_id, ctx=ctx, principal=principal)
    except NotFound:
        return None
    except Problem as exc:
        if exc.status == 404:
            return None
        raise
    card: dict[str, Any] = api.document(result)
    return card


def _rank_label(entry: Mapping[str, Any]) -> str:
    return f"{entry['rank']}=" if entry.get("tied") else str(entry["rank"])


# -- signing in ------------------------------------------------------------------------------

SIGNIN_REASONS = {
    "expired": N_("Your key is no longer valid (revoked or expired). Sign in with a current key."),
    "signed-out": N_("You are signed out."),
}


@router.get("/signin", dependencies=[public_rule()])
async def signin_form(
    request: Request,
    next: Annotated[str | None, Query(max_length=500)] = None,
    reason: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """Show the sign-in form."""
    return page(request, "signin.html", {
        "next": safe_next(next), "message": SIGNIN_REASONS.get(reason or ""), "error": None,
    })


@router.post("/signin", dependencies=[public_rule()])
async def signin(request: Request, ctx: Ctx) -> Response:
    """Check a key with the API's authentication and keep it in the session cookie."""
    form = await form_data(request)
    await require_csrf(request)
    next_url = safe_next(form.get("next"))
    key = form.get("key", "").strip()

    def again(status: int, error: str) -> HTMLResponse:
        return page(request, "signin.html", {"next": next_url, "message": None, "error": error},
                    status=status)

    if not key:
        return again(422, N_("Enter your API key."))
    try:
        principal = await check_credential(request, key)
    except TooManyFailures as exc:
        log_failure(request, key, exc)
        return again(429, N_("Too many failed attempts. Wait a minute and try again."))
    except CredentialError as exc:
        log_failure(request, key, exc)
        return again(401, N_("That key is unknown, revoked or expired."))
    if principal.role not in session.UI_ROLES:
        return again(403, f"A key of the {principal.role} role has no pages here; it is for"
                     " the JSON API.")
    response = redirect(next_url)
    session.set_session(response, request, key)
    # A fresh CSRF token for the new session.
    request.state.csrf_token = secrets.token_urlsafe(32)
    session.remember_csrf(response, request)
    return response


@router.post("/signout", dependencies=[public_rule()])
async def signout(request: Request) -> Response:
    """Forget the session cookie."""
    await require_csrf(request)
    response = redirect("/ui/signin?reason=signed-out")
    session.clear_session(response, request)
    return response


@router.get("/static/{name}", dependencies=[public_rule()])
async def static(name: Annotated[str, Path(max_length=64)]) -> Response:
    """Serve the pages' stylesheet and icons from the package."""
    body = render.static_file(name)
    if body is None:
        raise Problem(404, f"no static file {name}")
    kind = next(t for suffix, t in render.STATIC_TYPES.items() if name.endswith(suffix))
    return Response(body, media_type=kind, headers={
        "Cache-Control": "public, max-age=604800, immutable",
        "X-Content-Type-Options": "nosniff",
    })


# -- home ------------------------------------------------------------------------------------


@router.get("")
async def home(request: Request, ctx: Ctx, principal: Viewer) -> Response:
    """List the caller's teams (an agent goes straight to their own page)."""
    if principal.role == "agent":
        return redirect(f"/ui/agents/{quote(principal.subject)}")
    if principal.role == "manager":
        async with ctx.db.connection() as conn:
            ids = await managed_teams(conn, principal.subject)
        rows = await queries.teams(ctx, ids)
    else:
        rows = await queries.teams(ctx)
    now = ctx.clock()
    teams = []
    for row in rows:
        current = period_of(now, ZoneInfo(row["timezone"]))
        months = {m["period"]: m["status"] for m in await queries.periods(ctx, row["team_id"])}
        teams.append({**row, "current": current, "current_label": month_label(current),
                      "status": months.get(current), "months": len(months)})
    return page(request, "home.html", {"teams": teams})


# -- the team board --------------------------------------------------------------------------


@router.get("/teams/{team_id}")
async def board(
    request: Request, team_id: Id, ctx: Ctx, principal: Viewer,
    period: MonthQuery = None, done: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """Show a team's month: the ranking with KPI columns, the consequences, the actions."""
    team = await team_of(ctx, principal, team_id)
    f = Fmt(team.timezone, team.currency, team.locale)
    current = period_of(ctx.clock(), ZoneInfo(team.timezone))
    period = period or current
    months = await queries.periods(ctx, team_id)
    try:
        cycle = await api.call(principal, cycles_api.get_cycle, team_id=team_id, period=period,
                               ctx=ctx, principal=principal)
    except NotFound:
        cycle = None
    ranking: dict[str, Any] | None = None
    ranking_note: str | None = None
    if cycle is not None:
        try:
            ranking = api.document(await api.call(
                principal, cycles_api.get_ranking, team_id=team_id, period=period,
                request=request, ctx=ctx, principal=principal))
        except Problem as exc:
            if exc.status != 403:
                raise
            ranking_note = exc.detail
    entries: list[dict[str, Any]] = list(ranking["entries"]) if ranking else []
    unranked: list[dict[str, Any]] = list(ranking["unranked"]) if ranking else []
    visible = [e["agent_id"] for e in entries + unranked
               if principal.role != "agent" or e["agent_id"] == principal.subject]
    if cycle is not None and principal.role == "agent" and not visible:
        visible = [principal.subject]
    cards: dict[str, dict[str, Any]] = {}
    for agent_id in visible:
        card = await scorecard(ctx, principal, team_id, period, agent_id)
        if card is not None:
            cards[agent_id] = card
    labels = _labels(cards.values())
    kpi_names = measured_kpis(cards.values())
    targets = month_targets(cards.values(), kpi_names, f)
    rows = []
    for e in entries:
        card = cards.get(e["agent_id"])
        rows.append({
            "agent_id": e["agent_id"], "name": e["name"], "rank": _rank_label(e),
            "tied": e["tied"], "score": f.num(e["score"], 1),
            "self": f.num(e["components"].get("self"), 1),
            "manager": f.num(e["components"].get("manager"), 1),
            "kpis": _kpi_cells(card, kpi_names, f),
            "evaluated": _evaluated(card),
            # Late evaluations (part B of issue 15 adds `late` to each evaluation).
            "late": any(e.get("late") for e in (card or {}).get("evaluations", [])),
        })
    missing = [{"agent_id": u["agent_id"], "name": u["name"],
                "missing": ", ".join(u["missing_roles"]) or "everything",
                "evaluated": _evaluated(cards.get(u["agent_id"]))} for u in unranked]
    sanctions: list[dict[str, Any]] = []
    if cycle is not None and cycle.status == "published":
        sanctions = await _sanction_rows(ctx, principal, request, team_id=team_id,
                                         period=period)
    own_card = cards.get(principal.subject) if principal.role == "agent" else None
    return page(request, "board.html", {
        "team": team, "f": f, "period": period, "period_label": month_label(period),
        "current": current, "months": [{**m, "label": month_label(m["period"])}
                                       for m in reversed(months)],
        "previous": previous_period(period), "next": next_period(period),
        "cycle": cycle, "ranking": ranking, "ranking_note": ranking_note, "rows": rows,
        "unranked": missing, "kpi_names": kpi_names, "kpi_labels": labels,
        "not_ranked": list(ranking.get("not_ranked", [])) if ranking else [],
        "unavailable": [labels.get(k, k)
                        for k in (ranking.get("unavailable_kpis", []) if ranking else [])],
        "targets": targets, "sanctions": sanctions, "own_card": own_card,
        "own_kpis": _kpi_cells(own_card, kpi_names, f) if own_card else [],
        "manages": manages(principal, team) and api.permits(principal, cycles_api.close_cycle),
        "may_self_evaluate": principal.role == "agent" and cycle is not None
        and cycle.status == "open",
        "done": DONE.get(done or ""),
    })


def month_targets(cards: Iterable[Mapping[str, Any]], kpi_names: Sequence[str], f: Fmt
                  ) -> dict[str, str]:
    """Return each KPI's target for the month as shown above the ranking."""
    targets: dict[str, str] = {}
    for card in cards:
        for name in kpi_names:
            kpi = card["kpis"].get(name)
            # The month's target: a pro-rated one is shown on its agent's cell instead.
            if kpi and name not in targets and kpi.get("prorated_by") is None:
                targets[name] = f.kpi(name, kpi["target"], kpi["unit"])
    return targets


def _kpi_cells(card: Mapping[str, Any] | None, names: Sequence[str], f: Fmt
               ) -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = []
    for name in names:
        kpi = (card or {}).get("kpis", {}).get(name)
        if kpi is None:
            cells.append({"text": fmt.DASH, "attainment": None, "title": N_("not visible")})
            continue
        attainment = kpi.get("attainment")
        label = _label(card, name)
        status = kpi.get("status")
        label = render.gettext(label)
        title = (render.gettext("%(kpi)s: attainment %(value)s of 100")
                 % {"kpi": label, "value": f.num(attainment, 0)} if attainment is not None
                 else N_("no data this month"))
        prorated = kpi.get("prorated_by") is not None
        if prorated:
            title += render.gettext("; target pro-rated to %(target)s (%(share)s of the month)") \
                % {"target": f.kpi(name, kpi["target"], kpi["unit"]),
                   "share": f.pct(kpi["prorated_by"])}
        if status == "unavailable":
            title = render.gettext("%(kpi)s: no data for anyone in the team this month; left out"
                                   " for everyone") % {"kpi": label}
        elif status == "no_data" and not kpi.get("dropped"):
            title = render.gettext("%(kpi)s: no data while teammates have some; counts as"
                                   " attainment 0") % {"kpi": label}
        cells.append({
            "text": f.kpi(name, kpi["value"], kpi["unit"]) if status != "unavailable"
            else fmt.DASH,
            "attainment": None if status == "unavailable" else attainment,
            "title": title, "status": status, "prorated": prorated,
        })
    return cells


def _evaluated(card: Mapping[str, Any] | None) -> dict[str, bool]:
    roles = {e["rater_role"] for e in (card or {}).get("evaluations", [])}
    return {"self": "self" in roles, "manager": "manager" in roles}


async def _sanction_rows(
    ctx: ServiceContext, principal: Principal, request: Request, *,
    team_id: str | None = None, period: str | None = None, agent_id: str | None = None,
) -> list[dict[str, Any]]:
    """Return ledger entries (through the API handler) ready to show, with names and formats."""
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:  # every page: a ledger is small, but a page is at most MAX_LIMIT entries
        listing = api.document(await api.call(
            principal, sanctions_api.list_sanctions, request=request, response=Response(),
            ctx=ctx, principal=principal,
            page=sanctions_api._SANCTION_PAGING(limit=MAX_LIMIT, after=after, sort=None),
            team_id=team_id, period=period, agent_id=agent_id, kind=None, status=None))
        items.extend(listing["items"])
        after = listing.get("next")
        if not after:
            break
    names = await queries.agent_names(ctx, sorted({i["agent_id"] for i in items}))
    teams = {t["team_id"]: t for t in await queries.teams(ctx, sorted({i["team_id"]
                                                                        for i in items}))}
    now = ctx.clock()
    rows = []
    for item in items:
        team = teams.get(item["team_id"])
        f = Fmt(team["timezone"], team["currency"]) if team else Fmt("UTC", "")
        due = datetime.fromisoformat(item["due_at"]) if item["due_at"] else None
        amount = item["amount"]
        rows.append({
            **item, "name": names.get(item["agent_id"], item["agent_id"]),
            "team_name": team["name"] if team else item["team_id"],
            "kind_label": KIND_LABELS.get(item["kind"], item["kind"]),
            "amount_text": fmt.money(amount, item["currency"] or "", f.loc)
            if amount is not None else "",
            "due_text": f.when(due) if due else "",
            "left": _time_left(due, now) if due and item["status"] in ("due", "overdue")
            else "",
            "month_label": month_label(item["period"]),
        })
    return rows


def _time_left(due: datetime, now: datetime) -> str:
    seconds = (due - now).total_seconds()
    days = math.floor(abs(seconds) / 86400)
    hours = math.ceil(abs(seconds) / 3600)
    if seconds >= 0:
        return (render.ngettext("%(n)s day left", "%(n)s days left", days) if days >= 1
                else render.gettext("%(n)s h left")) % {"n": days or hours}
    return (render.ngettext("%(n)s day late", "%(n)s days late", days) if days >= 1
            else render.gettext("%(n)s h late")) % {"n": days or hours}


# -- an agent's page --------------------------------------------------------------------------


@router.get("/agents/{agent_id}")
async def agent_page(
    request: Request, agent_id: Id, ctx: Ctx, principal: Viewer,
    period: MonthQuery = None, done: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """Show an agent: KPI trends, attainment against targets, evaluations, feedback, plans."""
    agent = await api.call(principal, directory_api.get_agent, agent_id=agent_id, ctx=ctx,
                           principal=principal)
    team = await team_of(ctx, principal, agent.team_id)
    f = Fmt(team.timezone, team.currency, team.locale)
    current = period_of(ctx.clock(), ZoneInfo(team.timezone))
    months = [m["period"] for m in await queries.periods(ctx, team.team_id)][-6:]
    cards: dict[str, dict[str, Any]] = {}
    for month in months:
        card = await scorecard(ctx, principal, team.team_id, month, agent_id)
        if card is not None:
            cards[month] = card
    shown = [m for m in months if m in cards]
    selected = period if period in cards else (
        next((m for m in reversed(shown) if cards[m]["status"] != "open"), None)
        or (shown[-1] if shown else None))
    live = api.document(await api.call(principal, metrics_api.agent_kpis, agent_id=agent_id,
                                       request=request, ctx=ctx, principal=principal,
                                       period=current))
    trends = []
    reference = cards[selected]["kpis"] if selected else {}
    measured = dict.fromkeys(n for m in shown for n, k in cards[m]["kpis"].items()
                             if k["kind"] == "measured")
    for name in measured:
        kpi = reference.get(name) or next(
            (cards[m]["kpis"][name] for m in shown if name in cards[m]["kpis"]), None)
        if kpi is None:
            continue
        points = [charts.Point(short_month(m), cards[m]["kpis"].get(name, {}).get("value"))
                  for m in shown]
        unit: str = kpi["unit"]

        def write(value: float, name: str = name, unit: str = unit) -> str:
            return f.kpi(name, value, unit)

        trends.append({
            "name": name, "label": kpi.get("label") or name,
            "chart": charts.line_chart(
                kpi.get("label") or name, points, write,
                target=kpi["target"], lower_is_better=kpi["direction"] == "lower"),
            "values": [(month_label(m), f.kpi(name, cards[m]["kpis"].get(name, {})
                                               .get("value"), unit)) for m in shown],
        })
    composite = charts.bar_chart(
        render.gettext("Composite score by month"),
        [charts.Point(short_month(m), cards[m]["composite"]) for m in shown],
        lambda v: f.num(v, 1),
        notes=[(f"#{cards[m]['rank']}" + ("=" if cards[m]["tied"] else ""))
               if cards[m]["rank"] else "" for m in shown],
    )
    attainment = []
    evaluations: list[dict[str, Any]] = []
    card = cards.get(selected) if selected else None
    if card is not None:
        for name, kpi in card["kpis"].items():  # in the scheme's order
            value = kpi["attainment"]
            attainment.append({
                "name": name, "label": kpi.get("label") or name,
                "kind": kpi["kind"], "value": f.kpi(name, kpi["value"], kpi["unit"]),
                "target": f.kpi(name, kpi["target"], kpi["unit"]) if kpi["target"] is not None
                else "rated", "floor": f.kpi(name, kpi["floor"], kpi["unit"])
                if kpi["floor"] is not None else "",
                "weight": f.pct(kpi["weight"]), "attainment": f.num(value, 0)
                if value is not None else fmt.DASH,
                "meter": charts.meter(value, f"attainment {f.num(value, 0)} of 100")
                if value is not None else "",
                "dropped": kpi["dropped"], "status": kpi.get("status"),
                "prorated": kpi.get("prorated_by") is not None,
            })
        for e in card["evaluations"]:
            evaluations.append({
                **e, "scores_text": [(CRITERIA_LABELS.get(k) or _label(card, k), f.num(v, 0))
                                     for k, v in e["scores"].items()],
                "when": f.when(e["submitted_at"]),
                "deadline_text": f.when(e["deadline"]) if e.get("deadline") else "",
            })
    sanctions = await _sanction_rows(ctx, principal, request, agent_id=agent_id)
    plans = []
    for item in sanctions:
        if item["kind"] != "improvement_plan" or item["entry"] != "grant":
            continue
        try:
            plan = await api.call(principal, sanctions_api.get_plan, team_id=item["team_id"],
                                  period=item["period"], agent_id=agent_id, ctx=ctx,
                                  principal=principal)
        except NotFound:
            continue
        latest = plan["submissions"][-1] if plan["submissions"] else None
        plans.append({**item, "plan": plan, "latest": latest,
                      "submitted_text": f.when(latest["submitted_at"]) if latest else ""})
    outcome = await _outcome(ctx, principal, request, team, agent_id, card, f)
    return page(request, "agent.html", {
        "outcome": outcome,
        "agent": agent, "team": team, "f": f, "months": shown, "cards": cards,
        "month_labels": {m: month_label(m) for m in shown}, "selected": selected,
        "card": card, "trends": trends, "composite": composite, "attainment": attainment,
        "evaluations": evaluations, "sanctions": sanctions, "plans": plans,
        "live": live, "live_label": month_label(current),
        "live_kpis": [(_labels(cards.values()).get(k, k), _live_text(k, v, f))
                      for k, v in live["kpis"].items()],
        "feedback": await _feedback(ctx, principal, team.team_id, shown, cards, f),
        "manages": manages(principal, team), "done": DONE.get(done or ""),
        "here": session.here(request),
    })


async def _outcome(
    ctx: ServiceContext, principal: Principal, request: Request, team: TeamOut, agent_id: str,
    card: Mapping[str, Any] | None, f: Fmt,
) -> dict[str, Any] | None:
    """Return the selected published month's release and appeal, and what the viewer may do."""
    if card is None or card["status"] != "published":
        return None
    period = card["period"]
    try:
        release = await api.call(principal, releases_api.get_release, team_id=team.team_id,
                                 period=period, agent_id=agent_id, ctx=ctx,
                                 principal=principal)
        listing = await api.call(principal, releases_api.list_appeals, request=request,
                                 ctx=ctx, principal=principal, team_id=team.team_id,
                                 period=period, status=None)
    except Problem as exc:
        if exc.status != 403:
            raise
        return None  # a role the release and appeal endpoints do not serve (readers)
    appeal = next((a for a in api.document(listing)["items"] if a["agent_id"] == agent_id),
                  None)
    own = principal.role == "agent" and principal.subject == agent_id
    manager = manages(principal, team)
    until = release.appeal_until
    return {
        "released": release.released, "by": release.by,
        "due": f.when(release.release_due_at) if release.release_due_at else "",
        "appeal_until": f.when(until) if until else "",
        "appeal": appeal, "period": period,
        "may_release": manager and not release.released,
        "may_appeal": own and release.released and appeal is None
        and until is not None and ctx.clock() <= until,
        "may_decide": manager and appeal is not None and appeal["status"] == "open"
        and principal.subject != agent_id,
    }


def _live_text(name: str, value: float | None, f: Fmt) -> str:
    units = {"avg_response_time_seconds": "seconds", "order_amount": "currency",
             "avg_order_value": "currency"}
    return f.kpi(name, value, units.get(name, "ratio"))


async def _feedback(
    ctx: ServiceContext, principal: Principal, team_id: str, months: Sequence[str],
    cards: Mapping[str, Mapping[str, Any]], f: Fmt,
) -> list[dict[str, Any]]:
    """Return the agent's feedback interviews of published months, newest first."""
    found = []
    for month in reversed(months):
        if cards[month]["status"] != "published":
            continue
        try:
            interview = await api.call(
                principal, feedback_api.get_interview, team_id=team_id, period=month,
                agent_id=cards[month]["agent_id"], ctx=ctx, principal=principal)
        except NotFound:
            continue
        found.append({**interview, "month_label": month_label(month),
                      "when": f.when(interview["starts_at"])})
    return found


# -- sanctions and deadlines -------------------------------------------------------------------


@router.get("/sanctions")
async def sanctions_page(
    request: Request, ctx: Ctx, principal: Viewer,
    team_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """Show plans due, overdue and waiting for review, open reviews, and the ledger."""
    rows = await _sanction_rows(ctx, principal, request, team_id=team_id)
    grants = [r for r in rows if r["entry"] == "grant"]
    plans = [r for r in grants if r["kind"] == "improvement_plan"]
    managed: set[str] = set()
    if principal.role == "admin":
        managed = {r["team_id"] for r in rows}
    elif principal.role == "manager":
        async with ctx.db.connection() as conn:
            managed = set(await managed_teams(conn, principal.subject))
    team = (await queries.teams(ctx, [team_id]))[0] if team_id and rows else None
    return page(request, "sanctions.html", {
        "to_review": [r for r in plans if r["status"] == "submitted"],
        "overdue": [r for r in plans if r["status"] == "overdue"],
        "due": sorted([r for r in plans if r["status"] == "due"], key=lambda r: r["due_at"]),
        "reviews": [r for r in grants if r["kind"] == "reassignment_review"
                    and r["status"] == "open"],
        "decided": [r for r in grants if r["kind"] == "reassignment_review"
                    and r["status"] in ("reassign", "retain")],
        "money": [r for r in rows if r["kind"] in ("reward", "deduction")][::-1],
        "closed_plans": [r for r in plans if r["status"] in ("approved", "rejected")][::-1],
        "managed": managed, "team": team, "team_id": team_id,
        "may_decide": api.permits(principal, sanctions_api.decide_review),
        "done": DONE.get(done or ""), "here": session.here(request),
    })


# -- forms -------------------------------------------------------------------------------------


@router.post("/teams/{team_id}/months/{period}/open")
async def open_month(
    request: Request, team_id: Id, period: Month, ctx: Ctx, principal: Manager,
) -> Response:
    """Open a team's month (the API's POST .../cycles)."""
    await api.call(principal, cycles_api.open_cycle, team_id=team_id, body=CycleIn(period=period),
                   request=request, ctx=ctx, principal=principal)
    return redirect(team_url(team_id, period, "opened"))


@router.post("/teams/{team_id}/months/{period}/close")
async def close_month(
    request: Request, team_id: Id, period: Month, ctx: Ctx, principal: Manager,
) -> Response:
    """Close a month, forced with a reason when asked (the API's POST .../close)."""
    form = await form_data(request)
    force = form.get("force") == "yes"
    reason = form.get("reason", "").strip() or None
    await api.call(principal, cycles_api.close_cycle, team_id=team_id, period=period,
                   request=request, ctx=ctx, principal=principal,
                   body=CloseIn(force=force, reason=reason))
    return redirect(team_url(team_id, period, "closed"))


@router.post("/teams/{team_id}/months/{period}/publish")
async def publish_month(
    request: Request, team_id: Id, period: Month, ctx: Ctx, principal: Manager,
) -> Response:
    """Publish a closed month (the API's POST .../publish)."""
    await api.call(principal, cycles_api.publish_cycle, team_id=team_id, period=period,
                   request=request, ctx=ctx, principal=principal)
    return redirect(team_url(team_id, period, "published") + "#consequences")


@router.post("/teams/{team_id}/months/{period}/plans/{agent_id}/review")
async def review_plan(
    request: Request, team_id: Id, period: Month, agent_id: Id, ctx: Ctx, principal: Manager,
) -> Response:
    """Approve or reject an improvement plan (the API's POST .../review)."""
    form = await form_data(request)
    decision = form.get("decision")
    if decision not in ("approved", "rejected"):
        raise Problem(422, N_("choose approve or reject"),
                      errors=[{"field": "decision", "reason": N_("approved or rejected")}])
    body = PlanReviewIn(decision=decision, comment=form.get("comment", "")[:5000])
    await api.call(principal, sanctions_api.review_plan, team_id=team_id, period=period,
                   agent_id=agent_id, body=body, request=request, ctx=ctx, principal=principal)
    back = safe_next(form.get("next"), "/ui/sanctions")
    return redirect(with_done(back, "plan-approved" if decision == "approved"
                              else "plan-rejected"))


@router.post("/reviews/{review_id}/decision")
async def decide_review(
    request: Request, review_id: Annotated[str, Path(pattern=COMPOUND_ID_PATTERN)], ctx: Ctx,
    principal: Manager,
) -> Response:
    """Decide a reassignment review (the API's POST .../decision)."""
    form = await form_data(request)
    decision = form.get("decision")
    note = form.get("note", "").strip()
    if decision not in ("reassign", "retain") or not note:
        raise Problem(422, N_("choose reassign or retain and write a note"), errors=[
            {"field": "decision", "reason": N_("reassign or retain")},
            {"field": "note", "reason": N_("required")}])
    await api.call(principal, sanctions_api.decide_review, review_id=review_id,
                   body=ReviewDecisionIn(decision=decision, note=note[:5000]), request=request,
                   ctx=ctx, principal=principal)
    return redirect(with_done(safe_next(form.get("next"), "/ui/sanctions"), "review-decided"))


@router.post("/teams/{team_id}/months/{period}/releases/{agent_id}")
async def release_result(
    request: Request, team_id: Id, period: Month, agent_id: Id, ctx: Ctx, principal: Manager,
) -> Response:
    """Release an agent's result to them now (the API's POST .../releases/{agent})."""
    await form_data(request)
    await api.call(principal, releases_api.release_result, team_id=team_id, period=period,
                   agent_id=agent_id, request=request, ctx=ctx, principal=principal)
    return redirect(f"/ui/agents/{quote(agent_id)}?period={period}&done=released")


@router.post("/teams/{team_id}/months/{period}/appeals/{agent_id}")
async def file_appeal(
    request: Request, team_id: Id, period: Month, agent_id: Id, ctx: Ctx, principal: Viewer,
) -> Response:
    """Appeal one's own month with a reason (the API's POST .../appeals/{agent})."""
    form = await form_data(request)
    reason = form.get("reason", "").strip()
    if not reason:
        raise Problem(422, N_("write the reason of your appeal"),
                      errors=[{"field": "reason", "reason": N_("required")}])
    await api.call(principal, releases_api.file_appeal, team_id=team_id, period=period,
                   agent_id=agent_id, body=AppealIn(reason=reason[:4000]), request=request,
                   ctx=ctx, principal=principal)
    return redirect(f"/ui/agents/{quote(agent_id)}?period={period}&done=appealed")


@router.post("/appeals/{appeal_id}/decision")
async def decide_appeal(
    request: Request, appeal_id: Annotated[str, Path(max_length=200)], ctx: Ctx,
    principal: Manager,
) -> Response:
    """Decide an appeal: uphold with a note, or amend (the API's POST .../decision)."""
    form = await form_data(request)
    decision = form.get("decision")
    note = form.get("note", "").strip() or None
    if decision not in ("uphold", "amend"):
        raise Problem(422, N_("choose uphold or amend"),
                      errors=[{"field": "decision", "reason": N_("uphold or amend")}])
    decided = await api.call(principal, releases_api.decide_appeal, appeal_id=appeal_id,
                             body=AppealDecisionIn(decision=decision, note=note and note[:4000]),
                             request=request, ctx=ctx, principal=principal)
    done = "appeal-upheld" if decision == "uphold" else "appeal-amended"
    return redirect(f"/ui/agents/{quote(decided['agent_id'])}?period={decided['period']}"
                    f"&done={done}")


EvalPath = "/teams/{team_id}/months/{period}/evaluations/{agent_id}/{rater_role}"
RaterRole = Annotated[str, Path(pattern=r"^(self|manager)$")]


async def _evaluation_form(
    request: Request, ctx: ServiceContext, principal: Principal, team_id: str, period: str,
    agent_id: str, rater_role: str, *, values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None, error: str | None = None, status: int = 200,
) -> HTMLResponse:
    team = await team_of(ctx, principal, team_id)
    # The checks PUT .../evaluations makes before it decides; the form's post runs them again.
    ensure_rates_as(principal, rater_role, agent_id)
    if rater_role == "manager":
        ensure_manager_of(principal, team.manager_ids)
    card = await scorecard(ctx, principal, team_id, period, agent_id)
    if card is None:
        raise NotFound(f"agent {agent_id} has no scorecard in {team_id}/{period}")
    scheme = await pinned_scheme(ctx, team_id, period)
    current = next((e for e in card["evaluations"] if e["rater_role"] == rater_role), None)
    prefill = dict(values) if values is not None else {
        **{k: f"{v:g}" for k, v in (current or {}).get("scores", {}).items()},
        "comment": (current or {}).get("comment") or "",
    }
    descriptions = {k.name: k.description for k in scheme.kpis}
    titles = {k.name: k.title for k in scheme.kpis}
    fields = [{"name": name, "label": CRITERIA_LABELS.get(name) or titles.get(name, name),
               "hint": descriptions.get(name, ""), "value": prefill.get(name, "")}
              for name in sorted(scheme.form(rater_role, card.get("position")),
                                 key=lambda n: (list(CRITERIA_LABELS).index(n)
                                                if n in CRITERIA_LABELS else 99,
                                                list(titles).index(n) if n in titles else 0))]
    owner = scheme.kpi_attainment_criterion()
    overridable = owner[1].name if owner is not None and owner[0] == rater_role else None
    return page(request, "evaluate.html", {
        "team": team, "period": period, "period_label": month_label(period), "card": card,
        "rater_role": rater_role, "fields": fields, "comment": prefill.get("comment", ""),
        "override": overridable, "override_value": prefill.get(overridable or "", ""),
        "scale_max": scheme.scale_max, "revision": current["revision"] if current else None,
        "errors": errors or {}, "error": error,
        "action": f"/ui/teams/{quote(team_id)}/months/{period}/evaluations/"
                  f"{quote(agent_id)}/{rater_role}",
    }, status=status)


@router.get(EvalPath)
async def evaluation_form(
    request: Request, team_id: Id, period: Month, agent_id: Id, rater_role: RaterRole,
    ctx: Ctx, principal: Viewer,
) -> HTMLResponse:
    """Show the evaluation form of the scheme the month is pinned to, filled in if revising."""
    return await _evaluation_form(request, ctx, principal, team_id, period, agent_id, rater_role)


@router.post(EvalPath)
async def submit_evaluation(
    request: Request, team_id: Id, period: Month, agent_id: Id, rater_role: RaterRole,
    ctx: Ctx, principal: Viewer,
) -> Response:
    """Submit the evaluation (the API's PUT .../evaluations/{agent_id}/{rater_role})."""
    form = await form_data(request)
    scheme = await pinned_scheme(ctx, team_id, period)
    agent = await find_agent(ctx, agent_id)
    names = set(scheme.form(rater_role, agent.position if agent is not None else None))
    owner = scheme.kpi_attainment_criterion()
    if owner is not None and owner[0] == rater_role and form.get(owner[1].name, "").strip():
        names.add(owner[1].name)
    scores: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name in sorted(names):
        text = form.get(name, "").strip().replace(",", ".")
        try:
            value = float(text)
        except ValueError:
            errors[name] = N_("enter a number") if text else N_("required")
            continue
        if not math.isfinite(value):
            errors[name] = N_("enter a number")
            continue
        scores[name] = value
    comment = form.get("comment", "").strip() or None

    async def again(status: int, error: str, field_errors: Mapping[str, str]) -> HTMLResponse:
        return await _evaluation_form(request, ctx, principal, team_id, period, agent_id,
                                      rater_role, values=form, errors=field_errors,
                                      error=error, status=status)

    if errors:
        return await again(422, N_("Some scores are missing or not numbers."), errors)
    try:
        await api.call(principal, cycles_api.put_evaluation, team_id=team_id, period=period,
                       agent_id=agent_id, rater_role=rater_role,
                       body=EvaluationIn(scores=scores, comment=comment), request=request,
                       ctx=ctx, principal=principal)
    except DomainError as exc:
        if status_of(exc) != 422:
            raise
        field_errors = {e.field.removeprefix("scores."): e.reason for e in exc.errors}
        return await again(422, str(exc), field_errors)
    return redirect(team_url(team_id, period, "evaluated") + f"#agent-{agent_id}")

"""The manager's dashboard: server-rendered pages under /ui, the second door of the service.

Every page declares a rule (``ui_allow``: the API's ``Allow`` reading the session cookie, the
same roles as the API route of the same act) and then reads through ``service/queries/`` and
writes through ``service/commands/`` directly, as the API's routes do, after the same scope
checks (``service.api.access`` and the ``ensure_*`` of ``service.api.auth``, all of them asking
``service.domain.policy``). Forms post back here and redirect (post, redirect, get) to the
page that shows the outcome.
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

from service.api import access
from service.api.access import ensure_appellant
from service.api.auth import (
    CredentialError,
    TooManyFailures,
    check_credential,
    ensure_manager_of,
    ensure_rates_as,
    ensure_self_or_manager,
    log_failure,
    rater_admission,
)
from service.api.auth import public as public_rule
from service.api.deps import Ctx, caller
from service.api.params import CompoundIdPath, IdPath, IdQuery
from service.api.problems import Problem, status_of
from service.api.schemas import (
    AppealDecisionIn,
    AppealIn,
    CloseIn,
    EvaluationIn,
    PlanReviewIn,
    ReviewDecisionIn,
)
from service.commands import cycles as cycle_commands
from service.commands import release as release_commands
from service.commands import sanctions as sanction_commands
from service.context import ServiceContext
from service.domain import policy
from service.domain.cycle import Cycle
from service.domain.directory import Team
from service.domain.errors import DomainError, NotFound, Text
from service.domain.periods import (
    PERIOD_PATTERN,
    next_period,
    parse_period,
    period_of,
    previous_period,
)
from service.domain.principal import Principal
from service.i18n import N_
from service.queries import appeals as appeal_reads
from service.queries import cycles as cycle_reads
from service.queries import directory as directory_reads
from service.queries import feedback as feedback_reads
from service.queries import kpis as kpi_reads
from service.queries import ledger as ledger_plans
from service.queries import monitoring, results
from service.queries import release as release_reads
from service.queries import sanctions as ledger_reads
from service.queries.cycles import pinned_scheme
from service.queries.sanctions import managed_teams
from service.ui import charts, fmt, queries, render, session
from service.ui.fmt import Fmt
from service.ui.page_language import gettext, ngettext, said
from service.ui.render import UiRoute, page, redirect
from service.ui.session import form_data, require_csrf, safe_next, ui_allow

log = logging.getLogger("csperf.auth")

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=UiRoute)
#: The API's id parameters and the one month pattern (service.domain.periods), not copies.
Id = IdPath
Month = Annotated[str, Path(pattern=PERIOD_PATTERN)]
MonthQuery = Annotated[str | None, Query(pattern=PERIOD_PATTERN)]
#: The roles of the API routes behind the pages: reading a team's months, managing them.
VIEWER_ROLES = ("manager", "agent")
MANAGER_ROLES = ("manager",)
Viewer = Annotated[Principal, ui_allow(*VIEWER_ROLES)]
Manager = Annotated[Principal, ui_allow(*MANAGER_ROLES)]

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


def manages(principal: Principal, team: Team) -> bool:
    """Tell whether to offer the team's manager forms (the form's handler decides again)."""
    # Forms write: a reader, unscoped for reads, is offered none.
    return principal.role != "reader" and policy.may_manage(principal, team.manager_ids)


async def _managed(ctx: ServiceContext, principal: Principal, team_id: str) -> Team:
    """Return a team the principal manages; refuse (403) one they do not."""
    team = await directory_reads.get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    return team


def team_url(team_id: str, period: str | None = None, done: str | None = None) -> str:
    """Return the board's URL for a team and month."""
    query = {k: v for k, v in (("period", period), ("done", done)) if v}
    return f"/ui/teams/{quote(team_id)}" + (f"?{urlencode(query)}" if query else "")


def with_done(url: str, done: str) -> str:
    """Add ?done= to a page URL (keeping its query)."""
    return url + ("&" if "?" in url else "?") + urlencode({"done": done})


async def team_of(ctx: ServiceContext, principal: Principal, team_id: str) -> Team:
    """Return the team, as GET /v1/teams/{team_id} does (its agents, managers, admins and
    readers)."""
    team = await directory_reads.get_team(ctx, team_id)
    await access.ensure_team_member_or_manager(ctx, principal, team)
    return team


async def scorecards(
    ctx: ServiceContext, principal: Principal, team: Team, cycles: Sequence[Cycle],
    agent_ids: Sequence[str],
) -> dict[tuple[str, str], dict[str, Any]]:
    """Return the scorecards of the agents the principal may see, in one batched read, as
    GET .../scorecards/{agent_id} answers each: keyed (period, agent_id), none when absent."""
    seen = [a for a in agent_ids if policy.may_see_agent(principal, a, team.manager_ids)]
    return await results.scorecards(
        ctx, team, cycles, seen, withhold=policy.sees_own_result_only_when_released(principal))


async def month_ranking(
    ctx: ServiceContext, principal: Principal, team: Team, period: str
) -> dict[str, Any]:
    """Return a month's ranking as GET .../ranking answers it, after the same checks."""
    return results.ranking_data(await month_read(ctx, principal, team, period))


async def month_read(
    ctx: ServiceContext, principal: Principal, team: Team, period: str
) -> results.RankingRead:
    """Return a month's ranking as read (stored with its revision, or live), after GET
    .../ranking's checks."""
    read = await results.ranking(
        ctx, team.team_id, period, team=team,
        admit=lambda status: access.ensure_may_see_ranking(principal, status))
    if read is None:
        raise Problem(503, "the ranking is still being built; retry shortly",
                      headers={"Retry-After": "1"})
    await access.ensure_ranking_released(ctx, principal, team.team_id, period)
    return read


async def cycle_view(ctx: ServiceContext, team: Team, cycle: Cycle) -> dict[str, Any]:
    """Return what a page shows of a month: its status, dates and what drifts from the plan."""
    closed = cycle.closed
    process = await monitoring.month_process(ctx, team, cycle)
    return {
        "team_id": cycle.team_id, "period": cycle.period, "status": cycle.status,
        "scheme_id": cycle.scheme_id, "scheme_version": cycle.scheme_version,
        "deadline": cycle.deadline, "opened_at": cycle.opened_at,
        "closed_at": closed.closed_at if closed else None, "published_at": cycle.published_at,
        "publications": cycle.publications, "forced": closed.forced if closed else None,
        "close_reason": closed.reason if closed else None, "warnings": process.warnings,
    }


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
        return again(403, said("A key of the %(role)s role has no pages here; it is for the"
                               " JSON API.", {"role": Text(principal.role)}))
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
        raise Problem(404, "no static file %(name)s", values={"name": name})
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
    found = await cycle_reads.find_cycle(ctx, team_id, period)
    cycle = await cycle_view(ctx, team, found) if found is not None else None
    ranking: dict[str, Any] | None = None
    ranking_note: str | None = None
    if found is not None:
        try:
            ranking = await month_ranking(ctx, principal, team, period)
        except Problem as exc:
            if exc.status != 403:
                raise
            ranking_note = said(exc.message, exc.values)
    entries: list[dict[str, Any]] = list(ranking["entries"]) if ranking else []
    unranked: list[dict[str, Any]] = list(ranking["unranked"]) if ranking else []
    visible = [e["agent_id"] for e in entries + unranked
               if principal.role != "agent" or e["agent_id"] == principal.subject]
    if found is not None and principal.role == "agent" and not visible:
        visible = [principal.subject]
    cards = {agent_id: card for (_, agent_id), card in (
        await scorecards(ctx, principal, team, [found], visible) if found is not None else {}
    ).items()}
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
                "missing": ", ".join(gettext(r) for r in u["missing_roles"])
                or gettext("everything"),
                "evaluated": _evaluated(cards.get(u["agent_id"]))} for u in unranked]
    sanctions: list[dict[str, Any]] = []
    if found is not None and found.status == "published":
        sanctions = await _sanction_rows(ctx, principal, team_id=team_id, period=period)
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
        "manages": manages(principal, team),
        "may_self_evaluate": principal.role == "agent" and found is not None
        and found.status == "open",
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
            cells.append({"text": fmt.DASH, "attainment": None, "title": N_("not visible"),
                          "status": None, "prorated": False})
            continue
        attainment = kpi.get("attainment")
        label = _label(card, name)
        status = kpi.get("status")
        label = gettext(label)
        title = (gettext("%(kpi)s: attainment %(value)s of 100")
                 % {"kpi": label, "value": f.num(attainment, 0)} if attainment is not None
                 else N_("no data this month"))
        prorated = kpi.get("prorated_by") is not None
        if prorated:
            title += gettext("; target pro-rated to %(target)s (%(share)s of the month)") \
                % {"target": f.kpi(name, kpi["target"], kpi["unit"]),
                   "share": f.pct(kpi["prorated_by"])}
        if status == "unavailable":
            title = gettext("%(kpi)s: no data for anyone in the team this month; left out"
                                   " for everyone") % {"kpi": label}
        elif status == "no_data" and not kpi.get("dropped"):
            title = gettext("%(kpi)s: no data while teammates have some; counts as"
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
    ctx: ServiceContext, principal: Principal, *,
    team_id: str | None = None, period: str | None = None, agent_id: str | None = None,
) -> list[dict[str, Any]]:
    """Return ledger entries (GET /v1/sanctions's, after its checks) ready to show, with names
    and formats, in ledger order."""
    filters = await access.sanction_filters(ctx, principal, team_id=team_id, period=period,
                                            agent_id=agent_id)
    async with ctx.db.connection() as conn:
        items = await ledger_reads.list_items(conn, filters, ctx.clock())
    names = await queries.agent_names(ctx, sorted({i["agent_id"] for i in items}))
    teams = {t["team_id"]: t for t in await queries.teams(ctx, sorted({i["team_id"]
                                                                        for i in items}))}
    # Each team's money as the board shows it: its currency, in the reader's language joined
    # with the team's locale (the teams table has no locale: the directory's team has).
    locales = await directory_reads.team_locales(ctx, items)
    now = ctx.clock()
    rows = []
    for item in items:
        team = teams.get(item["team_id"])
        f = (Fmt(team["timezone"], team["currency"], locales.get(item["team_id"])) if team
             else Fmt("UTC", ""))
        due: datetime | None = item["due_at"]
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
        return (ngettext("%(n)s day left", "%(n)s days left", days) if days >= 1
                else gettext("%(n)s h left")) % {"n": days or hours}
    return (ngettext("%(n)s day late", "%(n)s days late", days) if days >= 1
            else gettext("%(n)s h late")) % {"n": days or hours}


# -- an agent's page --------------------------------------------------------------------------


@router.get("/agents/{agent_id}")
async def agent_page(
    request: Request, agent_id: Id, ctx: Ctx, principal: Viewer,
    period: MonthQuery = None, done: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """Show an agent: KPI trends, attainment against targets, evaluations, feedback, plans."""
    agent = await directory_reads.get_agent(ctx, agent_id)
    team = await directory_reads.get_team(ctx, agent.team_id)
    ensure_self_or_manager(principal, agent_id, team.manager_ids)
    await access.ensure_team_member_or_manager(ctx, principal, team)
    f = Fmt(team.timezone, team.currency, team.locale)
    current = period_of(ctx.clock(), ZoneInfo(team.timezone))
    months = [m["period"] for m in await queries.periods(ctx, team.team_id)][-6:]
    cycles = [c for c in [await cycle_reads.find_cycle(ctx, team.team_id, m) for m in months]
              if c is not None]
    cards = {period: card for (period, _), card in
             (await scorecards(ctx, principal, team, cycles, [agent_id])).items()}
    shown = [m for m in months if m in cards]
    selected = period if period in cards else (
        next((m for m in reversed(shown) if cards[m]["status"] != "open"), None)
        or (shown[-1] if shown else None))
    # The agent's live KPIs of the running month (GET /v1/agents/{agent_id}/kpis).
    scheme = await cycle_reads.month_scheme(ctx, team, current)
    async with ctx.db.connection() as conn:
        live = await kpi_reads.agent_kpis(conn, agent_id, current, scheme, agent.position)
    live_kpis = {k.name: k for k in scheme.kpis_for(agent.position)}
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
                gettext(kpi.get("label") or name), points, write,
                target=kpi["target"], lower_is_better=kpi["direction"] == "lower"),
            "values": [(month_label(m), f.kpi(name, cards[m]["kpis"].get(name, {})
                                               .get("value"), unit)) for m in shown],
        })
    composite = charts.bar_chart(
        gettext("Composite score by month"),
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
                else gettext("rated"), "floor": f.kpi(name, kpi["floor"], kpi["unit"])
                if kpi["floor"] is not None else "",
                "weight": f.pct(kpi["weight"]), "attainment": f.num(value, 0)
                if value is not None else fmt.DASH,
                "meter": charts.meter(value, gettext("attainment %(value)s of 100")
                                      % {"value": f.num(value, 0)})
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
    sanctions = await _sanction_rows(ctx, principal, agent_id=agent_id)
    plans = []
    for item in sanctions:
        if item["kind"] != "improvement_plan" or item["entry"] != "grant":
            continue
        try:
            await access.ensure_released(ctx, principal, item["team_id"], item["period"])
            plan = await ledger_plans.get_plan(ctx, item["team_id"], item["period"], agent_id)
        except NotFound:
            continue
        latest = plan["submissions"][-1] if plan["submissions"] else None
        plans.append({**item, "plan": plan, "latest": latest,
                      "submitted_text": f.when(latest["submitted_at"]) if latest else ""})
    outcome = await _outcome(ctx, principal, team, agent_id, card, f)
    return page(request, "agent.html", {
        "outcome": outcome,
        "agent": agent, "team": team, "f": f, "months": shown, "cards": cards,
        "month_labels": {m: month_label(m) for m in shown}, "selected": selected,
        "card": card, "trends": trends, "composite": composite, "attainment": attainment,
        "evaluations": evaluations, "sanctions": sanctions, "plans": plans,
        "live": live, "live_label": month_label(current),
        "live_kpis": [(live_kpis[k].title if k in live_kpis else k,
                       f.kpi(k, v, live_kpis[k].unit if k in live_kpis else ""))
                      for k, v in live["kpis"].items()],
        "feedback": await _feedback(ctx, principal, team.team_id, shown, cards, f),
        "manages": manages(principal, team), "done": DONE.get(done or ""),
        "here": session.here(request),
    })


async def _outcome(
    ctx: ServiceContext, principal: Principal, team: Team, agent_id: str,
    card: Mapping[str, Any] | None, f: Fmt,
) -> dict[str, Any] | None:
    """Return the selected published month's release and appeal, and what the viewer may do."""
    if card is None or card["status"] != "published":
        return None
    period = card["period"]
    try:
        # GET .../releases/{agent_id} and GET /v1/appeals, after their checks.
        ensure_self_or_manager(principal, agent_id, team.manager_ids)
        month = await release_reads.load_month(ctx, team.team_id, period)
        state = await release_reads.load_result(ctx, team.team_id, period, agent_id)
        release = release_reads.release_document(month, state, agent_id)
        filters = await access.appeal_filters(ctx, principal, team_id=team.team_id,
                                              period=period, status=None)
        appeals = await appeal_reads.list_appeals(ctx, filters)
    except Problem as exc:
        if exc.status != 403:
            raise
        return None
    appeal = next((a for a in appeals if a["agent_id"] == agent_id), None)
    own = principal.role == "agent" and principal.subject == agent_id
    manager = manages(principal, team)
    until: datetime | None = release["appeal_until"]
    return {
        "released": release["released"], "by": release["by"],
        "due": f.when(release["release_due_at"]) if release["release_due_at"] else "",
        "appeal_until": f.when(until) if until else "",
        "appeal": appeal, "period": period,
        "may_release": manager and not release["released"],
        "may_appeal": own and release["released"] and appeal is None
        and until is not None and ctx.clock() <= until,
        "may_decide": manager and appeal is not None and appeal["status"] == "open"
        and not policy.judges_own_case(principal.subject, agent_id),
    }


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
            interview = await feedback_reads.get_interview(ctx, team_id, month,
                                                           cards[month]["agent_id"])
        except NotFound:
            continue
        found.append({**interview, "month_label": month_label(month),
                      "when": f.when(interview["starts_at"])})
    return found


# -- sanctions and deadlines -------------------------------------------------------------------


@router.get("/sanctions")
async def sanctions_page(
    request: Request, ctx: Ctx, principal: Viewer,
    team_id: IdQuery = None,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """Show plans due, overdue and waiting for review, open reviews, and the ledger."""
    rows = await _sanction_rows(ctx, principal, team_id=team_id)
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
        "may_decide": policy.route_admits(MANAGER_ROLES, principal.role, "POST"),
        "done": DONE.get(done or ""), "here": session.here(request),
    })


# -- forms -------------------------------------------------------------------------------------


@router.post("/teams/{team_id}/months/{period}/open")
async def open_month(
    request: Request, team_id: Id, period: Month, ctx: Ctx, principal: Manager,
) -> Response:
    """Open a team's month (the API's POST .../cycles)."""
    team = await _managed(ctx, principal, team_id)
    await cycle_commands.open_cycle(ctx, caller(principal, request), team, period, None, None)
    return redirect(team_url(team_id, period, "opened"))


@router.post("/teams/{team_id}/months/{period}/close")
async def close_month(
    request: Request, team_id: Id, period: Month, ctx: Ctx, principal: Manager,
) -> Response:
    """Close a month, forced with a reason when asked (the API's POST .../close)."""
    form = await form_data(request)
    force = form.get("force") == "yes"
    reason = form.get("reason", "").strip() or None
    body = CloseIn(force=force, reason=reason)
    await _managed(ctx, principal, team_id)
    await cycle_commands.close(ctx, caller(principal, request), cycle_commands.Close(
        team_id, period, body.force, body.reason, body.missing_policy))
    return redirect(team_url(team_id, period, "closed"))


@router.post("/teams/{team_id}/months/{period}/publish")
async def publish_month(
    request: Request, team_id: Id, period: Month, ctx: Ctx, principal: Manager,
) -> Response:
    """Publish a closed month (the API's POST .../publish)."""
    await _managed(ctx, principal, team_id)
    await cycle_commands.publish(ctx, caller(principal, request), team_id, period)
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
    await _managed(ctx, principal, team_id)
    await sanction_commands.review_plan(
        ctx, caller(principal, request), team_id, period, agent_id, decision=body.decision,
        comment=body.comment, reviewer_id=principal.subject)
    back = safe_next(form.get("next"), "/ui/sanctions")
    return redirect(with_done(back, "plan-approved" if decision == "approved"
                              else "plan-rejected"))


@router.post("/reviews/{review_id}/decision")
async def decide_review(
    request: Request, review_id: CompoundIdPath, ctx: Ctx,
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
    body = ReviewDecisionIn(decision=decision, note=note[:5000])
    team, ledger, agent_id = await ledger_plans.find_review(ctx, review_id)
    ensure_manager_of(principal, team.manager_ids)
    await sanction_commands.decide_review(
        ctx, caller(principal, request), team, ledger, agent_id, decision=body.decision,
        note=body.note, decided_by=principal.subject)
    return redirect(with_done(safe_next(form.get("next"), "/ui/sanctions"), "review-decided"))


@router.post("/teams/{team_id}/months/{period}/releases/{agent_id}")
async def release_result(
    request: Request, team_id: Id, period: Month, agent_id: Id, ctx: Ctx, principal: Manager,
) -> Response:
    """Release an agent's result to them now (the API's POST .../releases/{agent})."""
    await form_data(request)
    await _managed(ctx, principal, team_id)
    month = await release_reads.load_month(ctx, team_id, period)
    await release_commands.release(ctx, caller(principal, request), team_id, period, agent_id,
                                   by="manager", released_by=principal.subject, month=month)
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
    body = AppealIn(reason=reason[:4000])
    await directory_reads.get_team(ctx, team_id)
    ensure_appellant(principal, agent_id)
    await release_commands.appeal(ctx, caller(principal, request), team_id, period, agent_id,
                                  by=principal.subject, reason=body.reason)
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
    body = AppealDecisionIn(decision=decision, note=note and note[:4000])
    team_id, _, _ = await release_reads.find_appeal(ctx, appeal_id)
    await _managed(ctx, principal, team_id)
    decided = (await release_commands.decide(
        ctx, caller(principal, request), appeal_id, decision=body.decision, note=body.note,
        decided_by=principal.subject)).decision
    done = "appeal-upheld" if decision == "uphold" else "appeal-amended"
    return redirect(f"/ui/agents/{quote(decided.agent_id)}?period={decided.period}"
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
    ensure_self_or_manager(principal, agent_id, team.manager_ids)
    cycle = await cycle_reads.get_cycle(ctx, team_id, period)
    card = (await scorecards(ctx, principal, team, [cycle], [agent_id])).get((period, agent_id))
    if card is None:
        raise NotFound("agent %(agent)s has no scorecard in %(team)s/%(period)s",
                       values={"agent": agent_id, "team": team_id, "period": period})
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
    _, agent, _, _ = await cycle_reads.evaluation_reads(ctx, team_id, period, agent_id)
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
        body = EvaluationIn(scores=scores, comment=comment)
        # PUT .../evaluations/{agent_id}/{rater_role}'s checks, then its command.
        ensure_rates_as(principal, rater_role, agent_id)
        await cycle_commands.evaluate(ctx, caller(principal, request), cycle_commands.Evaluate(
            team_id=team_id, period=period, agent_id=agent_id, rater_role=rater_role,
            rater_id=principal.subject, scores=body.scores, comment=body.comment),
            rater_admission(principal, rater_role))
    except DomainError as exc:
        if status_of(exc) != 422:
            raise
        field_errors = {e.field.removeprefix("scores."): said(e.message or e.reason, e.values)
                        for e in exc.errors}
        return await again(422, said(exc.message, exc.values), field_errors)
    return redirect(team_url(team_id, period, "evaluated") + f"#agent-{agent_id}")

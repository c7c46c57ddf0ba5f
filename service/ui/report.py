"""The printable monthly report of a published month (issue 21), a page with a print stylesheet.

It shows what the board shows of a published month, laid out for paper: the ranking with its
KPI columns and targets, the consequences with their deadlines, the agents not ranked and why,
the KPIs unavailable to the whole team, then one page per agent with their line. Everything is
read through the API's handlers, as the board reads it (``service.ui.api.call``), so a key
sees exactly what the ranking, scorecard and ledger routes let it see: one policy, no second
check here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from service.api import cycles as cycles_api
from service.api.deps import Ctx
from service.api.problems import Problem
from service.i18n import N_
from service.ui import api, fmt, render
from service.ui.fmt import Fmt
from service.ui.render import UiRoute, page
from service.ui.routes import (
    CRITERIA_LABELS,
    Id,
    Month,
    Viewer,
    _kpi_cells,
    _labels,
    _rank_label,
    _sanction_rows,
    measured_kpis,
    month_label,
    month_targets,
    scorecard,
    team_of,
)

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=UiRoute)

ROLE_LABELS = {"self": N_("Self-evaluation"), "manager": N_("Manager's evaluation"),
               "peer": N_("Peer evaluation"), "customer": N_("Customer evaluation")}


@router.get("/teams/{team_id}/months/{period}/report")
async def monthly_report(
    request: Request, team_id: Id, period: Month, ctx: Ctx, principal: Viewer,
) -> HTMLResponse:
    """Show a published month as a printable report, one page per agent at the end."""
    team = await team_of(ctx, principal, team_id)
    f = Fmt(team.timezone, team.currency, team.locale)
    label = month_label(period)
    cycle = await api.call(principal, cycles_api.get_cycle, team_id=team_id, period=period,
                           ctx=ctx, principal=principal)
    if cycle.status != "published":
        raise Problem(409, f"{label} is {cycle.status}, not published: its report is printed"
                           " once the month is published", kind="not-published")
    ranking = api.document(await api.call(
        principal, cycles_api.get_ranking, team_id=team_id, period=period, request=request,
        ctx=ctx, principal=principal))
    entries: list[dict[str, Any]] = list(ranking["entries"])
    not_ranked: list[dict[str, Any]] = list(ranking.get("not_ranked", []))
    # Scorecards as the board reads them: an agent gets their own, a manager everyone's.
    cards: dict[str, dict[str, Any]] = {}
    for person in entries + not_ranked:
        if principal.role == "agent" and person["agent_id"] != principal.subject:
            continue
        card = await scorecard(ctx, principal, team_id, period, person["agent_id"])
        if card is not None:
            cards[person["agent_id"]] = card
    kpi_names = measured_kpis(cards.values())
    labels = _labels(cards.values())
    sanctions = await _sanction_rows(ctx, principal, request, team_id=team_id, period=period)
    rows = [{
        "agent_id": e["agent_id"], "name": e["name"], "rank": _rank_label(e),
        "tied": e["tied"], "score": f.num(e["score"], 1),
        "self": f.num(e["components"].get("self"), 1),
        "manager": f.num(e["components"].get("manager"), 1),
        "kpis": _kpi_cells(cards.get(e["agent_id"]), kpi_names, f),
    } for e in entries]
    ranks = {e["agent_id"]: _rank_label(e) for e in entries}
    reasons = {n["agent_id"]: n["reason"] for n in not_ranked}
    lines = [_agent_line(card, ranks.get(agent_id), reasons.get(agent_id),
                         [s for s in sanctions if s["agent_id"] == agent_id], f)
             for agent_id, card in cards.items()]
    return page(request, "report.html", {
        "team": team, "f": f, "period": period, "period_label": label, "cycle": cycle,
        "rows": rows, "kpi_names": kpi_names, "kpi_labels": labels,
        "targets": month_targets(cards.values(), kpi_names, f),
        "not_ranked": not_ranked, "sanctions": sanctions, "lines": lines,
        "unavailable": [labels.get(k, k) for k in ranking.get("unavailable_kpis", [])],
        "printed_at": f.when(ctx.clock()),
    })


def _agent_line(card: dict[str, Any], rank: str | None, not_ranked: str | None,
                sanctions: list[dict[str, Any]], f: Fmt) -> dict[str, Any]:
    """Return one agent's page of the report: their numbers, targets and consequences."""
    kpis = []
    for name, kpi in card["kpis"].items():
        if kpi.get("kind") != "measured":
            continue
        prorated = kpi.get("prorated_by")
        kpis.append({
            "label": str(kpi.get("label") or name),
            "value": f.kpi(name, kpi["value"], kpi["unit"])
            if kpi.get("status") != "unavailable" else fmt.DASH,
            "target": f.kpi(name, kpi["target"], kpi["unit"]),
            "prorated": (render.gettext("pro-rated to %(share)s of the month")
                         % {"share": f.pct(prorated)} if prorated is not None else ""),
            "attainment": f.num(kpi["attainment"], 0) if kpi.get("attainment") is not None
            else fmt.DASH,
            "status": {"unavailable": N_("unavailable for the whole team"),
                       "no_data": N_("no data (scored 0)") if not kpi.get("dropped")
                       else N_("no data")}.get(kpi.get("status") or "", ""),
        })
    evaluations = [{
        "role": ROLE_LABELS.get(e["rater_role"], e["rater_role"]),
        "scores": ", ".join(f"{render.gettext(CRITERIA_LABELS.get(k, k))} {f.num(v, 0)}"
                            for k, v in sorted(e["scores"].items())),
        "late": e.get("late", False), "submitted": f.when(e["submitted_at"]),
    } for e in card.get("evaluations", [])]
    components = card.get("components", {})
    return {
        "agent_id": card["agent_id"], "name": card["name"], "position": card.get("position"),
        "rank": rank, "not_ranked": not_ranked, "score": f.num(card.get("composite"), 1),
        "roles": [(ROLE_LABELS.get(role, role), f.num(part.get("score"), 1))
                  for role, part in components.items()],
        "kpis": kpis, "evaluations": evaluations, "sanctions": sanctions,
        "notes": card.get("notes", []),
    }

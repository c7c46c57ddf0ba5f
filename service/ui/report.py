"""The printable monthly report of a published month (issue 21), a page with a print stylesheet.

It shows what the board shows of a published month, laid out for paper: the ranking with its
KPI columns and targets, the consequences with their deadlines, the agents not ranked and why,
the KPIs unavailable to the whole team, then one page per agent with their line. Everything is
read through the application layer as the board reads it (``service.queries``, after the
ranking, scorecard and ledger routes' own checks), so a key sees exactly what those routes let
it see: one policy (``service.domain.policy``), no second check here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from service.api.deps import Ctx
from service.api.problems import Problem
from service.domain.errors import Text
from service.i18n import N_
from service.queries import cycles as cycle_reads
from service.ui import fmt
from service.ui.fmt import Fmt
from service.ui.page_language import gettext
from service.ui.render import UiRoute, page
from service.ui.routes import (
    CRITERIA_LABELS,
    Id,
    Month,
    Viewer,
    _kpi_cells,
    _label,
    _labels,
    _rank_label,
    _sanction_rows,
    cycle_view,
    measured_kpis,
    month_label,
    month_ranking,
    month_targets,
    scorecards,
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
    found = await cycle_reads.get_cycle(ctx, team_id, period)
    cycle = await cycle_view(ctx, team, found)
    if found.status != "published":
        raise Problem(409, "%(month)s is %(status)s, not published: its report is printed once"
                           " the month is published", kind="not-published",
                      values={"month": label, "status": Text(found.status)})
    ranking = await month_ranking(ctx, principal, team, period)
    entries: list[dict[str, Any]] = list(ranking["entries"])
    not_ranked: list[dict[str, Any]] = list(ranking.get("not_ranked", []))
    # Scorecards as the board reads them: an agent gets their own, a manager everyone's.
    people = [p["agent_id"] for p in entries + not_ranked
              if principal.role != "agent" or p["agent_id"] == principal.subject]
    found_cards = await scorecards(ctx, principal, team, [found], people)
    cards = {a: found_cards[(period, a)] for a in people if (period, a) in found_cards}
    kpi_names = measured_kpis(cards.values())
    labels = _labels(cards.values())
    sanctions = await _sanction_rows(ctx, principal, team_id=team_id, period=period)
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
            "prorated": (gettext("pro-rated to %(share)s of the month")
                         % {"share": f.pct(prorated)} if prorated is not None else ""),
            "attainment": f.num(kpi["attainment"], 0) if kpi.get("attainment") is not None
            else fmt.DASH,
            "status": {"unavailable": N_("unavailable for the whole team"),
                       "no_data": N_("no data (scored 0)") if not kpi.get("dropped")
                       else N_("no data")}.get(kpi.get("status") or "", ""),
        })
    evaluations = [{
        "role": ROLE_LABELS.get(e["rater_role"], e["rater_role"]),
        "scores": ", ".join(f"{gettext(CRITERIA_LABELS.get(k) or _label(card, k))}"
                            f" {f.num(v, 0)}"
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

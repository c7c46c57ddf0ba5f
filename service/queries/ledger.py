"""Read a month's sanctions ledger from its cycle stream: plans and reviews."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import release as r
from service.domain import sanctions as s
from service.domain.directory import Team
from service.domain.errors import Conflict, NotFound
from service.domain.periods import parse_period
from service.domain.results import is_late, plan_status
from service.queries.directory import get_team
from service.queries.streams import read_state


async def ledger_of(ctx: ServiceContext, team_id: str, period: str) -> s.Ledger | None:
    """Return the month's ledger from its cycle stream, or None when there is no cycle."""
    return await read_state(ctx, c.cycle_stream(team_id, period), s.evolve_ledger,
                            s.fold_ledger)


async def get_ledger(ctx: ServiceContext, team_id: str, period: str) -> tuple[Team, s.Ledger]:
    """Return the team and the month's ledger; 404 when either does not exist."""
    parse_period(period)
    team = await get_team(ctx, team_id)
    ledger = await ledger_of(ctx, team_id, period)
    if ledger is None:
        raise NotFound("team %(team)s has no cycle for %(period)s",
                       values={"team": team_id, "period": period})
    return team, ledger


async def with_release(ctx: ServiceContext, ledger: s.Ledger, agent_id: str) -> s.Ledger:
    """Return the ledger with the agent's plan due as their release makes it (``plan_due``)."""
    owed = ledger.obligation("improvement_plan", agent_id)
    if owed is None:
        return ledger
    result = await read_state(ctx, r.result_stream(ledger.team_id, ledger.period, agent_id),
                              r.evolve)
    due = r.plan_due(owed.due_at, owed.created_at, result.released if result else None)
    if due == owed.due_at:
        return ledger
    moved = owed.model_copy(update={"due_at": due})
    return ledger.model_copy(update={"active": {**ledger.active,
                                                f"improvement_plan:{agent_id}": moved}})


async def load_plan(ctx: ServiceContext, team_id: str, period: str, agent_id: str
                    ) -> s.Plan | None:
    """Return an agent's plan stream state."""
    return await read_state(ctx, s.plan_stream(team_id, period, agent_id), s.evolve_plan)


def plan_document(ledger: s.Ledger, plan: s.Plan | None, agent_id: str, now: datetime
                  ) -> dict[str, Any]:
    """Render the plan owed by an agent, with every submission and review and its status."""
    owed = ledger.obligation("improvement_plan", agent_id)
    cancelled = None if owed is not None else ledger.ever("improvement_plan", agent_id)
    shown = owed or cancelled
    if shown is None or shown.due_at is None:
        raise NotFound("no improvement plan of agent %(agent)s in %(team)s/%(period)s",
                       values={"agent": agent_id, "team": ledger.team_id,
                               "period": ledger.period})
    record = (plan or s.Plan()).record(shown.publication)
    latest, reviewed = record.latest, record.decision
    status = "cancelled" if owed is None else plan_status(
        shown.due_at, latest.submitted_at if latest else None,
        reviewed.decision if reviewed else None, now,
    )
    first = record.submissions[0] if record.submissions else None
    return {
        "team_id": ledger.team_id, "period": ledger.period, "agent_id": agent_id,
        "sanction_id": shown.id, "publication": shown.publication, "status": status,
        "due_at": shown.due_at, "reason": shown.reason,
        "late": is_late(shown.due_at, first.submitted_at) if first else None,
        "overdue_recorded_at": record.overdue.detected_at if record.overdue else None,
        "submissions": [
            {
                "submission": sub.submission, "root_causes": sub.root_causes,
                "actions": [a.model_dump() for a in sub.actions],
                "submitted_at": sub.submitted_at, "late": sub.late,
                "review": next(
                    ({"decision": r.decision, "comment": r.comment, "reviewer_id": r.reviewer_id,
                      "reviewed_at": r.reviewed_at}
                     for r in record.reviews if r.submission == sub.submission), None),
            }
            for sub in record.submissions
        ],
    }


async def get_plan(ctx: ServiceContext, team_id: str, period: str, agent_id: str
                   ) -> dict[str, Any]:
    """Return the plan document of an agent for a team's month."""
    _, ledger = await get_ledger(ctx, team_id, period)
    ledger = await with_release(ctx, ledger, agent_id)
    plan = await load_plan(ctx, team_id, period, agent_id)
    return plan_document(ledger, plan, agent_id, ctx.clock())


async def find_review(ctx: ServiceContext, review_id: str) -> tuple[Team, s.Ledger, str]:
    """Return the team, the month's ledger and the agent a review id names; 404 if none."""
    found = []
    for team_id, period, agent_id in s.parse_review_id(review_id):
        ledger = await ledger_of(ctx, team_id, period)
        if ledger is None:
            continue
        if (ledger.obligation("reassignment_review", agent_id)
                or ledger.ever("reassignment_review", agent_id)):
            found.append((ledger, agent_id))
    if not found:
        raise NotFound("no reassignment review %(review)s", values={"review": review_id})
    if len(found) > 1:
        raise Conflict("the review id %(review)s is ambiguous: it names %(n)s reviews; rename"
                       " the team or agent", values={"review": review_id, "n": len(found)})
    ledger, agent_id = found[0]
    return await get_team(ctx, ledger.team_id), ledger, agent_id


async def load_review(ctx: ServiceContext, ledger: s.Ledger, agent_id: str) -> s.Review | None:
    """Return an agent's review stream state for the ledger's month."""
    return await read_state(ctx, s.review_stream(ledger.team_id, ledger.period, agent_id),
                            s.evolve_review)


def review_document(ledger: s.Ledger, review: s.Review | None, agent_id: str
                    ) -> dict[str, Any]:
    """Render a reassignment review with its decision."""
    owed = ledger.obligation("reassignment_review", agent_id)
    shown = owed or ledger.ever("reassignment_review", agent_id)
    assert shown is not None
    decided = (review or s.Review()).decisions.get(shown.publication)
    # A decided review that a correction no longer calls for keeps its decision.
    status = decided.decision if decided else ("cancelled" if owed is None else "open")
    ending = ledger.endings.get(shown.id) if owed is None else None
    return {
        "review_id": s.review_id(ledger.team_id, ledger.period, agent_id),
        "team_id": ledger.team_id, "period": ledger.period, "agent_id": agent_id,
        "sanction_id": shown.id, "publication": shown.publication, "status": status,
        "reason": shown.reason, "months": list(shown.months),
        "decision": decided.decision if decided else None,
        "note": decided.note if decided else None,
        "decided_by": decided.decided_by if decided else None,
        "decided_at": decided.decided_at if decided else None,
        "basis_changed": owed is None and decided is not None,
        "ended_by": ending.reason if ending is not None else None,
    }

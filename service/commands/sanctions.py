"""Sanction commands: submit and review improvement plans, mark them overdue, decide reviews.

Each command reads the month's ledger from the cycle stream (what the latest publication owes)
and then decides on the plan's or review's own stream under that stream's lock. A publication
committed between the two reads is seen by the next command; the projection ignores plan events
for an obligation a publication has meanwhile cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.commands.base import Caller, execute, read_state
from service.commands.directory import get_team
from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import release as r
from service.domain import sanctions as s
from service.domain.directory import Team
from service.domain.errors import Conflict, NotFound
from service.domain.periods import parse_period
from service.domain.results import PlanDecision, is_late, plan_status

#: The actor of what the service does on its own (the overdue scheduler).
SCHEDULER = Caller(metadata={"actor": {"subject": "scheduler", "role": "admin", "key_id": None}})


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
        raise NotFound(f"team {team_id} has no cycle for {period}")
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
        raise NotFound(f"no improvement plan of agent {agent_id} in"
                       f" {ledger.team_id}/{ledger.period}")
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


@dataclass(frozen=True)
class SubmitPlan:
    """The agent's improvement plan: why the month went so, and what they will do by when."""

    team_id: str
    period: str
    agent_id: str
    root_causes: str
    actions: Sequence[s.PlanAction]


async def submit_plan(ctx: ServiceContext, caller: Caller, cmd: SubmitPlan) -> dict[str, Any]:
    """Record a plan submission (late ones too) and return the plan."""
    _, ledger = await get_ledger(ctx, cmd.team_id, cmd.period)
    ledger = await with_release(ctx, ledger, cmd.agent_id)
    now = ctx.clock()
    plan, _ = await execute(
        ctx, caller, s.plan_stream(cmd.team_id, cmd.period, cmd.agent_id), s.evolve_plan,
        lambda state: s.decide_submit_plan(state, ledger, cmd.agent_id,
                                           root_causes=cmd.root_causes, actions=cmd.actions,
                                           now=now),
    )
    return plan_document(ledger, plan, cmd.agent_id, now)


async def review_plan(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, agent_id: str, *,
    decision: PlanDecision, comment: str, reviewer_id: str,
) -> dict[str, Any]:
    """Approve or reject the latest submission of a plan and return the plan."""
    team, ledger = await get_ledger(ctx, team_id, period)
    ledger = await with_release(ctx, ledger, agent_id)
    now = ctx.clock()
    plan, _ = await execute(
        ctx, caller, s.plan_stream(team_id, period, agent_id), s.evolve_plan,
        lambda state: s.decide_review_plan(state, ledger, agent_id, decision=decision,
                                           comment=comment, reviewer_id=reviewer_id, now=now,
                                           manager_ids=team.manager_ids),
    )
    return plan_document(ledger, plan, agent_id, now)


async def mark_overdue(
    ctx: ServiceContext, team_id: str, period: str, agent_id: str, now: datetime
) -> bool:
    """Append PlanOverdue if the plan is past due with nothing submitted; tell whether it did."""
    ledger = await ledger_of(ctx, team_id, period)
    if ledger is not None:
        ledger = await with_release(ctx, ledger, agent_id)
    owed = ledger.obligation("improvement_plan", agent_id) if ledger else None
    if owed is None:
        return False
    # The key makes a second scheduler (or a retry) a no-op even if it decided on stale state.
    caller = Caller(SCHEDULER.metadata, idempotency_key=f"plan-overdue:p{owed.publication}")
    _, result = await execute(
        ctx, caller, s.plan_stream(team_id, period, agent_id), s.evolve_plan,
        lambda state: s.decide_plan_overdue(state, ledger, agent_id, now),
    )
    return result is not None and not result.duplicate


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
        raise NotFound(f"no reassignment review {review_id}")
    if len(found) > 1:
        raise Conflict(f"the review id {review_id} is ambiguous: it names"
                       f" {len(found)} reviews; rename the team or agent")
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


async def decide_review(
    ctx: ServiceContext, caller: Caller, team: Team, ledger: s.Ledger, agent_id: str, *,
    decision: s.ReviewDecision, note: str, decided_by: str,
) -> dict[str, Any]:
    """Record a manager's decision on a reassignment review and return the review."""
    now = ctx.clock()
    review, _ = await execute(
        ctx, caller, s.review_stream(ledger.team_id, ledger.period, agent_id), s.evolve_review,
        lambda state: s.decide_reassignment(state, ledger, agent_id, decision=decision,
                                            note=note, decided_by=decided_by, now=now,
                                            manager_ids=team.manager_ids),
    )
    return review_document(ledger, review, agent_id)

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

from service.commands.base import Caller, execute
from service.context import ServiceContext
from service.domain import sanctions as s
from service.domain.directory import Team
from service.domain.results import PlanDecision
from service.queries.ledger import (
    get_ledger,
    ledger_of,
    plan_document,
    review_document,
    with_release,
)

#: The actor of what the service does on its own (the overdue scheduler).
SCHEDULER = Caller(metadata={"actor": {"subject": "scheduler", "role": "admin", "key_id": None}})


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

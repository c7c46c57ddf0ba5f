"""Background work on the clock: record improvement plans that passed their deadline unsubmitted,
and remind the raters of a cycle whose evaluation deadline nears, and release the results
that reached their latest release (``release_days`` after publication).

Readers already see such a plan as ``overdue`` (computed from their clock); the scheduler makes
it an event (``PlanOverdue``) so that notifications and BI, which follow events, see it too
(the reminders projection turns it into the agent's overdue reminder).

The evaluation reminders come from the clock, not from an event: a few days before a cycle's
evaluation deadline (``EVALUATION_NOTICE_DAYS``) each rater who still owes an evaluation gets
one reminder, written to the outbox with its idempotency key (person, kind, cycle), so however
many passes see the cycle in that window, nobody is reminded twice.

One replica at a time does the scanning: the one holding a session-level advisory lock on a
dedicated connection, as the projection runner does. Should two ever scan at once (a lock
connection that died unnoticed), nothing is recorded twice: the decision refuses a second
``PlanOverdue`` for the same obligation and the append carries an idempotency key.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import asyncpg

from service.commands.release import release_pass
from service.commands.sanctions import mark_overdue
from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import reminders as r
from service.projections.cycle_results import CycleResults
from service.projections.sanctions import Sanctions
from service.queries import cycles
from service.queries.directory import get_team
from service.queries.sanctions import overdue_candidates
from service.queries.wait import READ_TIMEOUT, wait
from service.store import reminders as reminder_store
from service.store.locked_loop import LockedLoop

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 7215002
LOCK_NAME = "scheduler:overdue-plans"


async def overdue_pass(ctx: ServiceContext) -> int:
    """Record every plan past its deadline without a submission, at ctx.clock(); count them."""
    now = ctx.clock()
    # Candidates come from the read model; each is decided again on its streams.
    await wait(ctx, Sanctions(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        candidates = await overdue_candidates(conn, now)
    recorded = 0
    for team_id, period, agent_id in candidates:
        if await mark_overdue(ctx, team_id, period, agent_id, now):
            recorded += 1
    if recorded:
        log.info("recorded %d overdue improvement plan(s)", recorded)
    return recorded


async def evaluation_reminders(ctx: ServiceContext) -> int:
    """Remind the raters who still owe evaluations of cycles whose deadline is near; return
    how many reminders were new."""
    now = ctx.clock()
    await wait(ctx, CycleResults(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        near = await conn.fetch(
            "SELECT team_id, period FROM cycles WHERE status = 'open' AND deadline > $1"
            " AND deadline <= $2 ORDER BY team_id, period",
            now, now + timedelta(days=r.EVALUATION_NOTICE_DAYS),
        )
    recorded = 0
    for row in near:
        cycle = await cycles.find_cycle(ctx, row["team_id"], row["period"])
        if cycle is None or cycle.status != "open":
            continue
        team = await get_team(ctx, cycle.team_id)
        scheme = await cycles.cycle_scheme(ctx, cycle)
        roster = await cycles.roster(ctx, team, cycle.period)
        owed = r.evaluations_owed(cycle, roster, c.missing_evaluations(cycle, scheme, roster),
                                  team.manager_ids)
        async with ctx.db.transaction() as conn:
            recorded += await reminder_store.enqueue(conn, owed, created_at=now)
    if recorded:
        log.info("recorded %d evaluation reminder(s)", recorded)
        if ctx.extras.reminder_wake is not None:
            ctx.extras.reminder_wake()
    return recorded


class Scheduler(LockedLoop):
    """Run ``overdue_pass``, ``evaluation_reminders`` and ``release_pass`` every
    ``interval_seconds`` on the replica holding the lock."""

    def __init__(
        self, ctx: ServiceContext, *, interval_seconds: float, lock_name: str = LOCK_NAME
    ) -> None:
        super().__init__(ctx.db, name="scheduler", lock=(LOCK_NAMESPACE, lock_name),
                         interval_seconds=interval_seconds, standby_seconds=interval_seconds)
        self.ctx = ctx

    async def work(self, conn: asyncpg.Connection) -> None:
        """Record overdue plans, remind raters, and release results that fell due."""
        await overdue_pass(self.ctx)
        await evaluation_reminders(self.ctx)
        # A service down at the due time releases at its first pass, once.
        await release_pass(self.ctx)

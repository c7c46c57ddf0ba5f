"""Metric commands: ingest a batch of samples, replay the quarantine.

One transaction per batch: look the agents up, place every sample in its team and month,
share-lock those months' cycles and refuse the closed ones, store the rest once each, and keep
the rejected ones in the quarantine. The KPI read model follows the stored samples
(service/projections/metric_totals.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from service.context import ServiceContext
from service.domain import metrics as m
from service.store import metrics as store
from service.store import team_metrics

#: A batch that deadlocked with a concurrent one (never expected: rows and locks are taken in
#: one order) is tried again this often.
RETRIES = 3


@dataclass(frozen=True, slots=True)
class Rejected:
    """A sample of a batch that was kept in the quarantine, and why."""

    index: int
    id: str
    reason: str
    detail: str
    source: str = ""


@dataclass
class Settled:
    """What became of a batch: new samples, duplicates, and rejections by index."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    stored_keys: list[tuple[str, str]] = field(default_factory=list)


async def settle(
    conn: asyncpg.Connection,
    items: Sequence[tuple[str, m.Sample]],
    now: datetime,
    *,
    keep_rejected: bool,
) -> Settled:
    """Store the usable samples of (source, sample) pairs once each; call in a transaction.

    ``keep_rejected`` puts rejected samples in the quarantine (ingestion); a replay leaves
    them where they are. Samples already stored count as duplicates, even when they would be
    refused now (a retry of a sample accepted before its month closed).
    """
    outcome = Settled()
    seen: set[tuple[str, str]] = set()
    checked: list[tuple[int, str, m.Sample]] = []
    refused: list[tuple[int, str, m.Sample, m.Rejection]] = []
    check = m.check
    for index, (source, sample) in enumerate(items):
        key = (source, sample["id"])
        if key in seen:
            outcome.duplicates += 1  # the same id twice in one batch: the first one counts
            continue
        seen.add(key)
        problem = check(sample, now)
        if problem is None:
            checked.append((index, source, sample))
        else:
            refused.append((index, source, sample, problem))

    # The agents of refused samples too: a kept sample names its team and month when known.
    found = await store.directory(conn, {s["agent_id"] for _, _, s in checked}
                                  | {s["agent_id"] for _, _, s, _ in refused})
    agents, zones, place = found.agents, found.zones, m.place
    # (source, sample id, agent, team, period, metric, value, occurred_at): a stored row.
    rows: list[tuple[str, str, str, str, str, str, float, datetime]] = []
    indexes: list[int] = []
    for index, source, sample in checked:
        where = place(sample, agents.get(sample["agent_id"]), zones)
        if isinstance(where, m.Rejection):
            refused.append((index, source, sample, where))
            continue
        rows.append((source, sample["id"], sample["agent_id"], where[0], where[1],
                     sample["metric"], sample["value"], sample["occurred_at"]))
        indexes.append(index)

    # The metrics each (team, month) accepts: its scheme's declarations (team_metrics).
    declared = await team_metrics.declared(conn, {(r[3], r[4]) for r in rows})
    if declared:
        known_rows, known_indexes = [], []
        for index, row in zip(indexes, rows, strict=True):
            unknown = m.undeclared(items[index][1], row[3], declared[(row[3], row[4])])
            if unknown is None:
                known_rows.append(row)
                known_indexes.append(index)
            else:
                refused.append((index, row[0], items[index][1], unknown))
        rows, indexes = known_rows, known_indexes

    statuses = await store.lock_cycles(conn, {(r[3], r[4]) for r in rows})
    if statuses:
        kept_rows = []
        for index, row in zip(indexes, rows, strict=True):
            closed = m.late(row[3], row[4], statuses.get((row[3], row[4])))
            if closed is None:
                kept_rows.append(row)
            else:
                refused.append((index, row[0], items[index][1], closed))
        rows = kept_rows

    outcome.accepted = await store.insert(conn, rows, now)
    outcome.duplicates += len(rows) - outcome.accepted
    if not keep_rejected:  # a replay marks what is stored now; ingestion has no need
        outcome.stored_keys = [(r[0], r[1]) for r in rows]

    already = await store.stored(conn, [(source, s["id"]) for _, source, s, _ in refused])
    kept: list[store.Kept] = []
    for index, source, sample, why in sorted(refused, key=lambda r: r[0]):
        if (source, sample["id"]) in already:
            outcome.duplicates += 1
            outcome.stored_keys.append((source, sample["id"]))
            continue
        outcome.rejected.append(Rejected(index, sample["id"], why.reason, why.detail, source))
        if keep_rejected:
            placed = (None if why.reason in m.UNPLACEABLE
                      else place(sample, agents.get(sample["agent_id"]), zones))
            kept.append(store.Kept(source, sample, why,
                                   None if isinstance(placed, m.Rejection) else placed))
    if keep_rejected:
        await store.quarantine(conn, kept, now)
    return outcome


async def _in_transaction(
    ctx: ServiceContext, work: Callable[[asyncpg.Connection], Awaitable[Settled]]
) -> Settled:
    for attempt in range(RETRIES):
        try:
            async with ctx.db.transaction() as conn:
                return await work(conn)
        except asyncpg.DeadlockDetectedError:
            if attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _wake(ctx: ServiceContext) -> None:
    # Only this process's aggregator is woken at once; another replica's polls within 50 ms.
    if ctx.runner is not None:
        ctx.runner.wake("metric_totals")


async def ingest(ctx: ServiceContext, source: str, samples: Sequence[m.Sample]) -> Settled:
    """Store a batch from one source; usable samples once each, the others in the quarantine."""
    now = ctx.clock()
    items = [(source, s) for s in samples]

    async def work(conn: asyncpg.Connection) -> Settled:
        return await settle(conn, items, now, keep_rejected=True)

    outcome = await _in_transaction(ctx, work)
    if outcome.accepted:
        _wake(ctx)
    return outcome


@dataclass
class Replayed:
    """What a replay did: samples now counted, ones already stored, and ones still refused."""

    replayed: int = 0
    already_stored: int = 0
    still_rejected: list[Rejected] = field(default_factory=list)


async def replay(
    ctx: ServiceContext,
    f: store.QuarantineFilter,
    *,
    by: str,
    limit: int = 100_000,
    chunk: int = m.MAX_BATCH,
) -> Replayed:
    """Try quarantined samples again with today's directory and cycles, oldest first."""
    result = Replayed()
    after: tuple[datetime, str, str] | None = None
    remaining = limit
    while remaining > 0:
        now = ctx.clock()
        size = min(chunk, remaining)
        claimed: list[asyncpg.Record] = []

        async def work(
            conn: asyncpg.Connection,
            claimed: list[asyncpg.Record] = claimed,
            size: int = size,
            now: datetime = now,
            after: tuple[datetime, str, str] | None = after,
        ) -> Settled:
            claimed[:] = await store.claim(conn, f, size, after)
            items = [(r["source"], m.from_raw(r["raw"])) for r in claimed]
            outcome = await settle(conn, items, now, keep_rejected=False)
            await store.resolve(conn, outcome.stored_keys, now, by)
            await store.still_rejected(
                conn, [(r.source, r.id, m.Rejection(r.reason, r.detail))
                       for r in outcome.rejected], now,
            )
            return outcome

        outcome = await _in_transaction(ctx, work)
        if not claimed:
            break
        last = claimed[-1]
        after = (last["first_received_at"], last["source"], last["sample_id"])
        remaining -= len(claimed)
        result.replayed += outcome.accepted
        result.already_stored += outcome.duplicates
        result.still_rejected += outcome.rejected
        if outcome.accepted:
            _wake(ctx)
        if len(claimed) < size:
            break
    return result

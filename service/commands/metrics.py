"""Metric commands: ingest a batch of samples, replay the quarantine.

One transaction per batch: look the agents up, place every sample in its team and month,
share-lock those months' cycles, refuse the metrics the team's scheme does not declare
(service/store/team_metrics.py) and the closed months, store the rest once each, and keep
the rejected ones in the quarantine; the KPI totals are appended in the same statement
(service/projections/metric_totals.py compacts them).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from service.context import ServiceContext
from service.domain import metrics as m
from service.domain.team_metrics import Declared
from service.store import metric_partitions, team_metrics
from service.store import metrics as store

#: Placements tried when the directory changes between locking and storing (each try is a
#: fresh look at a directory that changed a moment ago: twice in a row is already rare).
PLACEMENTS = 5


class DirectoryChanging(RuntimeError):
    """The directory changed under every placement of a batch (never expected)."""


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


def _why(refused: store.Refused, sample: m.Sample, now: datetime,
         accepts: Mapping[tuple[str, str], Mapping[str, Declared]]) -> m.Rejection:
    """Return the domain's rejection, in words, for a reason the database gave."""
    reason, team_id, period = refused.reason, refused.team_id, refused.period
    if reason in m.UNPLACEABLE:
        checked = m.check(sample, now)
        if checked is not None:
            return checked
    if reason in (m.UNKNOWN_METRIC, m.FRACTIONAL_COUNT) and team_id and period:
        undeclared = m.undeclared(sample, team_id, accepts.get((team_id, period), {}))
        if undeclared is not None:
            return undeclared
    if reason == m.PERIOD_UNAVAILABLE and period:
        return m.period_unavailable(period)
    if reason == m.PERIOD_CLOSED and team_id and period and refused.status:
        closed = m.late(team_id, period, store.CYCLE_STATUS_EVENTS[refused.status])
        if closed is not None:
            return closed
    return m.unknown_agent(sample["agent_id"])


async def settle(
    conn: asyncpg.Connection,
    sources: Sequence[str],
    samples: m.Samples,
    now: datetime,
    *,
    keep_rejected: bool,
) -> Settled:
    """Store the usable samples of a batch (``sources[i]`` sent ``samples[i]``) once each;
    call in a transaction, or outside one for the batch's COPY to begin it (store.stage).

    Python checks the value (and a time of a far year, which could not even be sent to the
    database); the batch is copied to the staging table and the database does the rest in
    two statements (the cycle locks, with the metrics each team's scheme declares for the
    month; then a plausible time, placement, closed months, storing once and the delta
    totals), so a KPI read after the commit includes the batch. ``keep_rejected`` puts
    rejected samples in the quarantine (ingestion); a replay leaves them where they are.
    Samples already stored count as duplicates, even when they would be refused now (a retry
    of a sample accepted before its month closed).
    """
    outcome = Settled()
    staged: list[store.Staged] = []
    checked: list[tuple[int, str, m.Sample, m.Rejection]] = []
    ids, values, times = samples.ids, samples.values, samples.times
    count = len(ids)
    # Years whose times the database can take (whether a time is plausible is judged there).
    first_year, last_year = m.EARLIEST.year, now.year + 1
    # Times as seconds since the epoch, once: what the stage takes, and what the batch's
    # bounds are found from (comparing aware datetimes of different offsets asks each for its
    # offset: the min and the max of the column had cost more than all the rest here).
    epochs = m.epochs(times)
    first, last = (min(epochs), max(epochs)) if count else (now.timestamp(), now.timestamp())
    # The common batch, judged by its columns at C speed: no id twice, every value and every
    # time in bounds (instants a day inside the years, so every local year is inside too).
    if count and (len(set(ids)) == count or len(set(zip(sources, ids, strict=True))) == count) \
            and math.isfinite(sum(values)) and 0 <= min(values) and max(values) <= m.MAX_VALUE \
            and datetime(first_year, 1, 2, tzinfo=UTC).timestamp() <= first \
            and last <= datetime(last_year, 12, 30, tzinfo=UTC).timestamp():
        staged = list(zip(range(count), sources, ids, samples.agent_ids, samples.metrics,
                          values, epochs, strict=True))
    else:
        seen: set[tuple[str, str]] = set()
        check, top = m.check, m.MAX_VALUE
        for index in range(count):
            key = (sources[index], ids[index])
            if key in seen:
                outcome.duplicates += 1  # the same id twice in one batch: the first one counts
                continue
            seen.add(key)
            value, at = values[index], times[index]
            problem = (None if 0 <= value <= top and first_year <= at.year <= last_year
                       else check(samples[index], now))
            if problem is None:
                staged.append((index, key[0], key[1], samples.agent_ids[index],
                               samples.metrics[index], value, epochs[index]))
            else:
                checked.append((index, key[0], samples[index], problem))

    # Refused: (index, source, sample, why, where it belongs: team and month, when known).
    refused: list[tuple[int, str, m.Sample, m.Rejection, tuple[str, str] | None]] = []
    if staged:
        await store.stage(conn, staged)
        if len(staged) < count:  # the span of what was staged (a far year is checked out)
            first, last = min(r[6] for r in staged), max(r[6] for r in staged)
        agents = list(set(samples.agent_ids))
        months = m.months_spanned(datetime.fromtimestamp(first, UTC),
                                  datetime.fromtimestamp(last, UTC), now)
        for _ in range(PLACEMENTS):
            # What each (team, month) the batch can fall in accepts: its scheme's declared
            # metrics (issue 19); the storing statement judges each placed sample by them.
            placed = await store.place(conn, agents, months)
            accepts = placed.accepts
            if placed.mark is None:  # the directory read model lags: place from the streams
                accepts = await team_metrics.declared(
                    conn, await store.place_by_hand(conn, staged))
            elif accepts is None:  # so does the read model of declared metrics
                accepts = await team_metrics.from_streams(conn, placed.pairs)
            judged = await store.settle(conn, now, placed.mark, accepts, agents, months,
                                        placed.cycles)
            if not judged.moved:
                break
        else:
            raise DirectoryChanging("the directory kept changing while placing a batch")
        outcome.accepted = judged.accepted
        outcome.duplicates += len(staged) - len(judged.rejected) - judged.accepted
        refusing = set()
        for r in judged.rejected:
            source, sample = sources[r.index], samples[r.index]
            refusing.add(r.index)
            where = ((r.team_id, r.period) if r.team_id and r.period
                     and r.reason not in m.UNPLACEABLE else None)
            refused.append((r.index, source, sample, _why(r, sample, now, accepts), where))
        if not keep_rejected:  # a replay marks what is stored now; ingestion has no need
            outcome.stored_keys += [(r[1], r[2]) for r in staged if r[0] not in refusing]
    refused += [(index, source, sample, why, None) for index, source, sample, why in checked]

    if refused:
        # A sample stored before counts as a duplicate (even one sent again with other content).
        already = await store.stored(conn, [(source, s["id"]) for _, source, s, _, _ in refused])
        for key in [(source, s["id"]) for _, source, s, _, _ in refused
                    if (source, s["id"]) in already]:
            outcome.duplicates += 1
            outcome.stored_keys.append(key)
        refused = [r for r in refused if (r[1], r[2]["id"]) not in already]
    refused.sort(key=lambda r: r[0])
    outcome.rejected = [Rejected(index, sample["id"], why.reason, why.detail, source)
                        for index, source, sample, why, _ in refused]
    if keep_rejected and refused:
        kept = [store.Kept(source, sample, why, where)
                for _, source, sample, why, where in refused]
        await _place_refused_by_value(conn, kept)
        await store.quarantine(conn, kept, now)
    return outcome


async def _place_refused_by_value(conn: asyncpg.Connection, kept: list[store.Kept]) -> None:
    """Place the kept samples that Python refused (a negative count, say) when their agent is
    known, so the team's managers see their own feed's problems; the rest stay unplaced."""
    unplaced = [i for i, k in enumerate(kept)
                if k.where is None and k.why.reason in m.VALUE_OR_TIME
                and k.why.reason not in m.UNPLACEABLE]
    if not unplaced:
        return
    found = await store.directory(conn, {kept[i].sample["agent_id"] for i in unplaced})
    for i in unplaced:
        where = m.place(kept[i].sample, found.agents.get(kept[i].sample["agent_id"]),
                        found.zones)
        if not isinstance(where, m.Rejection):
            kept[i] = store.Kept(kept[i].source, kept[i].sample, kept[i].why, where)


async def _in_transaction(
    ctx: ServiceContext, work: Callable[[asyncpg.Connection], Awaitable[Settled]],
    transaction: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]] | None = None,
) -> Settled:
    """Run work in one transaction (``ctx.db.transaction`` unless told), again (a fresh one)
    when it lost a deadlock."""
    begin = transaction or ctx.db.transaction
    # The first attempt takes no retry machinery, as commands.base's does: tenacity's
    # bookkeeping cost 50 µs of CPU a batch (load 7), and a batch does not deadlock (RETRIES).
    try:
        async with begin() as conn:
            return await work(conn)
    except asyncpg.DeadlockDetectedError:
        pass
    async for attempt in AsyncRetrying(retry=retry_if_exception_type(
            asyncpg.DeadlockDetectedError), stop=stop_after_attempt(RETRIES - 1),
            reraise=True):
        with attempt:
            async with begin() as conn:
                return await work(conn)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _partitions_ready(ctx: ServiceContext, now: datetime) -> None:
    """Make the partitions around now's month once per month and process.

    The service makes them at start and the compacting replica every hour; this covers a
    month that began since (or a clock that moved, as the demo's does) before the first
    sample of it arrives.
    """
    month = f"{now.year:04d}-{now.month:02d}"
    if ctx.extras.partitions_month != month:
        async with ctx.db.connection() as conn:
            await metric_partitions.ensure(conn, now)
        ctx.extras.partitions_month = month


async def ingest(ctx: ServiceContext, source: str, samples: m.Samples | Sequence[m.Sample]
                 ) -> Settled:
    """Store a batch from one source; usable samples once each, the others in the quarantine."""
    now = ctx.clock()
    await _partitions_ready(ctx, now)
    batch = samples if isinstance(samples, m.Samples) else m.Samples.of(samples)
    sources = [source] * len(batch)

    async def work(conn: asyncpg.Connection) -> Settled:
        return await settle(conn, sources, batch, now, keep_rejected=True)

    # The batch's COPY begins its transaction (store.stage): one round trip fewer. A batch
    # with nothing to stage writes at most its quarantine entries, in one statement.
    return await _in_transaction(ctx, work, ctx.db.transaction_begun_by_work)


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
        await _partitions_ready(ctx, now)
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
            outcome = await settle(conn, [r["source"] for r in claimed],
                                   m.Samples.of(m.from_raw(r["raw"]) for r in claimed), now,
                                   keep_rejected=False)
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
        if len(claimed) < size:
            break
    return result

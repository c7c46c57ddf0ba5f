"""Keep projections following the event store, one process per projection at a time.

Each projection is advanced only by the process holding a session-level advisory lock on a
dedicated connection; the batch's read-model writes and its checkpoint commit together on that
same connection, so an event takes effect exactly once even if the process dies mid-batch (the
transaction is rolled back, the lock released, and another process takes over from the
checkpoint).

A projection that names the events it applies (``Projection.applies``) reads past a batch that
holds none of them without a transaction: the month's stream is mostly evaluations, which five
of the seven projections that read it skip, and each commit would otherwise cost them a
transaction to move a checkpoint. The checkpoint follows with the next batch it applies (or
once ``UNSTORED_AT_MOST`` events were read past, so that a restart and a reader's check never
scan far); the worker holds the position it read to, and readers wait for the events that count
alone (``service.queries.wait``).

Wake-ups: a commit in this process wakes the workers that read its stream types and apply one
of its event types at once.
For the rest (commits of other processes, events not yet visible when a worker was woken),
one task per process polls the store's heads, the last visible event of each stream type, in
one statement, and wakes only the workers whose cursor is behind the head of a type they
read; it polls at once on the debounced notifications that service.notifier sends *after*
appends commit (so the write path never pays for a NOTIFY), and more often while the heads
move. Idle workers cost nothing: nine of them each polling would cost nine statements.
A worker that has just applied a batch pauses a moment (``GATHER_SECONDS``) before it reads
again, so that under load each read and transaction carries more events; one that read past a
batch holding nothing it applies waits longer (``PASSED_SECONDS``), unless a commit here holds
an event it applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace

import asyncpg

from service import observability
from service.background import Background, woken
from service.notifier import CHANNEL
from service.projections import checkpoints
from service.projections.base import Projection, admits_sql
from service.projections.checkpoints import Generation
from service.projections.decoded import with_data
from service.projections.progress import Progress
from service.retrying import reconnecting
from service.store.database import DATABASE_AWAY, Database, database_away
from service.store.event_store import READ_ALL, Cursor, RecordedEvent, heads, read_all
from service.store.locked_loop import take_lock, try_advisory_lock

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 7215001
LIVE_BATCH = 500
#: Events a live generation reads past before its stored checkpoint follows them: a reader's
#: check for a projection that skips events (service.queries.wait) scans up to this many.
UNSTORED_AT_MOST = 100
BUILD_BATCH = 5000
FAILURE_RETRY_SECONDS = 5.0
#: How often the runner asks whether the generations changed (see Worker.ensure_live).
GENERATIONS_SECONDS = 1.0
#: The heads' first poll interval after they moved; it doubles up to ``poll_seconds``.
FIRST_POLL_SECONDS = 0.005
#: How long a worker that has just applied a batch lets the next one gather (see _drive). A
#: longer pause gathers more but adds itself to each event's lag: 50 ms made batches of 58
#: evaluations under 32 clients (10 ms: 30, none: 21) and doubled the lag of the event store
#: benchmark's projection (p50 25 -> 60 ms), which 10 ms leaves as it was.
GATHER_SECONDS = 0.01
#: How long a worker that has just read past a batch holding nothing it applies waits before it
#: reads again, unless a commit here holds an event it applies.
PASSED_SECONDS = 0.05


#: read_all's batch for a projection that names the events it applies: the same rows after the
#: cursor under the same limit, of which only those it applies come back, then one row holding
#: the last one read and how many were (``read``; NULL on the events). The events read past cost
#: PostgreSQL no row to send and the process none to decode: the month's stream is mostly
#: evaluations, which five of the seven projections reading it skip, each reading every one.
_READ_APPLIED = f"""
WITH batch AS ({READ_ALL}),
e AS (SELECT *, split_part(stream_id, ':', 1) AS stream_type FROM batch)
SELECT position, tx_id, stream_id, version, event_id, type, schema_version, data, metadata,
       recorded_at, NULL::bigint AS read
FROM e WHERE {admits_sql("$8", "$9")}
UNION ALL
(SELECT position, tx_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        (SELECT count(*) FROM batch)
 FROM batch ORDER BY tx_id DESC, position DESC LIMIT 1)
ORDER BY tx_id, position, read NULLS FIRST
"""


class ProjectionFailed(Exception):
    """A projection raised on one event; it stays stopped there until fixed."""


async def try_lock(conn: asyncpg.Connection, name: str) -> bool:
    """Take the projection's lease for this connection's lifetime, if free."""
    return await try_advisory_lock(conn, (LOCK_NAMESPACE, name))


class Worker:
    """Advance one projection on a connection that holds its lock."""

    def __init__(self, conn: asyncpg.Connection, projection: Projection) -> None:
        self.conn = conn
        self.projection = projection
        self._single_steps: set[int] = set()
        #: The generations as last read, with their cursors moved by this worker's own steps.
        self._known: tuple[Generation, Generation | None] | None = None
        #: Events the live generation read past that its stored checkpoint does not count yet.
        self._unsaved = 0
        #: Whether the last batch held nothing this projection applies (read past, no
        #: transaction).
        self.passed = False

    async def ensure_live(self) -> tuple[Generation, Generation | None]:
        """Return the live generation and the one being built, starting either if needed.

        Only this worker moves their cursors (it holds the projection's lease), so they are
        read again only when the runner saw the generations change (``forget_generations``:
        a rebuild another process asked for, ``csperf projections rebuild``), not on every
        step.
        """
        if self._known is not None:
            return self._known
        self._unsaved = 0
        live, building = await checkpoints.live_and_building(self.conn, self.projection.name)
        if live is None:
            live = await checkpoints.start(self.conn, self.projection, "live")
        if building is None and live.code_version != self.projection.version:
            log.info(
                "projection %s: code version %s differs from live %s; rebuilding beside it",
                self.projection.name,
                self.projection.version,
                live.code_version,
            )
            building = await checkpoints.start(self.conn, self.projection, "building")
        self._known = (live, building)
        return live, building

    def forget_generations(self) -> None:
        """Read the generations again before the next step."""
        self._known = None

    def behind(self, last: Mapping[str | None, Cursor]) -> bool:
        """Tell whether the store shows an event this worker reads past its live cursor, given
        the heads (``event_store.heads``); or whether it has more to do than follow them."""
        if self._known is None or self._known[1] is not None or self._single_steps:
            return True
        cursor = self._known[0].cursor
        read = self.projection.stream_types
        return any(last.get(t, cursor) > cursor for t in (read if read is not None else (None,)))

    def _moved(self, generation: Generation, cursor: Cursor, applied: int) -> None:
        """Move the known generation's cursor past the events just applied to it."""
        if self._known is None:
            return
        moved = replace(generation, cursor=cursor,
                        events_applied=generation.events_applied + applied)
        live, building = self._known
        if live.generation == generation.generation:
            self._known = (moved, building)
        elif building is not None and building.generation == generation.generation:
            self._known = (live, moved)

    async def _read(self, generation: Generation, limit: int
                    ) -> tuple[list[RecordedEvent], Cursor, int]:
        """Read the next batch: the events to apply, the cursor past the last event read, and
        how many were read (those it applies and those it reads past)."""
        only = self.projection.applies
        if only is None:
            events = await read_all(self.conn, generation.cursor, limit,
                                    stream_types=self.projection.stream_types,
                                    data_only=self.projection.data_only)
            return events, events[-1].cursor if events else generation.cursor, len(events)
        data_only = self.projection.data_only
        stream_types = self.projection.stream_types
        rows = await self.conn.fetch(
            _READ_APPLIED, generation.cursor.tx_id, generation.cursor.position, limit,
            list(stream_types) if stream_types is not None else None,
            list(data_only.stream_types) if data_only is not None else None,
            sorted(data_only.event_types) if data_only is not None else [],
            sorted(data_only.on_demand) if data_only is not None else [],
            *only.parameters(),
        )
        if not rows:
            return [], generation.cursor, 0
        *applied, last = rows
        return ([RecordedEvent(*row[:-1]) for row in applied],
                Cursor(last["tx_id"], last["position"]), last["read"])

    async def step(self, generation: Generation, limit: int) -> int:
        """Apply the next batch to a generation; return how many events it read."""
        if generation.generation in self._single_steps:
            limit = 1
        events: list[RecordedEvent] = []
        try:
            # Read outside the transaction: most polls find nothing (one round trip, not
            # three), and committed events read stay what they are; only this worker moves
            # the cursor they were read after.
            events, cursor, read = await self._read(generation, limit)
            if not read:
                return 0
            live = generation.status == "live"
            if live and self.projection.applies is not None and not events:
                # Nothing here changes the read model: no transaction, and the checkpoint
                # follows later (see the module's docstring).
                self._unsaved += read
                self.passed = True
                if self._unsaved >= UNSTORED_AT_MOST:
                    await checkpoints.advance(self.conn, generation, cursor, self._unsaved)
                    self._unsaved = 0
            elif not events or not await self.projection.writes(self.conn, events):
                self.passed = False
                await checkpoints.advance(self.conn, generation, cursor,
                                          read + (self._unsaved if live else 0))
                if live:
                    self._unsaved = 0
            else:
                self.passed = False
                data_only = self.projection.data_only
                async with (
                    with_data(self.conn, events, data_only.on_demand if data_only else ())
                    as events,
                    self.conn.transaction(),
                ):
                    await self.projection.apply(
                        self.conn, events, self.projection.table_names(generation.generation)
                    )
                    await checkpoints.advance(self.conn, generation, cursor,
                                              read + (self._unsaved if live else 0))
                if live:
                    self._unsaved = 0
        except Exception as exc:
            if database_away(exc):
                raise
            if limit > 1:
                # Find the exact event: replay the batch one event at a time.
                self._single_steps.add(generation.generation)
                return 0
            position = events[0].position if events else generation.cursor.position
            await checkpoints.record_failure(self.conn, generation, position, repr(exc))
            observability.PROJECTION_FAILED.labels(self.projection.name).set(1)
            log.exception(
                "projection %s stopped at event %s", self.projection.name, position
            )
            raise ProjectionFailed(self.projection.name) from exc
        self._moved(generation, cursor, read)
        self._single_steps.discard(generation.generation)
        observability.PROJECTION_FAILED.labels(self.projection.name).set(0)
        observability.PROJECTED_EVENTS.labels(self.projection.name).inc(read)
        if generation.status == "live":
            observability.PROJECTION_POSITION.labels(self.projection.name).set(cursor.position)
        return read

    async def catch_up(
        self, generation: Generation, limit: int, progress: Callable[[int], None] | None = None
    ) -> None:
        """Step a generation until it has read everything visible now."""
        while True:
            generation = await self._reload(generation)
            read = await self.step(generation, limit)
            if progress is not None and read:
                progress(read)
            if read == 0 and generation.generation not in self._single_steps:
                return

    async def finish_build(self, building: Generation) -> None:
        """Catch the rebuilt generation up and swap it in, atomically for readers."""
        await self.catch_up(building, BUILD_BATCH)
        async with self.conn.transaction():
            # Lock out nothing but ourselves: we hold the projection lease already.
            building = await self._reload(building)
            await self.catch_up(building, BUILD_BATCH)
            live = await checkpoints.current(self.conn, self.projection.name, "live")
            await checkpoints.swap(self.conn, self.projection, live, building)
        self._known = None  # the swap made new generations
        log.info("projection %s: generation %s is live", self.projection.name, building.generation)

    async def _reload(self, generation: Generation) -> Generation:
        fresh = await self.conn.fetchrow(
            "SELECT tx_id, position, events_applied FROM projection_checkpoint"
            " WHERE name = $1 AND generation = $2",
            generation.name,
            generation.generation,
        )
        return Generation(
            name=generation.name,
            generation=generation.generation,
            code_version=generation.code_version,
            status=generation.status,
            cursor=Cursor(fresh["tx_id"], fresh["position"]),
            events_applied=fresh["events_applied"],
            error=None,
            error_position=None,
        )

    async def run_once(self) -> int:
        """Advance the live generation one batch and any rebuild one batch."""
        live, building = await self.ensure_live()
        read = await self.step(live, LIVE_BATCH)
        if building is not None:
            built = await self.step(building, BUILD_BATCH)
            if built < BUILD_BATCH:
                await self.finish_build(building)
            read += built
        return read


def worker_for(conn: asyncpg.Connection, projection: Projection) -> Worker:
    """Return the worker that advances a projection; one that reads another source brings its
    own (``make_worker``)."""
    make: Callable[[asyncpg.Connection], Worker] | None = getattr(
        projection, "make_worker", None
    )
    return make(conn) if make is not None else Worker(conn, projection)


class ProjectionRunner(Background):
    """Run every projection's worker in this process, competing for their leases."""

    task_name = "projections"

    def __init__(
        self,
        db: Database,
        projections: Sequence[Projection],
        *,
        poll_seconds: float = 0.05,
        lease_retry_seconds: float = 1.0,
    ) -> None:
        self.db = db
        self.projections = list(projections)
        self.poll_seconds = poll_seconds
        self.lease_retry_seconds = lease_retry_seconds
        self._wake = {p.name: asyncio.Event() for p in self.projections}
        #: The wake-ups of each kind of commit (stream types, event types) seen so far.
        self._woken_by: dict[tuple[frozenset[str] | None, frozenset[str] | None],
                             list[asyncio.Event]] = {}
        self._poll_now = asyncio.Event()
        #: A worker was woken for events not visible yet: poll at the first interval again.
        self._hurry = False
        self.holding: set[str] = set()
        #: The workers of the projections this process holds the lease of, by name.
        self._workers: dict[str, Worker] = {}
        #: The projections whose worker waits for a wake-up (caught up with what it can see).
        self._asleep: set[str] = set()
        #: Each committed batch, for readers waiting on a write (service.queries.wait).
        self.progress = Progress()

    def wake(self, stream_types: Collection[str] | None = None,
             event_types: Collection[str] | None = None) -> None:
        """Tell the workers that new rows may be visible: events of these types (None: of any)
        were committed to streams of these types (None: of any). A projection that reads none
        of them, or applies none of them, stays asleep: an agent's rename wakes the directory,
        not the month's results, an evaluation wakes the results, not the releases, and each
        worker woken costs a round trip or two even when it finds nothing."""
        key = (frozenset(stream_types) if stream_types is not None else None,
               frozenset(event_types) if event_types is not None else None)
        wakes = self._woken_by.get(key)
        if wakes is None:
            # Every commit asks this; the answer for a kind of commit never changes.
            wakes = self._woken_by[key] = [
                self._wake[p.name] for p in self.projections if self._woken_for(p, *key)]
        for wake in wakes:
            wake.set()

    @staticmethod
    def _woken_for(projection: Projection, stream_types: Collection[str] | None,
               event_types: Collection[str] | None) -> bool:
        read, applies = projection.stream_types, projection.applies
        if stream_types is not None and read is not None and set(read).isdisjoint(stream_types):
            return False
        return (stream_types is None or event_types is None or applies is None
                or applies.any_committed(stream_types, event_types))

    async def run(self) -> None:
        """Follow every projection, one task each, and poll the heads that wake them. Stopping
        cancels them together, so their connections close side by side, and their leases go
        with them."""
        async with asyncio.TaskGroup() as group:
            for p in self.projections:
                group.create_task(self._follow(p), name=f"projection:{p.name}")
            group.create_task(self._poll_heads(), name="projection:heads")

    async def wait_for_read_models(self) -> None:
        """Return once every projection has its live tables, made here or by another process.

        Serving before then would answer a first read with a missing table.
        """
        names = {p.name for p in self.projections}
        while True:
            with contextlib.suppress(*DATABASE_AWAY):
                async with self.db.connection() as conn:
                    live = await conn.fetch(
                        "SELECT name FROM projection_checkpoint WHERE status = 'live'"
                    )
                if names <= {r["name"] for r in live}:
                    return
            await asyncio.sleep(0.02)

    async def _follow(self, projection: Projection) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                # While the database is away, try again after 0.1 s, doubling up to 5 s.
                conn = await take_lock(self.db, (LOCK_NAMESPACE, projection.name), first=0.1,
                                       cap=5.0, name=f"projection {projection.name}")
                if conn is None:
                    await asyncio.sleep(self.lease_retry_seconds)
                    continue
                self.holding.add(projection.name)
                worker = self._workers[projection.name] = worker_for(conn, projection)
                await self._drive(worker)
            except asyncio.CancelledError:
                raise
            except ProjectionFailed:
                await asyncio.sleep(FAILURE_RETRY_SECONDS)
            except Exception as exc:
                if database_away(exc):
                    # Reconnecting backs off in take_lock, starting again from its first wait.
                    log.warning("projection %s lost the database (%s); retrying",
                                projection.name, type(exc).__name__)
                else:
                    log.exception("projection %s runner failed; retrying", projection.name)
                    await asyncio.sleep(FAILURE_RETRY_SECONDS)
            finally:
                self.holding.discard(projection.name)
                self._workers.pop(projection.name, None)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))

    async def _drive(self, worker: Worker) -> None:
        wake = self._wake[worker.projection.name]
        while True:
            wake.clear()
            if read := await worker.run_once():
                self.progress.advanced(worker.projection)
                if read < LIVE_BATCH and worker.passed:
                    # Nothing in it to apply: read past the next ones in a longer batch, unless
                    # an event it applies is committed here first (its wake-up: see wake). The
                    # lag of what it skips is nobody's.
                    await woken(wake, PASSED_SECONDS)
                elif read < LIVE_BATCH:
                    # Under load the commits keep coming: reading again at once would take a
                    # handful of events a round trip and a transaction, paid from the event
                    # loop the requests share. A short pause lets the next batch gather; an
                    # idle worker still reads at once when woken, and a reader waiting here
                    # for this projection cuts the pause short.
                    await self.progress.pause(worker.projection, GATHER_SECONDS)
                continue
            if not worker.behind({}):
                # Woken for nothing it can see yet (a commit behind an older transaction
                # still open): the heads are polled again soon, and wake it once it is.
                self._hurry = True
                self._poll_now.set()
                self._asleep.add(worker.projection.name)
                try:
                    await wake.wait()
                finally:
                    self._asleep.discard(worker.projection.name)

    async def _poll_heads(self) -> None:
        """Wake the workers that are behind the store's heads, polling more often while the
        heads move and at once on another process's notification."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                async for attempt in reconnecting(first=0.1, cap=5.0, name="projection heads"):
                    with attempt:
                        conn = await self.db.connect_single()
                assert conn is not None
                await conn.add_listener(CHANNEL, lambda *_: self._poll_now.set())
                await self._follow_heads(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if database_away(exc):
                    log.warning("projection heads lost the database (%s); retrying",
                                type(exc).__name__)
                else:
                    log.exception("projection heads poll failed; retrying")
                    await asyncio.sleep(FAILURE_RETRY_SECONDS)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))

    async def _follow_heads(self, conn: asyncpg.Connection) -> None:
        interval, generations_at = self.poll_seconds, 0.0
        generations: set[tuple[str, int, str]] | None = None
        while True:
            self._poll_now.clear()
            if time.monotonic() - generations_at >= GENERATIONS_SECONDS:
                latest = {(g.name, g.generation, g.status)
                          for g in await checkpoints.all_generations(conn)}
                if generations is not None and latest != generations:
                    for worker in self._workers.values():
                        worker.forget_generations()
                generations, generations_at = latest, time.monotonic()
            if await self._wake_behind(conn) or self._hurry:
                interval, self._hurry = FIRST_POLL_SECONDS, False
            else:
                interval = min(interval * 2, self.poll_seconds)
            await woken(self._poll_now, interval)

    async def _wake_behind(self, conn: asyncpg.Connection) -> bool:
        """Read the heads of every stream type the sleeping workers here read (one statement)
        and wake those behind them; return whether any was. A worker reading, or pausing
        before it reads again, needs no wake-up: under load that is most of them, most of
        the time, and then the heads are not read at all."""
        workers = [w for name, w in self._workers.items() if name in self._asleep]
        if not workers:
            return False
        read = sorted({t for w in workers for t in (w.projection.stream_types or ())})
        last = await heads(conn, read)
        woken = False
        for worker in workers:
            if worker.behind(last):
                self._wake[worker.projection.name].set()
                woken = True
        return woken

"""Issue 2's numbers: appends against plain asyncpg, projection lag, late commits, rebuild speed."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from bench.common import (
    BenchContext,
    CpuMeter,
    LoadResult,
    Row,
    Suite,
    binary_jsonb,
    bounded,
    compared,
    median,
    percentile,
    run_load,
)
from bench.projections import BenchEventLog, BenchNoop, Timed
from service.config import Settings
from service.context import ServiceContext
from service.notifier import Notifier
from service.projections import checkpoints
from service.projections.base import Projection
from service.projections.runner import BUILD_BATCH, ProjectionRunner, Worker, try_lock
from service.projections.stream_index import StreamIndex
from service.queries.wait import wait
from service.store.database import Database
from service.store.errors import ConcurrencyError
from service.store.event_store import (
    READ_ALL,
    Cursor,
    NewEvent,
    append,
    read_all,
    stream_version,
)

SUITE = Suite(
    key="event_store",
    title="Event store and projections (issue 2)",
    about="""
### What these mean and how they are measured

Every benchmark gets a database of its own, created from the Alembic migrations and dropped
afterwards, on the benchmark server (the embedded PostgreSQL unless
`CSPERF_BENCH_DATABASE_URL` is set, with its default settings: `synchronous_commit=on`, so
every commit waits for its WAL flush). Client and server share the machine's two CPUs, as they
do when the service runs with its embedded database. The client is one Python process on
uvloop (what uvicorn uses), with `service.store.database.Database` pools (orjson codecs) for
the subject and the baselines alike.

Rows are realistic: a KPI-style `data` document of about 220 bytes of JSON and `metadata` with
actor, request, correlation and causation ids (about 160 bytes), a fresh event id and timestamp
per event. Streams are `agent:<task>-<n>`, 64 per task, picked at random; each task knows its
streams' versions, so appends state the right expected version and never conflict. Before the
append benchmarks measure anything, every table gets 50,000 events of history and is vacuumed
and analysed, as a running store is (the *new empty database* row shows what happens without).

Subject and baselines run in alternating rounds (the order reversed every round, a warm-up
excluded from each); a figure is the median of its rounds. The notes give each round, the CPU
each event cost (client = this process, server = the PostgreSQL processes, from /proc via
psutil) and how much CPU *other* processes on the machine took meanwhile: the machine is
shared, and a round that competes with a test suite measures less. Before each benchmark the
run waits (up to 30 s) for the other processes to quieten, and a round during which they
took more than 30 % of a CPU is run again (at most 3 times per comparison; the notes say
so). CPU per event is the steadier figure when the machine is busy.

- **single-event appends**: 32 asyncio tasks, each holding a pooled connection, call
  `event_store.append` (autocommit, one event, expected version) in a loop. Baseline: the same
  tasks run a plain single-row `INSERT` (autocommit) of the same columns into a plain table
  (`bench_plain_event`: the event table's columns, identity primary key and defaults; none of
  its other indexes or constraints, no `stream` row). Target: at least 60 % of the baseline's
  rate. *For scale*: the same `INSERT` into a table shaped exactly like `event`
  (`LIKE event INCLUDING ALL`: same indexes and constraints, none of the store's logic), which
  separates what the schema costs from what the append statement costs.
- **single-event appends, new empty database**: one round of the same, without the history:
  the first minutes of a new deployment or of a test run. Statement plans cached while a
  table is tiny can be poor for it later (asyncpg keeps each connection's prepared statements,
  and PostgreSQL its generic plans, until autovacuum's first ANALYZE replans them); this row
  catches that.
- **batched appends**: the same tasks, 100 events per `append` call (one stream, one
  transaction) against `copy_records_to_table` of the same 100 rows per COPY into the plain
  table. Target: at least 50 % of the COPY rate. *For scale*: the same COPY into the
  event-shaped table.
- **projection lag**: the single-event load again, with a `ProjectionRunner` following the
  real `stream_index` projection and the service's `Notifier` poked after every commit, as
  `ServiceContext.committed` does. Each event's commit time is taken when `append` returns; a
  separate connection reads the projection checkpoint every 2 ms, and an event counts as
  visible at the first read (timestamped when the read returns) whose checkpoint cursor is at
  or past the event's (transaction id, position). Lag = visible - committed, for every event
  committed after the warm-up. Target: p99 below 100 ms.
- **late commits**: 32 appenders in explicit transactions that read a random shared stream's
  version (200 streams), append 1-3 events, then sleep a random 0-5 s before committing; 5 % of
  them roll back on purpose (and version conflicts roll back too); 8 more appenders commit
  almost at once (0-20 ms), so fast commits with high positions keep passing slow ones. A
  `ProjectionRunner` follows a bench projection that logs each applied event. At the end the
  log is compared with the set of events the appenders saw commit: *skipped* counts committed
  events the projector never applied, *applied twice* the repeats. Targets: 0. The run also
  checks that nothing uncommitted was applied and that every stream was applied in version
  order.
- **rebuild**: 300,000 events (commands of 1-5 events on 20,000 streams, 1,000 events a
  transaction, loaded with COPY and then vacuumed, like a settled store), rebuilt from zero
  into a new generation exactly as `csperf projections rebuild` does
  (`checkpoints.start(..., "building")`, `Worker.catch_up`, `finish_build`, batches of
  5,000). The figure is events / wall-clock seconds. Reported for the real `stream_index`
  projection (target: at least 50,000 events/s), for a no-op projection (the runner's own
  ceiling: read, decode, checkpoint) and for a projection that COPYs a row per event, with
  the time split into the projection's `apply` (timed by wrapping the projection; the runner
  itself is not instrumented) and the runner's share, and reading alone split into query and
  protocol, JSON decoding and building `RecordedEvent` objects (separate passes over the same
  events).
""",
)

TASKS = 32
STREAMS_PER_TASK = 64
BATCH = 100

PLAIN = "bench_plain_event"
#: The event table's shape (indexes, constraints, defaults) without the event store's logic.
SHAPED = "bench_shaped_event"
PLAIN_TABLE = f"""
CREATE TABLE IF NOT EXISTS {PLAIN} (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id          bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    stream_id      text NOT NULL,
    stream_type    text NOT NULL,
    version        integer NOT NULL,
    event_id       uuid NOT NULL,
    type           text NOT NULL,
    schema_version integer NOT NULL DEFAULT 1,
    data           jsonb NOT NULL,
    metadata       jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    recorded_at    timestamptz NOT NULL
)
"""
ROW_COLUMNS = [
    "stream_id",
    "stream_type",
    "version",
    "event_id",
    "type",
    "schema_version",
    "data",
    "metadata",
    "recorded_at",
]
SHAPED_TABLE = f"CREATE TABLE IF NOT EXISTS {SHAPED} (LIKE event INCLUDING ALL)"
PLAIN_INSERT = (
    f"INSERT INTO {PLAIN} ({', '.join(ROW_COLUMNS)})"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)

KPIS = ("first_contact_resolution", "average_handle_time", "csat", "quality_score", "adherence")
CHANNELS = ("phone", "chat", "email", "social")
EVENT_TYPE = "KpiValueRecorded"


# --------------------------------------------------------------------------------------------
# Rows


class Payloads:
    """A ring of realistic data and metadata documents, made before any timing starts."""

    def __init__(self, seed: int, count: int = 1024) -> None:
        rng = random.Random(seed)
        self.data: list[dict[str, Any]] = []
        self.metadata: list[dict[str, Any]] = []
        for _ in range(count):
            agent = rng.randrange(5000)
            self.data.append(
                {
                    "agent_id": f"agent-{agent:05d}",
                    "team_id": f"team-{agent % 60:03d}",
                    "kpi": rng.choice(KPIS),
                    "period": f"2026-{rng.randint(1, 12):02d}",
                    "channel": rng.choice(CHANNELS),
                    "value": round(rng.uniform(0, 100), 3),
                    "sample_size": rng.randint(1, 900),
                    "source": "acd-import",
                    "comment": "imported from the contact-centre feed, week "
                    f"{rng.randint(1, 52):02d}",
                }
            )
            self.metadata.append(
                {
                    "actor": f"user:supervisor-{rng.randrange(300):04d}",
                    "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "correlation_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "causation_id": None,
                }
            )
        self._next = rng.randrange(count)

    def next(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return the next (data, metadata) pair."""
        self._next = (self._next + 1) % len(self.data)
        return self.data[self._next], self.metadata[self._next]

    def sizes(self) -> tuple[float, float]:
        """Return the mean JSON size of data and metadata, in bytes."""
        d = sum(len(orjson.dumps(x)) for x in self.data) / len(self.data)
        m = sum(len(orjson.dumps(x)) for x in self.metadata) / len(self.metadata)
        return d, m


@dataclass
class Streams:
    """One task's streams and the versions it has written to them."""

    prefix: str
    rng: random.Random
    count: int = STREAMS_PER_TASK
    versions: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.versions = [0] * self.count
        self.ids = [f"agent:{self.prefix}-{n}" for n in range(self.count)]

    def pick(self) -> int:
        """Return a random stream's index."""
        return self.rng.randrange(self.count)


Op = Callable[[], Awaitable[int]]


def store_single(
    conn: asyncpg.Connection,
    streams: Streams,
    payloads: Payloads,
    on_commit: Callable[[list[int]], None] | None = None,
) -> Op:
    """Return an operation appending one event through the event store."""

    async def op() -> int:
        index = streams.pick()
        data, metadata = payloads.next()
        result = await append(
            conn,
            streams.ids[index],
            [NewEvent(EVENT_TYPE, data)],
            expected_version=streams.versions[index],
            metadata=metadata,
            recorded_at=datetime.now(UTC),
        )
        streams.versions[index] = result.version
        if on_commit is not None:
            on_commit(result.positions)
        return 1

    return op


def plain_single(
    conn: asyncpg.Connection, streams: Streams, payloads: Payloads, table: str = PLAIN
) -> Op:
    """Return an operation inserting the same row into a plain table."""
    sql = PLAIN_INSERT.replace(PLAIN, table)

    async def op() -> int:
        index = streams.pick()
        data, metadata = payloads.next()
        version = streams.versions[index] + 1
        await conn.execute(
            sql,
            streams.ids[index],
            "agent",
            version,
            uuid.uuid4(),
            EVENT_TYPE,
            1,
            data,
            metadata,
            datetime.now(UTC),
        )
        streams.versions[index] = version
        return 1

    return op


def store_batch(conn: asyncpg.Connection, streams: Streams, payloads: Payloads) -> Op:
    """Return an operation appending BATCH events to one stream in one call."""

    async def op() -> int:
        index = streams.pick()
        _, metadata = payloads.next()
        events = [NewEvent(EVENT_TYPE, payloads.next()[0]) for _ in range(BATCH)]
        result = await append(
            conn,
            streams.ids[index],
            events,
            expected_version=streams.versions[index],
            metadata=metadata,
            recorded_at=datetime.now(UTC),
        )
        streams.versions[index] = result.version
        return BATCH

    return op


def plain_copy(
    conn: asyncpg.Connection, streams: Streams, payloads: Payloads, table: str = PLAIN
) -> Op:
    """Return an operation copying the same BATCH rows into a plain table."""

    async def op() -> int:
        index = streams.pick()
        _, metadata = payloads.next()
        stream_id, first = streams.ids[index], streams.versions[index] + 1
        now = datetime.now(UTC)
        records = [
            (stream_id, "agent", first + n, uuid.uuid4(), EVENT_TYPE, 1, payloads.next()[0],
             metadata, now)
            for n in range(BATCH)
        ]
        await conn.copy_records_to_table(table, records=records, columns=ROW_COLUMNS)
        streams.versions[index] = first + BATCH - 1
        return BATCH

    return op


# --------------------------------------------------------------------------------------------
# Helpers


@contextlib.asynccontextmanager
async def connections(db: Database, count: int) -> Any:
    """Hold count pooled connections for the duration."""
    pool = await db.pool()
    held = [await pool.acquire() for _ in range(count)]
    try:
        yield held
    finally:
        for conn in held:
            await pool.release(conn)


def task_streams(prefix: str, seed: int) -> list[Streams]:
    """Return TASKS independent stream sets."""
    return [Streams(f"{prefix}{n}", random.Random(seed * 1000 + n)) for n in range(TASKS)]


#: A round during which other processes took more than this share of a CPU is run again.
NOISY = 0.30
#: How many rounds a comparison may run again, in all.
REPEATS = 3


async def compare_rounds(
    ctx: BenchContext,
    variants: dict[str, list[Op]],
    rounds: int | None = None,
    meter: CpuMeter | None = None,
    repeats_allowed: int = REPEATS,
) -> tuple[dict[str, list[LoadResult]], int]:
    """Run each variant's load in rounds, reversing the order every round.

    Returns the results and how many rounds were run again.

    The machine is shared: with a meter, a round disturbed by other processes is run again
    (at most repeats_allowed times in all), after waiting briefly for quiet.
    """
    rounds = rounds or int(ctx.scaled(3, 1))
    seconds = ctx.scaled(6, 3)
    warmup = ctx.scaled(1, 0.5)
    results: dict[str, list[LoadResult]] = {name: [] for name in variants}
    repeats = 0
    for number in range(rounds):
        order = list(variants) if number % 2 == 0 else list(reversed(variants))
        for name in order:
            while True:
                result = await run_load(
                    variants[name], seconds=seconds, warmup=warmup, meter=meter
                )
                client, server = result.cpu_per_item()
                others = result.cpu.others / result.cpu.wall if result.cpu else float("nan")
                ctx.log(
                    f"  round {number + 1} {name}: {result.items_per_second:,.0f} events/s; CPU "
                    f"per event: client {client:.1f} us, server {server:.1f} us; other "
                    f"processes {others:.0%} of a CPU"
                )
                if not others > NOISY or repeats >= repeats_allowed or ctx.quick:
                    break
                repeats += 1
                ctx.log("  disturbed by other processes: running the round again")
                await ctx.wait_for_quiet(3)
            results[name].append(result)
    return results, repeats


def rate(results: list[LoadResult]) -> float:
    """Return the median rate of the rounds."""
    return median([r.items_per_second for r in results])


def rates(results: list[LoadResult]) -> str:
    """Return the per-round rates as text."""
    return ", ".join(f"{r.items_per_second:,.0f}" for r in results)


def cpu_per_event(results: list[LoadResult]) -> str:
    """Return the median client and server CPU per event as text."""
    if not results or results[0].cpu is None:
        return "n/a"
    client = median([r.cpu_per_item()[0] for r in results])
    server = median([r.cpu_per_item()[1] for r in results])
    return f"{client:.1f} + {server:.1f} us"


def cpu_total(results: list[LoadResult]) -> float:
    """Return the median client + server CPU microseconds per event (nan without a meter)."""
    return median([sum(r.cpu_per_item()) for r in results])


def cpu_row(name: str, results: dict[str, list[LoadResult]], baseline: str) -> Row:
    """Compare CPU per event: the rate ratio the subject would reach if CPU were all."""
    subject, base = cpu_total(results[STORE]), cpu_total(results[PLAIN_BASE])
    return Row(
        name=name,
        figure=subject,
        unit="us/event",
        baseline=baseline,
        baseline_figure=base,
        ratio=base / subject if subject else float("nan"),
        target="(informational)",
        notes="client + server CPU per event, median of rounds; the ratio is baseline / "
        "subject, the rate ratio if both were CPU-bound. Steadier than rates on a busy machine.",
    )


def interference(results: dict[str, list[LoadResult]]) -> str:
    """Describe how much CPU other processes took during the rounds."""
    shares = [r.cpu.others / r.cpu.wall for rs in results.values() for r in rs if r.cpu]
    if not shares:
        return ""
    return (
        f" Other processes on the machine used {median(shares):.0%} of a CPU (median of "
        f"rounds, max {max(shares):.0%})."
    )


def comparison_notes(
    results: dict[str, list[LoadResult]], history: int, repeated: int = 0
) -> str:
    """Describe every variant's rounds and CPU per event."""
    parts = [
        f"{name}: {rates(rs)} events/s, CPU per event client + server {cpu_per_event(rs)}"
        for name, rs in results.items()
    ]
    settled = (
        f" Each table held {history:,} events, vacuumed and analysed, before the first round."
        if history
        else ""
    )
    again = (
        f" {repeated} round(s) disturbed by other processes (over {NOISY:.0%} of a CPU) were "
        "run again; the figures are from the last runs."
        if repeated
        else ""
    )
    return "; ".join(parts) + "." + settled + interference(results) + again


# --------------------------------------------------------------------------------------------
# a. single-event appends

STORE = "event store"
PLAIN_BASE = "plain table"
SHAPED_BASE = "event-shaped table"


async def single_rounds(
    ctx: BenchContext, payloads: Payloads, *, settled: bool, rounds: int | None = None
) -> tuple[dict[str, list[LoadResult]], int, int]:
    """Run single-event appends and plain INSERTs in alternating rounds on a fresh database.

    Returns the results, the history each table held, and how many rounds were run again.
    """
    async with ctx.fresh_database() as url:
        db = Database(url, pool_size=TASKS)
        try:
            history = await settle(ctx, db, plain=True) if settled else 0
            async with connections(db, TASKS) as conns:
                await conns[0].execute(PLAIN_TABLE)
                await conns[0].execute(SHAPED_TABLE)
                variants = {
                    PLAIN_BASE: [
                        plain_single(c, s, payloads)
                        for c, s in zip(conns, task_streams("p", 1), strict=True)
                    ],
                    STORE: [
                        store_single(c, s, payloads)
                        for c, s in zip(conns, task_streams("s", 1), strict=True)
                    ],
                }
                if settled:
                    variants[SHAPED_BASE] = [
                        plain_single(c, s, payloads, SHAPED)
                        for c, s in zip(conns, task_streams("x", 1), strict=True)
                    ]
                meter = await CpuMeter.for_server(url)
                # A new database changes as it ages (autovacuum analyses it within a minute or
                # so): its single round is never run again.
                results, repeated = await compare_rounds(
                    ctx, variants, rounds, meter, REPEATS if settled else 0
                )
        finally:
            await db.close()
    return results, history, repeated


@SUITE.benchmark("single_appends", "single-event appends, 32 tasks")
async def single_appends(ctx: BenchContext) -> list[Row]:
    """Event store single-event appends against plain single-row INSERTs."""
    payloads = Payloads(1)
    results, history, repeated = await single_rounds(ctx, payloads, settled=True)
    data_size, meta_size = payloads.sizes()
    return [
        compared(
            "single-event appends (32 tasks)",
            rate(results[STORE]),
            "events/s",
            baseline="plain INSERT, autocommit",
            baseline_figure=rate(results[PLAIN_BASE]),
            at_least=0.60,
            notes=f"data {data_size:.0f} B, metadata {meta_size:.0f} B of JSON per event. "
            + comparison_notes(results, history, repeated),
        ),
        Row(
            name="for scale: the same INSERT into a table shaped like event",
            figure=rate(results[SHAPED_BASE]),
            unit="events/s",
            baseline="plain INSERT",
            baseline_figure=rate(results[PLAIN_BASE]),
            ratio=rate(results[SHAPED_BASE]) / rate(results[PLAIN_BASE]),
            target="(informational)",
            notes="the event table's columns, defaults, indexes and constraints (LIKE event "
            "INCLUDING ALL) with none of the event store's logic: what the schema alone costs. "
            f"The event store reaches {rate(results[STORE]) / rate(results[SHAPED_BASE]):.0%} "
            "of it.",
        ),
        cpu_row("single-event appends: CPU per event", results, "plain INSERT"),
    ]


@SUITE.benchmark("single_appends_fresh", "single-event appends on a new, never-analysed database")
async def single_appends_fresh(ctx: BenchContext) -> list[Row]:
    """The same load on an empty database, as a new deployment or a test run starts."""
    payloads = Payloads(1)
    results, _, repeated = await single_rounds(ctx, payloads, settled=False, rounds=1)
    return [
        compared(
            "single-event appends, new empty database",
            rate(results[STORE]),
            "events/s",
            baseline="plain INSERT, autocommit",
            baseline_figure=rate(results[PLAIN_BASE]),
            at_least=0.60,
            notes="one round each, plain INSERT first, on tables that start empty and have no "
            "statistics yet; well below the settled row means a plan cached while the table was "
            "tiny has gone bad (see how measured). " + comparison_notes(results, 0, repeated),
        )
    ]


# --------------------------------------------------------------------------------------------
# b. batched appends


@SUITE.benchmark("batched_appends", "batched appends, 100 events a transaction")
async def batched_appends(ctx: BenchContext) -> list[Row]:
    """Event store appends of 100 events against COPY of the same 100 rows."""
    payloads = Payloads(2)
    async with ctx.fresh_database() as url:
        db = Database(url, pool_size=TASKS)
        try:
            history = await settle(ctx, db, plain=True)
            # Binary COPY needs a binary jsonb codec: the baseline gets connections of its own.
            copy_pool = await asyncpg.create_pool(
                url, min_size=TASKS, max_size=TASKS, init=binary_jsonb
            )
            async with connections(db, TASKS) as conns, copy_pool:
                await conns[0].execute(SHAPED_TABLE)
                copiers = [await copy_pool.acquire() for _ in range(TASKS)]
                variants = {
                    PLAIN_BASE: [
                        plain_copy(c, s, payloads)
                        for c, s in zip(copiers, task_streams("p", 2), strict=True)
                    ],
                    STORE: [
                        store_batch(c, s, payloads)
                        for c, s in zip(conns, task_streams("s", 2), strict=True)
                    ],
                    SHAPED_BASE: [
                        plain_copy(c, s, payloads, SHAPED)
                        for c, s in zip(copiers, task_streams("x", 2), strict=True)
                    ],
                }
                meter = await CpuMeter.for_server(url)
                results, repeated = await compare_rounds(ctx, variants, meter=meter)
                for conn in copiers:
                    await copy_pool.release(conn)
        finally:
            await db.close()
    return [
        compared(
            "batched appends (100 events/tx, 32 tasks)",
            rate(results[STORE]),
            "events/s",
            baseline="COPY of 100 rows",
            baseline_figure=rate(results[PLAIN_BASE]),
            at_least=0.50,
            notes=comparison_notes(results, history, repeated),
        ),
        Row(
            name="for scale: the same COPY into a table shaped like event",
            figure=rate(results[SHAPED_BASE]),
            unit="events/s",
            baseline="COPY",
            baseline_figure=rate(results[PLAIN_BASE]),
            ratio=rate(results[SHAPED_BASE]) / rate(results[PLAIN_BASE]),
            target="(informational)",
            notes="what the event table's indexes and constraints alone cost a COPY. The event "
            f"store reaches {rate(results[STORE]) / rate(results[SHAPED_BASE]):.0%} of it.",
        ),
        cpu_row("batched appends: CPU per event", results, "COPY"),
    ]


# --------------------------------------------------------------------------------------------
# c. projection lag under load


async def checkpoint_cursor(conn: asyncpg.Connection, name: str) -> Cursor | None:
    """Return the live generation's checkpoint cursor, if the projection has one."""
    row = await conn.fetchrow(
        "SELECT tx_id, position FROM projection_checkpoint WHERE name = $1 AND status = 'live'",
        name,
    )
    return Cursor(row["tx_id"], row["position"]) if row else None


async def wait_caught_up(db: Database, runner: ProjectionRunner, projection: Projection,
                         timeout: float) -> bool:
    """Wait until the projection has applied every committed event, as the service's reads do
    (``service.queries.wait``, woken by the runner's progress)."""
    ctx = ServiceContext(settings=Settings(), db=db, runner=runner)
    return await wait(ctx, projection, timeout=timeout)


@SUITE.benchmark("projection_lag", "projection lag under the single-append load")
async def projection_lag(ctx: BenchContext) -> list[Row]:
    """Time from each append's commit to its visibility in the stream_index checkpoint."""
    payloads = Payloads(3)
    projection = StreamIndex()
    seconds = ctx.scaled(10, 4)
    warmup = ctx.scaled(1.5, 0.5)
    commits: list[tuple[float, int]] = []
    samples: list[tuple[float, Cursor]] = []

    async with ctx.fresh_database() as url:
        db = Database(url, pool_size=TASKS + 2)
        history = await settle(ctx, db, plain=False)
        runner = ProjectionRunner(db, [projection], poll_seconds=0.05)
        notifier = Notifier(db, local=runner.wake)
        watcher = await db.connect_single()
        try:
            runner.start()
            notifier.start()
            while await checkpoint_cursor(watcher, projection.name) is None:
                await asyncio.sleep(0.01)
            # The settled history is projected first; measure from a caught-up projection.
            assert await wait_caught_up(db, runner, projection, 120)

            stop_polling = asyncio.Event()

            async def poll() -> None:
                while not stop_polling.is_set():
                    cursor = await checkpoint_cursor(watcher, projection.name)
                    assert cursor is not None
                    samples.append((time.perf_counter(), cursor))
                    await asyncio.sleep(0.002)

            def committed(positions: list[int]) -> None:
                now = time.perf_counter()
                commits.extend((now, p) for p in positions)
                notifier.poke()

            poller = asyncio.create_task(poll())
            async with connections(db, TASKS) as conns:
                ops = [
                    store_single(c, s, payloads, committed)
                    for c, s in zip(conns, task_streams("s", 3), strict=True)
                ]
                started = time.perf_counter()
                load = await run_load(ops, seconds=seconds, warmup=warmup)
                window = (started + warmup, started + warmup + seconds)
                caught_up = await wait_caught_up(db, runner, projection, 30)
                stop_polling.set()
                await poller
                cursors = {
                    r["position"]: Cursor(r["tx_id"], r["position"])
                    for r in await conns[0].fetch("SELECT tx_id, position FROM event")
                }
        finally:
            await notifier.stop()
            await runner.stop()
            await watcher.close()
            await db.close()

    lags = visibility_lags(
        [(t, cursors[p]) for t, p in commits if window[0] <= t <= window[1]], samples
    )
    p50, p95, p99 = (percentile(lags, q) * 1000 for q in (50, 95, 99))
    worst = max(lags) * 1000 if lags else float("nan")
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(samples)]
    notes = (
        f"{len(lags):,} events over {seconds:.0f} s at {load.items_per_second:,.0f} appends/s "
        f"(with the runner and the poller competing); max {worst:.1f} ms; checkpoint read "
        f"every {median(gaps) * 1000:.1f} ms (median); the store held {history:,} events "
        f"(projected before the load){'' if caught_up else '; DID NOT CATCH UP'}."
    )
    return [
        bounded("projection lag p50", p50, "ms", target="-", met=None),
        bounded("projection lag p95", p95, "ms", target="-", met=None),
        bounded(
            "projection lag p99 (stream_index, under load a)",
            p99,
            "ms",
            target="< 100 ms",
            met=caught_up and p99 < 100,
            notes=notes,
        ),
    ]


def visibility_lags(
    commits: list[tuple[float, Cursor]], samples: list[tuple[float, Cursor]]
) -> list[float]:
    """Return, per committed event, seconds from commit to the first sample at/after it."""
    lags = []
    index = 0
    for committed_at, cursor in sorted(commits, key=lambda c: c[1]):
        while index < len(samples) and samples[index][1] < cursor:
            index += 1
        if index == len(samples):
            break
        lags.append(max(samples[index][0] - committed_at, 0.0))
    return lags


# --------------------------------------------------------------------------------------------
# d. late commits and rollbacks


class RolledBack(Exception):
    """Raised on purpose to abandon a transaction."""


@dataclass
class LateStats:
    """What the late-commit appenders did."""

    committed: set[int] = field(default_factory=set)
    transactions: int = 0
    rolled_back: int = 0
    conflicts: int = 0
    events_rolled_back: int = 0


async def late_appender(
    db: Database,
    rng: random.Random,
    streams: list[str],
    deadline: float,
    max_delay: float,
    stats: LateStats,
    poke: Callable[[], None],
    payloads: Payloads,
) -> None:
    """Append in explicit transactions that commit after a random delay; some roll back."""
    while time.perf_counter() < deadline:
        stream = rng.choice(streams)
        count = rng.randint(1, 3)
        stats.transactions += 1
        positions: list[int] = []
        try:
            async with db.connection() as conn, conn.transaction():
                version = await stream_version(conn, stream)
                data, metadata = payloads.next()
                result = await append(
                    conn,
                    stream,
                    [NewEvent(EVENT_TYPE, data) for _ in range(count)],
                    expected_version=version,
                    metadata=metadata,
                    recorded_at=datetime.now(UTC),
                )
                positions = result.positions
                await asyncio.sleep(rng.uniform(0, max_delay))
                if rng.random() < 0.05:
                    raise RolledBack
        except RolledBack:
            stats.rolled_back += 1
            stats.events_rolled_back += len(positions)
            continue
        except ConcurrencyError:
            stats.conflicts += 1
            continue
        stats.committed.update(positions)
        poke()


@SUITE.benchmark("late_commits", "no skipped events with late commits and rollbacks")
async def late_commits(ctx: BenchContext) -> list[Row]:
    """Compare a live projection's applied events with the events that committed."""
    payloads = Payloads(4)
    projection = BenchEventLog()
    seconds = ctx.scaled(35, 10)
    slow, fast = 32, 8
    stats = LateStats()
    rng = random.Random(4)
    streams = [f"late:{n}" for n in range(200)]

    async with ctx.fresh_database() as url:
        db = Database(url, pool_size=slow + fast + 4)
        runner = ProjectionRunner(db, [projection], poll_seconds=0.05)
        notifier = Notifier(db, local=runner.wake)
        try:
            runner.start()
            notifier.start()
            deadline = time.perf_counter() + seconds
            await asyncio.gather(
                *[
                    late_appender(
                        db, random.Random(rng.getrandbits(64)), streams, deadline,
                        5.0 if n < slow else 0.02, stats, notifier.poke, payloads,
                    )
                    for n in range(slow + fast)
                ]
            )
            async with db.connection() as conn:
                caught_up = await wait_caught_up(db, runner, projection, 60)
                applied = [
                    r["position"]
                    for r in await conn.fetch(
                        f"SELECT position FROM {projection.name} ORDER BY seq"
                    )
                ]
                stored = {r["position"] for r in await conn.fetch("SELECT position FROM event")}
                order = await conn.fetchval(
                    f"""
                    SELECT count(*) FROM (
                        SELECT version - lag(version) OVER (PARTITION BY stream_id ORDER BY seq)
                               AS step
                        FROM {projection.name}
                    ) s WHERE step IS NOT NULL AND step <> 1
                    """
                )
        finally:
            await notifier.stop()
            await runner.stop()
            await db.close()

    seen = set(applied)
    skipped = len(stats.committed - seen)
    duplicates = len(applied) - len(seen)
    invented = len(seen - stats.committed)
    notes = (
        f"{stats.transactions:,} transactions over {seconds:.0f} s ({slow} appenders committing "
        f"after 0-5 s, {fast} after 0-20 ms): {len(stats.committed):,} events committed, "
        f"{stats.rolled_back} transactions rolled back on purpose "
        f"({stats.events_rolled_back} events), {stats.conflicts} version conflicts; "
        f"projector applied {len(applied):,} events, {invented} not committed, "
        f"{order} out of stream order; event table matches the appenders: "
        f"{'yes' if stored == stats.committed else 'NO'}"
        f"{'' if caught_up else '; projector DID NOT CATCH UP'}."
    )
    ok = caught_up and invented == 0 and order == 0 and stored == stats.committed
    return [
        bounded(
            "late commits: skipped events", skipped, "events", target="0",
            met=skipped == 0 and ok, notes=notes,
        ),
        bounded(
            "late commits: events applied twice", duplicates, "events", target="0",
            met=duplicates == 0,
        ),
    ]


# --------------------------------------------------------------------------------------------
# e. rebuild speed


def rebuild_rows(total: int, streams: int, seed: int) -> Iterator[list[tuple[Any, ...]]]:
    """Yield transactions of about 1,000 events: commands of 1-5 events on random streams."""
    rng = random.Random(seed)
    payloads = Payloads(seed)
    versions = [0] * streams
    recorded = datetime(2026, 1, 1, tzinfo=UTC)
    batch: list[tuple[Any, ...]] = []
    made = 0
    while made < total:
        index = rng.randrange(streams)
        stream_id = f"agent:{index}"
        _, metadata = payloads.next()
        for _ in range(min(rng.randint(1, 5), total - made)):
            versions[index] += 1
            batch.append(
                (stream_id, "agent", versions[index], uuid.uuid4(), EVENT_TYPE, 1,
                 payloads.next()[0], metadata, recorded)
            )
            made += 1
        if len(batch) >= 1000:
            yield batch
            batch = []
    if batch:
        yield batch


async def load_events(db: Database, total: int, streams: int, table: str = "event") -> None:
    """Fill the event table (and the stream table), or a plain one, 4 COPYs at a time."""
    queue: asyncio.Queue[list[tuple[Any, ...]] | None] = asyncio.Queue(maxsize=8)

    async def writer() -> None:
        conn = await asyncpg.connect(db.url)
        try:
            await binary_jsonb(conn)
            while (batch := await queue.get()) is not None:
                await conn.copy_records_to_table(table, records=batch, columns=ROW_COLUMNS)
        finally:
            await conn.close()

    async def producer() -> None:
        for batch in rebuild_rows(total, streams, seed=5):
            await queue.put(batch)
        for _ in range(4):
            await queue.put(None)

    tasks = [asyncio.create_task(writer()) for _ in range(4)]
    tasks.append(asyncio.create_task(producer()))
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    async with db.connection() as conn:
        if table == "event":
            await conn.execute(
                "INSERT INTO stream (stream_id, stream_type, version)"
                " SELECT stream_id, min(stream_type), max(version) FROM event GROUP BY stream_id"
            )
            await conn.execute("VACUUM ANALYZE stream")
        await conn.execute(f"VACUUM ANALYZE {table}")


async def settle(ctx: BenchContext, db: Database, *, plain: bool) -> int:
    """Give the store (and the plain table) some history and statistics before measuring.

    A production store has both. On a never-analysed table the first generic plans cached for
    the append statement scan the event table (see the fresh-database row), which would
    measure the first minute of a new database rather than the store.
    """
    total = int(ctx.scaled(50_000, 10_000))
    await load_events(db, total, streams=5_000)
    if plain:
        async with db.connection() as conn:
            await conn.execute(PLAIN_TABLE)
            await conn.execute(SHAPED_TABLE)
        await load_events(db, total, streams=5_000, table=PLAIN)
        await load_events(db, total, streams=5_000, table=SHAPED)
    return total


@dataclass
class RebuildTiming:
    """Where a rebuild's time went."""

    seconds: float
    events: int
    apply_seconds: float


async def timed_rebuild(db: Database, projection: Projection) -> RebuildTiming:
    """Rebuild projection from zero into a new generation; time it and its projection's part.

    Only the projection is wrapped (Timed): the runner runs as it does in the service. What
    reading costs alone is measured separately (read_pass), on the same events.
    """
    timed = Timed(projection)
    conn = await db.connect_single()
    try:
        assert await try_lock(conn, projection.name)
        started = time.perf_counter()
        building = await checkpoints.start(conn, timed, "building")
        worker = Worker(conn, timed)
        await worker.catch_up(building, BUILD_BATCH)
        await worker.finish_build(building)
        seconds = time.perf_counter() - started
        live = await checkpoints.current(conn, projection.name, "live")
        assert live is not None and live.generation == building.generation
        events = live.events_applied
    finally:
        await conn.close()
    return RebuildTiming(seconds, events, timed.seconds)


async def read_pass(conn: asyncpg.Connection, how: str) -> tuple[float, int]:
    """Read every event in BUILD_BATCH pages; return seconds and events.

    how: "read_all" (the store's reader: fetch, JSON decode, RecordedEvent objects),
    "fetch" (the same query's asyncpg records, JSON decoded) or "raw" (records, JSON as text:
    run on a connection without the JSON codecs).
    """
    cursor = Cursor()
    events = 0
    start = time.perf_counter()
    while True:
        if how == "read_all":
            batch = await read_all(conn, cursor, BUILD_BATCH)
            if not batch:
                break
            cursor = batch[-1].cursor
        else:
            rows = await conn.fetch(READ_ALL, cursor.tx_id, cursor.position, BUILD_BATCH,
                                    None, None, [], [])
            if not rows:
                break
            batch = rows
            cursor = Cursor(rows[-1]["tx_id"], rows[-1]["position"])
        events += len(batch)
    return time.perf_counter() - start, events


@SUITE.benchmark("rebuild", "rebuild speed from zero into a new generation")
async def rebuild(ctx: BenchContext) -> list[Row]:
    """Rebuild projections over a few hundred thousand stored events."""
    total = int(ctx.scaled(300_000, 60_000))
    async with ctx.fresh_database() as url:
        db = Database(url, pool_size=6)
        try:
            started = time.perf_counter()
            await load_events(db, total, streams=20_000)
            ctx.log(f"  loaded {total:,} events in {time.perf_counter() - started:.1f} s")
            raw = await db.connect_single()
            await raw.reset_type_codec("jsonb", schema="pg_catalog")
            await raw.reset_type_codec("json", schema="pg_catalog")
            try:
                passes = {}
                async with db.connection() as conn:
                    for how in ("read_all", "fetch"):
                        passes[how] = await read_pass(conn, how)
                passes["raw"] = await read_pass(raw, "raw")
            finally:
                await raw.close()
            for how, (secs, n) in passes.items():
                ctx.log(f"  read pass {how}: {n:,} events in {secs:.2f} s")
            noop = await timed_rebuild(db, BenchNoop())
            ctx.log(f"  no-op rebuild: {noop.events / noop.seconds:,.0f} events/s")
            index = await timed_rebuild(db, StreamIndex())
            ctx.log(f"  stream_index rebuild: {index.events / index.seconds:,.0f} events/s")
            log = await timed_rebuild(db, BenchEventLog())
            ctx.log(f"  event-log rebuild: {log.events / log.seconds:,.0f} events/s")
            size = await db.fetchval("SELECT pg_size_pretty(pg_total_relation_size('event'))")
        finally:
            await db.close()

    def share(part: float, timing: RebuildTiming) -> str:
        return f"{part:.2f} s ({part / timing.seconds:.0%})"

    def breakdown(t: RebuildTiming) -> str:
        rest = t.seconds - t.apply_seconds
        return (
            f"{t.events:,} events in {t.seconds:.2f} s: apply {share(t.apply_seconds, t)}, "
            f"the runner (read_all, checkpoints, transactions, swap) {share(rest, t)}"
        )

    read_s, n = passes["read_all"]
    fetch_s, _ = passes["fetch"]
    raw_s, _ = passes["raw"]
    read_notes = (
        f"reading all {n:,} events ({size} with indexes) alone takes {read_s:.2f} s "
        f"({n / read_s:,.0f} events/s): query and protocol with JSON left as text "
        f"{raw_s:.2f} s, orjson decoding of data and metadata {fetch_s - raw_s:.2f} s, building "
        f"RecordedEvent objects {read_s - fetch_s:.2f} s."
    )
    rows = [
        bounded(
            "rebuild stream_index",
            index.events / index.seconds,
            "events/s",
            target=">= 50,000 events/s",
            met=index.events / index.seconds >= 50_000,
            notes=breakdown(index) + "; " + read_notes,
        ),
        bounded(
            "rebuild no-op projection (runner ceiling)",
            noop.events / noop.seconds,
            "events/s",
            target="(informational)",
            met=None,
            notes=breakdown(noop) + ".",
        ),
        bounded(
            "rebuild event-log projection (COPY per batch)",
            log.events / log.seconds,
            "events/s",
            target="(informational)",
            met=None,
            notes=breakdown(log) + ".",
        ),
    ]
    return rows

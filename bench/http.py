"""Issue 9's HTTP numbers: single-event commands from 32 clients against FastAPI's own ceiling.

Also the shared pieces of the HTTP benchmarks (bench/mixed.py uses them): the service and the
baseline app as uvicorn subprocesses on 127.0.0.1, and a small keep-alive HTTP/1.1 client
that costs the measuring process as little CPU as possible.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import orjson
import psutil
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from bench.common import (
    ROOT,
    BenchContext,
    CpuMeter,
    Row,
    Suite,
    bounded,
    compared,
    percentile,
    within,
)

SUITE = Suite(
    key="http",
    title="Commands over HTTP against the floor of an event-sourced command (issues 9 and 18)",
    about="""
### What these mean and how they are measured

Three apps run the same way, one after the other, each as one uvicorn process on 127.0.0.1
(`uvicorn.run(app, log_config=None, proxy_headers=False)`, uvloop and httptools, exactly as
`csperf serve` runs): **the service** (`python -m service serve` against a fresh database on
the benchmark server, projections running, scheduler off); **the floor app**
(`python -m bench.http baseline PORT URL`), the least any event-sourced command must do: a
FastAPI route of the same shape (the same path, a pydantic body model and a response model
with the same fields) that reads the stream's version and appends one event at it through the
service's event store and pool, with no authentication, middleware, directory rules or
projections, against the same database; and, for scale, **the trivial route**
(`python -m bench.http baseline PORT`), the same route with no database at all.

32 clients, each on its own keep-alive connection, send requests back to back for a fixed
window after a warm-up; the figure is requests answered inside the window per second, and
latency is from writing a request to reading its whole answer. The client is a minimal
HTTP/1.1 client on asyncio streams (pre-encoded headers, `Content-Length` bodies), so the
measuring process takes little CPU from the apps; every answer's status is checked. The
trivial route is measured before and after the service, the floor app right after it.

- **PUT agent**: `PUT /v1/agents/{agent_id}` renaming one of 256 agents (32 teams of 8, each
  client its own team): one `AgentChanged` event on the agent's stream per request,
  authenticated with an admin JWT (HS256).
- **PUT evaluation**: `PUT /v1/teams/{team}/cycles/{period}/evaluations/{agent}/manager`, a
  revised manager evaluation (six scores) of one of the team's agents: one
  `EvaluationSubmitted` event on the team's cycle stream, which every revision lengthens.

Targets (issue 18): each command at least 50 % of the floor app's rate in the same run, and a
p99 at most twice the floor app's. Both PUTs are compared with the floor's PUT agent (the
floor has no rules, so its two routes would cost the same).

### Where the time went, and what changed (issue 18)

Profiled with `py-spy record` of the service under this load. The service process is the
bottleneck (client, service and PostgreSQL share two cores), and most of its CPU went to
round trips to PostgreSQL, not to our code: a command was BEGIN, the stream's advisory lock,
the stream, a SAVEPOINT, the append, RELEASE, COMMIT, after reads outside it (an evaluation
also read the cycle stream to learn its scheme version, then the scheme's history); and every
commit woke all nine projection workers, each of which then asked for its generations and
probed for new events (two round trips each, even for an agent's rename, which four of them
never read). Changed, all in the ordinary path:

- `execute` reads the stream and appends at the version read without a transaction (the
  append is one statement with its version check, its own transaction): two round trips. A
  command that lost a race decides again under the stream's lock in a transaction, as before;
  so does one that must do more in its transaction (an API key's row, a cache `NOTIFY`).
- What never changes once recorded is taken from the state the process holds: a month's
  scheme pin, a scheme version in force, a team's existence (PUT agent).
- A commit wakes only the projection workers that read its stream type; a worker reads its
  generations again only when they change, and reads a batch outside its transaction
  instead of probing first.

A second profile (py-spy, 200 samples a second, under this load) found, per PUT: a tenth of
the service's CPU in verifying the same JWT again (PyJWT's base64, JSON and HMAC), and, per
evaluation, two reads of the directory's streams (the team in the route, the agent in the
command) on top of the month's stream and the append; and, idle, nine projection workers
each polling the database every 50 ms. Changed:

- A verified JWT is held by the process (by its HMAC, like API keys) and then checked only
  against its own iat/nbf/exp window, as PyJWT would check it; a token cannot be revoked,
  so nothing else can change its answer. Authentication fell from ~10 % of a PUT's service
  CPU to under 1 %.
- PUT evaluation reads the team and the agent in one statement
  (`queries.directory.team_and_agent`, over `event_store.read_streams`) and hands both to
  the command: three round trips instead of four.
- One task per process polls the store's heads (the last visible event of each stream type
  its workers read, one statement) and wakes only the workers behind a head of a type they
  read; a NOTIFY from another process makes it poll at once. An idle service went from 178
  transactions a second to 24, and from 55 to 15 ms of CPU a second (20 s idle, same
  machine, one after the other).

A third look (pg_stat_statements on a server of its own, the projection runner's reads and
transactions counted per worker, py-spy) found that an evaluation's projections cost as much
as its request: every commit woke the eight workers that read the month's stream; cycle_results
wrote five statements per month a batch touched (a batch of ~200 evaluations over 32 months
held its transaction for over a second of the saturated event loop), and while one batch's
transaction is open no worker can see later commits (read_all passes only transactions older
than the snapshot's xmin), so 97 % of the other workers' reads came back empty, and the five
that skip evaluations then committed a transaction per batch only to move a checkpoint. With
no projection running, the same evaluations took a third less CPU (service and PostgreSQL). Changed:

- cycle_results writes a batch's evaluations, counts, calibration and gaps for all the months
  it touched in one statement each (seven statements a batch, not five per month).
- A projection names the events it applies (`Projection.applies`): the runner reads past a
  batch holding none of them without a transaction (its checkpoint is stored with the next
  batch it applies, or once a batch's worth was read past), a commit wakes only the workers
  that apply one of its event types, and `queries/wait.py` waits for those events alone.
  Five of the seven projections of the month's stream now take no transaction for an
  evaluation.
- The route reads the team, the agent and the month's stream in one statement
  (`queries.cycles.evaluation_reads`), and the command decides on that month without reading
  it again (`execute(read=...)`; the append's version check refuses a month that moved, and
  the command decides again under the stream's lock): two round trips before the answer, as
  the floor app's.

A fourth look (py-spy under this load; the runner's reads, transactions and heads polls
counted per worker; the service run once with `CSPERF_RUN_PROJECTIONS=false` as a diagnostic)
found the projections still a fifth of the service's CPU and a third of PostgreSQL's per
evaluation (service 963-994 µs a request without them, 1,225-1,272 µs with them, 09:17 UTC,
load 9-11). Under 32 clients a worker read again as soon as it had applied a batch, so a batch
held 19-27 evaluations (cycle_results 42-48, the five that skip them 12-14), and every read that
came back empty sent the heads' task polling every 5 ms: 0.17 reads of the heads a request.
Changed:

- A worker that has applied a batch lets the next one gather for 10 ms
  (`runner.GATHER_SECONDS`) before it reads again; a worker woken from idle reads at once, and
  a reader of this process waiting for the projection (`queries/wait.py`) cuts the pause short,
  so a read after a write never waits for it. A 50 ms pause gathered more (batches of 58
  evaluations, cycle_results 83, the skipping five 44; service CPU 1,124 -> 1,036 µs and
  PostgreSQL 612 -> 516 µs an evaluation in the same minute) but adds itself to every event's
  lag: the event store suite's projection lag went from p50 25 ms to 60 ms and p99 50-85 ms to
  128-130 ms. With 10 ms that lag stays within its noise (p50 42-53 ms against 45-50 ms with no
  pause, alternating at load 6-9).
- A worker that read past a batch holding nothing it applies (the five that skip evaluations)
  waits up to 50 ms (`runner.PASSED_SECONDS`) before it reads again, cut short by a commit in
  this process of an event it applies; the lag of what it skips is nobody's. They then read
  33-36 evaluations a read rather than 13, the heads were read 0.05 times a request rather
  than 0.14-0.23, and an evaluation took 1,041-1,046 µs of the service's CPU against
  1,104-1,157 µs and 622-629 µs of PostgreSQL's against 710-756 µs (alternating, load 5).
- The heads are read only for the workers asleep: one that is reading or pausing needs no
  wake-up, and under load that is nearly all of them.
- A commit's wake-ups are worked out once per kind of commit (its stream and event types), and
  `execute`'s first, lock-free attempt runs outside tenacity (its bookkeeping was 3.5 % of the
  service's CPU; the retries under the stream's lock still go through it).

With the 10 ms pause (alternating with none, load 5-6), a batch held 29-33 evaluations
(cycle_results 52-57, the skipping five 16-20) and the heads were read 0.06-0.10 times a
request; the CPU a request moved less than this machine's noise between runs. The code before
this round against main at 09:45 UTC (with the 50 ms pause, and the other changes of that hour
to the routes' overhead), alternating at load 4: service 1,144-1,277 -> 857-1,047 µs,
PostgreSQL 596-709 -> 463-620 µs an evaluation.

A fifth look (pg_stat_statements per request, pg_stat_activity during the run, py-spy) found
the directory projection storing each rename in a statement of its own: under PUT agent a batch
of renames held its transaction open for seconds of the busy event loop, and no projection reads
past an open transaction, so the others fell behind and cycle_results stood still through much
of the PUT evaluation run that followed (0.12 of its evaluation rows a request rather than 1):
part of both commands' projection work was done outside their windows. Changed:

- The directory stores a run of renames in one statement (each agent's last), and keeps up.
- `execute`'s first attempt decides on the state the process holds, without reading the
  stream, and appends at its version; the append refuses it if the stream moved, and the stream
  is then read and decided on as before (so is a held state on which the decision is "no
  change" or an error). PUT agent makes one statement before its answer: 2.72 statements a
  request in all, projections included, against 3.87.
- Lending a pooled connection costs what asyncpg's acquire and release cost (a small class
  rather than a generator-based context manager, and the count of connections lent rather than
  a pass over the pool's), and `RecordedEvent` is a plain dataclass (4.5 -> 0.7 µs a row; each
  of the eight projections that read the month's stream builds one per evaluation).

In one process, without HTTP or projections (8 clients, old and new code alternating four
times at load 8-11): put_agent took 361-602 -> 293-415 µs of CPU, an evaluation's reads and
command 799-899 -> 661-781 µs. PUT evaluation still read the team, the agent and the month
before it decided (the team for the rater's check); the sixth look below took that round trip
out.

The route waits for no read model: it answers once its event is committed; the projections
follow in the background.

The route plumbing every route pays (issue 18, 13:00 UTC): FastAPI tried every router before
the one serving a request, each of an included router's routes at about 25 Python calls, and
that router's routes twice (a PUT agent, in the fourth router, about 450 Python calls to be
routed); each API router now refuses a path none of its routes has in one regular expression
(about 90). Routes solve one dependency, their rule, and take the service context from their
request and check a month in their path themselves (py-spy had FastAPI's dependency solving at
12 % of a PUT agent's service CPU; a dependency costs it 80-95 Python calls); FastAPI's
OpenTelemetry hooks are off without the SDK they report to. The app called in-process with no
projections (cProfile): PUT agent 2,268 -> 1,824 Python calls, PUT evaluation 2,744 ->
2,432-2,566. Runs of this benchmark at load 8-11 moved more from run to run than that.

What is left is the framework and the round trips themselves: FastAPI's dependency solving,
middleware and the serving router's routes tried twice, the pool and asyncpg per statement, and
the projections' fixed cost per batch; the five that skip evaluations still read past them, a
read every 50 ms or so under load. Run as a diagnostic with the projections in a second service
process (`CSPERF_RUN_PROJECTIONS=false` on the measured one), that process took 130-204 µs an
evaluation and the measured one 703-928 µs, against 992-1,189 µs with them in-process (09:39
UTC, load 5-6).

A sixth look (py-spy under this load, 15:00 UTC) took out PUT evaluation's read before its
decision. The command decides on the team, the agent and the month as the process holds them
(`queries.cycles.held_evaluation_reads`), with no read at all: its one statement is the append,
which checks the month's version as always and also that the team's and the agent's streams are
still at the versions held (`event_store.append(guards=...)`, in the same INSERT). A refusal, of
the append or by any check on those states (the rater's check, `auth.rater_admission`, now run
by the command on each state of the team it decides on; the decision's own 403s and 422s), reads
the three again in one round trip and checks and decides anew, so no answer comes from a state
that is not current; a check's refusal stands as it was when that read finds none of the three
moved (a test moves the agent, renames it and changes the team's managers from another process
between evaluations). One statement and one pooled connection before the answer, as PUT agent.
This benchmark, old and new code alternating four times (15:01-15:30 UTC, load 5-14): service
CPU an evaluation 1,829-2,966 µs (mean 2,565) -> 2,101-2,312 µs (mean 2,233), PostgreSQL
1,034-1,483 µs (mean 1,317) -> 872-1,103 µs (mean 985); against PUT agent's in the same run (the
same code on both sides, so it takes out the machine's drift) the service's 2.0-2.45 times ->
1.35-1.8 times, PostgreSQL's 2.3-2.8 -> 1.4-1.9. The app in one process without projections,
one client, client and app together, alternating three times: 3,030-3,677 -> 2,343-2,890 µs a
request (the best of five passes of 300). The throughputs at that load told nothing (the trivial
route moved by half between its two runs of one suite). After it, py-spy of the service under
PUT evaluation: the append itself 28 % of the samples (mostly asyncpg's protocol and the socket
write), the pool's lend 5 %, the decision 4 %, the held reads and the scheme 3 %, the
projections' workers 11 %, and FastAPI's routing, dependency solving, middleware and uvicorn the
rest of the request's share.
""",
)

CLIENTS = 32
TEAMS = 32
AGENTS_PER_TEAM = 8
PERIOD = "2026-11"
ADMIN_KEY = "csk_bench_http_admin_key_00000000000000000000"
JWT_SECRET = "bench-http-secret-with-enough-entropy-0123456789"
MANAGER_FORM = ("work_ability", "cooperation", "service", "report_timeliness",
                "report_reliability", "report_quality")


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    """Return a loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Process:
    """An HTTP server in a subprocess."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        """Return the process id."""
        return self.process.pid


@contextlib.asynccontextmanager
async def serving(argv: Sequence[str], port: int, env: Mapping[str, str],
                  ready_path: str) -> AsyncIterator[Process]:
    """Run argv until the block ends, once GET ready_path answers 200."""
    log = Path(tempfile.mkstemp(prefix="csperf-bench-http-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(list(argv), env={**os.environ, **env}, cwd=ROOT,
                                   stdout=out, stderr=out)
    server = Process(process, port, log)
    try:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"{argv} exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
                conn = await Client.open(port)
                try:
                    status, _ = await conn.request(b"GET", ready_path.encode())
                finally:
                    conn.close()
                if status == 200:
                    break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"{argv} did not become ready in 60 s")
        yield server
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
        log.unlink(missing_ok=True)


def service_env(url: str, port: int, **extra: str) -> dict[str, str]:
    """Return the environment of a benchmarked service process."""
    return {
        "CSPERF_DATABASE_URL": url,
        "CSPERF_HOST": "127.0.0.1",
        "CSPERF_PORT": str(port),
        "CSPERF_JWT_SECRET": JWT_SECRET,
        "CSPERF_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CSPERF_LOG_LEVEL": "WARNING",
        "CSPERF_RUN_SCHEDULER": "false",
        "CSPERF_WEBHOOK_RUN_SENDER": "false",
        **extra,
    }


def service(url: str, **extra: str) -> contextlib.AbstractAsyncContextManager[Process]:
    """Run `python -m service serve` on a free port against url."""
    port = free_port()
    return serving([sys.executable, "-m", "service", "serve"], port,
                   service_env(url, port, **extra), "/readyz")


def baseline(url: str | None = None) -> contextlib.AbstractAsyncContextManager[Process]:
    """Run the baseline app on a free port (the floor app, given a database URL)."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.http", "baseline", str(port)]
    return serving(argv + ([url] if url else []), port, {}, "/healthz")


def token(role: str = "admin", subject: str = "bench", **claims: str) -> str:
    """Return an HS256 JWT for the benchmarked service."""
    now = datetime.now(UTC)
    payload: dict[str, Any] = {"sub": subject, "role": role, "iat": now,
                               "exp": now + timedelta(hours=2), **claims}
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


def cpu_seconds(process: psutil.Process) -> float:
    """Return a process's CPU seconds so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


# -- the client --------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1, one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 port: int, headers: bytes) -> None:
        self.reader = reader
        self.writer = writer
        self.head = f"Host: 127.0.0.1:{port}\r\n".encode() + headers

    @classmethod
    async def open(cls, port: int, headers: Mapping[str, str] | None = None) -> Client:
        """Connect; headers go with every request."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        extra = b"".join(f"{k}: {v}\r\n".encode() for k, v in (headers or {}).items())
        return cls(reader, writer, port, extra)

    async def request(self, method: bytes, path: bytes, body: bytes | None = None
                      ) -> tuple[int, bytes]:
        """Send one request; return the status and the body."""
        parts = [method, b" ", path, b" HTTP/1.1\r\n", self.head]
        if body is not None:
            parts += [b"Content-Type: application/json\r\nContent-Length: ",
                      str(len(body)).encode(), b"\r\n\r\n", body]
        else:
            parts.append(b"\r\n")
        self.writer.write(b"".join(parts))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = -1
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lowered = name.lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            data = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                del data[-2:]
            return status, bytes(data)
        return status, await self.reader.readexactly(max(length, 0))

    def close(self) -> None:
        """Close the connection."""
        self.writer.close()


Request = tuple[bytes, bytes, bytes | None]


@dataclass
class Timing:
    """What a closed-loop load measured inside its window."""

    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def count(self, kind: str | None = None) -> int:
        """Return how many answers of this kind (all kinds: None) came inside the window."""
        kinds = [kind] if kind is not None else list(self.latencies)
        return sum(len(self.latencies.get(k, [])) for k in kinds)

    def rate(self, kind: str | None = None) -> float:
        """Return answers per second inside the window."""
        return self.count(kind) / self.seconds

    def ms(self, q: float, kind: str) -> float:
        """Return a latency percentile in milliseconds."""
        return percentile(self.latencies.get(kind, []), q) * 1000


async def closed_loop(
    port: int,
    clients: int,
    next_request: Callable[[int, int], tuple[str, Request]],
    *,
    seconds: float,
    warmup: float,
    headers: Mapping[str, str] | None = None,
    ok: Callable[[str, int], bool] = lambda _kind, status: 200 <= status < 300,
) -> Timing:
    """Run `clients` connections sending next_request(client, n) back to back.

    Counts and times the answers that arrive inside the window [warmup, warmup + seconds];
    an answer ``ok`` refuses is recorded as an error.
    """
    conns = [await Client.open(port, headers) for _ in range(clients)]
    timing = Timing(seconds)
    begin = time.perf_counter() + warmup
    end = begin + seconds

    async def loop(index: int) -> None:
        conn = conns[index]
        n = 0
        while time.perf_counter() < end:
            kind, (method, path, body) = next_request(index, n)
            n += 1
            sent = time.perf_counter()
            status, answer = await conn.request(method, path, body)
            done = time.perf_counter()
            if not ok(kind, status):
                if len(timing.errors) < 20:
                    timing.errors.append(f"{kind} {path.decode()} -> {status} {answer[:300]!r}")
            if begin <= done <= end:
                timing.latencies.setdefault(kind, []).append(done - sent)
                counts = timing.statuses.setdefault(kind, {})
                counts[status] = counts.get(status, 0) + 1

    try:
        await asyncio.gather(*(loop(i) for i in range(clients)))
    finally:
        for conn in conns:
            conn.close()
    return timing


# -- the baseline app --------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BaselineAgentIn(_Body):
    """The body of PUT /v1/agents/{agent_id}, as the service's AgentIn."""

    name: str = Field(min_length=1, max_length=200)
    team_id: str = Field(min_length=1, max_length=64)
    position: str | None = Field(default=None, max_length=100)


class BaselineMembership(BaseModel):
    """As the service's MembershipOut."""

    team_id: str
    since: datetime
    until: datetime | None


class BaselineAgentOut(BaseModel):
    """As the service's AgentOut."""

    agent_id: str
    name: str
    team_id: str
    position: str | None
    history: list[BaselineMembership]
    version: int


class BaselineEvaluationIn(_Body):
    """As the service's EvaluationIn."""

    scores: dict[str, float]
    comment: str | None = Field(default=None, max_length=5000)


class BaselineEvaluationOut(BaseModel):
    """As the service's EvaluationOut."""

    team_id: str
    period: str
    agent_id: str
    rater_role: str
    rater_id: str
    scores: dict[str, float]
    comment: str | None
    revision: int
    submitted_at: datetime


_SINCE = datetime(2026, 11, 1, tzinfo=UTC)


def _agent_out(agent_id: str, body: BaselineAgentIn, version: int) -> BaselineAgentOut:
    return BaselineAgentOut(
        agent_id=agent_id, name=body.name, team_id=body.team_id, position=body.position,
        version=version, history=[BaselineMembership(team_id=body.team_id, since=_SINCE,
                                                     until=None)])


def baseline_app() -> FastAPI:
    """Return the baseline: one FastAPI route per benchmarked command, of the same shape."""
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.put("/v1/agents/{agent_id}", response_model=BaselineAgentOut)
    async def put_agent(agent_id: str, body: BaselineAgentIn) -> BaselineAgentOut:
        return _agent_out(agent_id, body, 2)

    @app.put("/v1/teams/{team_id}/cycles/{period}/evaluations/{agent_id}/{rater_role}",
             response_model=BaselineEvaluationOut)
    async def put_evaluation(team_id: str, period: str, agent_id: str, rater_role: str,
                             body: BaselineEvaluationIn) -> BaselineEvaluationOut:
        return BaselineEvaluationOut(
            team_id=team_id, period=period, agent_id=agent_id, rater_role=rater_role,
            rater_id="bench", scores=body.scores, comment=body.comment, revision=2,
            submitted_at=datetime.now(UTC))

    return app


def floor_app(url: str) -> FastAPI:
    """Return the baseline's PUT agent plus the least any event-sourced command must do.

    Read the stream's version and append one event at it (two statements, autocommit),
    through the service's own event store and pool: no authentication, no middleware, no
    directory rules, no projections. Whatever the service does beyond this costs more, so this
    app's rate bounds what any command design can reach on the same machine.
    """
    from service.store.database import Database
    from service.store.event_store import NewEvent, append, stream_version

    db = Database(url)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await db.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.put("/v1/agents/{agent_id}", response_model=BaselineAgentOut)
    async def put_agent(agent_id: str, body: BaselineAgentIn) -> BaselineAgentOut:
        stream = f"agent:{agent_id}"
        # Autocommit: the append's expected version alone keeps it consistent, and each
        # statement saved is a round trip less, to keep this bound generous.
        async with db.connection() as conn:
            version = await stream_version(conn, stream)
            await append(conn, stream, [NewEvent("AgentChanged", {
                "agent_id": agent_id, "name": body.name, "team_id": body.team_id,
                "position": body.position})], expected_version=version,
                metadata={"actor": {"subject": "bench"}}, recorded_at=datetime.now(UTC))
        return _agent_out(agent_id, body, version + 1)

    return app


def serve_baseline(port: int, url: str | None = None) -> None:
    """Serve the baseline app (the floor app, given a database) as `csperf serve` serves."""
    import uvicorn

    app = baseline_app() if url is None else floor_app(url)
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None,
                proxy_headers=False, timeout_graceful_shutdown=5)


# -- the benchmark ---------------------------------------------------------------------------


def team_id(index: int) -> str:
    """Return the id of bench team index."""
    return f"h{index:02d}"


def agent_id(team: int, k: int) -> str:
    """Return the id of agent k of bench team index."""
    return f"h{team:02d}-a{k}"


def agent_request(client: int, n: int) -> tuple[str, Request]:
    """Rename the client's team's next agent (one AgentChanged event)."""
    team, k = client % TEAMS, n % AGENTS_PER_TEAM
    body = orjson.dumps({"name": f"Agent {k} r{n}", "team_id": team_id(team),
                         "position": "pre-sale"})
    return "PUT agent", (b"PUT", f"/v1/agents/{agent_id(team, k)}".encode(), body)


def evaluation_request(client: int, n: int) -> tuple[str, Request]:
    """Revise the manager evaluation of the client's team's next agent (one event)."""
    team, k = client % TEAMS, n % AGENTS_PER_TEAM
    score = float(40 + (n * 7 + k) % 60)
    body = orjson.dumps({"scores": dict.fromkeys(MANAGER_FORM, score)})
    path = f"/v1/teams/{team_id(team)}/cycles/{PERIOD}/evaluations/{agent_id(team, k)}/manager"
    return "PUT evaluation", (b"PUT", path.encode(), body)


async def seed(port: int, headers: Mapping[str, str]) -> None:
    """Create the teams, their agents and open months; evaluate every agent once."""
    async def one_team(t: int) -> None:
        conn = await Client.open(port, headers)
        try:
            body = orjson.dumps({"name": f"Team {t}", "manager_ids": ["m-bench"]})
            status, answer = await conn.request(b"PUT", f"/v1/teams/{team_id(t)}".encode(), body)
            assert status in (200, 201), answer
            for k in range(AGENTS_PER_TEAM):
                body = orjson.dumps({"name": f"Agent {k}", "team_id": team_id(t),
                                     "position": "pre-sale"})
                status, answer = await conn.request(
                    b"PUT", f"/v1/agents/{agent_id(t, k)}".encode(), body)
                assert status in (200, 201), answer
            status, answer = await conn.request(
                b"POST", f"/v1/teams/{team_id(t)}/cycles".encode(),
                # Version 1, as measured before fair months (its managers need no training).
                orjson.dumps({"period": PERIOD, "scheme_version": 1}))
            assert status == 201, answer
            for k in range(AGENTS_PER_TEAM):
                _, (method, path, revision) = evaluation_request(t, k)
                status, answer = await conn.request(method, path, revision)
                assert status == 200, answer
        finally:
            conn.close()

    await asyncio.gather(*(one_team(t) for t in range(TEAMS)))


@dataclass
class Measured:
    """One command's run against the service, with CPU seconds per party."""

    timing: Timing
    service_cpu: float
    postgres_cpu: float
    client_cpu: float


async def _measure(port: int, pid: int | None, meter: CpuMeter | None,
                   make: Callable[[int, int], tuple[str, Request]], headers: Mapping[str, str],
                   seconds: float, warmup: float) -> Measured:
    process = psutil.Process(pid) if pid is not None else None
    # CPU is taken over the whole run (warm-up included), then scaled to the window.
    opened = meter.start() if meter is not None else None
    before = cpu_seconds(process) if process is not None else 0.0
    mine = time.process_time()
    started = time.perf_counter()
    timing = await closed_loop(port, CLIENTS, make, seconds=seconds, warmup=warmup,
                               headers=headers)
    share = seconds / (time.perf_counter() - started)
    service_cpu = (cpu_seconds(process) - before) * share if process is not None else 0.0
    postgres_cpu = float("nan")
    if meter is not None and opened is not None:
        postgres_cpu = meter.stop(opened).server * share
    return Measured(timing, service_cpu, postgres_cpu, (time.process_time() - mine) * share)


def _cpu_note(m: Measured) -> str:
    count = m.timing.count() or 1
    return (f"CPU per request: service {m.service_cpu / count * 1e6:,.0f} µs, PostgreSQL"
            f" {m.postgres_cpu / count * 1e6:,.0f} µs, client {m.client_cpu / count * 1e6:,.0f}"
            " µs")


@SUITE.benchmark("commands", "single-event commands from 32 clients vs a trivial FastAPI route")
async def commands(ctx: BenchContext) -> list[Row]:
    """Measure the baseline, the service's two commands, and the baseline again."""
    seconds, warmup = ctx.scaled(8.0, 3.0), ctx.scaled(2.0, 1.0)
    kinds = (("PUT agent", agent_request), ("PUT evaluation", evaluation_request))
    base: dict[str, list[Measured]] = {k: [] for k, _ in kinds}

    async def run_baseline() -> None:
        async with baseline() as app:
            for kind, make in kinds:
                measured = await _measure(app.port, app.pid, None, make, {}, seconds, warmup)
                if measured.timing.errors:
                    raise RuntimeError(f"baseline errors: {measured.timing.errors[:3]}")
                base[kind].append(measured)
                ctx.log(f"http: baseline {kind}: {measured.timing.rate():,.0f}/s, p99"
                        f" {measured.timing.ms(99, kind):.1f} ms")

    await run_baseline()
    subject: dict[str, Measured] = {}
    keyed: Measured | None = None
    async with ctx.fresh_database("csperf_bench_http") as url:
        meter = await CpuMeter.for_server(url)
        async with service(url) as app:
            admin = {"Authorization": f"Bearer {token()}"}
            ctx.log(f"http: seeding {TEAMS} teams of {AGENTS_PER_TEAM} agents")
            await seed(app.port, admin)
            await asyncio.sleep(1.0)
            for kind, make in kinds:
                measured = await _measure(app.port, app.pid, meter, make, admin, seconds, warmup)
                if measured.timing.errors:
                    raise RuntimeError(f"service errors: {measured.timing.errors[:3]}")
                subject[kind] = measured
                ctx.log(f"http: service {kind}: {measured.timing.rate():,.0f}/s, p50"
                        f" {measured.timing.ms(50, kind):.1f} ms, p99"
                        f" {measured.timing.ms(99, kind):.1f} ms; {_cpu_note(measured)}")
            # The same command authenticated with an API key: one key lookup per request.
            keyed = await _measure(app.port, app.pid, meter, agent_request,
                                   {"Authorization": f"Bearer {ADMIN_KEY}"}, seconds / 2, warmup)
            ctx.log(f"http: service PUT agent with an API key: {keyed.timing.rate():,.0f}/s")
        async with baseline(url) as app:
            floor = await _measure(app.port, app.pid, meter, agent_request, {}, seconds, warmup)
            if floor.timing.errors:
                raise RuntimeError(f"floor errors: {floor.timing.errors[:3]}")
            ctx.log(f"http: floor PUT agent: {floor.timing.rate():,.0f}/s, p99"
                    f" {floor.timing.ms(99, 'PUT agent'):.1f} ms; {_cpu_note(floor)}")
    await run_baseline()

    floor_rate, floor_p99 = floor.timing.rate(), floor.timing.ms(99, "PUT agent")
    floor_name = "the floor app: the trivial route plus a version read and an append, same run"
    rows: list[Row] = []
    for kind, _ in kinds:
        measured = subject[kind]
        timing = measured.timing
        base_rates = [b.timing.rate() for b in base[kind]]
        base_rate = sum(base_rates) / len(base_rates)
        rows.append(compared(
            f"{kind}, 32 clients", timing.rate(), "requests/s", baseline=floor_name,
            baseline_figure=floor_rate, at_least=0.50,
            notes=f"{timing.count():,} answered in {timing.seconds:.0f} s, all"
            f" {sorted(timing.statuses[kind])}; p50 {timing.ms(50, kind):.1f} ms."
            f" {_cpu_note(measured)}. The trivial route of the same shape (no database):"
            f" {base_rates[0]:,.0f}/s before and {base_rates[-1]:,.0f}/s after"
            f" ({timing.rate() / base_rate:.0%} of their mean).",
        ))
        rows.append(within(
            f"{kind}, p99 latency (32 clients)", timing.ms(99, kind), "ms",
            baseline="the floor app's p99, same run", baseline_figure=floor_p99, at_most=2.0,
            notes=f"p95 {timing.ms(95, kind):.1f} ms, max {timing.ms(100, kind):.1f} ms.",
        ))
    agent_base = sum(b.timing.rate() for b in base["PUT agent"]) / len(base["PUT agent"])
    rows.append(Row(
        name="for scale: the floor app (the least an event-sourced PUT agent costs)",
        figure=floor_rate, unit="requests/s",
        baseline="trivial FastAPI route of the same shape, same uvicorn setup",
        baseline_figure=agent_base, ratio=floor_rate / agent_base,
        target="(informational)", met=None,
        notes=f"the baseline's route plus a read of the stream's version and the append of one"
        f" event at it (autocommit), through the service's event store and pool"
        f" (python -m bench.http baseline PORT URL): no authentication, middleware, rules or"
        f" projections. p99 {floor_p99:.1f} ms. {_cpu_note(floor)}.",
    ))
    if keyed is not None:
        rows.append(bounded(
            "for scale: PUT agent with an API key instead of a JWT", keyed.timing.rate(),
            "requests/s", target="-", met=None,
            notes=f"p99 {keyed.timing.ms(99, 'PUT agent'):.1f} ms; the key is verified once"
            f" and then held by the process until a revocation drops it everywhere."
            f" {_cpu_note(keyed)}.",
        ))
    return rows


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "baseline":
        serve_baseline(int(sys.argv[2]), sys.argv[3] if len(sys.argv) == 4 else None)
    else:
        raise SystemExit("usage: python -m bench.http baseline PORT [DATABASE_URL]")

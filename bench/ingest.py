"""Issue 5's numbers: live metric ingestion through HTTP against COPY, KPI lag, service memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import psutil

from bench.common import BenchContext, CpuMeter, Row, Suite, bounded, compared, percentile
from bench.loadgen import Day, make_day, play, register
from bench.peer import load_directory
from service.domain import metrics as m
from service.domain.scheme import DEFAULT_SCHEME
from service.store import metric_partitions, team_metrics
from service.store import metrics as store
from service.store.database import _init_connection, asyncpg_dsn

SUITE = Suite(
    key="ingest",
    title="Live metrics ingestion (issues 5 and 20)",
    about="""
### What these mean and how they are measured

The service runs as it does in production: `python -m service serve` (uvicorn, one process, its
default event loop) in a subprocess on 127.0.0.1, against a fresh database on the benchmark
server. `bench/loadgen.py` generates a day of a 500-agent contact centre (ten teams in two time
zones, consultations following the day's curve with flash-sale bursts, a reply-time sample per
agent message, orders and payments from the order system): about half a million samples. Eight
feeds (six chat servers, two order-system nodes) push it as eight concurrent clients, each
sending its 1,000-sample batches in time order and waiting for each answer, through `httpx`
over real TCP. As real clients do, about 2 % of batches are sent twice, about 1 % overlap the
previous batch by 200 samples, and 0.05 % of samples are bad (unknown agent, negative value,
unknown metric, half an order); the run checks that the service answered exactly that:
accepted = distinct good samples, rejected = every sending of a bad sample (a resent batch
repeats its bad ones), the rest duplicates; that the totals counted each good sample once; and
that `GET /v1/agents/{id}/kpis` for every agent, issued right after the last answer with no
wait, counts every stored sample (read-your-writes: totals are appended as deltas in the
statement that stores the samples, so there is no lag to measure).

- **HTTP ingestion**: samples sent (good, duplicate and bad alike: each is handled) divided by
  the wall time from the first request to the last answer. Baselines, in the same run: the
  same distinct rows copied by 8 concurrent connections, 1,000 rows per
  `copy_records_to_table`, into a plain table with no index (before and after the HTTP run,
  their mean; target: at least 25 %), and **the peer** (`bench/peer.py`): the ~100-line
  FastAPI endpoint of issue 20 (orjson, a Python shape loop, COPY into a temporary staging
  table, one statement placing, inserting with `ON CONFLICT DO NOTHING RETURNING`,
  quarantining unknown agents and appending delta totals, with a KPI read summing an agent's
  deltas), played the same day by the same clients with the same KPI poll, in three rounds
  on fresh databases alternated (csperf then the peer, the peer then csperf, csperf then the
  peer; one round until 2026-12-04 early morning, two until its late morning), each side's
  best round kept, and every csperf round checked exact (target: csperf at least 0.9 times
  the peer). csperf also applies the
  closed-period rule, membership history (transfers), the metric catalogue as a table, feed
  tracking, authentication and per-sample answers with reasons; the peer does none of these.
- **for scale**: csperf's own SQL path (COPY to the stage, the placing and locking statement,
  the judging and storing statement with delta totals) run directly from 8 connections with
  the same rows; and the same 8-connection COPY into the plain table with `(source,
  sample_id)` as its only index, the cheapest storage that refuses duplicates at all.
- **KPI read p99**: `GET /v1/agents/{id}/kpis` for one agent after another every 20 ms while
  the day is ingested (a dashboard's poll), from the same client process.
- **service memory**: the largest resident set size of the service process, sampled every
  100 ms through the run (psutil). Target: below 300 MB.
- **years**: the same day played into an empty store and into one holding 20 million samples
  of the same agents over the 24 months before (made by `generate_series` straight into the
  monthly partitions, with their compacted totals, then `VACUUM ANALYZE`), in the same run.
  Targets: ingestion at least 0.8 times the empty store's rate, KPI read p99 at most 1.5
  times; each day starts once the machine is quiet (at most 30 s of waiting). Then the
  oldest month (1 million samples) is archived by `archive_month` (the work
  of `csperf metrics archive`: wait for writers, COPY through gzip and sha256, count check,
  quarantine marks, DROP) and compared with a plain `COPY ... TO` a file of the same
  partition (target: at least 25 % of its rate).

Client, service and PostgreSQL share the machine's two CPUs (and, on the days these were
measured, six other engineers' test runs): the notes give each one's CPU time, which is the
steadier figure.

### Where the time goes (profiled 2026-12-03)

- **The service** went from 21.8 µs of CPU a sample (at load 15) to 9.5 µs in a quick run at
  load 2 and 14 µs in the full run above at load 6. A batch travels as five
  columns (`m.Samples`), decoded by msgspec into untracked structs (pydantic's
  `validate_json` into a dict per sample had been 29 % of the service's CPU, py-spy), with
  the pydantic adapter kept as the fallback that words every 422; times are staged as epoch
  seconds (asyncpg's encoding of an aware datetime cost 1.4 µs a row, more than the rest of
  the row); the declared-metrics lookup asks whether a month's cycle is open in the same
  query (one round trip fewer a batch). What is left of a 1,000-sample batch: the COPY's
  encoding, the decoding, the declared-metrics lookup and turning times into epoch seconds
  (7 to 10 % each), the projection runner's polling (about 6 % before it became one
  poll per process), HTTP and asyncpg.
- **PostgreSQL** is most of the gap to the peer. Interleaved batch by batch on one
  connection and one database (scratch A/B runs, backend CPU from /proc), csperf's
  transaction costs about 25 µs a sample against the peer's 18 µs, and its storing statement
  20 to 23 µs against the peer's 14 to 16 µs; the lock-and-place statement and the lookup add
  about 1 µs. Dropping the feed arrivals, the key-order sort, the cycle-status join and the
  partition check together saved about 3 µs, and inserting straight into the month's
  partition about 1 µs more (noise is about 1 µs); the rest is placement through membership
  ranges and the wider key. A generic plan instead of a custom one per batch, the "C"
  collation for the sort, and computing the cycles from the batch's months instead of its
  placed samples measured no difference. These are the rules the peer does not apply:
  within them we found no further cut that measured.
- **What the peer does not have: the compactor, and two costs of PostgreSQL's own** (perf of
  the server's processes through the day, then each change measured by interleaved batches
  on one connection, or by its backend's CPU through the day). The compactor was 14.7 % of
  PostgreSQL's backend CPU: it folded every second, updating every touched (team, month,
  agent, metric) total each time, and took a step's deltas by hashing the whole delta table;
  it now folds every 2 seconds (the live KPI read model's pace; reads add the pending deltas,
  so nothing waits for it) and takes a step by a TID range: 0.63-0.70 s of CPU for the day
  against 1.12-1.31 s. The sample key's source and id were compared by strcoll in the
  database's collation, some fifty comparisons a sample: in "C" (migration 0012) the
  transaction costs 10.65-10.75 µs a sample against 11.1. COPY's multi-insert mode made a
  tuple slot per buffered row, each registered with the transaction's resource owner under
  one key and searched linearly (5 %); a volatile default on the stage keeps COPY row by row:
  10.13 against 10.73 µs. What is left of the transaction (perf): the key index, probed twice
  a sample (ON CONFLICT's check, then the insert), about 30 %; each row formed about six
  times (the judged rows' store, the sort, the speculative insert, which forms it twice, the
  returned rows), about 8 %; the placement joins, COPY, the commit's truncation of the stage.
- **With 20 million samples stored** the storing statement does the same work: over the
  same day, pg_stat_statements counted 4.43 million buffer hits for it against 4.44 million
  into an empty store (its month's partition is new in both), and the KPI reads, the
  compactor and the COPY the same. What grows is the look-up of refused samples' keys (193
  batches of 508), planned over 40 partitions instead of 16: 0.24 s against 0.10 s for the
  day. On a server of its own the full store took the day at 49,938 and 54,646 samples/s
  against 83,297 and 49,763 into an empty one, with the same PostgreSQL CPU per sample (13.8
  µs in both of the second pair). In suite runs the ratio was 78, 87, 98, 75, 57 and 66 %;
  in the 66 % run the CPU per sample was the same (service 4.9 against 4.8 µs, PostgreSQL
  14.6 against 14.1) while other work shared the machine, and where the full store's was
  higher, the service's was higher by as much (11.9 against 9.9 µs with PostgreSQL's 27.7
  against 22.2; 5.0 against 4.1 with 14.5 against 12.4), though the service does the same
  work whatever is stored (it never reads the samples): the machine ran slower in that
  window, not the store. Nor was it the
  history's own aftermath: in the 20 seconds after it was written the server used no CPU and
  the kernel had under 40 MB to write back. A suite waits for quiet only at its start, and
  the full store's day comes minutes later; each store's day now waits for quiet too (up to
  30 s).
- **The transaction itself is now the peer's cost; the rest is what runs beside it**
  (2026-12-03, afternoon; a scratch harness playing the bench's day into two databases on one
  connection each, batch by batch alternately, the backends' CPU read from
  `/proc/PID/schedstat`, at load 6, where every figure is about twice a quiet one). A batch's
  transaction cost csperf 22.7-24.0 µs a sample against the peer's 23.0 (its COPY 1.7 against
  2.6: epoch seconds instead of timestamps; its storing statement 18.9-20.0 against the peer's
  one statement 18.9; its locking statement 0.9, where the lock and the declared-metrics
  lookup had been two statements, 0.6 + 0.3, and are one now, `store.place`). perf of both
  backends shows the same profile (index search and compare, tuple forming, float to numeric
  for the totals; strcoll under 0.5 %). What csperf's PostgreSQL does besides, per sample
  of the day: the compactor's folds (about 0.85 ms a 1,000-sample batch for deleting and summing
  its 265 delta rows, plus about 60 ms a fold for updating the 4,400 touched totals; folding
  every 32, 64 and 128 batches cost 87, 105 and 169 ms a fold), the live KPI read model's
  passes (every agent recomputed and its rows deleted and copied again every 2 s), and the
  dashboard poll: `GET /v1/agents/{id}/kpis` costs the service 4-5 ms of CPU and PostgreSQL
  1.5-3 ms a read at that load (agent, team, cycle and scheme streams read in turn), the
  peer's one query a fraction of that, and the poll reads some 70 times in a run. Tried
  without a gain: the delta rows as one row a (team, month, agent) with the metrics as arrays
  (2.85 times fewer rows: 23.1 against 22.8 µs, the folds the same), a fold that updates by a
  join and inserts only the new keys instead of `ON CONFLICT` (twice the CPU), summing the
  fold's deltas once for both its upsert and `kpi_dirty` (the same), dropping the key-order
  sort (the same).
  Suite runs alternated, the code before the merged lookup and after (13:01-13:17 UTC, load 9
  to 10): csperf's CPU per sample (service, PostgreSQL) 15.5 and 41.7 µs, 13.7 and 35.7 µs
  before, 14.0 and 37.8 µs, 12.9 and 34.2 µs after, the peer's 9.3-9.9 and 24.9-28.7 µs;
  73 % and 101 % of the peer's rate before, 79 % and 90 % after: at that load the spread from
  run to run is larger than the change.
- **What ran beside ingestion, cut** (2026-12-03, late afternoon; pg_stat_statements over the
  csperf run, at load 5-10). The compactor folded until a step found nothing, and under
  steady ingestion each step found the batch or two committed during the one before: a pass
  never ended, and the totals fold ran 93 times in the run for 5.5 s of statement time, more
  than the live KPI read model and the dashboard poll together. It now folds what is pending,
  a step at a time, and stops at the first step short of a full one (`compact_pass`): 19
  folds, 2.9 s. The live KPI read model's passes (7 in that run, 3.0 s: the sums of every
  touched agent's totals, the delete and the COPY of 3,500 rows) now pause 2 s, or nine
  times the pass when that is longer, up to 10 s (`LockedLoop` `share`, `pause_after`): at
  most a tenth of a core for passes of up to 1.1 s, 2 s behind again when the machine is
  quiet (README: reporting). The dashboard's `GET /v1/agents/{id}/kpis` took six or seven
  round trips (the agent, the team, the cycle's first event, the team again, the scheme, the
  totals per metric and per team), each on a pooled connection of its own; it now takes two
  (the agent's, team's and scheme's streams together when the process holds the agent and
  the team; the totals by grouping sets with the cycle's opening event). Suite runs
  alternated, the code before this round and after (15:41-15:55 UTC, load 9-17, four other
  test suites running): csperf's CPU per sample (service, PostgreSQL) 10.8 and 25.8 µs, 11.9
  and 27.4 µs before, 10.9 and 23.2 µs, 11.3 and 24.8 µs after; the peer's 7.8-8.7 and
  18.5-22.1 µs in the same runs: csperf's CPU per sample was 1.39 and 1.34 times the peer's
  before, 1.12 and 1.25 after. The rates themselves moved with the load (csperf
  before at 122 % and 70 % of the peer, after at 72 % and 93 %) and say nothing at that load.
- **The folds moved into the live KPI read model's passes** (2026-12-03, evening). The
  compactor folded every 2 seconds while the KPI read model, the one reader of what a fold
  marks, passed every 2 to 10 seconds (at this load about every 5): each fold paid its fixed
  cost (updating the 4,400 touched totals) for a refresh that came seconds later, and the
  refresh then summed seconds of pending deltas. The read model's loop now folds at the start
  of each pass (reads never waited for a fold: they sum the pending deltas), and the months'
  partitions have a loop of their own. The CPU of the backends holding the loops' locks over
  the play window (a scratch harness running this suite's csperf and peer days, the code
  before and after alternated, load 4-7): 45 and 45 ms/s before, 22 and 36 ms/s after (1.9 and
  1.6 against 0.7 and 1.4 µs a sample); pg_stat_statements over a run of each at load 4: the
  folds and refreshes 1.12 s of 16.0 s of statement time (4 folds) before, 0.30 s of 15.4 s (1
  fold) after. csperf's CPU per sample over the peer's (service and PostgreSQL together),
  sixteen runs at load 3-8, before and after alternated (two pairs of this suite, six of the
  harness): 1.13-1.57, mean 1.31, before; 1.08-1.32, mean 1.19, after. The rates swung from
  64 % to 119 % of the peer's in the same hour. Looked at and left: the staging table's
  creation per pooled connection (the pool has grown before the clock starts:
  pg_stat_statements counted one creation in csperf's window, nine in the peer's, whose pool
  starts at 2); the declared metrics sent as one JSON document instead of four arrays
  (asyncpg's encoding 100 µs a batch less, PostgreSQL's json_to_recordset 65 µs more: no
  gain).
- **The key led by the sample id, and whole values summed as bigints** (2026-12-03, night; a
  scratch harness playing the bench's day through csperf's stage, place and settle on one
  connection per variant, the code and schema before in one database and after in another,
  batch by batch alternately, backends' CPU from `/proc/PID/schedstat`, at load 8-10, where
  every figure is about twice a quiet one). Under `(source, sample_id, period)` nearly every
  comparison of the key index's two probes a sample found the sources equal (a batch has one
  feed) and walked the index tuple past the source to compare the id; migration 0013 makes
  the key `(sample_id, source, period)` (the same columns, so the same duplicates) and the
  storing statement inserts in its order. The delta totals' `sum(value::numeric)` printed
  every double to 15 digits and parsed it back (0.5 µs a value); whole values are summed as
  bigints (the same number with the same scale, checked on a million random values). The
  transaction went from 25.2 to 23.4 µs a sample (paired difference 1.76 ± 0.17 µs), its
  storing statement from 21.1 to 19.3; the sums alone 0.44 ± 0.26 µs. The insert alone, into
  a plain table keyed either way: 11.3 against 9.6 µs. One `--only ingest.http_day` pair, the
  code before and after (22:40-22:52 UTC, load 9-14, the test suite running): csperf's
  PostgreSQL 33.6 and 29.3 µs a sample against the peer's 27.3 and 27.3, its service 14.1 and
  13.5 against 9.8 and 9.9. Tried without a gain: inserting straight into the month's
  partition when a batch names one month. PostgreSQL then checks each row against that
  partition's bounds, about what routing it cost (ExecFindPartition was 0.4 % of the backend),
  and whether the month is live (its partition may have been archived) took a round trip:
  0.09 ± 0.18 µs more of the backend and 0.2 µs more of the client a sample. The judged rows
  computed twice instead of materialised once: 0.02 ± 0.16 µs more.
- **Reading a batch and its times** (2026-12-03, night; the day's figures at load 1-3, the steps
  timed in one process). A sample's time becomes epoch seconds by subtracting the
  epoch written in the time's own fixed offset (`m.epochs`, 0.27 µs instead of 0.62 µs a
  time, bit for bit the same, a property test over random times and offsets says so). The
  body's checks in `metric_bodies` were made cheaper: a scan for more than seven decimals,
  lengths checked by msgspec, and the search for control characters only in a body holding
  a backslash or a DEL. Decoding and turning times into epoch seconds took 1.66-2.64 ms a
  batch instead of 2.84-4.65. A batch's first transaction runs without tenacity's retry
  machinery, as a command's first attempt does (only a retry needs it), so an empty batch's
  transaction takes 472 µs instead of 583. The whole day at load 1-3, in three runs: the
  service's CPU went from 13.2, 11.7 and 12.3 µs a sample to 10.3, 11.0 and 9.5, and
  PostgreSQL's from 33.4, 29.4 and 31.7 to 27.3, 28.5 and 26.1.
- **A batch's round trips and arrays** (2026-12-04, early morning; a scratch harness playing
  the bench's day through main's `commands.settle` and the new one into two databases, batch
  by batch alternately, client CPU from `time.thread_time`, the backends' from
  `/proc/PID/schedstat`, load 2.5-4.2). asyncpg's BEGIN was a round trip of its own; the
  batch's COPY now begins the transaction in its own query (`BEGIN; COPY ...`, `store.stage`,
  committed by `Database.transaction_begun_by_work`): 89 ± 2 µs of client CPU and 22 ± 5 µs
  of the backend's a batch. asyncpg encodes an array at about 0.45 µs an element, and a batch
  sent its agents twice and its declared metrics as four arrays, some 600 elements; they now
  travel as one string each in PostgreSQL's text form of an array (`store.text_array`, cast
  by a scalar subquery so a row filter never parses it again). Together: the transaction's
  client CPU went from 3.27 to 2.93 µs a sample (paired 338 ± 24 µs a batch), the backend's
  12.08 against 12.10 µs (no change), with identical answers. What is left of the service's
  side of a batch: the stage's COPY (asyncpg's encoding, about 0.45 ms a batch: 65 ns a
  field), decoding and epoch seconds, the place, settle and COMMIT round trips, HTTP. Looked at
  and left: generic plans for the locking statement (PostgreSQL's auto mode already takes
  them after five custom plans: 302-430 µs of backend auto, 368 forced, 980 custom), place's
  result arrays as text (20 µs a batch), and a hand-written COPY encoder (no faster than
  asyncpg's Cython in Python). Three whole-bench pairs at load 3-8 (05:17-05:36 UTC) put the
  service at 5.7, 5.5 and 5.0 µs a sample before and 4.4, 5.0 and 6.3 after, and the rate
  between 85 % and 137 % of the peer for the same code: at that load only the paired figure
  says anything.
- **The dashboard's KPI read, planned once** (2026-12-04, early morning UTC; a scratch harness
  reading a stored 105,403-sample day for 500 agents in turn, py-spy on the service,
  pg_stat_statements and `/proc/PID/schedstat` on the bench's own server, the code before and
  after alternated, load 1.4-3). `GET /v1/agents/{id}/kpis` cost the service 0.75-0.9 ms of
  CPU a read when quiet: a third FastAPI and its middlewares, a third the event loop and the
  protocols, a third the route, whose two statements were most of it. It cost PostgreSQL
  0.35 ms a read, of which execution was 76 µs: both statements were planned at every read.
  The streams' read takes its stream ids as array parameters, for which a generic plan guesses
  ten elements, so the generic plan looked two to three times as costly as each custom one and
  PostgreSQL never kept it. The read is now one statement: the three streams after the
  versions held, as a VALUES list whose rows a generic plan counts, with the cycle's opening
  event and the month's totals per metric and per team. PostgreSQL keeps its plan after five
  reads.
  - The statements alone: the backend's CPU 213-246 µs a read before, 107-115 after.
  - In the running service: PostgreSQL 0.345 ms a read before (median), 0.225 after. The
    service's CPU is the same within the noise (0.88 and 0.92 ms).
  - At some 90 reads a run, this is about a hundredth of a second of the ingestion run: the
    read no longer weighs on the comparison with the peer.
- **Load.** The run above shared the machine with other engineers' test suites (load 6; the
  COPY baseline moved from 53,837 to 124,892 rows/s between its two runs), which weighs on
  whichever of csperf and the peer it overlaps. A quick run (`--quick`, a fifth of the day) at
  load 2 measured csperf at 44,481 samples/s against the peer's 60,777 (73 %) and 19 % of
  COPY, with CPU per sample 9.5 and 26.2 µs (service, PostgreSQL) against the peer's 6.7
  and 17.0 µs.
- **Where the peer's margin stands** (2026-12-04, 04:38-06:16 UTC, the machine quiet, load
  0.2-2.5 at each start). Four runs of `ingest.http_day`, two before this morning's changes
  (a batch's round trips and arrays, the KPI read) and two after: csperf at 91 % of the peer
  (one round each, 04:38), 88 % (best of two alternated rounds, 04:50; single rounds 88 % and
  85 %); after, 85 % (the run above, 06:07; rounds 83 % and 85 %) and 93 % (06:16,
  `--no-write`; rounds 102 % and 89 %). CPU per sample, the steadier figure: the
  service 4.4-6.1 µs against the peer's 3.7-4.9, PostgreSQL 12.8-15.6 against 11.2-15.1;
  csperf's total 0.83-0.92 of the peer's. The gap is PostgreSQL's (1.7-3.1 µs a sample in
  the last three runs); the batch's transaction measured alone costs about what the peer's
  does, so what is left is what runs beside it (the live KPI read model's folds and
  refreshes, the projection runners, autovacuum of the folded delta tables): the next thing
  to measure, backend by backend (the next bullet).
- **Backend by backend, then two cuts** (2026-12-04, late morning UTC, load 0.5-2.5; the
  play window alone: each server backend's CPU labelled by what `pg_stat_activity` saw it
  run, perf with DWARF call graphs on the server, py-spy on the service, pg_stat_statements
  on a server of its own, `gc.callbacks` in the service).
  - What runs beside ingestion is small. The live KPI read model's backend used 0.11-0.18 s
    of PostgreSQL's 7.6-8.3 s in a run; the batches' backends (the dashboard's reads share
    them) 7.4-7.9 s, against 5.6-6.2 s for the peer's. Runs with the read model's loop off
    and on, alternated, differed by less than the noise (PostgreSQL 11.9, 13.1 and 12.0 µs a
    sample off, 11.7, 13.5 and 13.0 on).
  - So the gap is in the batches' own statements under eight concurrent clients, which
    serially cost about what the peer's do. perf over the window: csperf's PostgreSQL 16,130
    samples against the peer's 14,620. The peer loses some 1,150 to COPY's multi-insert
    mode (`ResourceOwnerAddToHash` and `ResourceOwnerForget`, which csperf's stage avoids)
    and about 300 to strcoll. csperf spends more on forming tuples: its materialised CTEs,
    the key-order sort and the stage's generated time column (`fill_val` +325,
    `ExecInterpExpr` +340). Comparing keys bytewise (`memcmp` +540) replaces the peer's
    strcoll.
  - **The stage's TOAST table.** Every commit truncates the staging table (`ON COMMIT DELETE
    ROWS`). With its text columns, the table had a TOAST table, which the truncation also
    truncated, building its index again, empty: 3 % of ingestion's PostgreSQL CPU (perf:
    `RelationTruncateIndexes` and `index_build` under `PreCommit_on_commit_actions`). The
    text columns are now bounded by what the API accepts (`varchar(128)` for the sample id,
    64 for the rest, `m.SAMPLE_ID_MAX` and the like), which keeps a row under the TOAST
    threshold even at four bytes a character, so the table has none. BEGIN, COPY and COMMIT
    of a 1,000-sample batch cost the backend 1.46 ms against 1.79 ms (1,000 batches of
    each, interleaved on one server). A test ingests the longest values, at four bytes a
    character.
  - **The look-up of refused samples.** 193 batches of the day's 508 refuse a sample. Its
    look-up was planned again at every call, over every partition: 202 plans, 161 ms of
    planning against 12 ms of execution. It is now one lateral probe of the key index per
    key, in the generic plan the locking statement asks for: 15 plans (one per pooled
    connection) in the same day.
  - **The garbage collector: measured, not kept.** Its young collections, every 700 net
    allocations (CPython's default), ran 409-444 times in a run. Each walked a request's
    objects in flight, for 0.25 s of the service's CPU in all (thread CPU time), about 9 %
    of it. At a threshold of 20,000 they ran twice (0.01 s). The same setting took the
    built-in scheme's close + publish from 0.91 s to 0.52-0.64 s, but the 50-KPI close only
    to 0.76-0.95 s, whose work is elsewhere (suite kpis). Issue 19's ratio of the two then
    read 1.36-1.56 against its target of 1.5 (three runs), so the setting was taken back.
  - Whole runs alternated, the code before these cuts and after (the garbage collector's
    setting included), at load 0.7-1.7. Before: 92,795, 103,381 and 96,984 samples/s, with
    CPU 16.8, 15.4 and 16.3 µs a sample (service and PostgreSQL). After: 88,723, 94,272 and
    104,714 samples/s, with CPU 17.2, 16.6 and 15.0 µs. The cuts, under 1 µs a sample of
    some 20 (client included), are smaller than a run's spread. Two `ingest.http_day` runs
    with all three put csperf at 121 % and 108 % of the peer (best of three rounds each;
    CPU per sample 16.1 µs against the peer's 17.1 in the second); the table above is this
    code's, without the collector's setting.
""",
)

ADMIN_KEY = "csk_bench_ingest_admin_0000000000000000000000"
JWT_SECRET = "bench-ingest-secret-with-enough-entropy-0123456789"
PLAIN = """
CREATE TABLE bench_plain_sample (
    source      text NOT NULL,
    sample_id   text NOT NULL,
    agent_id    text NOT NULL,
    team_id     text NOT NULL,
    period      text NOT NULL,
    metric      text NOT NULL,
    value       double precision NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL
)
"""
COPY_COLUMNS = ["source", "sample_id", "agent_id", "team_id", "period", "metric", "value",
                "occurred_at", "received_at"]
CLIENTS = 8


# -- the baseline ----------------------------------------------------------------------------


async def copy_rate(url: str, rows: list[tuple[Any, ...]], clients: int = CLIENTS,
                    *, keyed: bool = False) -> float:
    """Copy the rows into a fresh plain table from 8 connections; return rows per second.

    keyed: the table has the idempotency key (source, sample_id) as its primary key and no
    other index, the least any storage that refuses duplicates must maintain.
    """
    admin = await asyncpg.connect(url)
    try:
        await admin.execute("DROP TABLE IF EXISTS bench_plain_sample")
        await admin.execute(PLAIN)
        if keyed:
            await admin.execute("ALTER TABLE bench_plain_sample ADD PRIMARY KEY (source,"
                                " sample_id)")
    finally:
        await admin.close()
    conns = [await asyncpg.connect(url) for _ in range(clients)]
    shares = [rows[i::clients] for i in range(clients)]

    async def worker(conn: asyncpg.Connection, share: list[tuple[Any, ...]]) -> None:
        for start in range(0, len(share), 1000):
            now = datetime.now(UTC)
            records = [(*r, now) for r in share[start:start + 1000]]
            await conn.copy_records_to_table("bench_plain_sample", records=records,
                                             columns=COPY_COLUMNS)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker(c, s) for c, s in zip(conns, shares, strict=True)))
        elapsed = time.perf_counter() - started
    finally:
        for conn in conns:
            await conn.close()
    return len(rows) / elapsed


async def insert_rate(url: str, rows: list[tuple[Any, ...]]) -> float:
    """Run the service's own SQL path (stage by COPY, place, judge, store once, delta totals)
    on the rows as new samples from 8 connections, with no HTTP or Python checks in front of
    it; return rows per second."""
    conns = [await asyncpg.connect(url) for _ in range(CLIENTS)]
    for conn in conns:
        await _init_connection(conn)
    shares = [rows[i::CLIENTS] for i in range(CLIENTS)]

    async def worker(conn: asyncpg.Connection, share: list[tuple[Any, ...]]) -> None:
        for start in range(0, len(share), 1000):
            chunk = share[start:start + 1000]
            staged = [(i, "direct-" + r[0], r[1], r[2], r[5], r[6], r[7].timestamp())
                      for i, r in enumerate(chunk)]
            now = datetime.now(UTC)
            agents = list({r[2] for r in chunk})
            months = m.months_spanned(min(r[7] for r in chunk), max(r[7] for r in chunk), now)
            async with conn.transaction():
                await store.stage(conn, staged)
                placed = await store.place(conn, agents, months)
                accepts = placed.accepts
                if accepts is None:  # the read model of declared metrics lags
                    accepts = await team_metrics.from_streams(conn, placed.pairs)
                await store.settle(conn, now, placed.mark, accepts, agents, months,
                                   placed.cycles)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker(c, s) for c, s in zip(conns, shares, strict=True)))
        elapsed = time.perf_counter() - started
    finally:
        for conn in conns:
            await conn.close()
    return len(rows) / elapsed


# -- the service -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """The service running in a subprocess."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path


@contextlib.asynccontextmanager
async def service(url: str) -> AsyncIterator[Server]:
    """Run `python -m service serve` on a free loopback port until the block ends."""
    port = _free_port()
    async with serve([sys.executable, "-m", "service", "serve"], url, port) as server:
        yield server


@contextlib.asynccontextmanager
async def peer(url: str) -> AsyncIterator[Server]:
    """Run the peer of bench/peer.py on a free loopback port until the block ends."""
    port = _free_port()
    command = [sys.executable, "-m", "bench.peer", "--url", url, "--port", str(port)]
    async with serve(command, url, port, ready="/openapi.json") as server:
        yield server


@contextlib.asynccontextmanager
async def serve(command: list[str], url: str, port: int,
                ready: str = "/readyz") -> AsyncIterator[Server]:
    """Run a server command until the block ends, once it answers `ready` with a 200."""
    env = {
        **os.environ,
        "CSPERF_DATABASE_URL": url,
        "CSPERF_HOST": "127.0.0.1",
        "CSPERF_PORT": str(port),
        "CSPERF_JWT_SECRET": JWT_SECRET,
        "CSPERF_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CSPERF_LOG_LEVEL": "WARNING",
        "CSPERF_RUN_SCHEDULER": "false",
    }
    log = Path(tempfile.mkstemp(prefix="csperf-bench-ingest-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as client:
            for _ in range(300):
                if process.poll() is not None:
                    raise RuntimeError(f"the service exited: {log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(ready)).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the service did not become ready in 30 s")
        yield server
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


def ingest_headers(sources: list[str]) -> dict[str, dict[str, str]]:
    """Return an ingest JWT per source."""
    now = datetime.now(UTC)
    return {
        s: {"Authorization": "Bearer " + jwt.encode(
            {"sub": s, "role": "ingest", "source": s, "iat": now,
             "exp": now + timedelta(hours=2)}, JWT_SECRET, algorithm="HS256")}
        for s in sources
    }


# -- monitors ----------------------------------------------------------------------------------


@dataclass
class Monitor:
    """KPI read latencies and service memory sampled during the run."""

    url: str
    pid: int
    reads: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow_kpis(self, client: httpx.AsyncClient, agents: list[str],
                          headers: dict[str, str], period: str) -> None:
        """Read an agent's live KPIs every 20 ms (a dashboard's poll), timing each read."""
        n = 0
        while not self._stop.is_set():
            agent = agents[n % len(agents)]
            n += 1
            started = time.perf_counter()
            response = await client.get(f"/v1/agents/{agent}/kpis?period={period}",
                                        headers=headers)
            self.reads.append(time.perf_counter() - started)
            response.raise_for_status()
            await asyncio.sleep(0.02)

    async def follow_memory(self) -> None:
        """Sample the service's resident set size every 100 ms."""
        process = psutil.Process(self.pid)
        while not self._stop.is_set():
            self.rss.append(process.memory_info().rss)
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        """End the sampling loops."""
        self._stop.set()


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _postmaster(url: str) -> psutil.Process | None:
    conn = await asyncpg.connect(url)
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        with contextlib.suppress(psutil.Error):
            return psutil.Process(pid).parent()  # while the backend lives
        return None
    finally:
        await conn.close()


def _postgres_cpu(postmaster: psutil.Process | None) -> float:
    """Return the CPU seconds of the benchmark server's processes, live and exited (not other
    servers')."""
    if postmaster is None:
        return float("nan")
    total = 0.0
    with contextlib.suppress(psutil.Error):
        # Backends that exited (a pool closes idle connections) count through the postmaster,
        # which reaped them: without them the difference of two readings can be negative.
        times = postmaster.cpu_times()
        total += times.children_user + times.children_system
        for p in [postmaster, *postmaster.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += _cpu(p)
    return total


# -- the benchmark ---------------------------------------------------------------------------


async def _kpi_samples(client: httpx.AsyncClient, agents: list[str], headers: dict[str, str],
                       periods: list[str]) -> int:
    """Return the samples the live KPIs of every agent count for some periods."""
    total = 0
    for agent in agents:
        for period in periods:
            response = await client.get(f"/v1/agents/{agent}/kpis?period={period}",
                                        headers=headers)
            response.raise_for_status()
            total += response.json()["samples"]
    return total



async def _peer_run(url: str, day: Day
                    ) -> tuple[float, tuple[int, int, int], float, float, list[float]]:
    """Play the day against the peer, polling KPIs as csperf's run does; return samples/s, its
    answers, the CPU seconds of its process and of PostgreSQL, and its KPI read times."""
    await load_directory(url, [(t.team_id, t.timezone, list(t.agents)) for t in day.teams])
    async with peer(url) as server:
        limits = httpx.Limits(max_connections=CLIENTS + 2, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120,
                                     limits=limits) as client:
            process = psutil.Process(server.process.pid)
            postmaster = await _postmaster(url)
            # The same dashboard poll as csperf's run: the same load on both.
            monitor = Monitor(url, server.process.pid)
            agents = [a for t in day.teams for a in t.agents]
            poll = asyncio.create_task(monitor.follow_kpis(client, agents, {}, day.rows[0][4]))
            cpu, cpu_pg = _cpu(process), _postgres_cpu(postmaster)
            started = time.perf_counter()
            totals = await play(client, day.feeds, {s: {} for s in day.feeds})
            elapsed = time.perf_counter() - started
            cpu, cpu_pg = _cpu(process) - cpu, _postgres_cpu(postmaster) - cpu_pg
            monitor.stop()
            await poll
    answers = (totals["accepted"], totals["rejected"], totals["duplicates"])
    return day.sent / elapsed, answers, cpu, cpu_pg, monitor.reads



@dataclass
class Run:
    """One day played against the service."""

    elapsed: float
    totals: dict[str, int]
    monitor: Monitor
    fresh: int
    cpu_client: float
    cpu_service: float
    cpu_postgres: float


async def _csperf_run(url: str, day: Day,
                      before: Callable[[], Awaitable[None]] | None = None,
                      settle: Callable[[], Awaitable[object]] | None = None) -> Run:
    """Register the centre, run ``before``, then (after ``settle``) play the day through the
    service."""
    async with service(url) as server:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        limits = httpx.Limits(max_connections=CLIENTS + 2, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120,
                                     limits=limits) as client:
            await register(client, day.teams, admin)
            if before is not None:
                await before()
            # Let the directory read model take the agents in before the clock starts.
            await asyncio.sleep(1.0)
            if settle is not None:
                await settle()
            monitor = Monitor(url, server.process.pid)
            agents = [a for t in day.teams for a in t.agents]
            period = day.rows[0][4]
            tasks = [asyncio.create_task(monitor.follow_kpis(client, agents, admin, period)),
                     asyncio.create_task(monitor.follow_memory())]
            me, svc = psutil.Process(), psutil.Process(server.process.pid)
            postmaster = await _postmaster(url)
            cpu_me, cpu_svc, cpu_pg = _cpu(me), _cpu(svc), _postgres_cpu(postmaster)
            started = time.perf_counter()
            totals = await play(client, day.feeds, ingest_headers(list(day.feeds)))
            elapsed = time.perf_counter() - started
            cpu_me, cpu_svc = _cpu(me) - cpu_me, _cpu(svc) - cpu_svc
            cpu_pg = _postgres_cpu(postmaster) - cpu_pg
            monitor.stop()
            await asyncio.gather(*tasks)
            # Read-your-writes: totals read right after the last answer, no waiting.
            fresh = await _kpi_samples(client, agents, admin, sorted({r[4] for r in day.rows}))
    return Run(elapsed, totals, monitor, fresh, cpu_me, cpu_svc, cpu_pg)


async def _stored(url: str) -> tuple[int, int]:
    """Return how many samples csperf stored and how many its totals count."""
    conn = await asyncpg.connect(url)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM metric_sample")
        applied = await conn.fetchval("SELECT sum(observations) FROM metric_totals")
    finally:
        await conn.close()
    return int(stored), int(applied or 0)


@SUITE.benchmark("http_day", "a 500-agent centre's day through HTTP from 8 clients, vs COPY")
async def http_day(ctx: BenchContext) -> list[Row]:
    """Ingest a day through the HTTP service; compare with COPY; measure lag and memory."""
    day: Day = make_day(prefix="b-", consultations_per_agent=ctx.scaled(120, 25))
    ctx.log(f"ingest: {day.sent:,} samples in {day.batches} batches, {len(day.rows):,} distinct"
            f" good, {day.bad} bad")
    rounds = int(ctx.scaled(3, 1))
    runs: list[Run] = []
    peers: list[tuple[float, tuple[int, int, int], float, float, list[float]]] = []
    counts: list[tuple[int, int]] = []
    async with ctx.fresh_database("csperf_bench_ingest") as url:
        url = asyncpg_dsn(url)
        copy_before = await copy_rate(url, day.rows)
        ctx.log(f"ingest: COPY {copy_before:,.0f} rows/s")
        runs.append(await _csperf_run(url, day))
        peers.append(await _peer_run(url, day))
        ctx.log(f"ingest: csperf {day.sent / runs[-1].elapsed:,.0f} samples/s, the peer"
                f" {peers[-1][0]:,.0f}")
        counts.append(await _stored(url))
        copy_after = await copy_rate(url, day.rows)
        ctx.log(f"ingest: COPY again {copy_after:,.0f} rows/s")
        copy_single = await copy_rate(url, day.rows, clients=1)
        meter = await CpuMeter.for_server(url)
        opened = meter.start()
        keyed = await copy_rate(url, day.rows, keyed=True)
        keyed_cpu = meter.stop(opened)
        ctx.log(f"ingest: COPY into a table keyed by (source, sample_id) {keyed:,.0f} rows/s")
        direct = await insert_rate(url, day.rows)
        ctx.log(f"ingest: COPY from one connection {copy_single:,.0f} rows/s; the ingest INSERT"
                f" alone {direct:,.0f} rows/s")
    # Further rounds on fresh databases, the peer first in every other one: a neighbour's
    # burst on this shared machine weighs on whichever run it overlaps, so each side keeps its
    # best round.
    for n in range(1, rounds):
        async with ctx.fresh_database("csperf_bench_ingest") as url:
            url = asyncpg_dsn(url)
            if n % 2:
                peers.append(await _peer_run(url, day))
            runs.append(await _csperf_run(url, day))
            if not n % 2:
                peers.append(await _peer_run(url, day))
            ctx.log(f"ingest: the peer {peers[-1][0]:,.0f} samples/s, csperf"
                    f" {day.sent / runs[-1].elapsed:,.0f}")
            counts.append(await _stored(url))
    run = min(runs, key=lambda r: r.elapsed)
    elapsed, totals, monitor, fresh = run.elapsed, run.totals, run.monitor, run.fresh
    cpu_me, cpu_svc, cpu_pg = run.cpu_client, run.cpu_service, run.cpu_postgres
    peer_rate, peer_answers, peer_cpu, peer_pg, peer_reads = max(peers, key=lambda p: p[0])
    ctx.log(f"ingest: the peer {peer_rate:,.0f} samples/s; answers {peer_answers}")
    rate = day.sent / elapsed
    baseline = (copy_before + copy_after) / 2
    rejections = day.rejections
    expected = (len(day.rows), rejections, day.sent - len(day.rows) - rejections)
    got = (totals["accepted"], totals["rejected"], totals["duplicates"])
    correct = all(
        (r.totals["accepted"], r.totals["rejected"], r.totals["duplicates"]) == expected
        and r.fresh == len(day.rows) for r in runs
    ) and all(c == (len(day.rows), len(day.rows)) for c in counts)
    csperf_rates = ", ".join(f"{day.sent / r.elapsed:,.0f}" for r in runs)
    peer_rates = ", ".join(f"{p[0]:,.0f}" for p in peers)
    ctx.log(f"ingest: {rate:,.0f} samples/s; answers {got}, expected {expected}")
    p50, p99 = percentile(monitor.reads, 50), percentile(monitor.reads, 99)
    rss = max(monitor.rss) / 2**20 if monitor.rss else float("nan")
    return [
        compared(
            "HTTP ingestion, 1,000-sample batches, 8 clients",
            rate, "samples/s",
            baseline="COPY of the same rows, 8 connections",
            baseline_figure=baseline,
            at_least=0.25,
            notes=f"{day.sent:,} samples ({len(day.rows):,} distinct good, {day.bad} bad, the"
            f" rest duplicates) in {day.batches} batches took {elapsed:.1f} s (the best of"
            f" {len(runs)} runs alternated with the peer's: {csperf_rates} samples/s)"
            f" ({len(day.rows) / elapsed:,.0f} stored/s). Answers (accepted, rejected,"
            f" duplicates) {got}, expected {expected}; every run's answers, stored samples and"
            f" totals {'exact' if correct else 'WRONG'}. COPY"
            f" {copy_before:,.0f} rows/s before and {copy_after:,.0f} after. CPU seconds in the"
            f" window: service {cpu_svc:.1f}, PostgreSQL {cpu_pg:.1f}, client {cpu_me:.1f}"
            f" (of {elapsed * (os.cpu_count() or 1):.1f} available). Machine: nproc"
            f" {os.cpu_count()}, {psutil.virtual_memory().total / 2**30:.1f} GiB of memory, load"
            f" average {' '.join(f'{x:.2f}' for x in os.getloadavg())} when this row was"
            " written (the machine is shared). Command: `.venv/bin/python -m bench --only"
            " ingest`.",
        ),
        compared(
            "HTTP ingestion against the peer (bench/peer.py), same load",
            rate, "samples/s",
            baseline="the peer: COPY to a staging table, one statement, deltas",
            baseline_figure=peer_rate,
            at_least=0.90,
            notes=f"the best of {len(peers)} runs of each, alternated (csperf first, then the"
            f" peer first, and so on; csperf {csperf_rates}, the peer {peer_rates} samples/s)."
            " The peer"
            f" answered (accepted, rejected, duplicates) {peer_answers} (it has no"
            " metric catalogue or fractional-count rule, so it stores the odd bad sample that"
            f" csperf keeps). CPU per sample: the peer's process {peer_cpu / day.sent * 1e6:.1f}"
            f" µs and its PostgreSQL {peer_pg / day.sent * 1e6:.1f} µs, csperf's"
            f" {cpu_svc / day.sent * 1e6:.1f} µs and {cpu_pg / day.sent * 1e6:.1f} µs. The peer"
            " has no closed-period rule, membership history, metric catalogue, feed tracking or"
            " auth. Both runs poll an agent's KPIs every 20 ms meanwhile (the peer's p99"
            f" {percentile(peer_reads, 99) * 1000:.0f} ms over {len(peer_reads)} reads).",
        ),
        bounded(
            "for scale: the ingest INSERT alone, 8 connections", direct, "rows/s",
            target="-", met=None,
            notes="the service's SQL path (COPY to the stage, placement, judging, ON CONFLICT on"
            " the idempotency key, delta totals) on the same rows as new samples, without HTTP"
            " or Python checks: the"
            f" ceiling PostgreSQL itself sets on this design ({direct / baseline:.0%} of the"
            f" COPY rate). COPY from a single connection: {copy_single:,.0f} rows/s.",
        ),
        Row(
            name="for scale: COPY into a table whose only index is the idempotency key",
            figure=keyed, unit="rows/s", baseline="COPY of the same rows, 8 connections",
            baseline_figure=baseline, ratio=keyed / baseline, target="(informational)",
            met=None,
            notes="the same 8-connection COPY into the plain table with (source, sample_id) as"
            " its primary key: no conflict handling (a duplicate would fail the whole COPY), no"
            " HTTP, validation, placement or aggregation. The machine's CPUs were busy"
            f" {keyed_cpu.machine / keyed_cpu.wall:.2f} of {os.cpu_count()} cores meanwhile"
            f" (the COPY client {keyed_cpu.client / keyed_cpu.wall:.2f}).",
        ),
        bounded(
            "KPI read p99 under that load (GET /v1/agents/{id}/kpis)", p99 * 1000, "ms",
            target="(informational)", met=None,
            notes=f"p50 {p50 * 1000:.1f} ms over {len(monitor.reads)} reads, one every 20 ms"
            " during the run. No lag to measure: the totals read right after the last answer"
            f" counted {fresh:,} samples of {len(day.rows):,} stored (read-your-writes).",
        ),
        bounded(
            "service memory (max RSS)", rss, "MB", target="< 300 MB", met=rss < 300,
            notes=f"sampled {len(monitor.rss)} times; one uvicorn process.",
        ),
    ]


# -- years of samples --------------------------------------------------------------------------

_HISTORY = """
INSERT INTO metric_sample (source, sample_id, agent_id, team_id, period, metric, value,
                           occurred_at, received_at)
SELECT 'history-' || (g % 8), $2 || '-' || g, ($4::text[])[1 + g % $6],
       ($5::text[])[1 + g % $6], $2, ($7::text[])[1 + g % 10], (g % 5)::float8,
       $3::timestamptz + (g % 2419200) * interval '1 second',
       $3::timestamptz + (g % 2419200) * interval '1 second'
FROM generate_series(1, $1) g
"""

_HISTORY_TOTALS = """
INSERT INTO metric_total
SELECT team_id, period, agent_id, metric, sum(value::numeric), count(*), max(received_at)
FROM metric_sample WHERE period = $1 GROUP BY team_id, period, agent_id, metric
"""


async def _history(url: str, day: Day, total: int, first_month: int,
                   log: Callable[[str], None]) -> list[str]:
    """Store ``total`` samples of the centre's agents over the 24 months before the day's
    (``first_month`` of them in the oldest), straight into PostgreSQL; return the months."""
    current = day.rows[0][4]
    periods = [metric_partitions.shift(current, -k) for k in range(24, 0, -1)]
    rest = (total - first_month) // 23
    agents = [a for t in day.teams for a in t.agents]
    teams = [t.team_id for t in day.teams for _ in t.agents]
    async def fill(share: list[str]) -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("SET synchronous_commit = off")
            for period in share:
                await conn.execute("SELECT metric_make_partition($1)", period)
                count = first_month if period == periods[0] else rest
                start = datetime.fromisoformat(period + "-01T00:00:00+00:00")
                await conn.execute(_HISTORY, count, period, start, agents, teams, len(agents),
                                   [d.name for d in DEFAULT_SCHEME.metrics])
                await conn.execute(_HISTORY_TOTALS, period)
                log(f"ingest: history {period}: {count:,} samples")
        finally:
            await conn.close()

    await asyncio.gather(fill(periods[0::2]), fill(periods[1::2]))
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM ANALYZE metric_sample")
        await conn.execute("VACUUM ANALYZE metric_total")
        # Write the history's pages out now, so the measured run does not pay for them.
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return periods


async def _archive_against_copy(url: str, period: str, folder: Path) -> tuple[float, float, int]:
    """Time a plain COPY TO of a month's partition, then csperf's archive of it."""
    conn = await asyncpg.connect(url)
    try:
        await _init_connection(conn)
        table = metric_partitions.partition_name(period)
        plain = folder / "plain.csv"
        started = time.perf_counter()
        await conn.copy_from_table(table, output=str(plain), format="csv", header=True)
        copy_seconds = time.perf_counter() - started
        plain.unlink()
        started = time.perf_counter()
        archived = await metric_partitions.archive_month(conn, period, folder, datetime.now(UTC))
        archive_seconds = time.perf_counter() - started
        archived.file.unlink()
        return copy_seconds, archive_seconds, archived.samples
    finally:
        await conn.close()


@SUITE.benchmark("years", "20 million samples over 24 months stored: ingestion, KPI reads, archive")
async def years(ctx: BenchContext) -> list[Row]:
    """Play the same day into an empty store and into one holding 24 months of samples."""
    day: Day = make_day(prefix="b-", consultations_per_agent=ctx.scaled(120, 25))
    total, first_month = int(ctx.scaled(20_000_000, 1_000_000)), int(ctx.scaled(1_000_000, 100_000))
    # Each store's day starts on a quiet machine: a suite waits for quiet once, at its start,
    # and the full store's day comes minutes later, after its history is written, when other
    # work on the shared machine had often started (its rate then moved with that work, not
    # with the store: see the notes).
    async def quiet() -> float:
        return await ctx.wait_for_quiet(30)

    async with ctx.fresh_database("csperf_bench_ingest") as url:
        empty = await _csperf_run(asyncpg_dsn(url), day, settle=quiet)
    ctx.log(f"ingest: empty store {day.sent / empty.elapsed:,.0f} samples/s")
    async with ctx.fresh_database("csperf_bench_ingest") as url:
        url = asyncpg_dsn(url)
        periods: list[str] = []

        async def history() -> None:
            started = time.perf_counter()
            periods.extend(await _history(url, day, total, first_month, ctx.log))
            ctx.log(f"ingest: {total:,} samples stored in {time.perf_counter() - started:.0f} s")

        full = await _csperf_run(url, day, before=history, settle=quiet)
        ctx.log(f"ingest: full store {day.sent / full.elapsed:,.0f} samples/s")
        with tempfile.TemporaryDirectory(prefix="csperf-archive-") as folder:
            copy_s, archive_s, archived = await _archive_against_copy(url, periods[0],
                                                                      Path(folder))
    empty_rate, full_rate = day.sent / empty.elapsed, day.sent / full.elapsed
    empty_p99 = percentile(empty.monitor.reads, 99) * 1000
    full_p99 = percentile(full.monitor.reads, 99) * 1000
    exact = empty.fresh == full.fresh == len(day.rows)
    return [
        compared(
            f"HTTP ingestion with {total:,} samples stored (24 months)", full_rate, "samples/s",
            baseline="the same day into an empty store", baseline_figure=empty_rate,
            at_least=0.80,
            notes=f"the same {day.sent:,} samples; read-your-writes totals"
            f" {'exact' if exact else 'WRONG'} in both ({full.fresh:,} and {empty.fresh:,} of"
            f" {len(day.rows):,}). CPU per sample (steadier than the rate on a shared machine):"
            f" service {full.cpu_service / day.sent * 1e6:.1f} µs against"
            f" {empty.cpu_service / day.sent * 1e6:.1f} µs, PostgreSQL"
            f" {full.cpu_postgres / day.sent * 1e6:.1f} µs against"
            f" {empty.cpu_postgres / day.sent * 1e6:.1f} µs.",
        ),
        Row(
            name=f"KPI read p99 under load with {total:,} samples stored", figure=full_p99,
            unit="ms", baseline="the same reads on an empty store", baseline_figure=empty_p99,
            ratio=full_p99 / empty_p99 if empty_p99 else float("nan"),
            target="<= 1.5x baseline",
            met=full_p99 <= 1.5 * empty_p99,
            notes=f"GET /v1/agents/{{id}}/kpis every 20 ms during ingestion: p50"
            f" {percentile(full.monitor.reads, 50) * 1000:.1f} ms against"
            f" {percentile(empty.monitor.reads, 50) * 1000:.1f} ms"
            f" ({len(full.monitor.reads)} and {len(empty.monitor.reads)} reads).",
        ),
        compared(
            f"csperf metrics archive of one month ({archived:,} samples)",
            archived / archive_s, "samples/s",
            baseline="plain COPY ... TO a file of the same partition",
            baseline_figure=archived / copy_s, at_least=0.25,
            notes=f"archive {archive_s:.1f} s (wait for writers, COPY through gzip level 1 and"
            f" sha256, count check, quarantine marks, DROP) against COPY {copy_s:.1f} s.",
        ),
    ]

"""Metric samples and their quarantine: append-only storage keyed by (source, sample id).

Why samples are not events. Chat and monitoring software sends tens of thousands of samples a
second at peak. As events, each would be a JSONB row with a stream, a version check and an
event id, read and decoded by every projection that follows the global feed; the log that
holds the audit trail of decisions would be ninety-nine percent telemetry. Samples therefore
go to ``metric_sample``, a table of their own that is just as append-only (a trigger refuses
UPDATE and DELETE), partitioned by month (migration 0006) and written in set-based
statements: a batch is copied into a per-connection staging table, one statement share-locks
the cycles it can fall in, and one places, judges and stores it and appends its KPI totals as
delta rows (service/projections/metric_totals.py), so a read after the commit includes it.

Exactly once. ``(sample_id, source, period)`` is the primary key (a partitioned table's key
holds its partition column; a sample's month follows from what it says, so a resent sample
lands in the same month; the id leads, migration 0013) and inserts say
``ON CONFLICT DO NOTHING``: a sample sent twice, in any batch, concurrently or a year later, is
stored once. Rows are inserted in key order so two overlapping batches wait for each other
instead of deadlocking.

Nothing lost. A well-formed sample that cannot be used is kept in ``metric_quarantine`` with
its reason, to be listed and replayed; re-sending it once it has become usable works too.

Late samples. A batch takes a shared advisory lock on the stream of each cycle it touches
before reading the cycle's status, the lock that cycle commands hold exclusively while they
append: no sample is accepted into a month once its close has committed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.domain import directory as d
from service.domain import metrics as m
from service.domain import team_metrics as tm
from service.domain.cycle import cycle_stream
from service.domain.events import decode
from service.domain.ids import ID_MAX
from service.domain.kpis import COUNT_UNIT
from service.store import cursors, team_metrics
from service.store.applied import applied, newest_events

#: The cycle events that set its status, and the status each sets.
CYCLE_STATUS_EVENTS: dict[str, str] = {
    "CycleOpened": "open",
    "CycleClosed": "closed",
    "CyclePublished": "published",
    "CycleReopened": "open",
}
#: Those events' types as an SQL list: the event_cycle_status index's (migration 0003), which
#: a query must name to use it.
CYCLE_STATUS_TYPES = "(" + ", ".join(f"'{t}'" for t in CYCLE_STATUS_EVENTS) + ")"


def cycle_status_sql(team: str, period: str) -> str:
    """Return SQL for the type of a month's latest status event (NULL: no cycle) by the
    event_cycle_status index, given SQL for its team and its period (code, never values)."""
    return f"""(SELECT e.type FROM event e
            WHERE e.stream_id = 'cycle:' || {team} || ':' || {period}
              AND e.type IN {CYCLE_STATUS_TYPES}
            ORDER BY e.version DESC LIMIT 1)"""


@dataclass(frozen=True, slots=True)
class Directory:
    """The agents of a batch with their team histories, and their teams' time zones."""

    agents: dict[str, d.Agent]
    zones: dict[str, ZoneInfo]


# -- the directory, as of now ------------------------------------------------------------------


# One round trip: whether the directory read model has applied every committed agent and team
# event (the newest of each type is one backward probe of event_type_order however long the
# log), and the batch's agents' memberships with their teams' time zones.
_DIRECTORY = f"""
WITH newest AS (
{newest_events("agent", "team")}
), fresh AS (SELECT {applied("directory")} AS ok)
SELECT m.agent_id, m.team_id, m.since, m.until, t.timezone
FROM agent_memberships m JOIN teams t ON t.team_id = m.team_id
WHERE (SELECT ok FROM fresh) AND m.agent_id = ANY($1::text[])
ORDER BY m.agent_id, m.since
"""


async def _from_streams(
    conn: asyncpg.Connection, stream_ids: list[str]
) -> dict[str, list[Any]]:
    rows = await conn.fetch(
        "SELECT stream_id, type, schema_version, data FROM event"
        " WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, version",
        stream_ids,
    )
    events: dict[str, list[Any]] = {}
    for r in rows:
        events.setdefault(r["stream_id"], []).append(
            decode(r["type"], r["schema_version"], r["data"])
        )
    return events


async def _from_read_model(
    conn: asyncpg.Connection, agent_ids: list[str]
) -> tuple[dict[str, d.Agent], dict[str, str]]:
    try:
        rows = await conn.fetch(_DIRECTORY, agent_ids)
    except asyncpg.UndefinedTableError:
        return {}, {}  # the directory projection has not started yet
    histories: dict[str, list[d.Membership]] = {}
    zones: dict[str, str] = {}
    for r in rows:
        histories.setdefault(r["agent_id"], []).append(
            d.Membership(r["team_id"], r["since"], r["until"])
        )
        zones[r["team_id"]] = r["timezone"]
    agents = {
        agent_id: d.Agent(agent_id, "", history[-1].team_id, None, tuple(history))
        for agent_id, history in histories.items()
    }
    return agents, zones


async def directory(conn: asyncpg.Connection, agent_ids: Collection[str]) -> Directory:
    """Load the team histories of agents and their teams' time zones, in bulk.

    The directory read model answers when it has applied every committed directory change (a
    transfer a moment ago must move the very next samples); agents it does not show, or all
    of them when it lags, are read from their streams.
    """
    wanted = sorted(set(agent_ids))
    if not wanted:
        return Directory({}, {})
    agents, zone_names = await _from_read_model(conn, wanted)
    missing = [a for a in wanted if a not in agents]
    if missing:
        streams = await _from_streams(conn, [d.agent_stream(a) for a in missing])
        for events in streams.values():
            state: d.Agent | None = None
            for e in events:
                state = d.evolve_agent(state, e)
            if state is not None:
                agents[state.agent_id] = state
    teams_missing = sorted(
        {ms.team_id for a in agents.values() for ms in a.history} - zone_names.keys()
    )
    if teams_missing:
        streams = await _from_streams(conn, [d.team_stream(t) for t in teams_missing])
        for events in streams.values():
            team: d.Team | None = None
            for e in events:
                team = d.evolve_team(team, e)
            if team is not None:
                zone_names[team.team_id] = team.timezone
    zones = {team_id: ZoneInfo(name) for team_id, name in zone_names.items()}
    # An agent whose team cannot be found (never expected) is treated as unknown, not guessed.
    agents = {a: v for a, v in agents.items() if all(ms.team_id in zones for ms in v.history)}
    return Directory(agents, zones)


# -- cycles --------------------------------------------------------------------------------


async def lock_cycles(
    conn: asyncpg.Connection, months: Collection[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Share-lock the cycles of (team, period) pairs and return the status of those that exist.

    Call inside the batch's transaction, before its first write. Cycle commands hold the same
    lock exclusively while appending, so a close either committed before this read or waits
    for the batch to commit. Locks are taken in one order, so batches cannot deadlock.
    """
    keys = sorted(months)
    if not keys:
        return {}
    streams = [cycle_stream(team, period) for team, period in keys]
    await conn.execute(
        "SELECT pg_advisory_xact_lock_shared(hashtextextended(s, 0)) FROM unnest($1::text[]) s",
        streams,
    )
    rows = await conn.fetch(
        f"""
        SELECT DISTINCT ON (stream_id) stream_id, type FROM event
        WHERE stream_id = ANY($1::text[]) AND type IN {CYCLE_STATUS_TYPES}
        ORDER BY stream_id, version DESC
        """,
        streams,
    )
    by_stream = dict(zip(streams, keys, strict=True))
    return {by_stream[r["stream_id"]]: CYCLE_STATUS_EVENTS[r["type"]] for r in rows}


# -- samples -------------------------------------------------------------------------------

#: A connection's staging table: created once per connection (service/store/database.py), it
#: holds a batch for the length of its transaction and nothing after (ON COMMIT DELETE ROWS).
#: The time is copied as seconds since the Unix epoch (``datetime.timestamp()``, one C call)
#: and made a timestamptz here: asyncpg's encoding of an aware datetime cost more than the
#: rest of the row together. A double holds every microsecond of the years a sample may
#: have (before 2100: half its spacing is under a quarter of a microsecond), and
#: to_timestamp rounds to the nearest, so the time is stored exactly as sent.
#:
#: ``staged_at`` is never copied: its volatile default keeps COPY inserting one row at a time.
#: In its multi-insert mode PostgreSQL makes a tuple slot for each row it buffers (all of a
#: batch's thousand), each registered with the transaction's resource owner under the same
#: key, which it then searches linearly on every registration and release: quadratic in the
#: batch, 5 % of ingestion's PostgreSQL CPU (perf), while the inserts it batches go to local
#: memory anyway (a temporary table has no WAL to save). Interleaved batches on one
#: connection: 10.0 µs a sample against 10.65.
#:
#: The text columns are bounded by what the API accepts (``m.SAMPLE_ID_MAX``, ``m.METRIC_MAX``,
#: ``ID_MAX`` for sources, agents and teams, in characters), which bounds a row under
#: PostgreSQL's TOAST threshold even at four bytes a character: the table then has no TOAST
#: table. With one, every commit's truncation of the
#: stage also truncated the TOAST table and built its index again, empty: 0.33 ms of the
#: backend's CPU a 1,000-sample batch (1.79 against 1.46 ms for BEGIN, COPY and COMMIT,
#: interleaved on one server; perf put it at 3 % of ingestion's PostgreSQL CPU).
STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS metric_stage (
    idx         integer NOT NULL,
    source      varchar({ID_MAX}) NOT NULL,
    sample_id   varchar({m.SAMPLE_ID_MAX}) NOT NULL,
    agent_id    varchar({ID_MAX}) NOT NULL,
    metric      varchar({m.METRIC_MAX}) NOT NULL,
    value       double precision NOT NULL,
    epoch       double precision NOT NULL,
    occurred_at timestamptz GENERATED ALWAYS AS (to_timestamp(epoch)) STORED,
    team_id     varchar({ID_MAX}),
    period      varchar(7),
    staged_at   timestamptz DEFAULT clock_timestamp()
) ON COMMIT DELETE ROWS
"""
STAGE_COLUMNS = ("idx", "source", "sample_id", "agent_id", "metric", "value", "epoch")

#: A staged sample: (index in the batch, source, sample id, agent, metric, value, occurred_at
#: as ``datetime.timestamp()``).
Staged = tuple[int, str, str, str, str, float, float]

# The newest agent and team events, and whether the directory read model has applied them
# (see _DIRECTORY): ``mark`` changes with every committed directory change.
_NEWEST_DIRECTORY = f"""
newest AS (
{newest_events("agent", "team")}
), directory AS (
    SELECT {applied("directory")} AS fresh,
    -- '' when there is no directory event at all (a new installation): NULL would never
    -- equal itself in _SETTLE's moved check, and every batch would be placed again forever.
    coalesce((SELECT string_agg(tx_id || '.' || position, ',' ORDER BY tx_id, position)
              FROM newest), '') AS mark
)"""

# The (team, month) pairs a staged batch can fall in, with each month's bounds in the team's
# time zone and what ingestion needs of it: every team the batch's agents ever belonged to
# (``memberships``), for every month the caller names ($N: ``m.months_spanned`` of the batch's
# times, a day either side, which covers any time zone). A batch of one day is a month or two
# per team, so placing a sample is comparing its time with a few bounds instead of formatting
# it in its team's time zone, and the locks, the cycles' status and the declared metrics are
# those of these few pairs. The months come from the caller rather than from a span of the
# stage: the planner then knows how few they are (a generated series counts as a thousand rows
# to it, which sized every join after it as if the batch were huge).
def _months(periods: str) -> str:
    return f"""months AS MATERIALIZED (  -- bounds and status computed once per pair
    SELECT k.team_id, g.period,
           (g.period || '-01')::timestamp AT TIME ZONE k.timezone AS starts,
           ((g.period || '-01')::timestamp + interval '1 month') AT TIME ZONE k.timezone
               AS ends,
           {cycle_status_sql("k.team_id", "g.period")} AS status,
           {_LIVE.format(period="g.period")} AS live
    FROM (SELECT DISTINCT team_id, timezone FROM memberships) k
    CROSS JOIN unnest({periods}::text[]) AS g(period)
)"""


# Whether a month has a live partition (migration 0007).
_LIVE = """EXISTS (SELECT 1 FROM metric_partition p
                   WHERE p.period = {period} AND p.state = 'live')"""


def text_array(values: Sequence[str]) -> str:
    """Return strings in the text form of a PostgreSQL text[], for a ``$n::text::text[]``
    parameter (in a scalar subquery where a row filter would parse it again for every row).

    asyncpg encodes an array at about 0.45 µs an element (service/store/binary_copy.py says
    why); a batch sent its agents twice and its declared metrics as four arrays, some 600
    elements in the benchmark's day, where one string is one ``join``. Each element is
    quoted, so a comma, a brace or NULL is only text; a backslash or a quote is escaped.
    """
    if not values:
        return "{}"
    text = "".join(values)
    if "\\" in text or '"' in text:
        values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
    return '{"' + '","'.join(values) + '"}'


def bool_array(values: Sequence[bool]) -> str:
    """Return booleans in the text form of a PostgreSQL boolean[] (see ``text_array``)."""
    return "{" + ",".join(["t" if v else "f" for v in values]) + "}"


def _memberships(agents: str) -> str:
    """Return the ``memberships`` CTE: the memberships of the agents named by the SQL array
    ``agents`` (the batch's), with their teams' time zones."""
    return f"""memberships AS (
    SELECT m.agent_id, m.team_id, m.since, m.until, t.timezone,
           m.since = min(m.since) OVER (PARTITION BY m.agent_id) AS first
    FROM agent_memberships m JOIN teams t ON t.team_id = m.team_id
    WHERE m.agent_id = ANY({agents}::text[])
)"""


# Share-locks, in one order, the cycles the staged samples can fall in (``pairs``: the batch's
# teams and months, a superset of the placement _SETTLE makes). Cycle commands hold the same
# locks exclusively while appending, so a close either committed before _SETTLE reads the
# cycles' status, or waits for this batch (see lock_cycles). Only when the directory read
# model is fresh; says so, with its mark, and names the (team, month) pairs it locked. $1:
# the batch's agents; $2: its months.
#
# In the same round trip, what those pairs' schemes declare (team_metrics.lookup_sql), read
# in this statement's snapshot, taken before its locks: a cycle opened while the batch waited
# for them is not seen (its month is judged by the team's latest scheme), so _SETTLE, which
# reads after the locks, counts the pairs' cycles begun again and places again when they
# differ.
#
# It also tells PostgreSQL to use the generic plans of the statements that follow in the
# batch's transaction (a set_config(..., true) lasts until the transaction ends or is set
# again): up to the storing statement, which sets the configured mode back when it refused
# nothing, else up to the look-up of refused samples that follows (_STORED), which does. What
# a replay's transaction runs after them is planned for its values. The storing
# statement (_SETTLE) was otherwise planned again for every batch, its cost estimated with its
# values being lower than its generic plan's: a tenth of ingestion's PostgreSQL CPU during the
# benchmark (perf), for the same plan every time. Its plan does not depend on the values: the
# stage is a table PostgreSQL never analyses (it counts at least ten pages of it, about 500
# rows), and every join is on the few slots, months and declared metrics of a batch.
_PLACE = f"""
WITH {_NEWEST_DIRECTORY}, {_memberships("(SELECT $1::text::text[])")}, pairs AS (
    SELECT t.team_id, g.period
    FROM (SELECT DISTINCT team_id FROM memberships) t CROSS JOIN unnest($2::text[]) AS g(period)
)
SELECT d.fresh, d.mark, k.cycles, k.teams, k.periods, l.*,
       set_config('plan_cache_mode', 'force_generic_plan', true) AS plans
FROM directory d
CROSS JOIN LATERAL (
    SELECT count(pg_advisory_xact_lock_shared(hashtextextended(
               'cycle:' || c.team_id || ':' || c.period, 0))) AS cycles,
           array_agg(c.team_id) AS teams, array_agg(c.period) AS periods
    FROM (SELECT * FROM pairs WHERE d.fresh ORDER BY 1, 2) c) k
CROSS JOIN ({team_metrics.lookup_sql(
    "ARRAY(SELECT DISTINCT team_id FROM pairs)",
    f"array_append($2::text[], '{tm.ANY_MONTH}')",
    "ARRAY(SELECT 'cycle:' || team_id || ':' || period FROM pairs)")}) l
"""

# Places each staged sample through the directory read model: the team the agent was in when
# it occurred (the membership it falls in; before the first one, the first team: the
# directory's rule, service/domain/directory.py team_at), and that team's month in its time
# zone (the ``months`` bounds it falls between). Each membership is cut at those bounds into
# ``slots`` (a few per agent), so a sample is placed by one join on its agent, with its
# month's cycle status and partition state along. $6: the mark place() returned (nothing is
# written when the directory changed since, or when the months have more cycles than
# place() saw, $9: the caller places again); $7: the agents, $8: the months, as given to
# place().
_PLACED_BY_DIRECTORY = f"""
{_NEWEST_DIRECTORY}, {_memberships("(SELECT $7::text::text[])")}, {_months("$8")}, moved AS (
    SELECT $6::text IS DISTINCT FROM (SELECT mark FROM directory)
           -- the months' cycles begun, as place() counted them (team_metrics.lookup_sql)
           OR $9::bigint <> (SELECT count(*) FROM event e
                             WHERE e.version = 1 AND e.stream_id IN (
                                 SELECT 'cycle:' || team_id || ':' || period FROM months))
           AS yes
), slots AS MATERIALIZED (
    SELECT x.* FROM (
        SELECT ms.agent_id, ms.team_id, r.period, r.status, r.live,
               CASE WHEN ms.first THEN r.starts ELSE greatest(ms.since, r.starts) END AS lo,
               CASE WHEN ms.until IS NULL THEN r.ends ELSE least(ms.until, r.ends) END AS hi
        FROM memberships ms JOIN months r ON r.team_id = ms.team_id
    ) x
    WHERE x.lo < x.hi
), placed AS (
    SELECT s.idx, s.source, s.sample_id, s.agent_id, s.metric, s.value, s.occurred_at,
           x.team_id, x.period, x.status, x.live
    FROM metric_stage s
    LEFT JOIN slots x
           ON x.agent_id = s.agent_id AND x.lo <= s.occurred_at AND s.occurred_at < x.hi
)"""

# The staged samples as place_as() placed them (from the agents' and teams' streams, when the
# directory read model lags), with their months' cycle status and partition state.
_PLACED_BY_HAND = f"""
moved AS (SELECT false AS yes), months AS MATERIALIZED (
    SELECT k.team_id, k.period,
           {cycle_status_sql("k.team_id", "k.period")} AS status,
           {_LIVE.format(period="k.period")} AS live
    FROM (SELECT DISTINCT team_id, period FROM metric_stage WHERE team_id IS NOT NULL) k
), placed AS (
    SELECT s.idx, s.source, s.sample_id, s.agent_id, s.metric, s.value, s.occurred_at,
           s.team_id, s.period, c.status, c.live
    FROM metric_stage s
    LEFT JOIN months c ON c.team_id = s.team_id AND c.period = s.period
)"""


def _settle(placing: str) -> str:
    """Return the statement that judges and stores the ``placed`` samples of ``placing``.

    Judges each placed sample (a plausible time, the rule service/domain/metrics.py ``check``
    words, judged here where it costs nothing; a known agent; a metric its team's scheme
    declares for that month, given as $2-$5 by the caller from service/store/team_metrics.py,
    and a whole number when its unit is a count; an open month; a month with a live partition)
    and, in the same statement, stores the usable ones once each (in key order, bytewise:
    overlapping batches wait, never deadlock) and appends their totals and feed arrivals as
    delta rows, from one grouping of what was stored. Answers one row with the count stored,
    then one per rejection. (Whether a refused sample is stored already is a query of its
    own, only for a batch with a refusal: in this statement it would open every month's
    partition on every batch.) $1: now.
    """
    return f"""
WITH {placing.strip()}, accepts AS (
    SELECT * FROM unnest($2::text::text[], $3::text::text[], $4::text::text[],
                         $5::text::boolean[])
                  AS a(team_id, period, metric, whole)
), judged AS (
    SELECT s.*,
           -- Which metrics a sample may carry is its team's scheme's say (issue 19): an
           -- unknown agent's sample has no team, so it is unknown_agent first.
           CASE WHEN s.occurred_at > $1::timestamptz + interval
                     '{int(m.MAX_FUTURE.total_seconds())} s' THEN '{m.IN_FUTURE}'
                WHEN s.occurred_at < '{m.EARLIEST.isoformat()}'::timestamptz
                     THEN '{m.TOO_OLD}'
                WHEN s.team_id IS NULL THEN '{m.UNKNOWN_AGENT}'
                WHEN k.metric IS NULL THEN '{m.UNKNOWN_METRIC}'
                WHEN k.whole AND s.value <> trunc(s.value) THEN '{m.FRACTIONAL_COUNT}'
                WHEN s.status IN ('CycleClosed', 'CyclePublished') THEN '{m.PERIOD_CLOSED}'
                WHEN NOT s.live THEN '{m.PERIOD_UNAVAILABLE}'
           END AS reason
    FROM placed s
    LEFT JOIN accepts k
           ON k.team_id = s.team_id AND k.period = s.period AND k.metric = s.metric
), stored AS (
    INSERT INTO metric_sample (source, sample_id, agent_id, team_id, period, metric, value,
                               occurred_at, received_at)
    SELECT source, sample_id, agent_id, team_id, period, metric, value, occurred_at, $1
    FROM judged WHERE reason IS NULL AND NOT (SELECT yes FROM moved)
    ORDER BY sample_id COLLATE "C", source COLLATE "C"
    ON CONFLICT DO NOTHING
    RETURNING source, agent_id, team_id, period, metric, value, occurred_at
), grouped AS MATERIALIZED (
    SELECT team_id, period, agent_id, metric, source,
           -- The exact sum: whole values as bigints, the rest as numerics. A double becomes a
           -- numeric by being printed to 15 digits and parsed back, 0.5 µs a value; a whole
           -- one (at most m.MAX_VALUE) becomes the same number as a bigint, whose sum is exact
           -- too and costs a tenth of that. Same value, same scale as sum(value::numeric).
           coalesce(sum(value::bigint) FILTER (WHERE value = trunc(value)), 0)
           + coalesce(sum(value::numeric) FILTER (WHERE value <> trunc(value)), 0) AS total,
           count(*) AS samples, max(occurred_at) AS last_occurred_at
    FROM stored GROUP BY team_id, period, agent_id, metric, source
), totals AS (
    INSERT INTO metric_total_delta (team_id, period, agent_id, metric, total, observations,
                                    updated_at)
    SELECT team_id, period, agent_id, metric, total, samples, $1 FROM grouped
), arrivals AS (
    INSERT INTO metric_arrival_delta (team_id, metric, source, last_received_at,
                                      last_occurred_at, samples)
    SELECT team_id, metric, source, $1, max(last_occurred_at), sum(samples)
    FROM grouped GROUP BY team_id, metric, source
)
SELECT NULL::integer AS idx, NULL::text AS reason, NULL::text AS status,
       NULL::text AS team_id, NULL::text AS period,
       (SELECT coalesce(sum(samples), 0) FROM grouped)::bigint AS accepted,
       (SELECT yes FROM moved) AS moved,
       -- The generic plans _PLACE asked for end here when nothing was refused; a refusal is
       -- looked up next (_STORED), in a generic plan, which ends them.
       CASE WHEN NOT EXISTS (SELECT FROM judged WHERE reason IS NOT NULL)
            THEN set_config('plan_cache_mode', NULL, true) END AS plans
UNION ALL
SELECT j.idx, j.reason, j.status, j.team_id, j.period, NULL, NULL, NULL
FROM judged j
WHERE j.reason IS NOT NULL AND NOT (SELECT yes FROM moved)
"""


_SETTLE = _settle(_PLACED_BY_DIRECTORY)
_SETTLE_AS_PLACED = _settle(_PLACED_BY_HAND)

_PLACE_BY_HAND = """
UPDATE metric_stage s SET team_id = p.team_id, period = p.period
FROM unnest($1::integer[], $2::text[], $3::text[]) AS p(idx, team_id, period)
WHERE s.idx = p.idx
"""


@dataclass(frozen=True, slots=True)
class Refused:
    """A staged sample the database refused: its index in the batch, the reason, its cycle's
    status event, and where it was placed (team and month, when known)."""

    index: int
    reason: str
    status: str | None
    team_id: str | None
    period: str | None


@dataclass(frozen=True, slots=True)
class Judged:
    """What the database made of a staged batch: how many were stored, and the rejections;
    ``moved``: nothing was written, the directory changed since place() (place again)."""

    accepted: int
    rejected: list[Refused]
    moved: bool = False


# The COPY that stages a batch, and the columns whose types asyncpg encodes its rows by (what
# ``copy_records_to_table`` would send; the statement is asyncpg's cached one).
_COPY_STAGE = f"COPY metric_stage ({', '.join(STAGE_COLUMNS)}) FROM STDIN (FORMAT binary)"
_STAGE_TYPES = f"SELECT {', '.join(STAGE_COLUMNS)} FROM metric_stage LIMIT 1"


async def stage(conn: asyncpg.Connection, rows: Sequence[Staged]) -> None:
    """Copy a batch's checked samples into the connection's staging table; on a connection
    outside a transaction, begin the batch's (``Database.transaction_begun_by_work``).

    The BEGIN goes in the COPY's own query (``BEGIN; COPY ...``: PostgreSQL runs the BEGIN,
    then takes the rows), saving a batch the round trip of asyncpg's BEGIN: 0.1-0.3 ms of
    the service's CPU a round trip under the benchmark's load. asyncpg has no public way to
    send a statement before its COPY, so this is ``copy_records_to_table``'s own last step
    with that query (tests/integration/test_metric_ingest.py pins the behaviour).
    """
    copy = _COPY_STAGE if conn.is_in_transaction() else "BEGIN; " + _COPY_STAGE
    types = await conn._prepare(_STAGE_TYPES, use_cache=True)
    await conn._protocol.copy_in(copy, None, None, rows, types._state, None)


@dataclass(frozen=True, slots=True)
class Placed:
    """What place() found: the directory's mark for settle() (None when the directory read
    model lags: call place_by_hand), the (team, period) pairs whose cycles it locked, what
    each of them accepts (None when the read model of declared metrics cannot say: call
    team_metrics.from_streams) and how many of them had a cycle, for settle()."""

    mark: str | None
    pairs: set[tuple[str, str]]
    accepts: dict[tuple[str, str], dict[str, tm.Declared]] | None
    cycles: int


async def place(conn: asyncpg.Connection, agents: Sequence[str], months: Sequence[str]
                ) -> Placed:
    """Share-lock the cycles the staged samples can fall in (``agents``: the batch's,
    ``months``: ``m.months_spanned`` of its times) and look up what they accept."""
    row = await conn.fetchrow(_PLACE, text_array(agents), months)
    if not row["fresh"]:
        return Placed(None, set(), None, 0)
    pairs = set(zip(row["teams"] or (), row["periods"] or (), strict=True))
    return Placed(row["mark"], pairs, team_metrics.accepted(row, pairs),
                  len(row["opened_cycles"] or ()))


async def place_by_hand(conn: asyncpg.Connection, staged: Sequence[Staged]
                        ) -> set[tuple[str, str]]:
    """Place the staged samples from the agents' and teams' streams; share-lock the cycles
    and return their (team, period) pairs."""
    found = await directory(conn, {r[3] for r in staged})
    placed: list[tuple[int, str, str]] = []
    for row in staged:
        sample = m.Sample(id=row[2], agent_id=row[3], metric=row[4], value=row[5],
                          occurred_at=datetime.fromtimestamp(row[6], UTC))
        where = m.place(sample, found.agents.get(row[3]), found.zones)
        if not isinstance(where, m.Rejection):
            placed.append((row[0], *where))
    pairs = {(team, period) for _, team, period in placed}
    await lock_cycles(conn, pairs)
    await place_as(conn, placed)
    return pairs


async def place_as(conn: asyncpg.Connection, placed: Sequence[tuple[int, str, str]]) -> None:
    """Place staged samples as told: (index in the batch, team, period); settle(mark=None)."""
    await conn.execute(_PLACE_BY_HAND, [p[0] for p in placed], [p[1] for p in placed],
                       [p[2] for p in placed])


async def settle(conn: asyncpg.Connection, received_at: datetime, mark: str | None,
                 accepts: Mapping[tuple[str, str], Mapping[str, tm.Declared]],
                 agents: Sequence[str] = (), months: Sequence[str] = (), cycles: int = 0
                 ) -> Judged:
    """Place (through the directory as place() saw it, given its mark, the same agents and
    months and the cycles it counted; or as placed by hand: mark None), judge and store the
    staged samples once each with their delta totals; ``accepts``: the metrics each (team,
    period) takes."""
    declared = [(team, period, metric, found.unit == COUNT_UNIT)
                for (team, period), metrics in accepts.items()
                for metric, found in metrics.items()]
    columns = (text_array([d[0] for d in declared]), text_array([d[1] for d in declared]),
               text_array([d[2] for d in declared]), bool_array([d[3] for d in declared]))
    if mark is None:
        rows = await conn.fetch(_SETTLE_AS_PLACED, received_at, *columns)
    else:
        rows = await conn.fetch(_SETTLE, received_at, *columns, mark, text_array(agents), months,
                                cycles)
    accepted = 0
    moved = False
    rejected = []
    for r in rows:
        if r["idx"] is None:
            accepted = r["accepted"]
            moved = r["moved"]
        else:
            rejected.append(Refused(r["idx"], r["reason"], r["status"], r["team_id"],
                                    r["period"]))
    return Judged(accepted, rejected, moved)


# Which of a batch's refused samples are stored already: each key looked up in every month's
# partition by the key index (the month is the key's last column), whatever the tables' sizes.
# It runs in the generic plan _PLACE asked for when the storing statement refused a sample
# (else in the configured mode), and ends the batch's generic plans (the setting's row, whose
# source is NULL). Written as `(source, sample_id) IN (unnest ...)`, it
# was planned again at every batch that refused a sample: a custom plan over every partition
# (16 in the benchmark, 40 with two years stored), 0.3-0.8 ms each, for a lookup of a few
# keys (pg_stat_statements: 202 plans in 193 calls, 161 ms of planning against 12 ms of
# execution); and a plan made for any number of keys, as the generic one of that form, hashed
# the keys and scanned every partition.
_STORED = """
SELECT k.source, k.sample_id
FROM unnest($1::text[], $2::text[]) AS k(source, sample_id)
CROSS JOIN LATERAL (SELECT FROM metric_sample s
                    WHERE s.sample_id = k.sample_id AND s.source = k.source LIMIT 1) found
UNION ALL
SELECT NULL, set_config('plan_cache_mode', NULL, true)
"""


async def stored(
    conn: asyncpg.Connection, keys: Collection[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Return which (source, sample id) pairs are already stored."""
    if not keys:
        return set()
    rows = await conn.fetch(_STORED, [s for s, _ in keys], [i for _, i in keys])
    return {(r["source"], r["sample_id"]) for r in rows if r["source"] is not None}


# -- quarantine ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kept:
    """A refused sample to keep, with its reason and, when known, its team and month."""

    source: str
    sample: m.Sample
    why: m.Rejection
    #: (team_id, period) the sample belongs to; None when its agent is unknown.
    where: tuple[str, str] | None = None


async def quarantine(
    conn: asyncpg.Connection,
    items: Sequence[Kept],
    received_at: datetime,
) -> None:
    """Keep rejected samples (a re-sent one updates its entry and counts the attempt)."""
    if not items:
        return
    ordered = sorted(items, key=lambda i: (i.source, i.sample["id"]))
    await conn.execute(
        """
        INSERT INTO metric_quarantine AS q (source, sample_id, raw, agent_id, metric, reason,
                                            detail, first_received_at, received_at, team_id,
                                            period)
        SELECT r.source, r.sample_id, r.raw, r.agent_id, r.metric, r.reason, r.detail, $8, $8,
               r.team_id, r.period
        FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::text[], $6::text[],
                    $7::text[], $9::text[], $10::text[])
             AS r(source, sample_id, raw, agent_id, metric, reason, detail, team_id, period)
        ON CONFLICT (source, sample_id) DO UPDATE
        SET raw = excluded.raw, agent_id = excluded.agent_id, metric = excluded.metric,
            reason = excluded.reason, detail = excluded.detail, status = 'quarantined',
            received_at = excluded.received_at, attempts = q.attempts + 1,
            team_id = excluded.team_id, period = excluded.period
        """,
        [i.source for i in ordered],
        [i.sample["id"] for i in ordered],
        [m.to_raw(i.sample) for i in ordered],
        [i.sample["agent_id"] for i in ordered],
        [i.sample["metric"] for i in ordered],
        [i.why.reason for i in ordered],
        [i.why.detail for i in ordered],
        received_at,
        [i.where[0] if i.where else None for i in ordered],
        [i.where[1] if i.where else None for i in ordered],
    )


@dataclass(frozen=True)
class QuarantineFilter:
    """Which quarantined samples to list or replay; None matches everything."""

    source: str | None = None
    agent_id: str | None = None
    reason: str | None = None
    status: str | None = "quarantined"
    sample_ids: Sequence[str] | None = None
    team_id: str | None = None
    period: str | None = None
    #: Only samples of these teams (a manager's); None for admins and readers.
    teams: Sequence[str] | None = None


#: Who resolved a quarantined sample that its source simply sent again once it was usable.
RESENT = "resent"

# A quarantined sample that was sent again once usable is stored without touching the
# quarantine (that would cost every batch a lookup); the listing sees it through the join.
_ENTRIES = """
SELECT q.source, q.sample_id, q.raw, q.agent_id, q.metric, q.reason, q.detail, q.team_id,
       q.period,
       CASE WHEN s.sample_id IS NULL THEN q.status ELSE 'accepted' END AS status,
       q.attempts, q.first_received_at, q.received_at,
       coalesce(q.replayed_at, s.received_at) AS replayed_at,
       CASE WHEN q.status = 'accepted' THEN q.resolved_by
            WHEN s.sample_id IS NOT NULL THEN 'resent' END AS resolved_by
FROM metric_quarantine q
LEFT JOIN metric_sample s ON s.source = q.source AND s.sample_id = q.sample_id
"""

_FILTER = """
    ($1::text IS NULL OR q.source = $1)
    AND ($2::text IS NULL OR q.agent_id = $2)
    AND ($3::text IS NULL OR q.reason = $3)
    AND ($4::text IS NULL OR (CASE WHEN s.sample_id IS NULL THEN q.status ELSE 'accepted' END)
                             = $4)
    AND ($5::text[] IS NULL OR q.sample_id = ANY($5::text[]))
    AND ($6::timestamptz IS NULL
         OR (q.first_received_at, q.source, q.sample_id) > ($6, $7::text, $8::text))
    AND ($9::text IS NULL OR q.team_id = $9)
    AND ($10::text IS NULL OR q.period = $10)
    AND ($11::text[] IS NULL OR q.team_id = ANY($11::text[]))
"""


def _filter_args(f: QuarantineFilter, after: tuple[datetime, str, str] | None) -> list[Any]:
    ids = list(f.sample_ids) if f.sample_ids is not None else None
    teams = list(f.teams) if f.teams is not None else None
    return [f.source, f.agent_id, f.reason, f.status, ids, *(after or (None, None, None)),
            f.team_id, f.period, teams]


def encode_after(row: asyncpg.Record | dict[str, Any]) -> str:
    """Return the opaque cursor just past a listed quarantine entry."""
    return cursors.pack_json(
        [row["first_received_at"].isoformat(), row["source"], row["sample_id"]])


def decode_after(text: str) -> tuple[datetime, str, str]:
    """Parse a listing cursor; raise ValueError when it is not one of ours."""
    try:
        when, source, sample_id = cursors.unpack_json(text)
        return datetime.fromisoformat(when), str(source), str(sample_id)
    except (TypeError, ValueError) as exc:
        raise ValueError("not a valid cursor") from exc


async def list_quarantine(
    conn: asyncpg.Connection,
    f: QuarantineFilter,
    limit: int,
    after: tuple[datetime, str, str] | None = None,
) -> list[asyncpg.Record]:
    """Return quarantine entries in arrival order, after a cursor."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        {_ENTRIES}
        WHERE {_FILTER}
        ORDER BY q.first_received_at, q.source, q.sample_id
        LIMIT $12
        """,
        *_filter_args(f, after), limit,
    )
    return rows


async def late_samples(conn: asyncpg.Connection, team_id: str, period: str
                       ) -> tuple[int, list[str], datetime | None]:
    """Count a closed month's samples kept because they came late: count, agents, latest."""
    row = await conn.fetchrow(
        f"""
        SELECT count(*) AS n, coalesce(array_agg(DISTINCT e.agent_id), '{{}}') AS agents,
               max(e.received_at) AS latest
        FROM ({_ENTRIES}
              WHERE q.team_id = $1 AND q.period = $2 AND q.reason = $3) e
        WHERE e.status = 'quarantined'
        """,
        team_id, period, m.PERIOD_CLOSED,
    )
    assert row is not None
    return row["n"], sorted(row["agents"]), row["latest"]


async def claim(
    conn: asyncpg.Connection,
    f: QuarantineFilter,
    limit: int,
    after: tuple[datetime, str, str] | None = None,
) -> list[asyncpg.Record]:
    """Return the next pending entries after a key, replays taking turns.

    Replays queue on one advisory lock instead of locking the entries' rows, so that every
    writer here takes its advisory locks (this one, then the cycles') before any row lock,
    which keeps ingestion, replays and cycle commands free of deadlocks. Entries whose sample
    was stored meanwhile are returned too, so the replay marks them.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('metric-replay', 0))")
    pending = replace(f, status=None)
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        {_ENTRIES}
        WHERE {_FILTER} AND q.status = 'quarantined'
        ORDER BY q.first_received_at, q.source, q.sample_id
        LIMIT $12
        """,
        *_filter_args(pending, after), limit,
    )
    return rows


async def resolve(
    conn: asyncpg.Connection, keys: Collection[tuple[str, str]], at: datetime, by: str
) -> None:
    """Mark entries as accepted: their samples are stored now."""
    if not keys:
        return
    await conn.execute(
        """
        UPDATE metric_quarantine SET status = 'accepted', replayed_at = $3, resolved_by = $4
        WHERE (source, sample_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
        """,
        [s for s, _ in keys], [i for _, i in keys], at, by,
    )


async def still_rejected(
    conn: asyncpg.Connection,
    items: Sequence[tuple[str, str, m.Rejection]],
    at: datetime,
) -> None:
    """Record a replay that found entries still unusable, with today's reason."""
    if not items:
        return
    await conn.execute(
        """
        UPDATE metric_quarantine q SET reason = r.reason, detail = r.detail, replayed_at = $5
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
             AS r(source, sample_id, reason, detail)
        WHERE q.source = r.source AND q.sample_id = r.sample_id
        """,
        [s for s, _, _ in items], [i for _, i, _ in items],
        [r.reason for _, _, r in items], [r.detail for _, _, r in items], at,
    )

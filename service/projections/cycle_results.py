"""cycle_results: cycles, evaluations, and the frozen rankings and scorecards of closed months.

Rankings and scorecards are stored as finished JSON documents, rendered once when the month
closes, so reading a published ranking is one indexed row and no computation.

Beside them, in long form for the reporting views (``service/store/reporting.py``), the
numbers ``service/domain/`` computed, so that no view restates a rule in SQL: each KPI of each
scorecard (``scorecard_kpis``, whatever KPIs the scheme declares; its label, unit, formula and
weight once per position and month in ``scorecard_kpi_definitions``), each evaluation's level, and
each month's rater calibration and self-vs-manager gaps (``service/domain/calibration.py``),
recomputed for the months a batch of evaluations touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import asyncpg
import orjson

from service.domain import calibration as cal
from service.domain import cycle as c
from service.domain.reports import KPI_DEFINITION, KPI_SCORE, ranking_document, stored_scorecards
from service.domain.scheme import Scheme
from service.domain.scheme_history import SchemePublished
from service.projections.base import Projection, Tables
from service.projections.decoded import LARGE, decoded
from service.store import binary_copy
from service.store.event_store import DataOnly, RecordedEvent
from service.store.reporting import CARD_KPI_FIELDS

#: A card's KPIs' columns: its card, then an array each of its KPIs' definitions and fields.
_KPI_COLUMNS = ("card", *CARD_KPI_FIELDS)
#: How each of a card's KPI fields is sent (the arrays' types), in ``KPI_SCORE`` order.
_Encoder = Callable[[Sequence[Any], Sequence[int]], list[bytes]]
_FLOATS: _Encoder = binary_copy.float8_arrays
_TEXTS: _Encoder = binary_copy.text_arrays
_ENCODER: dict[str, _Encoder] = {
    "value": _FLOATS, "target_source": _TEXTS, "target": _FLOATS, "floor": _FLOATS,
    "effective_weight": _FLOATS, "attainment": _FLOATS, "dropped": binary_copy.bool_arrays,
    "status": _TEXTS, "prorated_by": _FLOATS}
_KPI_ENCODERS = [_ENCODER[f] for f in KPI_SCORE]
#: A KPI definition's columns after its key and month: its position, its place on the
#: position's cards (the scheme's order), its name, then ``reports.KPI_DEFINITION``.
_DEFINITION_COLUMNS = ["position", "ordinal", "kpi", *KPI_DEFINITION]
#: The (team_id, period) pairs of two array parameters, $1 and $2.
_MONTHS = "SELECT * FROM unnest($1::text[], $2::text[])"


def _arrays(months: Iterable[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Return the parameters of _MONTHS: the team ids and the periods, in the same order."""
    pairs = list(months)
    return [team_id for team_id, _ in pairs], [period for _, period in pairs]


class CycleResults(Projection):
    """Everything GET needs about cycles, rankings and scorecards."""

    name = "cycle_results"
    # 3: rankings carry a revision, and publishing keeps the document compact
    # 4: fair months (not_ranked, unavailable_kpis, eligibility, KPI status)
    # 5: the domain's numbers in long form: scorecard_kpis, evaluation levels, calibration
    # 6: each scorecard KPI stored once, in scorecard_kpis (with its place and pro-rating);
    #    the documents hold the rest
    # 7: scorecard KPIs keyed by their card's number
    # 8: what a KPI's entry says alike on every card of a position and month (label, unit,
    #    formula, weight...) stored once, in scorecard_kpi_definitions
    # 9: a card's KPIs in one scorecard_kpis row of arrays, in the card's order, rather than
    #    a row per KPI
    version = 9
    stream_types = ("cycle", "scheme")
    data_only = DataOnly((), on_demand=LARGE)  # every event's data, a close's when not held
    tables = {
        "scheme_versions": """(
            scheme_id text NOT NULL,
            version   integer NOT NULL,
            scheme    jsonb NOT NULL,
            PRIMARY KEY (scheme_id, version)
        )""",
        "cycles": """(
            team_id        text NOT NULL,
            period         text NOT NULL,
            status         text NOT NULL,
            scheme_id      text NOT NULL,
            scheme_version integer NOT NULL,
            deadline       timestamptz NOT NULL,
            opened_at      timestamptz NOT NULL,
            closed_at      timestamptz,
            published_at   timestamptz,
            publications   integer NOT NULL DEFAULT 0,
            forced         boolean,
            evaluations    integer NOT NULL DEFAULT 0,
            PRIMARY KEY (team_id, period)
        )""",
        "evaluations": """(
            team_id      text NOT NULL,
            period       text NOT NULL,
            agent_id     text NOT NULL,
            rater_role   text NOT NULL,
            rater_id     text NOT NULL,
            revision     integer NOT NULL,
            submitted_at timestamptz NOT NULL,
            scores       jsonb NOT NULL,
            event        jsonb NOT NULL,
            -- service.domain.calibration.level: what rater calibration compares
            level        double precision,
            PRIMARY KEY (team_id, period, agent_id, rater_role, rater_id)
        )""",
        "rankings": """(
            team_id      text NOT NULL,
            period       text NOT NULL,
            status       text NOT NULL,
            published_at timestamptz,
            -- served as is: text, so a read copies bytes instead of re-serialising jsonb
            document     text NOT NULL,
            -- new on every write of the row: readers cache the document under it and send
            -- it as the ETag (see service/queries/documents.py)
            revision     uuid NOT NULL DEFAULT gen_random_uuid(),
            PRIMARY KEY (team_id, period)
        )""",
        "ranking_entries": """(
            team_id    text NOT NULL,
            period     text NOT NULL,
            agent_id   text NOT NULL,
            name       text NOT NULL,
            rank       integer,
            tied       boolean NOT NULL,
            place_from integer,
            place_to   integer,
            score      double precision,
            status     text NOT NULL,
            PRIMARY KEY (team_id, period, agent_id)
        )""",
        # A scorecard is its document and its KPIs in scorecard_kpis, put together by
        # service.domain.reports.scorecard (service/queries/results.py).
        "scorecards": """(
            team_id  text NOT NULL,
            period   text NOT NULL,
            agent_id text NOT NULL,
            status   text NOT NULL,
            document jsonb NOT NULL,
            -- the key of the card's KPIs in scorecard_kpis, numbered as cards are written
            card     bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            PRIMARY KEY (team_id, period, agent_id)
        )""",
        # What a KPI's entry says on every card of a position in a month, whatever the agent,
        # once per position and month: a month of 1,000 agents on 50 KPIs had these seven
        # columns alike in 50,000 scorecard_kpis rows, 18 columns each, whose COPY was the
        # largest statement of the close.
        "scorecard_kpi_definitions": """(
            kpi_def   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            team_id   text NOT NULL,
            period    text NOT NULL,
            position  text,
            -- the KPI's place on the position's cards (the scheme's order)
            ordinal   integer NOT NULL,
            kpi       text NOT NULL,
            kind      text NOT NULL,
            unit      text NOT NULL,
            direction text NOT NULL,
            label     text NOT NULL,
            formula   text,
            weight    double precision NOT NULL
        )""",
        # A card's KPIs, one row of arrays a card, each KPI at its place on the card (the
        # position's order): a month of 1,000 agents on 50 KPIs had a row per KPI, 50,000 of
        # them, whose COPY was the largest statement of the close. The reporting views and
        # the stored cards' reads unnest them (service.store.reporting.card_kpis). The rows
        # stay whole in the table (toast_tuple_target): 50 KPIs are some 4 kB, which
        # PostgreSQL would otherwise compress at close, card by card.
        "scorecard_kpis": """(
            card             bigint PRIMARY KEY,
            -- each KPI's definition on the card's position (scorecard_kpi_definitions)
            kpi_def          bigint[] NOT NULL,
            value            double precision[] NOT NULL,
            target_source    text[] NOT NULL,
            target           double precision[] NOT NULL,
            floor            double precision[] NOT NULL,
            effective_weight double precision[] NOT NULL,
            attainment       double precision[] NOT NULL,
            dropped          boolean[] NOT NULL,
            kpi_status       text[] NOT NULL,
            -- fair months: the share of the month target and floor were scaled by
            prorated_by      double precision[] NOT NULL
        ) WITH (toast_tuple_target = 8160)""",
        "rater_calibration": """(
            team_id              text NOT NULL,
            period               text NOT NULL,
            rater_id             text NOT NULL,
            rater_role           text NOT NULL,
            evaluations          integer NOT NULL,
            mean                 double precision,
            stddev               double precision,
            min                  double precision,
            max                  double precision,
            baseline_evaluations integer NOT NULL,
            baseline             double precision,
            deviation            double precision,
            flag                 text,
            reason               text NOT NULL,
            PRIMARY KEY (team_id, period, rater_id, rater_role)
        )""",
        "self_manager_gaps": """(
            team_id       text NOT NULL,
            period        text NOT NULL,
            agent_id      text NOT NULL,
            self_level    double precision,
            manager_level double precision,
            gap           double precision,
            flagged       boolean NOT NULL,
            PRIMARY KEY (team_id, period, agent_id)
        )""",
    }

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Apply each event; runs of evaluations go in one statement, closes render all."""
        evaluations: list[tuple[str, c.EvaluationSubmitted]] = []
        for recorded in events:
            e = decoded(recorded)
            if isinstance(e, c.EvaluationSubmitted):
                evaluations.append((recorded.stream_id, e))
                continue
            if evaluations:
                await self._evaluations(conn, tables, evaluations)
                evaluations = []
            if isinstance(e, SchemePublished):
                await conn.execute(
                    f"INSERT INTO {tables['scheme_versions']} VALUES ($1, $2, $3)"
                    " ON CONFLICT DO NOTHING",
                    e.scheme_id, e.version, e.scheme,
                )
            elif isinstance(e, c.CycleOpened):
                await conn.execute(
                    f"INSERT INTO {tables['cycles']} (team_id, period, status, scheme_id,"
                    " scheme_version, deadline, opened_at) VALUES ($1, $2, 'open', $3, $4, $5, $6)"
                    " ON CONFLICT DO NOTHING",
                    e.team_id, e.period, e.scheme_id, e.scheme_version, e.deadline, e.opened_at,
                )
            elif isinstance(e, c.CycleClosed):
                await self._closed(conn, tables, e)
            elif isinstance(e, c.CyclePublished):
                await self._set_status(conn, tables, e.team_id, e.period, "published", e)
            elif isinstance(e, c.CycleReopened):
                await self._reopened(conn, tables, e)
        if evaluations:
            await self._evaluations(conn, tables, evaluations)

    async def _evaluations(
        self, conn: asyncpg.Connection, tables: Tables,
        evaluations: Sequence[tuple[str, c.EvaluationSubmitted]],
    ) -> None:
        """Store a run of evaluations, the counts of their months, the months' rater
        calibration (every rater's baseline moves with any evaluation) and the gaps of their
        agents (a gap depends on its agent's evaluations alone)."""
        # Two statements for the whole batch, never one per month or per kind of row: a batch
        # holds its transaction (and so every projection's view of later events) while it
        # runs. The first reads the months' scales and the evaluations they hold; the batch's
        # are laid over those here, as the upsert lays them, so that the counts, the
        # calibration and the gaps are worked out before the second writes all of it.
        batch: dict[tuple[str, str], dict[tuple[str, str, str], c.EvaluationSubmitted]] = {}
        for stream_id, e in evaluations:
            _, team_id, period = stream_id.split(":", 2)
            # A revision later in the batch replaces an earlier one, as in the table.
            batch.setdefault((team_id, period), {})[(e.agent_id, e.rater_role, e.rater_id)] = e
        months = _arrays(batch)
        scales: dict[tuple[str, str], float] = {}
        held: dict[tuple[str, str], dict[tuple[str, str, str], cal.Level | None]] = {
            month: {} for month in batch}
        # The scale is taken once a month (MATERIALIZED), not once an evaluation row: the
        # planner otherwise joins the scheme to every row and decompresses its document (2 kB)
        # for each, 7 ms of a batch over 32 months of 8 agents against 0.5-0.7 ms.
        for r in await conn.fetch(
            "WITH m AS MATERIALIZED ("
            " SELECT m.team_id, m.period,"
            " coalesce((v.scheme ->> 'scale_max')::float8, 100) AS scale_max"
            f" FROM ({_MONTHS}) AS m (team_id, period)"
            f" LEFT JOIN {tables['cycles']} c ON (c.team_id, c.period) = (m.team_id, m.period)"
            f" LEFT JOIN {tables['scheme_versions']} v ON v.scheme_id = c.scheme_id"
            " AND v.version = c.scheme_version)"
            " SELECT m.team_id, m.period, m.scale_max, e.agent_id, e.rater_role, e.rater_id,"
            f" e.submitted_at, e.level FROM m LEFT JOIN {tables['evaluations']} e"
            " ON (e.team_id, e.period) = (m.team_id, m.period)", *months,
        ):
            month = (r["team_id"], r["period"])
            scales[month] = float(r["scale_max"])
            if r["agent_id"] is not None:
                held[month][(r["agent_id"], r["rater_role"], r["rater_id"])] = (
                    None if r["level"] is None else cal.Level(
                        r["agent_id"], r["rater_role"], r["rater_id"], r["submitted_at"],
                        r["level"]))
        # The rows go as one JSON document a table, read back by json_to_recordset: asyncpg
        # encodes an array parameter at about a microsecond an element (an isinstance check
        # against an abstract class each), which made arrays of every column cost the process
        # more than the statements they replaced.
        written: list[dict[str, Any]] = []
        for (team_id, period), revised in batch.items():
            for (agent_id, role, rater_id), e in revised.items():
                level = cal.level(e, scales[(team_id, period)])
                written.append({"team_id": team_id, "period": period, "agent_id": agent_id,
                                "rater_role": role, "rater_id": rater_id,
                                "revision": e.revision, "submitted_at": e.submitted_at,
                                "scores": e.scores, "event": e.model_dump(mode="json"),
                                "level": level})
                held[(team_id, period)][(agent_id, role, rater_id)] = (
                    None if level is None
                    else cal.Level(agent_id, role, rater_id, e.submitted_at, level))
        counts: list[dict[str, Any]] = []
        raters: list[dict[str, Any]] = []
        gaps: list[dict[str, Any]] = []
        for (team_id, period), rows in held.items():
            keys = {"team_id": team_id, "period": period}
            counts.append({**keys, "count": len(rows)})
            levels = [x for x in rows.values() if x is not None]
            raters.extend({**keys, **r} for r in cal.rater_statistics(levels))
            gaps.extend({**keys, **cal.self_manager_gap(levels, agent)}
                        for agent in sorted({a for a, _, _ in batch[(team_id, period)]}))
        await conn.execute(
            f"""
            WITH revised AS (
                INSERT INTO {tables['evaluations']}
                SELECT * FROM json_to_recordset($1::json) AS r (team_id text, period text,
                    agent_id text, rater_role text, rater_id text, revision integer,
                    submitted_at timestamptz, scores jsonb, event jsonb, level float8)
                ON CONFLICT (team_id, period, agent_id, rater_role, rater_id) DO UPDATE SET
                    revision = EXCLUDED.revision, submitted_at = EXCLUDED.submitted_at,
                    scores = EXCLUDED.scores, event = EXCLUDED.event, level = EXCLUDED.level
            ), months AS (
                SELECT * FROM json_to_recordset($2::json)
                    AS m (team_id text, period text, count integer)
            ), counted AS (
                UPDATE {tables['cycles']} AS c SET evaluations = m.count FROM months m
                WHERE c.team_id = m.team_id AND c.period = m.period
            ), calibration AS (
                SELECT * FROM json_to_recordset($3::json) AS r (team_id text, period text,
                    rater_id text, rater_role text, count integer, mean float8, stddev float8,
                    min float8, max float8, baseline_count integer, baseline float8,
                    deviation float8, flag text, reason text)
            ), gone AS (
                -- the months' raters no longer calibrated (the others are upserted below)
                DELETE FROM {tables['rater_calibration']} AS r
                WHERE (r.team_id, r.period) IN (SELECT team_id, period FROM months)
                  AND (r.team_id, r.period, r.rater_id, r.rater_role) NOT IN (
                      SELECT team_id, period, rater_id, rater_role FROM calibration)
            ), calibrated AS (
                INSERT INTO {tables['rater_calibration']} SELECT * FROM calibration
                ON CONFLICT (team_id, period, rater_id, rater_role) DO UPDATE SET
                    evaluations = EXCLUDED.evaluations, mean = EXCLUDED.mean,
                    stddev = EXCLUDED.stddev, min = EXCLUDED.min, max = EXCLUDED.max,
                    baseline_evaluations = EXCLUDED.baseline_evaluations,
                    baseline = EXCLUDED.baseline, deviation = EXCLUDED.deviation,
                    flag = EXCLUDED.flag, reason = EXCLUDED.reason
            )
            INSERT INTO {tables['self_manager_gaps']}
            SELECT team_id, period, agent_id, self, manager, gap, flag
            FROM json_to_recordset($4::json) AS g (team_id text, period text, agent_id text,
                self float8, manager float8, gap float8, flag boolean)
            ON CONFLICT (team_id, period, agent_id) DO UPDATE SET
                self_level = EXCLUDED.self_level, manager_level = EXCLUDED.manager_level,
                gap = EXCLUDED.gap, flagged = EXCLUDED.flagged
            """,
            written, counts, raters, gaps,
        )

    async def _closed(self, conn: asyncpg.Connection, tables: Tables, e: c.CycleClosed) -> None:
        cycle = await conn.fetchrow(
            f"SELECT scheme_id, scheme_version FROM {tables['cycles']}"
            " WHERE team_id = $1 AND period = $2",
            e.team_id, e.period,
        )
        scheme = Scheme.model_validate(await conn.fetchval(
            f"SELECT scheme FROM {tables['scheme_versions']} WHERE scheme_id = $1"
            " AND version = $2",
            cycle["scheme_id"], cycle["scheme_version"],
        ))
        await conn.execute(
            f"UPDATE {tables['cycles']} SET status = 'closed', closed_at = $3, forced = $4"
            " WHERE team_id = $1 AND period = $2",
            e.team_id, e.period, e.closed_at, e.forced,
        )
        evaluations: dict[str, list[c.EvaluationSubmitted]] = {}
        for row in await conn.fetch(
            f"SELECT event FROM {tables['evaluations']} WHERE team_id = $1 AND period = $2"
            " ORDER BY rater_role, rater_id",
            e.team_id, e.period,
        ):
            evaluation = c.EvaluationSubmitted.model_validate(row["event"])
            evaluations.setdefault(evaluation.agent_id, []).append(evaluation)
        document = ranking_document(e.team_id, e.period, "closed", e.results, None)
        await conn.execute(
            f"""
            INSERT INTO {tables['rankings']} VALUES ($1, $2, 'closed', NULL, $3)
            ON CONFLICT (team_id, period) DO UPDATE SET status = 'closed',
                published_at = NULL, document = $3, revision = gen_random_uuid()
            """,
            e.team_id, e.period, orjson.dumps(document).decode(),
        )
        await conn.execute(
            f"DELETE FROM {tables['ranking_entries']} WHERE team_id = $1 AND period = $2",
            e.team_id, e.period,
        )
        await conn.executemany(
            f"INSERT INTO {tables['ranking_entries']} VALUES"
            " ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'closed')",
            [(e.team_id, e.period, r.agent_id, r.name, r.rank, r.tied,
              r.places[0] if r.places else None, r.places[1] if r.places else None,
              r.score.composite) for r in e.results],
        )
        await self._drop_scorecards(conn, tables, e.team_id, e.period)
        cards = stored_scorecards(e.team_id, e.period, "closed", e.results, scheme, evaluations)
        # One statement for the month's cards, numbered in the order written, so that their
        # KPIs below go in the order of their key.
        numbers = {r["agent_id"]: r["card"] for r in await conn.fetch(
            f"INSERT INTO {tables['scorecards']} (team_id, period, agent_id, status, document)"
            " SELECT $1, $2, agent_id, 'closed', document::jsonb"
            " FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS c(agent_id, document, n)"
            " ORDER BY n RETURNING agent_id, card",
            e.team_id, e.period, [card.document["agent_id"] for card in cards],
            [orjson.dumps(card.document).decode() for card in cards],
        )}
        # Each position's KPI definitions once, numbered in the scheme's order.
        definitions = {card.document["position"]: card.definitions for card in cards}
        rows = [(position, ordinal, *definition) for position, kpis in definitions.items()
                for ordinal, definition in enumerate(kpis)]
        columns = [list(c) for c in zip(*rows, strict=True)] or [[]] * len(_DEFINITION_COLUMNS)
        numbered = {(r["position"], r["ordinal"]): r["kpi_def"] for r in await conn.fetch(
            f"INSERT INTO {tables['scorecard_kpi_definitions']} (team_id, period,"
            f" {', '.join(_DEFINITION_COLUMNS)}) SELECT $1, $2,"
            f" {', '.join('d.' + c for c in _DEFINITION_COLUMNS)}"
            " FROM unnest($3::text[], $4::int[], $5::text[], $6::text[], $7::text[],"
            " $8::text[], $9::text[], $10::text[], $11::float8[]) WITH ORDINALITY"
            f" AS d({', '.join(_DEFINITION_COLUMNS)}, n) ORDER BY n"
            " RETURNING position, ordinal, kpi_def",
            e.team_id, e.period, *columns,
        )}
        defined = {position: [numbered[(position, i)] for i in range(len(kpis))]
                   for position, kpis in definitions.items()}
        # A card's KPIs as one row of arrays: each field's column of the month (its cards
        # share them) encoded at once, each card's the run of it between its bounds.
        fields = cards[0].columns if cards else [[]] * len(KPI_SCORE)
        bounds = [0, *(card.end for card in cards)]
        kpi_defs = {position: binary_copy.int8_arrays(ids, [0, len(ids)])[0]
                    for position, ids in defined.items()}
        await binary_copy.copy(
            conn, tables["scorecard_kpis"], _KPI_COLUMNS,
            zip([binary_copy.int8(numbers[card.document["agent_id"]]) for card in cards],
                [kpi_defs[card.document["position"]] for card in cards],
                *(encode(column, bounds) for encode, column in zip(
                    _KPI_ENCODERS, fields, strict=True)), strict=True),
        )

    async def _drop_scorecards(self, conn: asyncpg.Connection, tables: Tables, team_id: str,
                               period: str) -> None:
        """Delete a month's scorecards and their KPIs."""
        await conn.execute(
            f"DELETE FROM {tables['scorecard_kpis']} WHERE card IN (SELECT card"
            f" FROM {tables['scorecards']} WHERE team_id = $1 AND period = $2)",
            team_id, period,
        )
        await conn.execute(
            f"DELETE FROM {tables['scorecards']} WHERE team_id = $1 AND period = $2",
            team_id, period,
        )
        await conn.execute(
            f"DELETE FROM {tables['scorecard_kpi_definitions']} WHERE team_id = $1"
            " AND period = $2",
            team_id, period,
        )

    async def _set_status(
        self, conn: asyncpg.Connection, tables: Tables, team_id: str, period: str, status: str,
        e: c.CyclePublished,
    ) -> None:
        published: dict[str, Any] = {"status": status, "provisional": False,
                                     "published_at": e.published_at.isoformat()}
        await conn.execute(
            f"UPDATE {tables['cycles']} SET status = $3, published_at = $4, publications = $5"
            " WHERE team_id = $1 AND period = $2",
            team_id, period, status, e.published_at, e.publication,
        )
        # Merged here rather than with jsonb's ||, which would re-serialise the document with
        # spaces and reordered keys: the compact form is what every read sends.
        document = await conn.fetchval(
            f"SELECT document FROM {tables['rankings']} WHERE team_id = $1 AND period = $2",
            team_id, period,
        )
        if document is not None:
            await conn.execute(
                f"UPDATE {tables['rankings']} SET status = $3, published_at = $4, document = $5,"
                " revision = gen_random_uuid() WHERE team_id = $1 AND period = $2",
                team_id, period, status, e.published_at,
                orjson.dumps({**orjson.loads(document), **published}).decode(),
            )
        # A scorecard's document keeps the status it was rendered with; reads overlay the
        # column (service/queries/results.py), so publishing never rewrites a month of
        # documents (a quarter of a second for 1,000 agents).
        for table in ("ranking_entries", "scorecards"):
            await conn.execute(
                f"UPDATE {tables[table]} SET status = $3 WHERE team_id = $1 AND period = $2",
                team_id, period, status,
            )

    async def _reopened(self, conn: asyncpg.Connection, tables: Tables, e: c.CycleReopened
                        ) -> None:
        await conn.execute(
            f"UPDATE {tables['cycles']} SET status = 'open', closed_at = NULL"
            " WHERE team_id = $1 AND period = $2",
            e.team_id, e.period,
        )
        await self._drop_scorecards(conn, tables, e.team_id, e.period)
        for table in ("rankings", "ranking_entries"):
            await conn.execute(
                f"DELETE FROM {tables[table]} WHERE team_id = $1 AND period = $2",
                e.team_id, e.period,
            )

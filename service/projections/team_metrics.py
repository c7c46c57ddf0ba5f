"""team_metrics: the raw metrics each team's samples may carry (service/domain/team_metrics.py).

Rows with ``period`` '' hold what the latest version of the team's scheme declares; rows with
a period hold what the version pinned by the team's cycle of that month declares. Ingestion
looks a batch's (team, month) pairs up in one query (service/store/team_metrics.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from service.domain import cycle as c
from service.domain import directory as d
from service.domain import team_metrics as tm
from service.domain.scheme import Scheme
from service.domain.scheme_history import SchemePublished
from service.projections.base import Only, Projection, Tables
from service.projections.decoded import decoded
from service.store.event_store import DataOnly, RecordedEvent


class TeamMetrics(Projection):
    """Declared metrics per team (latest scheme version) and per team month (its cycle's)."""

    name = "team_metrics"
    # 2: every published version is recorded (declared_versions)
    version = 2
    stream_types = ("scheme", "team", "cycle")
    # Of the cycle events only the opening is read: a close is megabytes nobody here needs.
    data_only = DataOnly(("cycle",), frozenset({"CycleOpened"}))
    applies = Only(("cycle",), frozenset({"CycleOpened"}))
    tables = {
        "team_metrics": """(
            team_id     text NOT NULL,
            period      text NOT NULL,
            metric      text NOT NULL,
            unit        text NOT NULL,
            aggregation text NOT NULL,
            PRIMARY KEY (team_id, period, metric)
        )""",
        # The declarations of each published scheme version, and each team's scheme: what a
        # change of either needs to rewrite the team's rows.
        "scheme_metrics": """(
            scheme_id   text NOT NULL,
            version     int NOT NULL,
            metric      text NOT NULL,
            unit        text NOT NULL,
            aggregation text NOT NULL,
            PRIMARY KEY (scheme_id, version, metric)
        )""",
        "team_schemes": """(
            team_id   text PRIMARY KEY,
            scheme_id text NOT NULL
        )""",
        # Every published version, metrics or not: a version that declares none is still the
        # latest (its teams then take no metric), not a reason to fall back to an older one.
        "declared_versions": """(
            scheme_id text NOT NULL,
            version   int NOT NULL,
            PRIMARY KEY (scheme_id, version)
        )""",
    }

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Record declarations and rewrite the rows of the teams they concern."""
        for recorded in events:
            if recorded.type not in ("SchemePublished", "TeamRegistered", "TeamChanged",
                                     "CycleOpened"):
                continue
            e = decoded(recorded)
            if isinstance(e, SchemePublished):
                rows = [(e.scheme_id, e.version, name, m.unit, m.aggregation)
                        for name, m in tm.declared(Scheme.model_validate(e.scheme)).items()]
                await conn.execute(
                    f"INSERT INTO {tables['declared_versions']} VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING", e.scheme_id, e.version)
                await conn.executemany(
                    f"INSERT INTO {tables['scheme_metrics']} VALUES ($1, $2, $3, $4, $5)"
                    " ON CONFLICT DO NOTHING", rows)
                teams = await conn.fetch(
                    f"SELECT team_id FROM {tables['team_schemes']} WHERE scheme_id = $1",
                    e.scheme_id)
                for row in teams:
                    await _latest(conn, tables, row["team_id"], e.scheme_id)
            elif isinstance(e, d.TeamStated):
                await conn.execute(
                    f"INSERT INTO {tables['team_schemes']} VALUES ($1, $2)"
                    " ON CONFLICT (team_id) DO UPDATE SET scheme_id = $2",
                    e.team_id, e.scheme_id)
                await _latest(conn, tables, e.team_id, e.scheme_id)
            elif isinstance(e, c.CycleOpened):
                await conn.execute(
                    f"DELETE FROM {tables['team_metrics']} WHERE team_id = $1 AND period = $2",
                    e.team_id, e.period)
                await conn.execute(
                    f"INSERT INTO {tables['team_metrics']}"
                    f" SELECT $1, $2, metric, unit, aggregation FROM {tables['scheme_metrics']}"
                    " WHERE scheme_id = $3 AND version = $4",
                    e.team_id, e.period, e.scheme_id, e.scheme_version)


async def _latest(conn: asyncpg.Connection, tables: Tables, team_id: str, scheme_id: str
                  ) -> None:
    # Published versions only ever grow: the newest stored one is the version in force.
    await conn.execute(
        f"DELETE FROM {tables['team_metrics']} WHERE team_id = $1 AND period = $2",
        team_id, tm.ANY_MONTH)
    await conn.execute(
        f"""
        INSERT INTO {tables['team_metrics']}
        SELECT $1, $2, metric, unit, aggregation FROM {tables['scheme_metrics']}
        WHERE scheme_id = $3
          AND version = (SELECT max(version) FROM {tables['declared_versions']}
                         WHERE scheme_id = $3)
        """,
        team_id, tm.ANY_MONTH, scheme_id)

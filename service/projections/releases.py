"""releases: which agents' results of a published month have reached them, and their appeals.

``result_months``: one row per closed or published month with the agents of its frozen results
and, under ``after_interview``, the latest release (``release_due_at``, from the publication
event). ``result_releases``: one row per released agent-month. ``appeals``: one row per appeal.
The scheduler scans them for releases that fell due; the team ranking, the sanctions list, the
interview list and BI read them. Every value comes from an event, so a rebuild from zero gives
the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from service.domain import cycle as c
from service.domain import release as r
from service.projections.base import Only, Projection, Tables
from service.projections.decoded import LARGE, decoded
from service.store.event_store import DataOnly, RecordedEvent

_CYCLE_TYPES = frozenset({"CycleClosed", "CyclePublished", "CycleReopened"})


class Releases(Projection):
    """Published months' releases and appeals as plain tables."""

    name = "releases"
    version = 2
    stream_types = ("cycle", "result")
    data_only = DataOnly(("cycle",), _CYCLE_TYPES, on_demand=LARGE)
    applies = Only(("cycle",), _CYCLE_TYPES)
    tables = {
        "result_months": """(
            team_id            text NOT NULL,
            period             text NOT NULL,
            status             text NOT NULL,
            agents             text[] NOT NULL,
            ranked             text[] NOT NULL,
            first_published_at timestamptz,
            release_due_at     timestamptz,
            PRIMARY KEY (team_id, period)
        )""",
        "result_releases": """(
            team_id      text NOT NULL,
            period       text NOT NULL,
            agent_id     text NOT NULL,
            released_by_kind text NOT NULL,
            released_by  text,
            released_at  timestamptz NOT NULL,
            appeal_until timestamptz NOT NULL,
            plan_due_at  timestamptz NOT NULL,
            not_ranked   text,
            PRIMARY KEY (team_id, period, agent_id)
        )""",
        "result_final": """(
            team_id      text NOT NULL,
            period       text NOT NULL,
            agent_id     text NOT NULL,
            appeal_until timestamptz,
            appealed     boolean NOT NULL DEFAULT false,
            decided_at   timestamptz,
            final_at     timestamptz,
            PRIMARY KEY (team_id, period, agent_id)
        )""",
        "appeals": """(
            appeal_id    text PRIMARY KEY,
            team_id      text NOT NULL,
            period       text NOT NULL,
            agent_id     text NOT NULL,
            reason       text NOT NULL,
            filed_at     timestamptz NOT NULL,
            appeal_until timestamptz NOT NULL,
            status       text NOT NULL,
            decision     text,
            note         text,
            decided_by   text,
            decided_at   timestamptz,
            UNIQUE (team_id, period, agent_id)
        )""",
    }

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Apply closes, publications, reopenings, releases and appeals to their rows."""
        months, releases, appeals, final = (
            tables["result_months"], tables["result_releases"], tables["appeals"],
            tables["result_final"])
        for recorded in events:
            if recorded.stream_id.startswith("cycle:") and recorded.type not in _CYCLE_TYPES:
                continue
            e = decoded(recorded)
            if isinstance(e, c.CycleClosed):
                ranked = [x.agent_id for x in e.results if x.rank is not None]
                await conn.execute(
                    f"INSERT INTO {months} (team_id, period, status, agents, ranked)"
                    " VALUES ($1, $2, 'closed', $3, $4) ON CONFLICT (team_id, period) DO UPDATE"
                    " SET status = 'closed', agents = $3, ranked = $4",
                    e.team_id, e.period, [x.agent_id for x in e.results], ranked,
                )
            elif isinstance(e, c.CyclePublished):
                if e.appeal_until is not None:
                    # on_publication: every agent's window runs from the first publication.
                    await conn.execute(
                        f"INSERT INTO {final} (team_id, period, agent_id, appeal_until,"
                        f" final_at) SELECT $1, $2, a, $3, $3 FROM {months} m,"
                        " unnest(m.agents) a WHERE m.team_id = $1 AND m.period = $2"
                        " ON CONFLICT DO NOTHING",
                        e.team_id, e.period, r.final_at(e.appeal_until, False, None),
                    )
                await conn.execute(
                    f"UPDATE {months} SET status = 'published',"
                    " first_published_at = coalesce(first_published_at, $3),"
                    " release_due_at = $4 WHERE team_id = $1 AND period = $2",
                    e.team_id, e.period, e.published_at, e.release_due_at,
                )
            elif isinstance(e, c.CycleReopened):
                await conn.execute(
                    f"UPDATE {months} SET status = 'open' WHERE team_id = $1 AND period = $2",
                    e.team_id, e.period,
                )
            elif isinstance(e, r.ResultReleased):
                await conn.execute(
                    f"INSERT INTO {releases} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                    " ON CONFLICT DO NOTHING",
                    e.team_id, e.period, e.agent_id, e.by, e.released_by, e.released_at,
                    e.appeal_until, e.plan_due_at, e.not_ranked,
                )
                await conn.execute(
                    f"INSERT INTO {final} (team_id, period, agent_id, appeal_until, final_at)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    e.team_id, e.period, e.agent_id, e.appeal_until,
                    r.final_at(e.appeal_until, False, None),
                )
            elif isinstance(e, r.AppealFiled):
                await self._final(conn, final, e.team_id, e.period, e.agent_id, True, None)
                await conn.execute(
                    f"INSERT INTO {appeals} (appeal_id, team_id, period, agent_id, reason,"
                    " filed_at, appeal_until, status) VALUES ($1, $2, $3, $4, $5, $6, $7,"
                    " 'open') ON CONFLICT DO NOTHING",
                    e.appeal_id, e.team_id, e.period, e.agent_id, e.reason, e.filed_at,
                    e.appeal_until,
                )
            elif isinstance(e, r.AppealDecided):
                await self._final(conn, final, e.team_id, e.period, e.agent_id, True,
                                  e.decided_at)
                await conn.execute(
                    f"UPDATE {appeals} SET status = $2, decision = $3, note = $4,"
                    " decided_by = $5, decided_at = $6 WHERE appeal_id = $1",
                    e.appeal_id, "upheld" if e.decision == "uphold" else "amended",
                    e.decision, e.note, e.decided_by, e.decided_at,
                )

    async def _final(self, conn: asyncpg.Connection, table: str, team_id: str, period: str,
                     agent_id: str, appealed: bool, decided_at: datetime | None) -> None:
        until = await conn.fetchval(
            f"SELECT appeal_until FROM {table} WHERE team_id = $1 AND period = $2"
            " AND agent_id = $3", team_id, period, agent_id)
        await conn.execute(
            f"INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (team_id, period, agent_id) DO UPDATE SET appealed = $5,"
            " decided_at = $6, final_at = $7",
            team_id, period, agent_id, until, appealed, decided_at,
            r.final_at(until, appealed, decided_at),
        )

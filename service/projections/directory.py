"""directory: teams, agents and each agent's team memberships over time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from service.domain import directory as d
from service.projections.base import Projection, Tables
from service.projections.decoded import decoded
from service.store.event_store import RecordedEvent


class Directory(Projection):
    """Who is in which team, now and at any past moment (samples follow the team of then)."""

    name = "directory"
    # 2: employment spans and absences (fair months)
    version = 2
    stream_types = ("team", "agent")
    tables = {
        "teams": """(
            team_id     text PRIMARY KEY,
            name        text NOT NULL,
            timezone    text NOT NULL,
            currency    text NOT NULL,
            manager_ids text[] NOT NULL,
            scheme_id   text NOT NULL,
            updated_at  timestamptz NOT NULL
        )""",
        "agents": """(
            agent_id   text PRIMARY KEY,
            name       text NOT NULL,
            team_id    text NOT NULL,
            position   text,
            joined_at  timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            hired_on   date,
            left_on    date
        )""",
        # Absences not cancelled: what a close needs to count active days in one query.
        "agent_absences": """(
            agent_id   text NOT NULL,
            absence_id text NOT NULL,
            from_date  date NOT NULL,
            to_date    date NOT NULL,
            kind       text NOT NULL,
            PRIMARY KEY (agent_id, absence_id)
        )""",
        "agent_memberships": """(
            agent_id text NOT NULL,
            team_id  text NOT NULL,
            since    timestamptz NOT NULL,
            until    timestamptz,
            PRIMARY KEY (agent_id, since)
        )""",
    }

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Apply team and agent events one by one, but a run of renames in one statement."""
        # Renames come in bursts (PUT agent from 32 clients: 1,500 a second), and one
        # statement each held the batch's transaction open for seconds of a busy event loop,
        # past which no projection can read (event_store.read_all): all of them stalled.
        renamed: dict[str, tuple[str, str | None, datetime]] = {}
        for recorded in events:
            e = decoded(recorded)
            at = recorded.recorded_at
            if isinstance(e, d.AgentChanged):
                # A rename sets every column it touches: the last one of a run is the row.
                renamed[e.agent_id] = (e.name, e.position, at)
                continue
            if renamed:
                await self._renamed(conn, tables, renamed)
                renamed = {}
            if isinstance(e, d.TeamStated):
                await conn.execute(
                    f"""
                    INSERT INTO {tables['teams']} AS t VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (team_id) DO UPDATE SET name = $2, timezone = $3,
                        currency = $4, manager_ids = $5, scheme_id = $6, updated_at = $7
                    """,
                    e.team_id, e.name, e.timezone, e.currency, list(e.manager_ids),
                    e.scheme_id, at,
                )
            elif isinstance(e, d.AgentRegistered):
                await conn.execute(
                    f"INSERT INTO {tables['agents']} VALUES ($1, $2, $3, $4, $5, $5, NULL, NULL)"
                    " ON CONFLICT (agent_id) DO NOTHING",
                    e.agent_id, e.name, e.team_id, e.position, e.effective_at,
                )
                await conn.execute(
                    f"INSERT INTO {tables['agent_memberships']} VALUES ($1, $2, $3, NULL)"
                    " ON CONFLICT DO NOTHING",
                    e.agent_id, e.team_id, e.effective_at,
                )
            elif isinstance(e, d.AgentTransferred):
                await conn.execute(
                    f"UPDATE {tables['agents']} SET team_id = $2, updated_at = $3"
                    " WHERE agent_id = $1",
                    e.agent_id, e.to_team_id, at,
                )
                await conn.execute(
                    f"UPDATE {tables['agent_memberships']} SET until = $2"
                    " WHERE agent_id = $1 AND until IS NULL",
                    e.agent_id, e.effective_at,
                )
                await conn.execute(
                    f"INSERT INTO {tables['agent_memberships']} VALUES ($1, $2, $3, NULL)"
                    " ON CONFLICT DO NOTHING",
                    e.agent_id, e.to_team_id, e.effective_at,
                )
            elif isinstance(e, d.AgentEmploymentChanged):
                await conn.execute(
                    f"UPDATE {tables['agents']} SET hired_on = $2, left_on = $3, updated_at = $4"
                    " WHERE agent_id = $1",
                    e.agent_id, e.hired_on, e.left_on, at,
                )
            elif isinstance(e, d.AbsenceRecorded):
                await conn.execute(
                    f"""
                    INSERT INTO {tables['agent_absences']} VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (agent_id, absence_id) DO UPDATE SET from_date = $3,
                        to_date = $4, kind = $5
                    """,
                    e.agent_id, e.absence_id, e.from_date, e.to_date, e.kind,
                )
            elif isinstance(e, d.AbsenceCancelled):
                await conn.execute(
                    f"DELETE FROM {tables['agent_absences']} WHERE agent_id = $1"
                    " AND absence_id = $2",
                    e.agent_id, e.absence_id,
                )
        if renamed:
            await self._renamed(conn, tables, renamed)

    @staticmethod
    async def _renamed(conn: asyncpg.Connection, tables: Tables,
                       renamed: dict[str, tuple[str, str | None, datetime]]) -> None:
        """Store each agent's last rename of a run of renames, in one statement."""
        await conn.execute(
            f"UPDATE {tables['agents']} AS a SET name = r.name, position = r.position,"
            " updated_at = r.at FROM unnest($1::text[], $2::text[], $3::text[],"
            " $4::timestamptz[]) AS r(agent_id, name, position, at)"
            " WHERE a.agent_id = r.agent_id",
            list(renamed), [name for name, _, _ in renamed.values()],
            [position for _, position, _ in renamed.values()],
            [at for _, _, at in renamed.values()],
        )

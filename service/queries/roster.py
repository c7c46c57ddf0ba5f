"""A team's agents at close, with their positions and transfers in the period."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def team_agents(conn: asyncpg.Connection, team_id: str) -> list[asyncpg.Record]:
    """Return the team's current agents from the directory read model."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT agent_id, name, team_id, position, joined_at FROM agents"
        " WHERE team_id = $1 ORDER BY agent_id",
        team_id,
    )
    return rows


async def transfers_between(
    conn: asyncpg.Connection, agent_ids: list[str], start: datetime, end: datetime
) -> dict[str, list[dict[str, object]]]:
    """Return, per agent, the team memberships that began inside [start, end) after joining."""
    rows = await conn.fetch(
        """
        SELECT m.agent_id, m.team_id, m.since,
               (SELECT p.team_id FROM agent_memberships p
                WHERE p.agent_id = m.agent_id AND p.until = m.since LIMIT 1) AS from_team_id
        FROM agent_memberships m
        WHERE m.agent_id = ANY($1::text[]) AND m.since >= $2 AND m.since < $3
        ORDER BY m.since
        """,
        agent_ids, start, end,
    )
    moves: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        if row["from_team_id"] is None:
            continue  # joining the service is not a transfer
        moves.setdefault(row["agent_id"], []).append(
            {"from_team_id": row["from_team_id"], "to_team_id": row["team_id"],
             "effective_at": row["since"].isoformat()}
        )
    return moves

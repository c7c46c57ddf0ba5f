"""A team's agents at close, with their positions and transfers in the period."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg


async def team_agents(conn: asyncpg.Connection, team_id: str) -> list[asyncpg.Record]:
    """Return the team's current agents from the directory read model."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT agent_id, name, team_id, position, joined_at, hired_on, left_on FROM agents"
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


async def presence_inputs(
    conn: asyncpg.Connection, agent_ids: list[str], first: date, last: date
) -> tuple[dict[str, list[tuple[date, date]]], dict[str, list[tuple[str, datetime,
                                                                       datetime | None]]]]:
    """Return, per agent, the absences touching [first, last] and every team membership."""
    absences: dict[str, list[tuple[date, date]]] = {}
    for row in await conn.fetch(
        "SELECT agent_id, from_date, to_date FROM agent_absences"
        " WHERE agent_id = ANY($1::text[]) AND from_date <= $3 AND to_date >= $2",
        agent_ids, first, last,
    ):
        absences.setdefault(row["agent_id"], []).append((row["from_date"], row["to_date"]))
    memberships: dict[str, list[tuple[str, datetime, datetime | None]]] = {}
    for row in await conn.fetch(
        "SELECT agent_id, team_id, since, until FROM agent_memberships"
        " WHERE agent_id = ANY($1::text[]) ORDER BY agent_id, since",
        agent_ids,
    ):
        memberships.setdefault(row["agent_id"], []).append(
            (row["team_id"], row["since"], row["until"]))
    return absences, memberships

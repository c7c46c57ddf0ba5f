"""What the pages read for navigation only: lists of teams, months and names.

Everything with a rule behind it (rankings, scorecards, sanctions, plans) is read through
``service/queries/`` after the checks of the API route that serves it (``service.api.access``);
these reads only label and link what the caller was already allowed to see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.context import ServiceContext
from service.projections.cycle_results import CycleResults
from service.projections.directory import Directory
from service.queries.wait import wait


async def teams(ctx: ServiceContext, team_ids: Sequence[str] | None = None
                ) -> list[dict[str, Any]]:
    """Return teams (all, or those named) with their zone, currency and managers."""
    await wait(ctx, Directory(), timeout=1.0)
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT team_id, name, timezone, currency, manager_ids FROM teams"
            " WHERE $1::text[] IS NULL OR team_id = ANY($1::text[]) ORDER BY name, team_id",
            list(team_ids) if team_ids is not None else None,
        )
    return [dict(r) for r in rows]


async def periods(ctx: ServiceContext, team_id: str) -> list[dict[str, Any]]:
    """Return a team's months that have a cycle, oldest first, with their status."""
    await wait(ctx, CycleResults(), timeout=1.0)
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT period, status FROM cycles WHERE team_id = $1 ORDER BY period", team_id)
    return [dict(r) for r in rows]


async def agent_names(ctx: ServiceContext, agent_ids: Sequence[str]) -> dict[str, str]:
    """Return the names of the given agents."""
    if not agent_ids:
        return {}
    async with ctx.db.connection() as conn:
        rows = await conn.fetch("SELECT agent_id, name FROM agents WHERE agent_id = ANY($1)",
                                list(agent_ids))
    return {r["agent_id"]: r["name"] for r in rows}

"""Rater calibration of a team's month (see ``service.domain.calibration``)."""

from __future__ import annotations

from typing import Any

from service.context import ServiceContext
from service.domain.calibration import calibrate
from service.projections.directory import Directory
from service.queries import cycles
from service.queries.roster import team_agents
from service.queries.wait import READ_TIMEOUT, wait


async def calibration(ctx: ServiceContext, team_id: str, period: str) -> dict[str, Any]:
    """Return per-rater statistics and flags and the self-vs-manager gaps of a month."""
    cycle = await cycles.get_cycle(ctx, team_id, period)
    scheme = await cycles.cycle_scheme(ctx, cycle)
    if cycle.closed is not None:
        agent_ids = [r.agent_id for r in cycle.closed.results]
    else:
        await wait(ctx, Directory(), timeout=READ_TIMEOUT)
        async with ctx.db.connection() as conn:
            agent_ids = [a["agent_id"] for a in await team_agents(conn, team_id)]
    document = calibrate(list(cycle.evaluations.values()), scheme.scale_max, agent_ids)
    return {"team_id": team_id, "period": period, "status": cycle.status, **document}

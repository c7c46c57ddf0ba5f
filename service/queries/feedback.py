"""Read a published month's classification and its interviews."""

from __future__ import annotations

from typing import Any

import asyncpg

from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import feedback as f
from service.domain.errors import NotFound
from service.domain.events import DomainEvent
from service.domain.periods import previous_period
from service.projections.cycle_process import CycleProcess
from service.queries import cycles
from service.queries.streams import read_state
from service.queries.wait import READ_TIMEOUT, wait


async def previous_scores(ctx: ServiceContext, team_id: str, period: str) -> dict[str, float]:
    """Return each agent's composite in the team's published month before ``period``."""
    earlier = await cycles.find_cycle(ctx, team_id, previous_period(period))
    if earlier is None or earlier.status != "published" or earlier.closed is None:
        return {}
    return {r.agent_id: r.score.composite for r in earlier.closed.results
            if r.score.composite is not None}


def _published(cycle: c.Cycle) -> c.CycleClosed:
    f.require_published(cycle.status, cycle.team_id, cycle.period)
    assert cycle.closed is not None
    return cycle.closed


async def classification(ctx: ServiceContext, team_id: str, period: str) -> dict[str, Any]:
    """Classify every agent of a published month: result band x trend, named."""
    cycle = await cycles.get_cycle(ctx, team_id, period)
    closed = _published(cycle)
    previous = await previous_scores(ctx, team_id, period)
    return {
        "team_id": team_id, "period": period, "previous_period": previous_period(period),
        "bands": ["top", "middle", "bottom"], "trends": ["improving", "steady", "declining"],
        "trend_points": f.TREND_POINTS,
        "categories": [
            {"band": band, "trend": trend, "category": name, "focus": focus}
            for (band, trend), (name, focus) in f.CATEGORIES.items()
        ],
        "items": f.classify(closed.results, previous),
    }


async def load_interview(ctx: ServiceContext, team_id: str, period: str, agent_id: str
                         ) -> f.Interview | None:
    """Return an agent's interview for a team's month, if any was scheduled."""
    return await read_state(ctx, f.interview_stream(team_id, period, agent_id),
                            f.evolve_interview)


def interview_document(interview: f.Interview) -> dict[str, Any]:
    """Render an interview: plan, outline, record and acknowledgement."""
    s = interview.schedule
    assert s is not None

    def body(e: DomainEvent | None, *drop: str) -> dict[str, Any] | None:
        if e is None:
            return None
        return e.model_dump(mode="json", exclude={"type", "team_id", "period", "agent_id", *drop})

    return {
        "interview_id": f.interview_id(s.team_id, s.period, s.agent_id),
        "team_id": s.team_id, "period": s.period, "agent_id": s.agent_id,
        "status": interview.status, "manager_id": s.manager_id, "starts_at": s.starts_at,
        "ends_at": s.ends_at, "place": s.place, "participants": list(s.participants),
        "revision": s.revision, "scheduled_at": s.scheduled_at,
        "outline": body(interview.outline),
        "record": body(interview.record),
        "acknowledgement": body(interview.acknowledged),
    }


async def get_interview(ctx: ServiceContext, team_id: str, period: str, agent_id: str
                        ) -> dict[str, Any]:
    """Return an agent's interview; 404 when none was scheduled."""
    interview = await load_interview(ctx, team_id, period, agent_id)
    if interview is None or interview.schedule is None:
        await cycles.get_cycle(ctx, team_id, period)
        raise NotFound("no interview of agent %(agent)s is scheduled in %(team)s/%(period)s",
                       values={"agent": agent_id, "team": team_id, "period": period})
    return interview_document(interview)


async def interview_rows(ctx: ServiceContext, team_id: str, period: str
                         ) -> list[asyncpg.Record]:
    """Return the month's interviews from the read model, current with every commit."""
    await wait(ctx, CycleProcess(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT * FROM interviews WHERE team_id = $1 AND period = $2 ORDER BY agent_id",
            team_id, period,
        )
    return rows


def missing_interviews(cycle: c.Cycle, rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    """List the evaluated agents of a published month whose interview was not held yet."""
    if cycle.status != "published" or cycle.closed is None:
        return []
    by_agent = {r["agent_id"]: r for r in rows}
    missing = []
    for result in cycle.closed.results:
        row = by_agent.get(result.agent_id)
        if row is not None and row["status"] in ("recorded", "acknowledged"):
            continue
        missing.append({
            "agent_id": result.agent_id,
            "status": "unscheduled" if row is None else "scheduled",
            "starts_at": row["starts_at"] if row is not None else None,
        })
    return missing

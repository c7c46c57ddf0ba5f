"""Feedback commands: classify a published month; schedule, outline, record and acknowledge
interviews.

Scheduling writes two or three streams (the interview, the manager's calendar, and the old
manager's when the interview changes hands) in one transaction: every stream is locked, in a
fixed order, before anything is read, so two overlapping schedulings for one manager queue up
and the second sees the first's booking.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from service.commands import cycles, release
from service.commands.base import RETRIES, Caller, execute, load, read_state, to_new
from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import feedback as f
from service.domain.errors import NotFound
from service.domain.events import DomainEvent
from service.domain.periods import previous_period
from service.projections.cycle_process import CycleProcess
from service.projections.freshness import wait_caught_up
from service.store.errors import ConcurrencyError
from service.store.event_store import StreamAppend, append_many

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


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
        raise NotFound(f"no interview of agent {agent_id} is scheduled in {team_id}/{period}")
    return interview_document(interview)


async def interview_rows(ctx: ServiceContext, team_id: str, period: str
                         ) -> list[asyncpg.Record]:
    """Return the month's interviews from the read model, current with every commit."""
    await wait_caught_up(ctx.db, [CycleProcess()], timeout=2.0)
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


async def _decide_streams(
    ctx: ServiceContext,
    caller: Caller,
    interview_stream: str,
    decide: Callable[[f.Interview | None, Mapping[str, f.Calendar | None]],
                     dict[str, list[DomainEvent]]],
    managers: Callable[[f.Interview | None], list[str]],
) -> f.Interview | None:
    """Decide on an interview and the calendars it names, and append to all in one go."""
    for attempt in range(RETRIES):
        async with ctx.db.connection() as conn:
            try:
                async with conn.transaction():
                    # The interview first, then its calendars in sorted order: no scheduling
                    # ever holds two interview locks, so these cannot deadlock.
                    await conn.execute(_LOCK, interview_stream)
                    interview, version = await load(conn, interview_stream, f.evolve_interview)
                    calendars: dict[str, f.Calendar | None] = {}
                    versions = {interview_stream: version}
                    for manager_id in sorted(set(managers(interview))):
                        stream = f.calendar_stream(manager_id)
                        await conn.execute(_LOCK, stream)
                        calendars[manager_id], versions[stream] = await load(
                            conn, stream, f.evolve_calendar)
                    decided = decide(interview, calendars)
                    if not decided:
                        return interview
                    results = await append_many(conn, [
                        StreamAppend(stream, to_new(events), versions[stream],
                                     caller.idempotency_key)
                        for stream, events in decided.items()
                    ], metadata=caller.metadata, recorded_at=ctx.clock())
            except ConcurrencyError:
                if attempt == RETRIES - 1:
                    raise
                continue
            if any(r.duplicate for r in results):
                interview, _ = await load(conn, interview_stream, f.evolve_interview)
                return interview
        ctx.committed()
        for e in decided.get(interview_stream, []):
            interview = f.evolve_interview(interview, e)
        return interview
    raise AssertionError("unreachable")


async def schedule(ctx: ServiceContext, caller: Caller, cmd: f.Schedule
                   ) -> tuple[dict[str, Any], bool]:
    """Schedule or move an interview; return it and whether it was new."""
    cycle = await cycles.get_cycle(ctx, cmd.team_id, cmd.period)
    evaluated = cycle.closed is not None and any(
        r.agent_id == cmd.agent_id for r in cycle.closed.results)
    now = ctx.clock()
    created = False

    def managers(interview: f.Interview | None) -> list[str]:
        moved = interview.schedule.manager_id if interview and interview.schedule else None
        return [cmd.manager_id] + ([moved] if moved else [])

    def decide(interview: f.Interview | None, calendars: Mapping[str, f.Calendar | None]
               ) -> dict[str, list[DomainEvent]]:
        nonlocal created
        created = interview is None or interview.schedule is None
        return f.decide_schedule(interview, calendars, cmd, cycle_status=cycle.status,
                                 evaluated=evaluated, now=now)

    interview = await _decide_streams(
        ctx, caller, f.interview_stream(cmd.team_id, cmd.period, cmd.agent_id), decide,
        managers)
    assert interview is not None
    return interview_document(interview), created


@dataclass(frozen=True)
class Outline:
    """An interview's outline."""

    objective: str
    sub_objectives: tuple[str, ...]
    questions: tuple[str, ...]


async def _on_interview(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, agent_id: str,
    decide: Callable[[f.Interview | None], list[DomainEvent]],
) -> dict[str, Any]:
    await cycles.get_cycle(ctx, team_id, period)
    interview, _ = await execute(
        ctx, caller, f.interview_stream(team_id, period, agent_id), f.evolve_interview, decide)
    assert interview is not None
    return interview_document(interview)


async def outline(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, agent_id: str,
    body: Outline, prepared_by: str,
) -> dict[str, Any]:
    """Prepare the interview outline."""
    now = ctx.clock()
    return await _on_interview(
        ctx, caller, team_id, period, agent_id,
        lambda state: f.decide_outline(state, objective=body.objective,
                                       sub_objectives=body.sub_objectives,
                                       questions=body.questions, prepared_by=prepared_by,
                                       now=now))


async def record(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, agent_id: str,
    body: f.Record, recorded_by: str,
) -> dict[str, Any]:
    """Record the held interview, and so release the agent's result to them.

    The release is its own command on the agent's result stream, after the record commits:
    should the service stop in between, the scheduler releases the result when it falls due.
    """
    now = ctx.clock()
    document = await _on_interview(
        ctx, caller, team_id, period, agent_id,
        lambda state: f.decide_record(state, body, recorded_by=recorded_by, now=now))
    await release.release_after_interview(ctx, caller, team_id, period, agent_id, recorded_by)
    return document


async def acknowledge(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, agent_id: str,
    by: str, comment: str | None,
) -> dict[str, Any]:
    """The agent acknowledges the interview record."""
    now = ctx.clock()
    return await _on_interview(
        ctx, caller, team_id, period, agent_id,
        lambda state: f.decide_acknowledge(state, agent_id, by=by, comment=comment, now=now))

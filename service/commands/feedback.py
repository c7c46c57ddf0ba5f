"""Feedback commands: schedule, outline, record and acknowledge interviews.

Scheduling writes two or three streams (the interview, the manager's calendar, and the old
manager's when the interview changes hands) in one transaction: every stream is locked, in a
fixed order, before anything is read, so two overlapping schedulings for one manager queue up
and the second sees the first's booking.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.commands import release
from service.commands.base import Caller, execute, to_new
from service.context import ServiceContext
from service.domain import feedback as f
from service.domain.events import DomainEvent
from service.queries import cycles
from service.queries.feedback import interview_document
from service.queries.streams import load
from service.retrying import on_conflict
from service.store.event_store import StreamAppend, append_many

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


async def _decide_streams(
    ctx: ServiceContext,
    caller: Caller,
    interview_stream: str,
    decide: Callable[[f.Interview | None, Mapping[str, f.Calendar | None]],
                     dict[str, list[DomainEvent]]],
    managers: Callable[[f.Interview | None], list[str]],
) -> f.Interview | None:
    """Decide on an interview and the calendars it names, and append to all in one go."""
    async for attempt in on_conflict():
        with attempt:
            async with ctx.db.connection() as conn:
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
                if any(r.duplicate for r in results):
                    interview, _ = await load(conn, interview_stream, f.evolve_interview)
                    return interview
    ctx.committed()
    for e in decided.get(interview_stream, []):
        interview = f.evolve_interview(interview, e)
    return interview


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

"""Directory commands: put a team, put an agent (a changed team is a transfer)."""

from __future__ import annotations

from service.commands.base import Caller, execute
from service.context import ServiceContext
from service.domain import directory as d
from service.domain.errors import DomainError, FieldError
from service.domain.scheme import team_target_problems
from service.queries import schemes
from service.queries.streams import held, read_state


async def put_team(ctx: ServiceContext, caller: Caller, cmd: d.PutTeam) -> tuple[d.Team, bool]:
    """Create or change a team; return it and whether it was created.

    The team's own KPI targets are checked against the latest version of its scheme (422
    listing every problem): a target for a KPI the scheme does not measure would never count.
    """
    if cmd.kpi_targets:
        current = await read_state(ctx, d.team_stream(cmd.team_id), d.evolve_team)
        scheme_id = cmd.scheme_id or (current.scheme_id if current else d.DEFAULT_SCHEME_ID)
        scheme = await schemes.get_scheme(ctx, scheme_id)
        problems = team_target_problems(scheme, cmd.kpi_targets)
        if problems:
            raise DomainError(f"invalid kpi_targets: {len(problems)} problem(s)", problems)
    team, result = await execute(
        ctx, caller, d.team_stream(cmd.team_id), d.evolve_team,
        lambda state: d.decide_put_team(state, cmd),
    )
    assert team is not None
    created = result is not None and not result.duplicate and team.version == 1
    return team, created


async def put_agent(
    ctx: ServiceContext, caller: Caller, cmd: d.PutAgent
) -> tuple[d.Agent, bool]:
    """Create, change or transfer an agent; return it and whether it was created."""
    d.check_id(cmd.team_id, "team_id")
    # Only whether the team exists, and a team is never removed: one held here exists.
    team = (held(ctx, d.team_stream(cmd.team_id), d.evolve_team)
            or await read_state(ctx, d.team_stream(cmd.team_id), d.evolve_team))
    if team is None:
        raise DomainError(f"no team {cmd.team_id}",
                          [FieldError("team_id", "no such team; create it first")])
    now = ctx.clock()
    agent, result = await execute(
        ctx, caller, d.agent_stream(cmd.agent_id), d.evolve_agent,
        lambda state: d.decide_put_agent(state, cmd, now),
    )
    assert agent is not None
    created = result is not None and not result.duplicate and agent.version == 1
    return agent, created


async def put_absence(
    ctx: ServiceContext, caller: Caller, cmd: d.PutAbsence
) -> tuple[d.Absence, bool]:
    """Record or change an absence; return it and whether it was new."""
    now = ctx.clock()
    agent, _ = await execute(
        ctx, caller, d.agent_stream(cmd.agent_id), d.evolve_agent,
        lambda state: d.decide_put_absence(state, cmd, now),
    )
    assert agent is not None
    absence = agent.absences[cmd.absence_id]
    return absence, absence.revision == 1 and absence.recorded_at == now


async def cancel_absence(
    ctx: ServiceContext, caller: Caller, agent_id: str, absence_id: str
) -> d.Absence:
    """Cancel an absence (a new event; the record stays in the history)."""
    now = ctx.clock()
    agent, _ = await execute(
        ctx, caller, d.agent_stream(agent_id), d.evolve_agent,
        lambda state: d.decide_cancel_absence(state, agent_id, absence_id, now),
    )
    assert agent is not None
    return agent.absences[absence_id]


async def put_person(ctx: ServiceContext, caller: Caller, cmd: d.PutPerson) -> d.Person:
    """Set a person's email address, language or reminder choice."""
    person, _ = await execute(
        ctx, caller, d.person_stream(cmd.person_id), d.evolve_person,
        lambda state: d.decide_put_person(state, cmd),
    )
    return person or d.Person(cmd.person_id)

"""Read the directory's streams: teams, agents, people."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.context import ServiceContext
from service.domain import directory as d
from service.domain.errors import NotFound
from service.queries.streams import read_state


def no_team(team_id: str) -> NotFound:
    """Return the 404 of a team that does not exist."""
    return NotFound("no team %(team)s", values={"team": team_id})


async def get_team(ctx: ServiceContext, team_id: str) -> d.Team:
    """Return a team from its stream; 404 when there is none."""
    team = await read_state(ctx, d.team_stream(team_id), d.evolve_team)
    if team is None:
        raise no_team(team_id)
    return team


async def find_agent(ctx: ServiceContext, agent_id: str) -> d.Agent | None:
    """Return an agent from its stream, or None."""
    return await read_state(ctx, d.agent_stream(agent_id), d.evolve_agent)


async def get_agent(ctx: ServiceContext, agent_id: str) -> d.Agent:
    """Return an agent from its stream; 404 when there is none."""
    agent = await find_agent(ctx, agent_id)
    if agent is None:
        raise NotFound("no agent %(agent)s", values={"agent": agent_id})
    return agent


async def get_person(ctx: ServiceContext, person_id: str) -> d.Person:
    """Return a person's contact details (the defaults when none were ever set)."""
    d.check_id(person_id, "person_id")
    person = await read_state(ctx, d.person_stream(person_id), d.evolve_person)
    return person or d.Person(person_id)


async def team_locales(ctx: ServiceContext, rows: Sequence[Mapping[str, Any]]
                       ) -> dict[str, str | None]:
    """Return the locale of each team on the rows (their Excel money cells take its format)."""
    teams = sorted({str(r["team_id"]) for r in rows if r.get("team_id")})
    return {t: (await get_team(ctx, t)).locale for t in teams}

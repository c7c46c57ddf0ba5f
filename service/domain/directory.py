"""Teams and agents: event-sourced aggregates; a changed team is a transfer that keeps history."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from service.domain.errors import DomainError, FieldError
from service.domain.events import DomainEvent, event
from service.domain.ids import ID_RE, ID_RULE
from service.domain.periods import zone

DEFAULT_TIMEZONE = "UTC"
DEFAULT_CURRENCY = "CNY"
DEFAULT_SCHEME_ID = "online-shop-cs"


def check_id(value: str, field_name: str) -> None:
    """Refuse an id outside the API's id alphabet."""
    if not ID_RE.fullmatch(value):
        raise DomainError(f"invalid {field_name}", [FieldError(field_name, ID_RULE)])


def team_stream(team_id: str) -> str:
    """Return the stream id of a team."""
    return f"team:{team_id}"


def agent_stream(agent_id: str) -> str:
    """Return the stream id of an agent."""
    return f"agent:{agent_id}"


# --- events -------------------------------------------------------------------------------


class TeamStated(DomainEvent):
    """What both team events carry: the whole team as it is from now on."""

    team_id: str
    name: str
    timezone: str
    currency: str
    manager_ids: tuple[str, ...]
    scheme_id: str


@event
class TeamRegistered(TeamStated):
    """A team was created."""

    type: Literal["TeamRegistered"] = "TeamRegistered"


@event
class TeamChanged(TeamStated):
    """A team's name, time zone, currency, managers or scheme changed."""

    type: Literal["TeamChanged"] = "TeamChanged"


@event
class AgentRegistered(DomainEvent):
    """An agent joined the service in a team."""

    type: Literal["AgentRegistered"] = "AgentRegistered"
    agent_id: str
    name: str
    team_id: str
    position: str | None
    effective_at: datetime


@event
class AgentChanged(DomainEvent):
    """An agent's name or position changed."""

    type: Literal["AgentChanged"] = "AgentChanged"
    agent_id: str
    name: str
    position: str | None


@event
class AgentTransferred(DomainEvent):
    """An agent moved to another team; samples before effective_at stay with the old one."""

    type: Literal["AgentTransferred"] = "AgentTransferred"
    agent_id: str
    from_team_id: str
    to_team_id: str
    effective_at: datetime


# --- state --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Team:
    """A team as its stream tells it."""

    team_id: str
    name: str
    timezone: str
    currency: str
    manager_ids: tuple[str, ...]
    scheme_id: str
    version: int = 0


@dataclass(frozen=True)
class Membership:
    """A stretch of time an agent spent in a team (until None: still there)."""

    team_id: str
    since: datetime
    until: datetime | None = None


@dataclass(frozen=True)
class Agent:
    """An agent as its stream tells it."""

    agent_id: str
    name: str
    team_id: str
    position: str | None
    history: tuple[Membership, ...] = field(default_factory=tuple)
    version: int = 0


def evolve_team(state: Team | None, e: DomainEvent) -> Team | None:
    """Apply one team event."""
    if isinstance(e, TeamStated):
        version = state.version if state else 0
        return Team(e.team_id, e.name, e.timezone, e.currency, e.manager_ids, e.scheme_id,
                    version + 1)
    return state


def evolve_agent(state: Agent | None, e: DomainEvent) -> Agent | None:
    """Apply one agent event."""
    if isinstance(e, AgentRegistered):
        return Agent(e.agent_id, e.name, e.team_id, e.position,
                     (Membership(e.team_id, e.effective_at),), 1)
    if state is None:
        return None
    if isinstance(e, AgentChanged):
        return replace(state, name=e.name, position=e.position, version=state.version + 1)
    if isinstance(e, AgentTransferred):
        closed = replace(state.history[-1], until=e.effective_at)
        history = (*state.history[:-1], closed, Membership(e.to_team_id, e.effective_at))
        return replace(state, team_id=e.to_team_id, history=history, version=state.version + 1)
    return state


def team_at(agent: Agent, moment: datetime) -> str | None:
    """Return the team the agent belonged to at a moment (None before they joined)."""
    for stretch in reversed(agent.history):
        if stretch.since <= moment and (stretch.until is None or moment < stretch.until):
            return stretch.team_id
    # Samples that predate registration belong to the first team: the agent was working
    # before someone entered them in the directory.
    return agent.history[0].team_id if agent.history and moment < agent.history[0].since else None


# --- decisions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PutTeam:
    """Create or change a team (PUT semantics: fields left out keep their value)."""

    team_id: str
    name: str
    timezone: str | None = None
    currency: str | None = None
    manager_ids: Sequence[str] | None = None
    scheme_id: str | None = None


def decide_put_team(state: Team | None, cmd: PutTeam) -> list[DomainEvent]:
    """Register a new team or record what changed; nothing when nothing changed."""
    check_id(cmd.team_id, "team_id")
    problems: list[FieldError] = []
    timezone = cmd.timezone or (state.timezone if state else DEFAULT_TIMEZONE)
    try:
        zone(timezone)
    except DomainError as exc:
        problems.extend(exc.errors)
    currency = (cmd.currency or (state.currency if state else DEFAULT_CURRENCY)).upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        problems.append(FieldError("currency", "an ISO 4217 code of three letters"))
    managers = tuple(cmd.manager_ids) if cmd.manager_ids is not None else (
        state.manager_ids if state else ()
    )
    for index, manager in enumerate(managers):
        if not ID_RE.fullmatch(manager):
            problems.append(FieldError(f"manager_ids[{index}]", ID_RULE))
    scheme_id = cmd.scheme_id or (state.scheme_id if state else DEFAULT_SCHEME_ID)
    if not cmd.name.strip():
        problems.append(FieldError("name", "must not be blank"))
    if problems:
        raise DomainError("invalid team", problems)
    fields = dict(team_id=cmd.team_id, name=cmd.name.strip(), timezone=timezone,
                  currency=currency, manager_ids=tuple(dict.fromkeys(managers)),
                  scheme_id=scheme_id)
    if state is None:
        return [TeamRegistered(**fields)]
    if (state.name, state.timezone, state.currency, state.manager_ids, state.scheme_id) == (
        fields["name"], timezone, currency, fields["manager_ids"], scheme_id
    ):
        return []
    return [TeamChanged(**fields)]


@dataclass(frozen=True)
class PutAgent:
    """Create or change an agent; a different team_id is a transfer."""

    agent_id: str
    name: str
    team_id: str
    position: str | None = None


def decide_put_agent(state: Agent | None, cmd: PutAgent, now: datetime) -> list[DomainEvent]:
    """Register, change or transfer an agent; the caller has checked that the team exists."""
    check_id(cmd.agent_id, "agent_id")
    check_id(cmd.team_id, "team_id")
    if not cmd.name.strip():
        raise DomainError("invalid agent", [FieldError("name", "must not be blank")])
    position = cmd.position.strip() if cmd.position else None
    if state is None:
        return [AgentRegistered(agent_id=cmd.agent_id, name=cmd.name.strip(),
                                team_id=cmd.team_id, position=position, effective_at=now)]
    events: list[DomainEvent] = []
    if (state.name, state.position) != (cmd.name.strip(), position if cmd.position is not None
                                        else state.position):
        events.append(AgentChanged(agent_id=cmd.agent_id, name=cmd.name.strip(),
                                   position=position if cmd.position is not None
                                   else state.position))
    if state.team_id != cmd.team_id:
        events.append(AgentTransferred(agent_id=cmd.agent_id, from_team_id=state.team_id,
                                       to_team_id=cmd.team_id, effective_at=now))
    return events

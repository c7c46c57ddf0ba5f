"""Teams and agents."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response
from pydantic import Field

from service.api.access import ensure_team_member_or_manager
from service.api.auth import (
    allow,
    ensure_manager_of,
    ensure_person,
    ensure_self_or_manager,
)
from service.api.deps import caller, service_context
from service.api.pagination import Paging, link, matches, paginate, paging
from service.api.params import IdPath
from service.api.routing import Router
from service.api.schemas import (
    AbsenceIn,
    AbsenceList,
    AbsenceOut,
    AgentIn,
    AgentList,
    AgentOut,
    MembershipOut,
    PersonIn,
    PersonOut,
    ReminderList,
    ReminderOut,
    TeamIn,
    TeamOut,
)
from service.api.tabular import CSV_ANSWER, table_response, wants_table
from service.commands import directory as commands
from service.context import ServiceContext
from service.domain import directory as d
from service.domain import policy
from service.domain.errors import Forbidden, NotFound
from service.domain.principal import Principal
from service.domain.text import PRINTABLE_PATTERN
from service.projections.directory import Directory
from service.queries import directory as reads
from service.queries.roster import team_agents
from service.queries.wait import READ_TIMEOUT, wait
from service.store import reminders as reminder_store

router = Router(prefix="/v1", tags=["directory"])


def team_out(team: d.Team) -> TeamOut:
    """Render a team."""
    return TeamOut(team_id=team.team_id, name=team.name, timezone=team.timezone,
                   currency=team.currency, manager_ids=list(team.manager_ids),
                   scheme_id=team.scheme_id, version=team.version,
                   kpi_targets=dict(team.kpi_targets), locale=team.locale)


def agent_out(agent: d.Agent) -> AgentOut:
    """Render an agent with their team history."""
    return AgentOut(
        agent_id=agent.agent_id, name=agent.name, team_id=agent.team_id,
        position=agent.position, version=agent.version,
        history=[MembershipOut(team_id=m.team_id, since=m.since, until=m.until)
                 for m in agent.history],
        hired_on=agent.hired_on, left_on=agent.left_on,
    )


def absence_out(agent_id: str, absence: d.Absence) -> AbsenceOut:
    """Render an absence."""
    return AbsenceOut(
        agent_id=agent_id, absence_id=absence.absence_id, from_date=absence.from_date,
        to_date=absence.to_date, kind=absence.kind, note=absence.note,
        status="cancelled" if absence.cancelled_at else "active", revision=absence.revision,
        recorded_at=absence.recorded_at, cancelled_at=absence.cancelled_at,
    )


@router.put("/teams/{team_id}", response_model=TeamOut,
            responses={201: {"model": TeamOut, "description": "created"}})
async def put_team(
    team_id: IdPath, body: TeamIn, request: Request, response: Response,
    principal: Annotated[Principal, allow()],
) -> TeamOut:
    """Create or change a team (admin)."""
    ctx = service_context(request)
    team, created = await commands.put_team(
        ctx, caller(principal, request),
        d.PutTeam(team_id, body.name, body.timezone, body.currency, body.manager_ids,
                  body.scheme_id, body.kpi_targets, body.locale),
    )
    response.status_code = 201 if created else 200
    return team_out(team)


@router.get("/teams/{team_id}", response_model=TeamOut)
async def get_team(
    team_id: IdPath, request: Request, principal: Annotated[Principal, allow("manager", "agent")],
) -> TeamOut:
    """Return a team (its managers, its agents, admins and readers)."""
    ctx = service_context(request)
    team = await reads.get_team(ctx, team_id)
    await ensure_team_member_or_manager(ctx, principal, team)
    return team_out(team)


class AgentPage(AgentList):
    """A page of a team's current agents."""

    next: str | None = Field(default=None, description="pass as `after` for the next page")


_AGENT_PAGING = paging(("agent_id", "name", "position", "joined_at"), "agent_id",
                       ("agent_id",))


@router.get("/teams/{team_id}/agents", response_model=AgentPage,
            responses=CSV_ANSWER)
async def list_team_agents(
    team_id: IdPath, request: Request, response: Response,
    principal: Annotated[Principal, allow("manager", "agent")],
    page: Annotated[Paging, Depends(_AGENT_PAGING)],
    position: Annotated[str | None, Query(max_length=100, pattern=PRINTABLE_PATTERN,
                                          description="only agents in this position")] = None,
) -> AgentPage | Response:
    """Return the team's current agents (paged, sorted, filtered by position; or CSV)."""
    ctx = service_context(request)
    team = await reads.get_team(ctx, team_id)
    await ensure_team_member_or_manager(ctx, principal, team)
    await wait(ctx, Directory(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        rows = await team_agents(conn, team_id)
    found = paginate([r for r in rows if matches(r["position"], position)], page)
    agents = [await reads.get_agent(ctx, r["agent_id"]) for r in found.items]
    if wants_table(request):
        return link(table_response(
            request,
            [{"agent_id": a.agent_id, "name": a.name, "team_id": a.team_id,
              "position": a.position, "since": a.history[-1].since.isoformat()} for a in agents],
            ("agent_id", "name", "team_id", "position", "since"), f"agents-{team_id}",
        ), request, found.next, csv=True)
    link(response, request, found.next)
    return AgentPage(team_id=team_id, items=[agent_out(a) for a in agents], next=found.next)


@router.put("/agents/{agent_id}", response_model=AgentOut,
            responses={201: {"model": AgentOut, "description": "created"}})
async def put_agent(
    agent_id: IdPath, body: AgentIn, request: Request, response: Response,
    principal: Annotated[Principal, allow("manager")],
) -> AgentOut:
    """Create or change an agent; a different team_id is a transfer (admin, or a manager of
    every team involved)."""
    ctx = service_context(request)
    if principal.role == "manager":
        d.check_id(body.team_id, "team_id")
        target = await reads.get_team(ctx, body.team_id)
        ensure_manager_of(principal, target.manager_ids)
        current = await reads.find_agent(ctx, agent_id)
        if current is not None and current.team_id != body.team_id:
            ensure_manager_of(principal, (await reads.get_team(ctx, current.team_id))
                              .manager_ids)
    agent, created = await commands.put_agent(
        ctx, caller(principal, request), d.PutAgent(
            agent_id, body.name, body.team_id, body.position, body.hired_on, body.left_on,
            frozenset(body.model_fields_set & {"hired_on", "left_on"})),
    )
    response.status_code = 201 if created else 200
    return agent_out(agent)


@router.get("/agents/{agent_id}", response_model=AgentOut)
async def get_agent(
    agent_id: IdPath, request: Request, principal: Annotated[Principal, allow("manager", "agent")],
) -> AgentOut:
    """Return an agent (the agent, their team's managers, admins and readers)."""
    ctx = service_context(request)
    agent = await reads.get_agent(ctx, agent_id)
    team = await reads.get_team(ctx, agent.team_id)
    ensure_self_or_manager(principal, agent_id, team.manager_ids)
    return agent_out(agent)


async def _absence_writer(ctx: ServiceContext, principal: Principal, agent_id: str) -> None:
    """Let admins and the managers of the agent's current team record absences."""
    agent = await reads.get_agent(ctx, agent_id)
    ensure_manager_of(principal, (await reads.get_team(ctx, agent.team_id)).manager_ids)


@router.put("/agents/{agent_id}/absences/{absence_id}", response_model=AbsenceOut,
            response_model_by_alias=True,
            responses={201: {"model": AbsenceOut, "description": "created"}})
async def put_absence(
    agent_id: IdPath, absence_id: IdPath, body: AbsenceIn, request: Request,
    response: Response,
    principal: Annotated[Principal, allow("manager")],
) -> AbsenceOut:
    """Record or change an agent's absence, dates inclusive in the team's time zone (a
    manager of the agent's team, or an admin)."""
    ctx = service_context(request)
    await _absence_writer(ctx, principal, agent_id)
    absence, created = await commands.put_absence(ctx, caller(principal, request), d.PutAbsence(
        agent_id, absence_id, body.from_date, body.to_date, body.kind, body.note))
    response.status_code = 201 if created else 200
    return absence_out(agent_id, absence)


@router.delete("/agents/{agent_id}/absences/{absence_id}", response_model=AbsenceOut,
               response_model_by_alias=True)
async def cancel_absence(
    agent_id: IdPath, absence_id: IdPath, request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> AbsenceOut:
    """Cancel an absence: recorded as a cancellation, kept in the history."""
    ctx = service_context(request)
    await _absence_writer(ctx, principal, agent_id)
    absence = await commands.cancel_absence(ctx, caller(principal, request), agent_id,
                                            absence_id)
    return absence_out(agent_id, absence)


async def _absence_reader(ctx: ServiceContext, principal: Principal, agent_id: str) -> d.Agent:
    agent = await reads.get_agent(ctx, agent_id)
    team = await reads.get_team(ctx, agent.team_id)
    ensure_self_or_manager(principal, agent_id, team.manager_ids)
    return agent


@router.get("/agents/{agent_id}/absences", response_model=AbsenceList,
            response_model_by_alias=True)
async def list_absences(
    agent_id: IdPath, request: Request, principal: Annotated[Principal, allow("manager", "agent")],
) -> AbsenceList:
    """Return an agent's absences, cancelled ones included (the agent, their team's managers,
    admins and readers)."""
    ctx = service_context(request)
    agent = await _absence_reader(ctx, principal, agent_id)
    ordered = sorted(agent.absences.values(), key=lambda a: (a.from_date, a.absence_id))
    return AbsenceList(agent_id=agent_id, items=[absence_out(agent_id, a) for a in ordered])


@router.get("/agents/{agent_id}/absences/{absence_id}", response_model=AbsenceOut,
            response_model_by_alias=True)
async def get_absence(
    agent_id: IdPath, absence_id: IdPath, request: Request,
    principal: Annotated[Principal, allow("manager", "agent")],
) -> AbsenceOut:
    """Return one absence of an agent."""
    ctx = service_context(request)
    agent = await _absence_reader(ctx, principal, agent_id)
    absence = agent.absences.get(absence_id)
    if absence is None:
        raise NotFound(f"agent {agent_id} has no absence {absence_id}")
    return absence_out(agent_id, absence)


def person_out(person: d.Person) -> PersonOut:
    """Render a person's contact details."""
    return PersonOut(person_id=person.person_id, email=person.email, locale=person.locale,
                     reminders="on" if person.reminders else "off", version=person.version)


@router.get("/people/{person_id}", response_model=PersonOut)
async def get_person(
    person_id: str, request: Request,
    principal: Annotated[Principal, allow("manager", "agent", "rater")],
) -> PersonOut:
    """Return how a person is reached: email, language, reminders on or off (the person,
    admins and readers)."""
    ctx = service_context(request)
    ensure_person(principal, person_id)
    return person_out(await reads.get_person(ctx, person_id))


@router.put("/people/{person_id}", response_model=PersonOut)
async def put_person(
    person_id: str, body: PersonIn, request: Request,
    principal: Annotated[Principal, allow("manager", "agent", "rater")],
) -> PersonOut:
    """Set a person's email address (admins), language or reminders on or off (admins and the
    person). A person is an agent, a manager (an id in a team's manager_ids) or a rater."""
    ctx = service_context(request)
    ensure_person(principal, person_id)
    if "email" in body.model_fields_set and not policy.may_set_email(principal):
        raise Forbidden("only an admin sets email addresses; a person may change their own"
                        " locale and reminders")
    person = await commands.put_person(ctx, caller(principal, request), d.PutPerson(
        person_id, body.email, body.locale,
        None if body.reminders is None else body.reminders == "on",
        frozenset(body.model_fields_set)))
    return person_out(person)


@router.get("/people/{person_id}/reminders", response_model=ReminderList)
async def list_reminders(
    person_id: str, request: Request,
    principal: Annotated[Principal, allow("manager", "agent", "rater")],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReminderList:
    """Return a person's latest reminders, newest first, with the state of their emails."""
    ctx = service_context(request)
    ensure_person(principal, person_id)
    d.check_id(person_id, "person_id")
    async with ctx.db.connection() as conn:
        rows = await reminder_store.of_person(conn, person_id, limit)
    return ReminderList(
        person_id=person_id, sending=ctx.settings.smtp_url is not None,
        items=[ReminderOut(**{**row, "reminder_id": str(row["reminder_id"]),
                              "message_id": str(row["message_id"]) if row["message_id"]
                              else None})
               for row in rows],
    )

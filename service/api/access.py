"""What a caller may reach, checked against the data: the scope checks both doors run.

The JSON API's routes and the pages (``service/ui/``) call these before they read through
``service/queries/`` or write through ``service/commands/``, so a page refuses exactly what the
API refuses. Every yes or no comes from ``service.domain.policy``; what is here is the reading
of the data the policy needs (is this agent a member of the team, which teams does this
manager run, is this month's result released to its agent) and the 403 problem of a no.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.api.auth import ensure_manager_of, ensure_self
from service.api.problems import Problem
from service.context import ServiceContext
from service.domain import directory as d
from service.domain import policy
from service.domain.periods import check_period
from service.domain.principal import Principal
from service.projections.directory import Directory
from service.projections.releases import Releases
from service.projections.sanctions import Sanctions
from service.queries import appeals
from service.queries import release as release_reads
from service.queries import sanctions as ledger_reads
from service.queries.cycles import get_cycle
from service.queries.directory import find_agent, get_team
from service.queries.wait import READ_TIMEOUT, wait


async def is_team_member_or_manager(
    ctx: ServiceContext, principal: Principal, team: d.Team
) -> bool:
    """Tell whether the principal is an agent of the team or may manage it."""
    member = False
    if principal.role == "agent":
        agent = await find_agent(ctx, principal.subject)
        member = agent is not None and agent.team_id == team.team_id
    return policy.may_see_team(principal, team.manager_ids, member=member)


async def ensure_team_member_or_manager(
    ctx: ServiceContext, principal: Principal, team: d.Team
) -> None:
    """Let an agent of the team through; otherwise the caller must manage it."""
    if not await is_team_member_or_manager(ctx, principal, team):
        ensure_manager_of(principal, team.manager_ids)  # refuses, saying why


def ensure_may_see_ranking(principal: Principal, status: str) -> None:
    """Refuse (403) a ranking of a month the principal may not see in this status."""
    if not policy.may_see_ranking(principal, status):
        raise Problem(403, "agents see their team's ranking once it is published",
                      kind="forbidden")


async def ensure_ranking_released(
    ctx: ServiceContext, principal: Principal, team_id: str, period: str
) -> None:
    """Refuse (403) an agent the team's ranking while a ranked agent's result is withheld."""
    if not policy.sees_ranking_once_all_released(principal):
        return
    waiting = await release_reads.ranked_waiting(ctx, team_id, period)
    if waiting:
        raise Problem(403, "the team's ranking is shown to its agents once every ranked agent's"
                           " result is released; %(n)s still waiting",
                      kind="forbidden", values={"n": len(waiting)}, waiting=len(waiting))


def ensure_appellant(principal: Principal, agent_id: str) -> None:
    """Refuse (403) anyone but the agent appealing their own month."""
    if not policy.is_agent(principal, agent_id):
        raise Problem(403, "only agent %(agent)s may appeal their month", kind="out-of-scope",
                      values={"agent": agent_id})


async def ensure_released(
    ctx: ServiceContext, principal: Principal, team_id: str, period: str
) -> None:
    """Refuse (403) an agent the plan of a month whose result is not released to them yet."""
    if principal.role != "agent":
        return
    cycle = await get_cycle(ctx, team_id, period)
    if cycle.status == "published" and await release_reads.withheld(ctx, cycle,
                                                                    principal.subject):
        raise Problem(403, "your result of %(team)s/%(period)s is not released to you yet; it"
                           " follows your feedback interview", kind="forbidden",
                      values={"team": team_id, "period": period})


async def sanction_filters(
    ctx: ServiceContext, principal: Principal, *, team_id: str | None, period: str | None,
    agent_id: str | None, kinds: Sequence[str] | None = None, status: str | None = None,
    final: bool | None = None,
) -> ledger_reads.Filters:
    """Narrow a ledger request to what the caller may read; refuse (403) what they may not."""
    if period is not None:
        check_period(period, ctx.clock())
    teams: list[str] | None = None
    if principal.role == "agent":
        if agent_id is not None:
            ensure_self(principal, agent_id)
        agent_id = principal.subject
    elif principal.role == "manager":
        if team_id is not None:
            team = await get_team(ctx, team_id)
            ensure_manager_of(principal, team.manager_ids)
        else:
            teams = await managed_teams(ctx, principal)
    await wait(ctx, Sanctions(), Releases(), timeout=READ_TIMEOUT)
    return ledger_reads.Filters(team_id=team_id, period=period, agent_id=agent_id, kinds=kinds,
                                status=status, teams=teams,
                                released_only=principal.role == "agent", final=final)


async def appeal_filters(ctx: ServiceContext, principal: Principal, *, team_id: str | None,
                         period: str | None, status: str | None) -> appeals.Filters:
    """Narrow an appeals request: agents see their own appeals, managers their teams'."""
    if period is not None:
        check_period(period, ctx.clock())
    agent_id = None
    teams: list[str] | None = None
    if principal.role == "agent":
        agent_id = principal.subject
    elif principal.role == "manager":
        if team_id is not None:
            ensure_manager_of(principal, (await get_team(ctx, team_id)).manager_ids)
        else:
            teams = await managed_teams(ctx, principal)
    return appeals.Filters(team_id, period, agent_id, status, teams)


async def managed_teams(ctx: ServiceContext, principal: Principal) -> list[str]:
    """Return the teams a manager runs (directory read model)."""
    await wait(ctx, Directory(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        return await ledger_reads.managed_teams(conn, principal.subject)

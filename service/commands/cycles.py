"""Cycle commands: open, evaluate, close (freezing every number), publish, reopen."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from service.commands.base import Caller, execute
from service.context import ServiceContext
from service.domain import cycle as c
from service.domain.directory import Team
from service.domain.errors import DomainError, FieldError, NotFound
from service.domain.periods import (
    check_period,
    evaluation_deadline,
    next_period,
    parse_period,
    zone,
)
from service.domain.scheme import ResultsPolicy
from service.queries import schemes
from service.queries.cycles import (
    EvaluationReads,
    cycle_scheme,
    evaluation_reads,
    find_cycle,
    get_cycle,
    held_evaluation_reads,
    pinned_scheme,
    presence_of,
    previous_last_places,
    roster,
)
from service.queries.directory import get_team
from service.queries.training import find_training
from service.store.database import DATABASE_AWAY
from service.store.errors import ConcurrencyError

#: How far ahead a correction can reach a streak, whatever a later month's policy says.
MAX_STREAK_LOOKAHEAD = 12
#: A month's ranking document changes only with its close, publication and reopening (a
#: correction is a reopening and a new close): each drops every process's cached rankings.
RANKINGS = "rankings"


async def open_cycle(
    ctx: ServiceContext, caller: Caller, team: Team, period: str, scheme_id: str | None,
    scheme_version: int | None = None,
) -> c.Cycle:
    """Open a team's month pinned to the scheme version in force now (or the one named)."""
    now = ctx.clock()
    check_period(period, now)
    try:
        scheme = await schemes.get_scheme(ctx, scheme_id or team.scheme_id, scheme_version)
    except NotFound as exc:
        if scheme_version is None:
            raise
        wrong = FieldError("scheme_version", "not a version in force")
        raise DomainError(exc.message, [wrong], values=exc.values) from exc
    deadline = evaluation_deadline(period, zone(team.timezone))
    cycle, _ = await execute(
        ctx, caller, c.cycle_stream(team.team_id, period), c.evolve,
        lambda state: c.decide_open(state, team.team_id, period, scheme, deadline, now),
        fold=c.evolve_all,
    )
    assert cycle is not None
    return cycle


@dataclass(frozen=True)
class Evaluate:
    """Submit or revise an evaluation."""

    team_id: str
    period: str
    agent_id: str
    rater_role: str
    rater_id: str
    scores: Mapping[str, float]
    comment: str | None


async def evaluate(ctx: ServiceContext, caller: Caller, cmd: Evaluate,
                   admit: Callable[[Team], None]) -> c.EvaluationSubmitted:
    """Record an evaluation of an agent in a team's month; the last committed revision wins.
    ``admit`` is the caller's check of the rater against the team (it raises to refuse).

    First on the team, the agent and the month as this process holds them, with no read at
    all: the one statement is the append, refused if any of the three moved since. A refusal,
    of that append or by any check on those states, is taken again on the three read anew (one
    round trip, ``queries.cycles.evaluation_reads``), so no answer comes from a state that is
    not current; a check's refusal stands as it was when none of them had moved.
    """
    held = held_evaluation_reads(ctx, cmd.team_id, cmd.period, cmd.agent_id)
    if held is not None:
        try:
            return await _evaluate(ctx, caller, cmd, admit, held, guarded=True)
        except ConcurrencyError:
            pass  # one of the three moved since
        except DATABASE_AWAY:
            raise  # not a refusal: the append may even have committed
        except Exception:
            read = await evaluation_reads(ctx, cmd.team_id, cmd.period, cmd.agent_id)
            if read[2][1] == held[2][1] and read[3] == held[3]:
                raise  # decided on the current states: the refusal stands
            return await _evaluate(ctx, caller, cmd, admit, read)
    read = await evaluation_reads(ctx, cmd.team_id, cmd.period, cmd.agent_id)
    return await _evaluate(ctx, caller, cmd, admit, read)


async def _evaluate(ctx: ServiceContext, caller: Caller, cmd: Evaluate,
                    admit: Callable[[Team], None], read: EvaluationReads, *,
                    guarded: bool = False) -> c.EvaluationSubmitted:
    """Check and record an evaluation on the team, the agent and the month given; ``guarded``:
    the append also checks that the team and the agent are still at the versions given (the
    month's own version it always checks, and decides again on it under its lock when that
    alone moved and nothing is guarded)."""
    team, agent, month, versions = read
    admit(team)
    scheme = await pinned_scheme(ctx, cmd.team_id, cmd.period)
    in_team = agent is not None and agent.team_id == cmd.team_id
    # Only roles that need training pay for reading the rater's records.
    trained = (await find_training(ctx, cmd.rater_id)).records if (
        cmd.rater_role in scheme.requires_training) else None
    # Only a rater about to judge their own case needs the team's managers (to name who may).
    own_case = cmd.rater_role != "self" and cmd.rater_id == cmd.agent_id
    managers = team.manager_ids if own_case else ()
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, c.cycle_stream(cmd.team_id, cmd.period), c.evolve,
        lambda current: c.decide_evaluate(
            current, scheme, agent_id=cmd.agent_id, rater_role=cmd.rater_role,
            rater_id=cmd.rater_id, scores=cmd.scores, comment=cmd.comment,
            agent_in_team=in_team, now=now, rater_training=trained, manager_ids=managers,
            position=agent.position if agent is not None else None,
        ),
        fold=c.evolve_all, read=month, guards=versions if guarded else None,
    )
    assert state is not None
    return state.evaluations[(cmd.agent_id, cmd.rater_role, cmd.rater_id)]


@dataclass(frozen=True)
class Close:
    """Close a month, optionally forced with a reason and a policy for missing evaluations."""

    team_id: str
    period: str
    force: bool = False
    reason: str | None = None
    missing_policy: c.MissingPolicy | None = None


async def close(ctx: ServiceContext, caller: Caller, cmd: Close) -> c.Cycle:
    """Close the month, freezing KPIs, scores and ranking into the close event."""
    team = await get_team(ctx, cmd.team_id)
    scheme = await pinned_scheme(ctx, cmd.team_id, cmd.period)
    agents = await roster(ctx, team, cmd.period, scheme)
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, c.cycle_stream(cmd.team_id, cmd.period), c.evolve,
        lambda current: c.decide_close(
            current, scheme, agents, force=cmd.force, reason=cmd.reason,
            missing_policy=cmd.missing_policy, now=now, presence=presence_of(team),
        ),
        fold=c.evolve_all, announces=RANKINGS,
    )
    assert state is not None
    return state


async def publish(ctx: ServiceContext, caller: Caller, team_id: str, period: str) -> c.Cycle:
    """Publish a closed month, deciding its rewards, deductions, plans and reviews.

    Then carry the month forward: the later published months whose reassignment reviews
    depend on it are re-derived (``carry_forward``).
    """
    parse_period(period)
    team = await get_team(ctx, team_id)
    policy = (await pinned_scheme(ctx, team_id, period)).results
    streaks = await previous_last_places(ctx, team_id, period, policy.streak_length - 1)
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, c.cycle_stream(team_id, period), c.evolve,
        lambda current: c.decide_publish(current, now, policy=policy, currency=team.currency,
                                         previous_last_places=streaks),
        fold=c.evolve_all, announces=RANKINGS,
    )
    assert state is not None
    await carry_forward(ctx, caller, state)
    return state


async def carry_forward(ctx: ServiceContext, caller: Caller, published: c.Cycle) -> list[str]:
    """Re-derive the reviews of the later months whose streak may include a published month.

    A later month's streak reaches back ``streak_length - 1`` months through published months
    only, so the walk stops at the first month not published or out of reach: a correction
    followed by a year of published months re-derives two of them, not twelve. Each month is
    decided on its own stream (``decide_revise_consequences``); one whose reviews come out the
    same records nothing. Should the service stop between the months, publishing the corrected
    month again (or the later month itself) re-derives what was left. Returns the revised months.
    """
    revised = []
    month = published.period
    for distance in range(1, MAX_STREAK_LOOKAHEAD + 1):
        month = next_period(month)
        later = await find_cycle(ctx, published.team_id, month)
        if later is None or later.status != "published" or later.closed is None:
            break
        policy = (await cycle_scheme(ctx, later)).results
        if distance >= policy.streak_length:
            break
        if await _revise(ctx, caller, published, month, policy):
            revised.append(month)
    return revised


async def _revise(ctx: ServiceContext, caller: Caller, published: c.Cycle, month: str,
                  policy: ResultsPolicy) -> bool:
    """Re-derive one later month's reviews; tell whether anything was recorded."""
    streaks = await previous_last_places(ctx, published.team_id, month, policy.streak_length - 1)
    now = ctx.clock()
    # Each month's revision is its own command: the caller's idempotency key (if any) belongs
    # to the publication, so the revision gets one derived from it.
    key = caller.idempotency_key
    step = Caller(caller.metadata, f"{key}:carry:{month}" if key else None)
    _, result = await execute(
        ctx, step, c.cycle_stream(published.team_id, month), c.evolve,
        lambda current: c.decide_revise_consequences(
            current, now, policy=policy, previous_last_places=streaks,
            corrected_period=published.period, corrected_publication=published.publications,
            correction=published.correction,
        ),
        fold=c.evolve_all,
    )
    return result is not None and not result.duplicate


async def reopen(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, reason: str | None
) -> c.Cycle:
    """Reopen a closed or published month for a correction."""
    await get_cycle(ctx, team_id, period)
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, c.cycle_stream(team_id, period), c.evolve,
        lambda current: c.decide_reopen(current, reason, now),
        fold=c.evolve_all, announces=RANKINGS,
    )
    assert state is not None
    return state

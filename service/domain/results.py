"""Apply a published ranking: rewards, deductions, improvement plans and reassignment reviews.

The rules (``domain.md``): rank 1 is rewarded and the last rank has an amount deducted; the
bottom two submit an improvement plan within a week of publication; an agent last for three
published months in a row is put up for a reassignment review, which a person decides. All of
it applies only when at least ``min_ranked_agents`` are ranked, and only when the ranking has a
first and a last: if every ranked agent ties (a team of one included) nobody is first or last,
and then the bottom two do not exist either, since being "bottom" would mean nothing more than
being in the team.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from service.domain.periods import previous_period
from service.domain.ranking import RankEntry
from service.domain.scheme import ResultsPolicy

ResultKind = Literal["reward", "deduction", "improvement_plan", "reassignment_review"]
PlanStatus = Literal["due", "submitted", "approved", "rejected", "overdue"]
PlanDecision = Literal["approved", "rejected"]


class ResultDecision(BaseModel):
    """One consequence of a published ranking for one agent, with the reason in words."""

    model_config = ConfigDict(frozen=True)

    kind: ResultKind
    agent_id: str
    rank: int
    places: tuple[int, int]
    amount: float | None = None
    currency: str | None = None
    due_at: datetime | None = None
    reason: str
    #: For a reassignment review: the consecutive months (oldest first) the agent was last.
    months: tuple[str, ...] = ()


def _has_first_and_last(entries: Sequence[RankEntry], min_ranked_agents: int) -> bool:
    return len(entries) >= min_ranked_agents and len({e.rank for e in entries}) > 1


def last_place_agents(entries: Sequence[RankEntry], *, min_ranked_agents: int) -> frozenset[str]:
    """Return the agents in last place; none when all tie or too few agents are ranked."""
    if not _has_first_and_last(entries, min_ranked_agents):
        return frozenset()
    last = max(e.rank for e in entries)
    return frozenset(e.agent_id for e in entries if e.rank == last)


def standing(rank: int, places: tuple[int, int], ranked: int) -> str:
    """Describe a place in a ranking in words: "rank 2 of 4, tied (places 2-3)"."""
    first, last = places
    if first == last:
        return f"rank {rank} of {ranked}"
    return f"rank {rank} of {ranked}, tied (places {first}-{last})"


def _standing(entry: RankEntry, ranked: int) -> str:
    return standing(entry.rank, entry.places, ranked)


def _streak(period: str | None, months: int) -> tuple[str, ...]:
    if period is None:
        return ()
    streak = [period]
    while len(streak) < months:
        streak.append(previous_period(streak[-1]))
    return tuple(reversed(streak))


def plan_due_at(published_at: datetime, policy: ResultsPolicy) -> datetime:
    """Return when an improvement plan is due: exactly the policy's days after publication."""
    if published_at.utcoffset() is None:
        raise ValueError("published_at must carry a time zone")
    return published_at + timedelta(days=policy.plan_deadline_days)


def decide_results(
    entries: Sequence[RankEntry],
    policy: ResultsPolicy,
    *,
    published_at: datetime,
    previous_last_places: Mapping[str, int],
    currency: str | None = None,
    period: str | None = None,
    plan_from: datetime | None = None,
) -> list[ResultDecision]:
    """Decide the month's rewards, deductions, improvement plans and reassignment reviews.

    ``previous_last_places[agent]`` is how many published months immediately before this one
    the agent was last in (see ``consecutive_last_places``). ``currency`` goes on the amounts;
    ``period``, when given, lets a review name the months of its streak. ``plan_from``: the
    moment a plan's days count from when not the publication (``after_interview``: the latest
    release; an earlier release brings the date forward, ``service.domain.release.plan_due``).
    """
    due_at = plan_due_at(plan_from or published_at, policy)
    counted_from = "the result's release" if plan_from is not None else "publication"
    if not _has_first_and_last(entries, policy.min_ranked_agents):
        return []
    ranked = len(entries)
    last = max(e.rank for e in entries)
    decisions = [
        ResultDecision(
            kind="reward",
            agent_id=e.agent_id,
            rank=e.rank,
            places=e.places,
            amount=policy.reward_amount,
            currency=currency,
            reason=f"first place: {_standing(e, ranked)}",
        )
        for e in entries
        if e.rank == 1
    ]
    decisions += [
        ResultDecision(
            kind="deduction",
            agent_id=e.agent_id,
            rank=e.rank,
            places=e.places,
            amount=policy.deduction_amount,
            currency=currency,
            reason=f"last place: {_standing(e, ranked)}",
        )
        for e in entries
        if e.rank == last
    ]
    # The two lowest places are ranked-1 and ranked; a tied group is in the bottom two when the
    # places it occupies reach into them (in 1, 2, 2, 4 the pair at 2 occupies places 2-3).
    decisions += [
        ResultDecision(
            kind="improvement_plan",
            agent_id=e.agent_id,
            rank=e.rank,
            places=e.places,
            due_at=due_at,
            reason=(
                f"bottom two (places {ranked - 1}-{ranked} of {ranked}): {_standing(e, ranked)};"
                f" a plan is due {policy.plan_deadline_days} days after {counted_from}"
            ),
        )
        for e in entries
        if e.places[1] >= ranked - 1
    ]
    for e in entries:
        months = previous_last_places.get(e.agent_id, 0) + 1
        if e.rank == last and months >= policy.streak_length:
            decisions.append(
                ResultDecision(
                    kind="reassignment_review",
                    agent_id=e.agent_id,
                    rank=e.rank,
                    places=e.places,
                    reason=(
                        f"last place in {months} consecutive published months: "
                        f"{_standing(e, ranked)} this month"
                    ),
                    months=_streak(period, months),
                )
            )
    return decisions


def consecutive_last_places(
    agent_id: str, period: str, last_by_period: Mapping[str, Set[str]]
) -> int:
    """Count the months right before ``period`` in which the agent was last, without a gap.

    ``last_by_period`` maps each period with a published cycle of the team to its last-place
    agents (``last_place_agents``); a month missing from it breaks the streak.
    """
    count = 0
    month = previous_period(period)
    while agent_id in last_by_period.get(month, frozenset()):
        count += 1
        month = previous_period(month)
    return count


def plan_status(
    due_at: datetime,
    submitted_at: datetime | None,
    decision: PlanDecision | None,
    now: datetime,
) -> PlanStatus:
    """Return an improvement plan's status: a review decides it, a submission stops the clock."""
    if decision is not None:
        return decision
    if submitted_at is not None:
        return "submitted"
    # Due "within one week": the deadline instant itself is still on time.
    return "overdue" if now > due_at else "due"


def is_late(due_at: datetime, submitted_at: datetime) -> bool:
    """Return whether a plan was submitted after its deadline."""
    return submitted_at > due_at

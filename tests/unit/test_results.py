"""Applying a published ranking: rewards, deductions, plans, reassignment reviews, plan status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from service.domain.errors import DomainError
from service.domain.periods import previous_period
from service.domain.ranking import rank
from service.domain.results import (
    ResultDecision,
    consecutive_last_places,
    decide_results,
    is_late,
    last_place_agents,
    plan_status,
)
from service.domain.scheme import ResultsPolicy

POLICY = ResultsPolicy()  # reward 100, deduction 100, at least 3 ranked, 7 days, 3 in a row
PUBLISHED = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
DUE = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)


def _decide(
    scores: dict[str, float],
    policy: ResultsPolicy = POLICY,
    previous: dict[str, int] | None = None,
) -> list[ResultDecision]:
    return decide_results(
        rank(scores), policy, published_at=PUBLISHED, previous_last_places=previous or {}
    )


def _who(decisions: list[ResultDecision], kind: str) -> set[str]:
    return {d.agent_id for d in decisions if d.kind == kind}


# --- rewards, deductions, bottom two --------------------------------------------------------


def test_first_is_rewarded_last_deducted_bottom_two_plan() -> None:
    # Given four agents ranked 1, 2, 3, 4
    decisions = _decide({"a": 90, "b": 80, "c": 70, "d": 60})
    # Then a is rewarded 100, d has 100 deducted, c and d each owe a plan due a week later
    assert [(d.kind, d.agent_id, d.amount, d.due_at) for d in decisions] == [
        ("reward", "a", 100.0, None),
        ("deduction", "d", 100.0, None),
        ("improvement_plan", "c", None, DUE),
        ("improvement_plan", "d", None, DUE),
    ]


def test_reasons_say_rank_and_places() -> None:
    decisions = _decide({"a": 90, "b": 80, "c": 80, "d": 60})
    reasons = {(d.kind, d.agent_id): d.reason for d in decisions}
    assert "rank 1 of 4" in reasons[("reward", "a")]
    assert "rank 4 of 4" in reasons[("deduction", "d")]
    assert "rank 2 of 4, tied (places 2-3)" in reasons[("improvement_plan", "b")]
    assert "bottom two (places 3-4 of 4)" in reasons[("improvement_plan", "b")]


def test_a_tied_pair_reaching_into_the_bottom_two_owes_plans() -> None:
    # Given 1, 2, 2, 4: the pair at rank 2 occupies places 2-3, and place 3 is in the bottom two
    decisions = _decide({"a": 90, "b": 80, "c": 80, "d": 60})
    assert _who(decisions, "improvement_plan") == {"b", "c", "d"}
    assert _who(decisions, "reward") == {"a"}
    assert _who(decisions, "deduction") == {"d"}


def test_everyone_tied_first_is_rewarded() -> None:
    # Given 1, 1, 3, 4
    decisions = _decide({"a": 90, "b": 90, "c": 70, "d": 60})
    assert _who(decisions, "reward") == {"a", "b"}
    assert _who(decisions, "deduction") == {"d"}
    assert _who(decisions, "improvement_plan") == {"c", "d"}


def test_everyone_tied_last_is_deducted_and_the_pair_fills_the_bottom_two() -> None:
    # Given 1, 2, 3, 3: the pair occupies places 3-4, which are the bottom two; b at 2 is not
    decisions = _decide({"a": 90, "b": 80, "c": 60, "d": 60})
    assert _who(decisions, "deduction") == {"c", "d"}
    assert _who(decisions, "improvement_plan") == {"c", "d"}
    assert _who(decisions, "reward") == {"a"}


def test_a_tie_across_the_bottom_two_boundary_includes_the_whole_group() -> None:
    # Given five agents 1, 2, 3, 3, 5: the pair at 3 occupies places 3-4; place 4 is bottom two
    decisions = _decide({"a": 90, "b": 80, "c": 70, "d": 70, "e": 10})
    assert _who(decisions, "improvement_plan") == {"c", "d", "e"}
    # and with 1, 2, 2, 2, 5 the trio occupies places 2-4
    decisions = _decide({"a": 90, "b": 80, "c": 80, "d": 80, "e": 10})
    assert _who(decisions, "improvement_plan") == {"b", "c", "d", "e"}


def test_ties_at_both_ends() -> None:
    # Given 1, 1, 3, 4, 4 in a team of five
    decisions = _decide({"a": 90, "b": 90, "c": 50, "d": 10, "e": 10})
    assert _who(decisions, "reward") == {"a", "b"}
    assert _who(decisions, "deduction") == {"d", "e"}
    assert _who(decisions, "improvement_plan") == {"d", "e"}


def test_every_ranked_agent_tied_means_no_first_no_last_and_no_bottom_two() -> None:
    assert _decide({"a": 50, "b": 50, "c": 50, "d": 50}) == []


# --- small teams ----------------------------------------------------------------------------


def test_a_team_of_three_is_enough() -> None:
    decisions = _decide({"a": 90, "b": 80, "c": 70})
    assert _who(decisions, "reward") == {"a"}
    assert _who(decisions, "deduction") == {"c"}
    assert _who(decisions, "improvement_plan") == {"b", "c"}


def test_in_a_team_of_three_a_tie_for_first_still_occupies_the_second_place() -> None:
    # Given 1, 1, 3: the pair occupies places 1-2, and the bottom two places are 2-3, so the
    # rule as written puts everyone on an improvement plan, the rewarded pair included
    decisions = _decide({"a": 90, "b": 90, "c": 70})
    assert _who(decisions, "reward") == {"a", "b"}
    assert _who(decisions, "deduction") == {"c"}
    assert _who(decisions, "improvement_plan") == {"a", "b", "c"}


def test_teams_of_one_and_two_are_below_the_minimum() -> None:
    assert _decide({"a": 90, "b": 10}) == []
    assert _decide({"solo": 90}) == []


def test_a_lower_minimum_lets_a_team_of_two_earn_results() -> None:
    decisions = _decide({"a": 90, "b": 10}, policy=ResultsPolicy(min_ranked_agents=2))
    assert _who(decisions, "reward") == {"a"}
    assert _who(decisions, "deduction") == {"b"}
    assert _who(decisions, "improvement_plan") == {"a", "b"}


def test_a_team_of_one_is_neither_first_nor_last_whatever_the_minimum() -> None:
    assert _decide({"solo": 90}, policy=ResultsPolicy(min_ranked_agents=1)) == []


def test_policy_amounts_and_deadline_are_used() -> None:
    policy = ResultsPolicy(reward_amount=250, deduction_amount=80, plan_deadline_days=14)
    decisions = _decide({"a": 90, "b": 80, "c": 70}, policy=policy)
    assert {(d.kind, d.amount) for d in decisions if d.amount is not None} == {
        ("reward", 250.0),
        ("deduction", 80.0),
    }
    plans = [d for d in decisions if d.kind == "improvement_plan"]
    assert {d.due_at for d in plans} == {PUBLISHED + timedelta(days=14)}


def test_the_deadline_is_exactly_seven_days_after_publication_in_any_zone() -> None:
    seoul = timezone(timedelta(hours=9))
    published = datetime(2026, 12, 3, 18, 30, tzinfo=seoul)
    decisions = decide_results(
        rank({"a": 3, "b": 2, "c": 1}), POLICY, published_at=published, previous_last_places={}
    )
    due = {d.due_at for d in decisions if d.kind == "improvement_plan"}
    assert due == {datetime(2026, 12, 10, 9, 30, tzinfo=UTC)}


def test_a_naive_publication_time_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        decide_results(
            rank({"a": 3, "b": 2, "c": 1}),
            POLICY,
            published_at=datetime(2026, 12, 3, 9, 30),  # naive on purpose
            previous_last_places={},
        )


# --- reassignment reviews -------------------------------------------------------------------


def test_third_month_in_a_row_last_opens_a_reassignment_review() -> None:
    decisions = _decide({"a": 90, "b": 80, "c": 70, "d": 60}, previous={"d": 2})
    reviews = [d for d in decisions if d.kind == "reassignment_review"]
    assert [(d.agent_id, d.amount, d.due_at) for d in reviews] == [("d", None, None)]
    assert "3 consecutive published months" in reviews[0].reason


def test_a_review_names_the_months_of_its_streak_and_amounts_their_currency() -> None:
    decisions = decide_results(
        rank({"a": 90, "b": 80, "c": 70}), POLICY, published_at=PUBLISHED,
        previous_last_places={"c": 2}, currency="KRW", period="2026-01",
    )
    review = next(d for d in decisions if d.kind == "reassignment_review")
    assert review.months == ("2025-11", "2025-12", "2026-01")
    assert {d.currency for d in decisions if d.amount is not None} == {"KRW"}
    assert {d.currency for d in decisions if d.amount is None} == {None}


def test_two_months_in_a_row_is_not_yet_a_streak() -> None:
    decisions = _decide({"a": 90, "b": 80, "c": 70, "d": 60}, previous={"d": 1})
    assert _who(decisions, "reassignment_review") == set()


def test_a_streak_needs_last_place_this_month_too() -> None:
    decisions = _decide({"a": 90, "b": 80, "c": 70, "d": 60}, previous={"c": 5})
    assert _who(decisions, "reassignment_review") == set()


def test_tied_last_agents_are_judged_on_their_own_streaks() -> None:
    decisions = _decide({"a": 90, "b": 80, "c": 60, "d": 60}, previous={"c": 2, "d": 0})
    assert _who(decisions, "reassignment_review") == {"c"}


def test_the_streak_length_is_policy() -> None:
    policy = ResultsPolicy(streak_length=2)
    decisions = _decide({"a": 90, "b": 80, "c": 70}, policy=policy, previous={"c": 1})
    assert _who(decisions, "reassignment_review") == {"c"}


def test_no_review_when_the_month_has_no_last_place() -> None:
    assert _decide({"a": 50, "b": 50, "c": 50}, previous={"a": 2, "b": 2, "c": 2}) == []
    assert _decide({"a": 90, "b": 10}, previous={"b": 2}) == []


def test_last_place_agents() -> None:
    assert last_place_agents(rank({"a": 4, "b": 3, "c": 3, "d": 1}), min_ranked_agents=3) == {"d"}
    assert last_place_agents(rank({"a": 4, "b": 3, "c": 1, "d": 1}), min_ranked_agents=3) == {
        "c",
        "d",
    }
    assert last_place_agents(rank({"a": 1, "b": 1, "c": 1}), min_ranked_agents=3) == set()
    assert last_place_agents(rank({"a": 2, "b": 1}), min_ranked_agents=3) == set()


def test_previous_period_crosses_the_year() -> None:
    assert previous_period("2026-11") == "2026-10"
    assert previous_period("2026-01") == "2025-12"
    # One definition of a month (service.domain.periods), refusing a bad one as a 422 would
    with pytest.raises(DomainError, match="YYYY-MM"):
        previous_period("2026-13")


def test_a_streak_counts_consecutive_published_months_and_a_gap_breaks_it() -> None:
    # Given the team's published months and who was last in each
    history = {"2026-10": {"d"}, "2026-09": {"d", "c"}, "2026-08": {"d"}, "2026-06": {"d"}}
    # Then before November d was last three months running, c only in September
    assert consecutive_last_places("d", "2026-11", history) == 3
    assert consecutive_last_places("c", "2026-11", history) == 0
    assert consecutive_last_places("c", "2026-10", history) == 1
    # and July was not published, so it breaks d's streak as seen from August
    assert consecutive_last_places("d", "2026-08", history) == 0
    assert consecutive_last_places("d", "2026-01", {"2025-12": {"d"}, "2025-11": {"d"}}) == 2


def test_a_streak_from_history_to_review() -> None:
    # Given d was last in September and October (both published)
    september = rank({"a": 70, "b": 60, "c": 50, "d": 40})
    october = rank({"a": 50, "b": 70, "c": 60, "d": 30})
    history = {
        "2026-09": last_place_agents(september, min_ranked_agents=3),
        "2026-10": last_place_agents(october, min_ranked_agents=3),
    }
    # When November is published with d last again
    previous = {a: consecutive_last_places(a, "2026-11", history) for a in "abcd"}
    decisions = _decide({"a": 80, "b": 75, "c": 70, "d": 20}, previous=previous)
    # Then d is up for a reassignment review
    assert _who(decisions, "reassignment_review") == {"d"}


# --- improvement plan status ----------------------------------------------------------------


def test_plan_is_due_until_its_deadline_then_overdue() -> None:
    assert plan_status(DUE, None, None, now=DUE - timedelta(days=1)) == "due"
    assert plan_status(DUE, None, None, now=DUE) == "due"
    assert plan_status(DUE, None, None, now=DUE + timedelta(seconds=1)) == "overdue"


def test_submitted_plans_wait_for_review_even_when_late() -> None:
    late = DUE + timedelta(hours=2)
    assert plan_status(DUE, late, None, now=late + timedelta(days=3)) == "submitted"
    assert is_late(DUE, late)
    assert not is_late(DUE, DUE)


def test_a_review_decides_the_status() -> None:
    submitted = DUE - timedelta(days=2)
    assert plan_status(DUE, submitted, "approved", now=DUE + timedelta(days=30)) == "approved"
    assert plan_status(DUE, submitted, "rejected", now=DUE) == "rejected"

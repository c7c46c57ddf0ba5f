"""Rater calibration, pure: levels, leave-one-out baselines, flags and gaps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.domain import calibration as cal
from service.domain.cycle import EvaluationSubmitted

NOW = datetime(2026, 11, 5, tzinfo=UTC)


def ev(agent: str, role: str, rater: str, *scores: float) -> EvaluationSubmitted:
    return EvaluationSubmitted(agent_id=agent, rater_role=role, rater_id=rater,
                               scores={f"c{i}": s for i, s in enumerate(scores)}, revision=1,
                               submitted_at=NOW)


def test_an_evaluation_level_is_its_mean_scaled_without_an_override() -> None:
    e = ev("a", "manager", "m", 50, 70)
    assert cal.level(e, 100) == 60
    assert cal.level(e, 10) == 600
    override = EvaluationSubmitted(agent_id="a", rater_role="manager", rater_id="m",
                                   scores={"work_performance": 0, "x": 80}, revision=1,
                                   submitted_at=NOW)
    assert cal.level(override, 100) == 80


def test_a_rater_far_from_the_others_on_enough_ratings_is_flagged() -> None:
    agents = ["a", "b", "c"]
    evaluations = [ev(x, "peer", "easy", 90) for x in agents]
    evaluations += [ev(x, "peer", "p1", 60) for x in agents]
    evaluations += [ev(x, "peer", "p2", 64) for x in agents]
    evaluations += [ev(x, "peer", "p3", 62) for x in agents]
    result = cal.calibrate(evaluations, 100, agents)
    flags = {r["rater_id"]: (r["flag"], r["deviation"]) for r in result["raters"]}
    assert flags["easy"] == ("lenient", pytest.approx(28))
    assert [flags[p][0] for p in ("p1", "p2", "p3")] == [None, None, None]


def test_the_limit_is_both_ten_points_and_one_stddev() -> None:
    agents = ["a", "b", "c"]
    # others spread widely (stddev 20): a 15-point bias is within one stddev
    evaluations = [ev(x, "peer", "r", 75) for x in agents]
    evaluations += [ev(x, "peer", "p1", s) for x, s in zip(agents, (40, 60, 80), strict=True)]
    evaluations += [ev(x, "peer", "p2", s) for x, s in zip(agents, (40, 60, 80), strict=True)]
    assert next(r for r in cal.calibrate(evaluations, 100, agents)["raters"]
                if r["rater_id"] == "r")["flag"] is None
    # others agree closely: 8 points is still under the 10-point floor
    close = [ev(x, "peer", "r", 68) for x in agents]
    close += [ev(x, "peer", "p1", 60) for x in agents]
    assert next(r for r in cal.calibrate(close, 100, agents)["raters"]
                if r["rater_id"] == "r")["flag"] is None


def test_fewer_than_three_ratings_on_either_side_are_not_judged() -> None:
    evaluations = [ev("a", "peer", "r", 100), ev("b", "peer", "r", 100)]
    evaluations += [ev(x, "peer", "p", 10) for x in ("a", "b", "c")]
    raters = {r["rater_id"]: r for r in cal.calibrate(evaluations, 100, ["a"])["raters"]}
    assert raters["r"]["flag"] is None and "fewer than 3 evaluations" in raters["r"]["reason"]
    assert raters["p"]["flag"] is None and "baseline" in raters["p"]["reason"]


def test_self_ratings_are_compared_with_the_managers_not_counted_as_a_rater() -> None:
    evaluations = [ev("a", "self", "a", 90), ev("a", "manager", "m", 60, 60),
                   ev("b", "manager", "m", 70)]
    result = cal.calibrate(evaluations, 100, ["a", "b"])
    assert [r["rater_id"] for r in result["raters"]] == ["m"]
    assert result["team"]["count"] == 2
    gaps = {g["agent_id"]: g for g in result["self_vs_manager"]}
    assert (gaps["a"]["gap"], gaps["a"]["flag"]) == (30, True)
    assert gaps["b"]["gap"] is None
    assert result["mean_gap"] == 30

"""Scoring: KPI attainment, re-normalisation, overrides, missing evaluations, training.

Expected numbers are worked out by hand in the comments, from the default scheme's table.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.kpis import Direction, Formula
from service.domain.scheme import (
    DEFAULT_SCHEME,
    Criterion,
    KpiDef,
    KpiOverride,
    RaterRole,
    Scheme,
    validate_scheme,
)
from service.domain.scoring import FORMULA_VERSION, attainment, score_agent

# --- attainment -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.30, 100.0),  # at target
        (0.45, 100.0),  # beyond target
        (0.05, 0.0),  # at floor
        (0.00, 0.0),  # beyond floor
        (0.175, 50.0),  # halfway: (0.175 - 0.05) / (0.30 - 0.05)
        (0.10, 20.0),  # (0.10 - 0.05) / 0.25
    ],
)
def test_attainment_when_higher_is_better(value: float, expected: float) -> None:
    assert attainment(value, target=0.30, floor=0.05, direction="higher") == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (30.0, 100.0),  # at target
        (5.0, 100.0),  # faster than target
        (180.0, 0.0),  # at floor
        (600.0, 0.0),  # slower than floor
        (105.0, 50.0),  # halfway between 30 and 180
        (150.0, 20.0),  # 30 of the 150 seconds left before the floor
    ],
)
def test_attainment_when_lower_is_better(value: float, expected: float) -> None:
    assert attainment(value, target=30.0, floor=180.0, direction="lower") == pytest.approx(expected)


def test_attainment_of_no_data_is_no_data() -> None:
    assert attainment(None, target=0.30, floor=0.05, direction="higher") is None
    assert attainment(float("nan"), target=30.0, floor=180.0, direction="lower") is None


_bound = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(
    a=_bound,
    b=_bound,
    low=_bound,
    gap=st.floats(min_value=1e-3, max_value=1e6),
    direction=st.sampled_from(["higher", "lower"]),
)
def test_attainment_is_bounded_and_monotone_in_the_kpi_direction(
    a: float, b: float, low: float, gap: float, direction: Direction
) -> None:
    # Given a valid target/floor pair for the direction, and two values a <= b
    a, b = min(a, b), max(a, b)
    high = low + gap
    target, floor = (high, low) if direction == "higher" else (low, high)
    at_a = attainment(a, target, floor, direction)
    at_b = attainment(b, target, floor, direction)
    # Then both lie in 0..100 and the better value never attains less
    assert at_a is not None and at_b is not None
    assert 0.0 <= at_a <= 100.0 and 0.0 <= at_b <= 100.0
    if direction == "higher":
        assert at_a <= at_b
    else:
        assert at_a >= at_b


# --- a worked example under the default scheme ---------------------------------------------
#
# KPI                         value   attainment  weight  contribution
# conversion_rate             0.175   50          0.15    7.5
# avg_response_time_seconds   30      100         0.10    10
# churn_rate                  0.30    0           0.10    0
# order_amount                25000   50          0.15    7.5
# valid_order_ratio           0.95    100         0.05    5
# payment_ratio               0.70    50          0.05    2.5
# refund_ratio                0.175   50          0.05    2.5
# avg_order_value             175     50          0.05    2.5
# report_timeliness (rated)   80      80          0.10    8
# report_reliability (rated)  60      60          0.10    6
# report_quality (rated)      100     100         0.10    10
# work_performance                                        61.5
#
# manager   = 0.25 * (61.5 + 70 + 80 + 90) = 75.375
# composite = 0.30 * 90 + 0.70 * 75.375   = 27 + 52.7625 = 79.7625

KPI_VALUES: dict[str, float | None] = {
    "conversion_rate": 0.175,
    "avg_response_time_seconds": 30.0,
    "churn_rate": 0.30,
    "order_amount": 25000.0,
    "valid_order_ratio": 0.95,
    "payment_ratio": 0.70,
    "refund_ratio": 0.175,
    "avg_order_value": 175.0,
}
MANAGER = {
    "work_ability": 70.0,
    "cooperation": 80.0,
    "service": 90.0,
    "report_timeliness": 80.0,
    "report_reliability": 60.0,
    "report_quality": 100.0,
}
SELF = {"task_completion": 90.0}
EVALUATIONS = {"self": SELF, "manager": MANAGER}


def test_worked_example_under_the_default_scheme() -> None:
    score = score_agent(DEFAULT_SCHEME, None, KPI_VALUES, EVALUATIONS)
    assert score.composite == pytest.approx(79.7625)
    assert score.roles["self"].score == pytest.approx(90.0)
    assert score.roles["manager"].score == pytest.approx(75.375)
    assert score.work_performance is not None
    assert score.work_performance.score == pytest.approx(61.5)
    assert not score.work_performance.overridden
    kpi = score.work_performance.kpis["conversion_rate"]
    assert (kpi.value, kpi.target, kpi.floor, kpi.direction) == (0.175, 0.30, 0.05, "higher")
    assert kpi.attainment == pytest.approx(50.0)
    assert kpi.effective_weight == pytest.approx(0.15)
    assert score.work_performance.kpis["report_reliability"].attainment == pytest.approx(60.0)
    assert score.roles["manager"].criteria["work_performance"].score == pytest.approx(61.5)
    assert score.missing_roles == ()
    assert score.notes == ()
    assert (score.scheme_id, score.scheme_version) == ("online-shop-cs", 1)
    assert score.formula_version == FORMULA_VERSION


def test_weightless_roles_are_ignored_and_say_so() -> None:
    # Given a peer rating under the default scheme, where peers weigh 0
    evaluations = EVALUATIONS | {"peer": {"collaboration": 10.0}}
    score = score_agent(DEFAULT_SCHEME, None, KPI_VALUES, evaluations)
    # Then the composite is unchanged and the scorecard explains why
    assert score.composite == pytest.approx(79.7625)
    assert "peer" not in score.roles
    assert any("peer" in note and "weight is 0" in note for note in score.notes)


def test_rated_scores_are_normalised_from_the_scheme_scale() -> None:
    # Given a scheme rated out of 10 rather than 100, and the same ratings divided by 10
    scheme = DEFAULT_SCHEME.model_copy(update={"scale_max": 10.0})
    evaluations = {
        "self": {"task_completion": 9.0},
        "manager": {name: value / 10 for name, value in MANAGER.items()},
    }
    # Then the scores are the same on the 0..100 scale
    score = score_agent(scheme, None, KPI_VALUES, evaluations)
    assert score.composite == pytest.approx(79.7625)


def test_composite_is_rounded_to_four_decimals() -> None:
    # self only (manager dropped), rated 100/3 = 33.3333...
    score = score_agent(
        DEFAULT_SCHEME,
        None,
        KPI_VALUES,
        {"self": {"task_completion": 100 / 3}},
        missing_roles_policy="renormalize",
    )
    assert score.composite == 33.3333


# --- KPIs without data ----------------------------------------------------------------------


def test_kpis_without_data_drop_out_and_the_rest_are_renormalised() -> None:
    # Given no consultations: conversion_rate (0.15, 7.5) and churn_rate (0.10, 0) have no data
    kpis = KPI_VALUES | {"conversion_rate": None, "churn_rate": None}
    score = score_agent(DEFAULT_SCHEME, None, kpis, EVALUATIONS)
    # Then work_performance = (61.5 - 7.5 - 0) / 0.75 = 72
    #      manager = 0.25 * (72 + 70 + 80 + 90) = 78; composite = 27 + 0.7 * 78 = 81.6
    wp = score.work_performance
    assert wp is not None
    assert wp.score == pytest.approx(72.0)
    assert score.composite == pytest.approx(81.6)
    assert wp.kpis["churn_rate"].dropped and wp.kpis["churn_rate"].effective_weight == 0.0
    assert wp.kpis["order_amount"].effective_weight == pytest.approx(0.15 / 0.75)
    assert any(
        "conversion_rate" in n and "churn_rate" in n and "re-normalised" in n for n in score.notes
    )


def test_a_kpi_missing_from_the_values_counts_as_no_data() -> None:
    kpis = {k: v for k, v in KPI_VALUES.items() if k != "churn_rate"}
    score = score_agent(DEFAULT_SCHEME, None, kpis, EVALUATIONS)
    # work_performance = 61.5 / 0.9 (churn contributed 0 with weight 0.10)
    assert score.work_performance is not None
    assert score.work_performance.score == pytest.approx(61.5 / 0.9)
    assert score.work_performance.kpis["churn_rate"].dropped


def test_without_any_kpi_data_work_performance_drops_out_of_the_manager_role() -> None:
    # Given no KPI data and no report ratings
    manager = {"work_ability": 70.0, "cooperation": 80.0, "service": 90.0}
    no_data = dict.fromkeys(KPI_VALUES)
    score = score_agent(DEFAULT_SCHEME, None, no_data, {"self": SELF, "manager": manager})
    # Then manager = (70 + 80 + 90) / 3 = 80, composite = 27 + 0.7 * 80 = 83
    assert score.work_performance is not None and score.work_performance.score is None
    assert score.roles["manager"].score == pytest.approx(80.0)
    assert score.roles["manager"].criteria["service"].effective_weight == pytest.approx(1 / 3)
    assert score.composite == pytest.approx(83.0)
    assert any("work_performance" in n and "re-normalised" in n for n in score.notes)


def test_position_overrides_change_the_targets_used() -> None:
    # Given senior agents whose order_amount target is 100000: 25000 attains 25, not 50
    scheme = DEFAULT_SCHEME.model_copy(
        update={"position_overrides": {"senior": {"order_amount": KpiOverride(target=100000.0)}}}
    )
    score = score_agent(scheme, "senior", KPI_VALUES, EVALUATIONS)
    # Then work_performance = 61.5 - 0.15 * 50 + 0.15 * 25 = 57.75
    assert score.work_performance is not None
    assert score.work_performance.score == pytest.approx(57.75)
    assert score.work_performance.kpis["order_amount"].target == 100000.0
    assert score.position == "senior"


# --- overrides ------------------------------------------------------------------------------


def test_the_manager_may_override_work_performance_with_a_reason() -> None:
    reason = "the chat widget lost two weeks of data"
    score = score_agent(DEFAULT_SCHEME, None, KPI_VALUES, EVALUATIONS, override=(40.0, reason))
    # manager = 0.25 * (40 + 70 + 80 + 90) = 70; composite = 27 + 49 = 76
    wp = score.work_performance
    assert wp is not None
    assert (wp.score, wp.overridden, wp.override_reason) == (40.0, True, reason)
    assert wp.computed == pytest.approx(61.5)  # the evidence stays visible
    assert score.composite == pytest.approx(76.0)
    assert f"work_performance overridden by manager: {reason}" in score.notes


def test_an_override_without_a_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="reason"):
        score_agent(DEFAULT_SCHEME, None, KPI_VALUES, EVALUATIONS, override=(40.0, "  "))


def test_work_performance_inside_the_manager_scores_is_not_an_override() -> None:
    evaluations = {"self": SELF, "manager": MANAGER | {"work_performance": 0.0}}
    score = score_agent(DEFAULT_SCHEME, None, KPI_VALUES, evaluations)
    assert score.composite == pytest.approx(79.7625)
    assert any("work_performance" in n and "ignored" in n for n in score.notes)


# --- missing evaluations --------------------------------------------------------------------


def test_a_missing_evaluation_leaves_the_composite_provisional() -> None:
    score = score_agent(DEFAULT_SCHEME, None, KPI_VALUES, {"self": SELF})
    assert score.composite is None
    assert score.missing_roles == ("manager",)
    assert score.roles["manager"].status == "missing"
    assert score.roles["self"].score == pytest.approx(90.0)
    assert any("manager evaluation missing" in n for n in score.notes)


def test_a_missing_evaluation_scored_as_zero() -> None:
    score = score_agent(
        DEFAULT_SCHEME, None, KPI_VALUES, {"self": SELF}, missing_roles_policy="zero"
    )
    # composite = 0.30 * 90 + 0.70 * 0 = 27
    assert score.composite == pytest.approx(27.0)
    assert score.roles["manager"].status == "missing_scored_zero"
    assert score.roles["manager"].score == 0.0
    assert "manager evaluation missing; scored as 0" in score.notes


def test_a_missing_evaluation_dropped_and_weights_renormalised() -> None:
    # Manager missing: self carries the whole composite, 90
    score = score_agent(
        DEFAULT_SCHEME, None, KPI_VALUES, {"self": SELF}, missing_roles_policy="renormalize"
    )
    assert score.composite == pytest.approx(90.0)
    assert score.roles["self"].effective_weight == pytest.approx(1.0)
    assert score.roles["manager"].effective_weight == 0.0
    # Self missing: the manager's 75.375 is the composite
    score = score_agent(
        DEFAULT_SCHEME, None, KPI_VALUES, {"manager": MANAGER}, missing_roles_policy="renormalize"
    )
    assert score.composite == pytest.approx(75.375)


def test_nothing_to_score_has_no_composite_even_when_renormalising() -> None:
    score = score_agent(DEFAULT_SCHEME, None, KPI_VALUES, {}, missing_roles_policy="renormalize")
    assert score.composite is None
    assert score.missing_roles == ("self", "manager")


# --- rater training -------------------------------------------------------------------------


def _with_weighted_peers() -> Scheme:
    # self 0.2, manager 0.6, peer 0.2; peer ratings count only with training on record
    scheme = Scheme(
        scheme_id="weighted-peers",
        name="with peers",
        roles=(
            RaterRole(role="self", weight=0.2, criteria=DEFAULT_SCHEME.roles[0].criteria),
            RaterRole(role="manager", weight=0.6, criteria=DEFAULT_SCHEME.roles[1].criteria),
            RaterRole(
                role="peer", weight=0.2, criteria=(Criterion(name="collaboration", weight=1),)
            ),
        ),
        kpis=DEFAULT_SCHEME.kpis,
        requires_training=("peer",),
    )
    assert validate_scheme(scheme) == []
    return scheme


def test_trained_peer_ratings_count() -> None:
    evaluations = EVALUATIONS | {"peer": {"collaboration": 50.0}}
    score = score_agent(
        _with_weighted_peers(), None, KPI_VALUES, evaluations, trained_roles={"peer"}
    )
    # composite = 0.2 * 90 + 0.6 * 75.375 + 0.2 * 50 = 18 + 45.225 + 10 = 73.225
    assert score.composite == pytest.approx(73.225)


def test_untrained_peer_ratings_do_not_count() -> None:
    evaluations = EVALUATIONS | {"peer": {"collaboration": 50.0}}
    scheme = _with_weighted_peers()
    # Without training on record the peer role has no countable evaluation
    score = score_agent(scheme, None, KPI_VALUES, evaluations)
    assert score.composite is None
    assert score.missing_roles == ("peer",)
    assert any("peer" in n and "training" in n for n in score.notes)
    # and a forced close scoring missing roles as 0 gives 18 + 45.225 = 63.225
    score = score_agent(scheme, None, KPI_VALUES, evaluations, missing_roles_policy="zero")
    assert score.composite == pytest.approx(63.225)


def test_a_mean_of_full_attainments_stays_at_100_whatever_the_weights_round_to() -> None:
    # Found by the composite's property test: KPI weights of 1/9, 3/9 and 5/9, the first with
    # no data, re-normalised to 3/8 and 5/8 of full attainments, summed to 100.00000000000001.
    kpis = tuple(
        KpiDef(name=name, kind="measured", direction="higher", target=1.0, floor=0.0,
               weight=weight, formula=Formula(op="sum", of="orders"))
        for name, weight in (("a", 1 / 9), ("b", 3 / 9), ("c", 5 / 9)))
    scheme = Scheme(
        scheme_id="rounding", version=1, name="rounding", scale_max=5.0,
        roles=(RaterRole(role="self", weight=0.5, criteria=(
                   Criterion(name="task_completion", weight=1.0, source="rated"),)),
               RaterRole(role="manager", weight=0.5, criteria=(
                   Criterion(name="work_performance", weight=1.0,
                             source="kpi_attainment"),))),
        kpis=kpis)
    result = score_agent(scheme, None, {"a": None, "b": 1.0, "c": 1.0},
                         {"self": {"task_completion": 5.0}, "manager": {}})
    assert result.work_performance is not None
    assert result.work_performance.computed == 100.0
    assert result.roles["manager"].score == 100.0
    assert result.composite == 100.0

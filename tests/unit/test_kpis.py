"""KPIs as data: the built-in KPIs are the built-in scheme's formulas, with exactly the results
of the formulas that used to be code (kept below, in this test only, as the oracle)."""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest

from service.domain.kpis import Formula, compute, evaluate, has_data, metrics_needed
from service.domain.scheme import DEFAULT_SCHEME, DEFAULT_SCHEME_V2
from tests.support.kpis import BUILTIN_FORMULAS, METRICS, builtin_kpis

A_MONTH = {
    "consultations": 40,
    "conversions": 10,
    "lost_customers": 4,
    "orders": 20,
    "valid_orders": 18,
    "paid_orders": 16,
    "refunded_orders": 2,
    "paying_customers": 8,
    "order_amount": 4000.0,
    "response_time_seconds": 600.0,
}


def _oracle(totals: Mapping[str, float], responses: int) -> dict[str, float | None]:
    """The hard-coded formulas of csperf before issue 19 (service/domain/kpis.py, verbatim)."""

    def ratio(numerator: float, denominator: float) -> float | None:
        return None if denominator == 0 else numerator / denominator

    def total(metric: str) -> float:
        return totals.get(metric, 0.0)

    return {
        "conversion_rate": ratio(total("conversions"), total("consultations")),
        "avg_response_time_seconds": ratio(total("response_time_seconds"), responses),
        "churn_rate": ratio(total("lost_customers"), total("consultations")),
        "order_amount": total("order_amount"),
        "valid_order_ratio": ratio(total("valid_orders"), total("orders")),
        "payment_ratio": ratio(total("paid_orders"), total("orders")),
        "refund_ratio": ratio(total("refunded_orders"), total("paid_orders")),
        "avg_order_value": ratio(total("order_amount"), total("paying_customers")),
    }


def test_the_built_in_formulas_are_data_of_both_built_in_versions() -> None:
    for scheme in (DEFAULT_SCHEME, DEFAULT_SCHEME_V2):
        assert {m.name for m in scheme.metrics} == set(METRICS)
        assert {k.name: k.formula for k in scheme.kpis if k.kind == "measured"} \
            == BUILTIN_FORMULAS
        assert len(BUILTIN_FORMULAS) == 8


def test_the_data_gives_exactly_what_the_old_code_gave() -> None:
    # Given many months of random totals, some metrics missing, some zero
    rng = random.Random(19)
    for _ in range(2000):
        totals = {m: float(rng.choice([0, rng.randint(0, 50), rng.randint(0, 100_000) / 100]))
                  for m in METRICS if rng.random() < 0.8}
        responses = rng.choice([0, rng.randint(1, 40)]) if "response_time_seconds" in totals \
            else 0
        # Then the scheme's formulas equal the old code to the last bit (== on floats)
        assert builtin_kpis(totals, responses) == _oracle(totals, responses)


def test_every_kpi_follows_its_formula() -> None:
    kpis = builtin_kpis(A_MONTH, responses=20)
    assert kpis == {
        "conversion_rate": pytest.approx(10 / 40),
        "avg_response_time_seconds": pytest.approx(30.0),
        "churn_rate": pytest.approx(0.1),
        "order_amount": pytest.approx(4000.0),
        "valid_order_ratio": pytest.approx(0.9),
        "payment_ratio": pytest.approx(0.8),
        "refund_ratio": pytest.approx(0.125),
        "avg_order_value": pytest.approx(500.0),
    }


def test_a_month_with_nothing_has_no_ratios_but_a_zero_order_amount() -> None:
    kpis = builtin_kpis({}, responses=0)
    assert kpis["order_amount"] == 0.0
    assert all(v is None for k, v in kpis.items() if k != "order_amount")


def test_mean_over_zero_observations_is_no_data() -> None:
    # Given a mean KPI and no observation of its metric
    mean = Formula(op="mean", of="handle_time")
    value = evaluate(mean, {}, {})
    # Then it has no value (never 0, never a crash) and counts as no data
    assert value is None
    assert has_data(mean, value, {}) is False
    # and one observation gives its value
    assert evaluate(mean, {"handle_time": 42.0}, {"handle_time": 1}) == 42.0


def test_per_active_day_divides_by_active_days() -> None:
    per_day = Formula(op="per_active_day", of="tickets")
    assert evaluate(per_day, {"tickets": 60.0}, {"tickets": 12}, active_days=20) == 3.0
    # no active day: nothing to divide by
    assert evaluate(per_day, {"tickets": 60.0}, {"tickets": 12}, active_days=0) is None
    # a sum needs a sample to have data, even though its value is 0
    assert has_data(Formula(op="sum", of="tickets"), 0.0, {}) is False


def test_a_ratio_whose_over_metric_never_arrives_has_no_data() -> None:
    attendance = {"attendance_rate": Formula(op="ratio", of="days_present",
                                             over="days_scheduled")}
    values = compute(attendance, {"days_present": 20.0}, {"days_present": 20})
    assert values == {"attendance_rate": None}
    assert has_data(attendance["attendance_rate"], None, {"days_present": 20.0}) is False


def test_feed_monitoring_knows_which_metrics_formulas_need() -> None:
    needed = metrics_needed([BUILTIN_FORMULAS["churn_rate"], BUILTIN_FORMULAS["refund_ratio"]])
    assert needed == {"lost_customers", "consultations", "refunded_orders", "paid_orders"}

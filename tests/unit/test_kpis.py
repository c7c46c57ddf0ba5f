"""KPI formulas over raw metric totals (domain.md, "The online-shop scenario")."""

from __future__ import annotations

import pytest

from service.domain.kpis import (
    COUNT_METRICS,
    KPI_DIRECTIONS,
    KPI_INPUTS,
    KPI_NAMES,
    MEASURED_KPIS,
    METRICS,
    RATED_KPIS,
    compute_kpis,
    metrics_needed,
)

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


def test_every_kpi_follows_its_formula() -> None:
    # Given a month of totals over 20 responses
    # When the KPIs are computed
    kpis = compute_kpis(A_MONTH, responses=20)
    # Then each is its formula, ratios as fractions
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
    # Given no samples at all
    kpis = compute_kpis({}, responses=0)
    # Then every ratio is no data (None, never 0), and the summed amount is 0
    assert kpis == {
        "conversion_rate": None,
        "avg_response_time_seconds": None,
        "churn_rate": None,
        "order_amount": 0.0,
        "valid_order_ratio": None,
        "payment_ratio": None,
        "refund_ratio": None,
        "avg_order_value": None,
    }


def test_a_metric_never_sent_counts_as_zero() -> None:
    # Given consultations but no conversions and no lost customers ever sent
    kpis = compute_kpis({"consultations": 10}, responses=0)
    # Then the rates are 0, not missing: 0 lost customers is a fine month
    assert kpis["conversion_rate"] == 0.0
    assert kpis["churn_rate"] == 0.0


def test_each_zero_denominator_is_no_data_on_its_own() -> None:
    # Given orders but no paid orders, and paying customers with no amount
    kpis = compute_kpis({"orders": 5, "valid_orders": 5, "paying_customers": 3}, responses=0)
    # Then the ratios over orders exist, the refund ratio (over paid orders) does not
    assert kpis["valid_order_ratio"] == 1.0
    assert kpis["payment_ratio"] == 0.0
    assert kpis["refund_ratio"] is None
    assert kpis["avg_order_value"] == 0.0
    assert kpis["conversion_rate"] is None


def test_response_time_is_averaged_per_response() -> None:
    # Given three responses of 10, 20 and 60 seconds
    kpis = compute_kpis({"response_time_seconds": 90.0}, responses=3)
    # Then the average is 30 seconds
    assert kpis["avg_response_time_seconds"] == pytest.approx(30.0)


def test_catalogue_is_consistent() -> None:
    assert len(METRICS) == len(set(METRICS)) == 10
    assert set(MEASURED_KPIS) == set(KPI_INPUTS)
    assert {m for inputs in KPI_INPUTS.values() for m in inputs} <= set(METRICS)
    assert COUNT_METRICS == set(METRICS) - {"response_time_seconds", "order_amount"}
    assert set(KPI_DIRECTIONS) == set(KPI_NAMES) == set(MEASURED_KPIS) | set(RATED_KPIS)
    assert {k for k, d in KPI_DIRECTIONS.items() if d == "lower"} == {
        "avg_response_time_seconds",
        "churn_rate",
        "refund_ratio",
    }


def test_feed_monitoring_knows_which_metrics_a_kpi_set_needs() -> None:
    # Given a team that only watches churn and refunds (and a rated KPI, which needs no feed)
    needed = metrics_needed(["churn_rate", "refund_ratio", "report_quality"])
    # Then these raw metrics must keep arriving
    assert needed == {"lost_customers", "consultations", "refunded_orders", "paid_orders"}

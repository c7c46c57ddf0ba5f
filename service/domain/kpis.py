"""The KPI catalogue: raw metric names, KPI names and directions, and the KPI formulas.

Raw metrics arrive from chat and monitoring software; KPIs are computed from an agent's totals
for a period. The formulas are fixed by the domain (``domain.md``); targets, floors and weights
are scheme data and live in ``scheme.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

Direction = Literal["higher", "lower"]

METRICS: tuple[str, ...] = (
    "consultations",
    "conversions",
    "response_time_seconds",
    "lost_customers",
    "orders",
    "order_amount",
    "valid_orders",
    "paid_orders",
    "refunded_orders",
    "paying_customers",
)

# Counts are whole occurrences and may not be negative; order_amount is a summed money amount
# and response_time_seconds is one observation per response, averaged over responses.
COUNT_METRICS: frozenset[str] = frozenset(
    {
        "consultations",
        "conversions",
        "lost_customers",
        "orders",
        "valid_orders",
        "paid_orders",
        "refunded_orders",
        "paying_customers",
    }
)
SUMMED_METRICS: frozenset[str] = COUNT_METRICS | {"order_amount"}
AVERAGED_METRICS: frozenset[str] = frozenset({"response_time_seconds"})

MEASURED_KPIS: tuple[str, ...] = (
    "conversion_rate",
    "avg_response_time_seconds",
    "churn_rate",
    "order_amount",
    "valid_order_ratio",
    "payment_ratio",
    "refund_ratio",
    "avg_order_value",
)
RATED_KPIS: tuple[str, ...] = ("report_timeliness", "report_reliability", "report_quality")
KPI_NAMES: tuple[str, ...] = MEASURED_KPIS + RATED_KPIS
#: Measured KPIs that add up over the month (the others are ratios or averages): the only ones
#: whose targets can follow an agent's presence.
SUMMED_KPIS: tuple[str, ...] = ("order_amount",)

# Which way is better is part of what a KPI means, not a scheme choice: a scheme that called a
# lower conversion rate better would be a mistake, so validate_scheme checks against this.
KPI_DIRECTIONS: dict[str, Direction] = {
    "conversion_rate": "higher",
    "avg_response_time_seconds": "lower",
    "churn_rate": "lower",
    "order_amount": "higher",
    "valid_order_ratio": "higher",
    "payment_ratio": "higher",
    "refund_ratio": "lower",
    "avg_order_value": "higher",
    "report_timeliness": "higher",
    "report_reliability": "higher",
    "report_quality": "higher",
}

# The raw metrics each measured KPI is computed from, so feed monitoring can flag a metric that
# a team's KPIs need and that no source has sent for a while.
KPI_INPUTS: dict[str, tuple[str, ...]] = {
    "conversion_rate": ("conversions", "consultations"),
    "avg_response_time_seconds": ("response_time_seconds",),
    "churn_rate": ("lost_customers", "consultations"),
    "order_amount": ("order_amount",),
    "valid_order_ratio": ("valid_orders", "orders"),
    "payment_ratio": ("paid_orders", "orders"),
    "refund_ratio": ("refunded_orders", "paid_orders"),
    "avg_order_value": ("order_amount", "paying_customers"),
}


def metrics_needed(kpi_names: Iterable[str]) -> frozenset[str]:
    """Return the raw metrics that the given KPIs are computed from (rated KPIs need none)."""
    return frozenset(metric for kpi in kpi_names for metric in KPI_INPUTS.get(kpi, ()))


def _ratio(numerator: float, denominator: float) -> float | None:
    # A zero denominator means there was nothing to measure: no data, never 0 and never a crash.
    if denominator == 0:
        return None
    return numerator / denominator


def compute_kpis(totals: Mapping[str, float], responses: int) -> dict[str, float | None]:
    """Compute the measured KPIs from an agent's period totals; ratios are fractions."""

    def total(metric: str) -> float:
        # A metric that never arrived counts as zero (0 lost customers is a fine month).
        return totals.get(metric, 0.0)

    return {
        "conversion_rate": _ratio(total("conversions"), total("consultations")),
        "avg_response_time_seconds": _ratio(total("response_time_seconds"), responses),
        "churn_rate": _ratio(total("lost_customers"), total("consultations")),
        "order_amount": total("order_amount"),
        "valid_order_ratio": _ratio(total("valid_orders"), total("orders")),
        "payment_ratio": _ratio(total("paid_orders"), total("orders")),
        "refund_ratio": _ratio(total("refunded_orders"), total("paid_orders")),
        "avg_order_value": _ratio(total("order_amount"), total("paying_customers")),
    }


def has_data(kpi: str, value: float | None, totals: Mapping[str, float]) -> bool:
    """Tell whether a measured KPI has data: a sum needs a sample, a ratio a denominator."""
    if kpi in SUMMED_KPIS:
        # compute_kpis counts a metric that never arrived as 0; "no sample at all" is still
        # no evidence, which the one-yardstick rule needs to tell apart.
        return any(metric in totals for metric in KPI_INPUTS[kpi])
    return value is not None

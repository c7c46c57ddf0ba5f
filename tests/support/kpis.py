"""The built-in KPIs computed as the service computes them now: by the built-in scheme's data."""

from __future__ import annotations

from collections.abc import Mapping

from service.domain.kpis import compute
from service.domain.scheme import DEFAULT_SCHEME

BUILTIN_FORMULAS = {k.name: k.formula for k in DEFAULT_SCHEME.kpis if k.formula is not None}
METRICS: tuple[str, ...] = tuple(m.name for m in DEFAULT_SCHEME.metrics)
COUNT_METRICS = frozenset(m.name for m in DEFAULT_SCHEME.metrics if m.unit == "count")


def builtin_kpis(totals: Mapping[str, float], responses: int) -> dict[str, float | None]:
    """Compute the eight built-in KPIs from totals and the number of response-time samples."""
    observations = {"response_time_seconds": responses}
    return compute(BUILTIN_FORMULAS, totals, observations)

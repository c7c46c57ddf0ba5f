"""KPIs as data: raw metrics a scheme declares, and the four formulas a KPI may use.

Raw metrics arrive from chat and monitoring software; a scheme declares which ones it uses
(``MetricDef``) and computes each measured KPI from an agent's period totals with one of four
formulas (``Formula``). Nothing here names a particular KPI or metric: the built-in ones are
the data of the built-in scheme (``service/domain/scheme.py``), so HR adds a KPI by publishing
a scheme version, not by waiting for a release.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from service.domain.frozen import Frozen

Direction = Literal["higher", "lower"]
Aggregation = Literal["sum", "mean"]
FormulaOp = Literal["ratio", "sum", "mean", "per_active_day"]

#: A metric declared with this unit counts whole occurrences: a fractional value is refused.
COUNT_UNIT = "count"




class MetricDef(Frozen):
    """A raw metric a scheme takes from its sources.

    ``aggregation`` says how its samples combine over a month: ``sum`` (counts, amounts) or
    ``mean`` (one observation per event, such as a response time, averaged).
    """

    name: str
    unit: str = ""
    aggregation: Aggregation = "sum"
    label: str = ""


class TeamTarget(Frozen):
    """A team's own target and floor for a KPI (for example in its own currency); a value left
    out keeps the scheme's."""

    target: float | None = None
    floor: float | None = None


class Formula(Frozen):
    """How a measured KPI is computed from an agent's totals for the period.

    ``ratio``: of / over; ``sum``: the total of ``of``; ``mean``: the total of ``of`` per
    observation; ``per_active_day``: the total of ``of`` per active day (fair months).
    """

    op: FormulaOp
    of: str
    over: str | None = None

    def metrics(self) -> tuple[str, ...]:
        """Return the raw metrics the formula reads."""
        return (self.of,) if self.over is None else (self.of, self.over)

    def text(self) -> str:
        """Describe the formula in words, for scorecards and the dashboard."""
        if self.op == "ratio":
            return f"{self.of} / {self.over}"
        if self.op == "mean":
            return f"mean of {self.of} per observation"
        if self.op == "per_active_day":
            return f"{self.of} per active day"
        return f"sum of {self.of}"


def evaluate(
    formula: Formula,
    totals: Mapping[str, float],
    observations: Mapping[str, int],
    active_days: int | None = None,
) -> float | None:
    """Compute one KPI value from an agent's period totals; ratios are fractions."""
    return compute({"": formula}, totals, observations, active_days)[""]


def has_data(formula: Formula, value: float | None, totals: Mapping[str, float]) -> bool:
    """Tell whether a measured KPI has data: a sum needs a sample, a ratio a denominator."""
    return has_data_all({"": formula}, [({"": value}, totals)])[0][""]


def has_data_all(formulas: Mapping[str, Formula],
                 agents: Iterable[tuple[Mapping[str, float | None], Mapping[str, float]]]
                 ) -> list[dict[str, bool]]:
    """Tell, for each agent's KPI values and totals, whether each named KPI has data
    (``has_data``), with the formulas read once (a close asks for every KPI of every agent)."""
    # A metric that never arrived is computed as 0 for a sum; "no sample at all" is still no
    # evidence, which the one-yardstick rule needs to tell apart.
    steps = [(name, f.op in ("sum", "per_active_day"), f.of) for name, f in formulas.items()]
    return [{name: values.get(name) is not None and (not summed or of in totals)
             for name, summed, of in steps}
            for values, totals in agents]


def metrics_needed(formulas: Iterable[Formula]) -> frozenset[str]:
    """Return the raw metrics the given formulas are computed from."""
    return frozenset(metric for formula in formulas for metric in formula.metrics())


#: A formula as ``compute_all`` runs it: its KPI's name, its operation and its metrics.
_Step = tuple[str, FormulaOp, str, str | None]
#: One agent's inputs: totals and observations per metric, and active days (None: not known).
Inputs = tuple[Mapping[str, float], Mapping[str, int], int | None]


def compute_all(formulas: Mapping[str, Formula], agents: Iterable[Inputs]
                ) -> list[dict[str, float | None]]:
    """Compute every named KPI for each agent's inputs, in their order; ratios are fractions.

    The formulas are read once into plain tuples and their four operations written out in
    one loop: a close computes every KPI of every agent (47,000 for 1,000 agents on 47
    measured KPIs), and a call per KPI, reading the formula's fields off its model each
    time, took three times as long as the arithmetic.
    """
    steps: list[_Step] = [(name, f.op, f.of, f.over) for name, f in formulas.items()]
    found = []
    for totals, observations, active_days in agents:
        values: dict[str, float | None] = {}
        total = totals.get
        for name, op, of, over in steps:
            # A metric that never arrived counts as zero (0 lost customers is a fine month).
            numerator = total(of, 0.0)
            if op == "sum":
                values[name] = numerator
                continue
            if op == "mean":
                denominator: float = observations.get(of, 0)
            elif op == "per_active_day":
                denominator = active_days or 0
            else:
                assert over is not None  # validate_scheme refuses a ratio without ``over``
                denominator = total(over, 0.0)
            # A zero denominator means there was nothing to measure: no data, never 0 and
            # never a crash.
            values[name] = None if denominator == 0 else numerator / denominator
        found.append(values)
    return found


def compute(
    formulas: Mapping[str, Formula],
    totals: Mapping[str, float],
    observations: Mapping[str, int],
    active_days: int | None = None,
) -> dict[str, float | None]:
    """Compute every named KPI from an agent's period totals."""
    return compute_all(formulas, [(totals, observations, active_days)])[0]

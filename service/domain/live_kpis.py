"""Live KPIs: the KPIs of a month still being measured, from its metric totals so far.

One rule for every reader of live KPIs: the API (``GET /v1/agents/{id}/kpis``,
``GET /v1/teams/{id}/kpis``) and the KPI read model behind the reporting views
(``service/projections/kpi_values.py``). The values are the scheme's formulas over the totals
of the metrics it declares; a metric that never arrived counts as no sample. Each KPI comes
with the effective target and floor of the position and team (``effective_kpis``) and the
attainment they give, as a scorecard would show before pro-rating or a goal dispute.
Active days are not known while the month runs, so a per-active-day KPI is null here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.domain.kpis import TeamTarget, compute
from service.domain.scheme import KpiDef, Scheme, effective_kpis
from service.domain.scoring import attainment


@dataclass(frozen=True)
class LiveKpi:
    """One live KPI of an agent (or a team) and month."""

    name: str
    value: float | None
    target: float | None
    floor: float | None
    attainment: float | None
    target_source: str
    unit: str
    direction: str
    label: str
    formula: str


def declared_totals(scheme: Scheme, totals: Mapping[str, float], observations: Mapping[str, int]
                    ) -> tuple[dict[str, float], dict[str, int]]:
    """Return the totals and observations of the metrics the scheme declares (others are not
    its business)."""
    names = {m.name for m in scheme.metrics}
    return ({m: float(v) for m, v in totals.items() if m in names},
            {m: int(v) for m, v in observations.items() if m in names})


def measured_kpis(scheme: Scheme, position: str | None,
                  team_targets: Mapping[str, TeamTarget]) -> list[tuple[KpiDef, str]]:
    """Return the measured KPIs of ``position`` (the scheme's own for None) with the team's
    targets over them, and where each target came from."""
    kpis, sources = effective_kpis(scheme, position, team_targets)
    return [(k, sources.get(k.name, "scheme")) for k in kpis
            if k.kind == "measured" and k.formula is not None]


def live_values(measured: Sequence[tuple[KpiDef, str]], totals: Mapping[str, float],
                observations: Mapping[str, int]) -> list[LiveKpi]:
    """Return the live KPIs (``measured_kpis``) from the totals of the metrics that arrived."""
    values = compute({k.name: k.formula for k, _ in measured if k.formula is not None},
                     totals, observations)
    found = []
    for kpi, source in measured:
        assert kpi.formula is not None
        value = values[kpi.name]
        reached = (attainment(value, kpi.target, kpi.floor, kpi.direction)
                   if kpi.target is not None and kpi.floor is not None else None)
        found.append(LiveKpi(
            name=kpi.name, value=value, target=kpi.target, floor=kpi.floor, attainment=reached,
            target_source=source, unit=kpi.unit, direction=kpi.direction, label=kpi.title,
            formula=kpi.formula.text()))
    return found


def live_kpis(scheme: Scheme, position: str | None, team_targets: Mapping[str, TeamTarget],
              totals: Mapping[str, float], observations: Mapping[str, int]) -> list[LiveKpi]:
    """Return the measured KPIs of ``position`` from the totals of the metrics that arrived."""
    return live_values(measured_kpis(scheme, position, team_targets), totals, observations)

"""Hypothesis strategies: valid schemes, and an agent's month of inputs under a scheme.

Schemes are drawn the way an admin could write them (``validate_scheme`` accepts every one):
self and manager roles with random weights, sometimes a weighted peer role, random rated
criteria, the manager's KPI attainment criterion, a random subset of the KPIs with random
weights, targets and floors on the right side of each other, and a random rating scale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from service.domain.scheme import (
    BUILTIN_DIRECTIONS,
    Criterion,
    KpiDef,
    RaterRole,
    Scheme,
    validate_scheme,
)

MEASURED_KPIS: tuple[str, ...] = tuple(BUILTIN_DIRECTIONS)
RATED_KPIS = ("report_timeliness", "report_reliability", "report_quality")
KPI_DIRECTIONS = BUILTIN_DIRECTIONS

Draw = Callable[[st.SearchStrategy[Any]], Any]

#: Bounds of generated KPI targets, floors and values: wide, but finite.
SPAN = 1000.0


def _weights(draw: Draw, count: int, *, allow_zero: bool = True) -> list[float]:
    """Draw ``count`` weights summing to 1 (some may be 0 when allowed, never all)."""
    low = 0 if allow_zero else 1
    raw = draw(st.lists(st.integers(low, 10), min_size=count, max_size=count)
               .filter(lambda ws: sum(ws) > 0))
    total = sum(raw)
    return [w / total for w in raw]


@st.composite
def schemes(draw: Draw) -> Scheme:
    """Draw a scheme that validate_scheme accepts."""
    peer = draw(st.booleans())
    role_weights = _weights(draw, 3 if peer else 2, allow_zero=False)
    self_names = draw(st.lists(st.sampled_from(["task_completion", "attitude", "growth"]),
                               min_size=1, max_size=3, unique=True))
    manager_names = draw(st.lists(st.sampled_from(["work_ability", "cooperation", "service"]),
                                  min_size=0, max_size=3, unique=True))
    self_weights = _weights(draw, len(self_names))
    manager_weights = _weights(draw, len(manager_names) + 1)
    roles = [
        RaterRole(role="self", weight=role_weights[0], criteria=tuple(
            Criterion(name=n, weight=w) for n, w in zip(self_names, self_weights, strict=True))),
        RaterRole(role="manager", weight=role_weights[1], criteria=(
            Criterion(name="work_performance", weight=manager_weights[0],
                      source="kpi_attainment"),
            *(Criterion(name=n, weight=w)
              for n, w in zip(manager_names, manager_weights[1:], strict=True)),
        )),
    ]
    if peer:
        roles.append(RaterRole(role="peer", weight=role_weights[2],
                               criteria=(Criterion(name="collaboration", weight=1.0),)))
    names = draw(st.lists(st.sampled_from(MEASURED_KPIS + RATED_KPIS), min_size=1,
                          max_size=len(MEASURED_KPIS + RATED_KPIS), unique=True))
    kpi_weights = _weights(draw, len(names))
    kpis = []
    for name, weight in zip(names, kpi_weights, strict=True):
        if name in RATED_KPIS:
            kpis.append(KpiDef(name=name, kind="rated", weight=weight))
            continue
        low = draw(st.floats(-SPAN, SPAN - 1).map(lambda x: round(x, 2)))
        high = draw(st.floats(low + 0.5, SPAN).map(lambda x: round(x, 2)))
        direction = KPI_DIRECTIONS[name]
        target, floor = (high, low) if direction == "higher" else (low, high)
        kpis.append(KpiDef(name=name, kind="measured", direction=direction, target=target,
                           floor=floor, weight=weight))
    scheme = Scheme(
        scheme_id="prop", name="property", scale_max=draw(st.sampled_from([5.0, 10.0, 100.0])),
        roles=tuple(roles), kpis=tuple(kpis),
    )
    assert validate_scheme(scheme) == [], validate_scheme(scheme)
    return scheme


@dataclass(frozen=True)
class Inputs:
    """One agent's month: KPI values (None: no data) and ratings per rater role."""

    kpis: Mapping[str, float | None]
    ratings: Mapping[str, Mapping[str, float]]

    def with_rating(self, role: str, name: str, value: float) -> Inputs:
        """Return these inputs with one rating changed."""
        ratings = {r: dict(s) for r, s in self.ratings.items()}
        ratings[role][name] = value
        return replace(self, ratings=ratings)

    def with_kpi(self, name: str, value: float | None) -> Inputs:
        """Return these inputs with one KPI value changed."""
        return replace(self, kpis={**self.kpis, name: value})


def rating(scheme: Scheme) -> st.SearchStrategy[float]:
    """A rating on the scheme's scale, to two decimals."""
    return st.floats(0, scheme.scale_max).map(lambda x: round(x, 2))


def kpi_value(*, allow_none: bool = True) -> st.SearchStrategy[float | None]:
    """A measured KPI value (sometimes exactly on a round number), or no data."""
    value = st.floats(-1.5 * SPAN, 1.5 * SPAN).map(lambda x: round(x, 2))
    return st.one_of(st.none(), value) if allow_none else value


@st.composite
def inputs(
    draw: Draw, scheme: Scheme, *, allow_none: bool = True, complete: bool = True
) -> Inputs:
    """Draw a month for one agent: KPI values or no data, and every form filled in (or, when
    not ``complete``, some rater roles' evaluations missing)."""
    present = [r.role for r in scheme.roles]
    if not complete:
        present = draw(st.lists(st.sampled_from(present), unique=True, max_size=len(present)))
    ratings = {
        role: {name: draw(rating(scheme)) for name in sorted(scheme.form(role))}
        for role in present
    }
    kpis = {k.name: draw(kpi_value(allow_none=allow_none))
            for k in scheme.kpis if k.kind == "measured"}
    return Inputs(kpis=kpis, ratings=ratings)


def measured(scheme: Scheme) -> list[KpiDef]:
    """Return the scheme's measured KPIs."""
    return [k for k in scheme.kpis if k.kind == "measured"]


def rated_fields(given: Inputs) -> list[tuple[str, str]]:
    """Return every (role, name) the raters filled in."""
    return [(role, name) for role, scores in given.ratings.items() for name in scores]


@st.composite
def improvement(draw: Draw, scheme: Scheme, before: Inputs) -> Inputs:
    """Draw the same inputs with one thing better: a higher rating, or a KPI value moved in
    its direction (a KPI without data stays without: no data is not a bad value)."""
    candidates: list[tuple[str, Any]] = [("rating", f) for f in rated_fields(before)]
    candidates += [("kpi", k) for k in measured(scheme) if before.kpis.get(k.name) is not None]
    if not candidates:
        return before
    kind, what = draw(st.sampled_from(candidates))
    if kind == "rating":
        role, name = what
        current = before.ratings[role][name]
        return before.with_rating(role, name, draw(st.floats(current, scheme.scale_max)))
    kpi: KpiDef = what
    current = before.kpis[kpi.name]
    assert current is not None
    step = draw(st.floats(0, 2 * SPAN))
    better = current + step if kpi.direction == "higher" else current - step
    return before.with_kpi(kpi.name, better)

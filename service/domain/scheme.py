"""Scoring schemes: who rates what with which weight, KPI targets, and the results policy.

A scheme is versioned data: admins publish new versions, and a cycle keeps the version it was
opened with. The models only check shapes; ``validate_scheme`` checks the meaning and reports
every problem at once, so an admin can fix a scheme in one round trip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.domain.ids import ID_RE
from service.domain.kpis import (
    KPI_DIRECTIONS,
    KPI_NAMES,
    MEASURED_KPIS,
    RATED_KPIS,
    SUMMED_KPIS,
    Direction,
)
from service.domain.problems import Problem
from service.domain.training import TOPICS

RATER_ROLES: tuple[str, ...] = ("self", "manager", "peer", "subordinate", "customer", "expert")

# Weights are decimals typed by people (0.3 + 0.7); sums are compared with this tolerance.
WEIGHT_TOLERANCE = 1e-6



class _Frozen(BaseModel):
    # extra="forbid" so that a misspelt field in a PUT body is an error, not silently dropped;
    # sequences are tuples so that a shared scheme (DEFAULT_SCHEME) cannot be changed in place
    # and a scheme read back from JSON compares equal to the one written.
    model_config = ConfigDict(frozen=True, extra="forbid")


class KpiDef(_Frozen):
    """A KPI of a scheme: measured (from raw metrics) or rated (by a person, 0..scale_max)."""

    name: str
    kind: Literal["measured", "rated"]
    direction: Direction = "higher"
    target: float | None = None
    floor: float | None = None
    weight: float
    unit: str = ""
    description: str = ""
    #: Fair months: target and floor scale with the agent's share of the month (below 1).
    #: Only for summed KPIs: ratios and averages are never pro-rated.
    prorate: bool = False


class KpiOverride(_Frozen):
    """A position's change to one KPI; fields left out keep the scheme's value."""

    target: float | None = None
    floor: float | None = None
    weight: float | None = None


class Criterion(_Frozen):
    """A criterion of a rater role: rated on the form, or derived from KPI attainment."""

    name: str
    weight: float
    source: Literal["rated", "kpi_attainment"] = "rated"


class RaterRole(_Frozen):
    """A rater role, its share of the composite, and the criteria its raters score."""

    role: str
    weight: float
    criteria: tuple[Criterion, ...]


class ResultsPolicy(_Frozen):
    """The monthly results rules: amounts, small-team minimum, plan deadline, streak length."""

    reward_amount: float = 100.0
    deduction_amount: float = 100.0
    min_ranked_agents: int = 3
    plan_deadline_days: int = 7
    streak_length: int = 3
    missing_evaluation_policy: Literal["zero", "renormalize"] = "zero"
    #: Version 2's "fair months" rules (``domain.md``): presence (``min_active_share``),
    #: pro-rated targets (KPI ``prorate``) and one yardstick per team, month and position.
    #: False keeps version 1's behaviour for the cycles pinned to it.
    fair_months: bool = False
    #: Fair months: an agent active for less than this share of the month is not ranked.
    min_active_share: float = 0.5
    #: When an agent's own result reaches them; version 1 behaves as on_publication.
    release: Literal["after_interview", "on_publication"] = "on_publication"
    #: after_interview: the latest release, this many days after publication.
    release_days: int = 3
    #: Days after their release within which an agent may appeal their month.
    appeal_days: int = 5


class Scheme(_Frozen):
    """A versioned scoring scheme."""

    scheme_id: str
    version: int = 1
    name: str
    scale_max: float = 100.0
    roles: tuple[RaterRole, ...]
    kpis: tuple[KpiDef, ...]
    position_overrides: dict[str, dict[str, KpiOverride]] = Field(default_factory=dict)
    results: ResultsPolicy = Field(default_factory=ResultsPolicy)
    requires_training: tuple[str, ...] = ()
    #: The training topics (``service.domain.training.TOPICS``) that a rater of a role in
    #: ``requires_training`` must have valid when submitting an evaluation.
    training_topics: tuple[str, ...] = TOPICS

    def role(self, role: str) -> RaterRole | None:
        """Return the rater role named ``role``, or None if the scheme has none."""
        return next((r for r in self.roles if r.role == role), None)

    def kpi_attainment_criterion(self) -> tuple[str, Criterion] | None:
        """Return (role, criterion) of the criterion that KPI attainment feeds, if any."""
        for rater_role in self.roles:
            for criterion in rater_role.criteria:
                if criterion.source == "kpi_attainment":
                    return rater_role.role, criterion
        return None

    def form(self, role: str) -> frozenset[str]:
        """Return the criteria a rater of ``role`` must score (empty for an unknown role)."""
        rater_role = self.role(role)
        if rater_role is None:
            return frozenset()
        names = {c.name for c in rater_role.criteria if c.source == "rated"}
        # KPI attainment is computed, not typed in, so it is not on the form; but the rated KPIs
        # that feed it are scored by whoever owns it (the manager, in the default scheme).
        if any(c.source == "kpi_attainment" for c in rater_role.criteria):
            names.update(k.name for k in self.kpis if k.kind == "rated")
        return frozenset(names)

    def kpis_for(self, position: str | None) -> list[KpiDef]:
        """Return the scheme's KPIs with the position's overrides applied."""
        overrides = self.position_overrides.get(position, {}) if position is not None else {}
        result = []
        for kpi in self.kpis:
            override = overrides.get(kpi.name)
            if override is None:
                result.append(kpi)
            else:
                result.append(kpi.model_copy(update=override.model_dump(exclude_none=True)))
        return result


def check_evaluation(
    scheme: Scheme,
    role: str,
    scores: Mapping[str, float],
    *,
    override_reason: str | None = None,
) -> list[Problem]:
    """List every problem with an evaluation by a rater of ``role``; empty means acceptable."""
    rater_role = scheme.role(role)
    if rater_role is None:
        return [Problem("rater_role", f"{role!r} is not a rater role of scheme {scheme.scheme_id}")]
    form = scheme.form(role)
    owner = scheme.kpi_attainment_criterion()
    overridable = owner[1].name if owner is not None and owner[0] == role else None
    problems = [
        Problem(f"scores.{name}", f"missing: the {role} form requires it")
        for name in sorted(form.difference(scores))
    ]
    for name, value in scores.items():
        field = f"scores.{name}"
        if name == overridable:
            # Overriding measured evidence must leave a trail: the reason is recorded with it.
            if override_reason is None or not override_reason.strip():
                problems.append(Problem(field, f"an override of {name} needs a written reason"))
        elif name not in form:
            problems.append(Problem(field, f"not on the {role} form"))
        if not (math.isfinite(value) and 0 <= value <= scheme.scale_max):
            problems.append(Problem(field, f"must be between 0 and {scheme.scale_max:g}"))
    return problems


def _weight_problem(field: str, weight: float) -> Problem | None:
    if not math.isfinite(weight) or weight < 0:
        return Problem(field, "must be a finite number of at least 0")
    return None


def _sum_problem(field: str, weights: Sequence[float], what: str) -> Problem | None:
    # Weights already reported as invalid would only add a second, confusing complaint here.
    if not all(math.isfinite(w) for w in weights):
        return None
    try:
        total = math.fsum(weights)
    except OverflowError:  # finite weights near the float limit: their sum is not 1 either
        total = math.inf
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        return Problem(field, f"{what} sum to {total:g}; they must sum to 1")
    return None


def _bounds_problems(
    path: str, kind: str, direction: str, target: float | None, floor: float | None
) -> list[Problem]:
    if kind == "rated":
        # A rated KPI's attainment is the rating itself, scaled; a target would be ignored.
        return [
            Problem(f"{path}.{name}", "a rated KPI has no target or floor")
            for name, value in (("target", target), ("floor", floor))
            if value is not None
        ]
    problems = [
        Problem(f"{path}.{name}", "a measured KPI needs a finite number here")
        for name, value in (("target", target), ("floor", floor))
        if value is None or not math.isfinite(value)
    ]
    if problems or target is None or floor is None:
        return problems
    if direction == "higher" and not target > floor:
        problems.append(Problem(f"{path}.target", "must be above the floor (higher is better)"))
    if direction == "lower" and not target < floor:
        problems.append(Problem(f"{path}.target", "must be below the floor (lower is better)"))
    return problems


def _role_problems(scheme: Scheme) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    attainment_criteria: list[str] = []
    for i, rater_role in enumerate(scheme.roles):
        path = f"roles[{i}]"
        if rater_role.role not in RATER_ROLES:
            problems.append(Problem(f"{path}.role", f"unknown role; one of {list(RATER_ROLES)}"))
        elif rater_role.role in seen:
            problems.append(Problem(f"{path}.role", f"{rater_role.role} appears more than once"))
        seen.add(rater_role.role)
        if (p := _weight_problem(f"{path}.weight", rater_role.weight)) is not None:
            problems.append(p)
        if not rater_role.criteria:
            problems.append(Problem(f"{path}.criteria", "a role needs at least one criterion"))
        names: set[str] = set()
        for j, criterion in enumerate(rater_role.criteria):
            cpath = f"{path}.criteria[{j}]"
            if not criterion.name:
                problems.append(Problem(f"{cpath}.name", "must not be empty"))
            elif criterion.name in names:
                problems.append(Problem(f"{cpath}.name", f"{criterion.name} appears twice"))
            elif criterion.name in KPI_NAMES:
                # The rated KPIs share the form with the criteria; one name, one meaning.
                problems.append(Problem(f"{cpath}.name", "clashes with a KPI name"))
            names.add(criterion.name)
            if (p := _weight_problem(f"{cpath}.weight", criterion.weight)) is not None:
                problems.append(p)
            if criterion.source == "kpi_attainment":
                attainment_criteria.append(f"{cpath}.source")
        # A role with weight 0 never enters the composite, so its criteria weights do not matter.
        if rater_role.weight > 0 and rater_role.criteria:
            weights = [c.weight for c in rater_role.criteria]
            if (p := _sum_problem(f"{path}.criteria", weights, "criteria weights")) is not None:
                problems.append(p)
    # Rated KPIs are scored by the one rater who owns KPI attainment; two owners would be
    # two conflicting sets of report ratings and two overrides.
    if len(attainment_criteria) > 1:
        problems.extend(
            Problem(field, "only one criterion of a scheme may take KPI attainment")
            for field in attainment_criteria
        )
    if (p := _sum_problem("roles", [r.weight for r in scheme.roles], "role weights")) is not None:
        problems.append(p)
    for i, role in enumerate(scheme.requires_training):
        if role not in RATER_ROLES:
            problems.append(Problem(f"requires_training[{i}]", f"unknown role {role!r}"))
    for i, topic in enumerate(scheme.training_topics):
        if topic not in TOPICS:
            problems.append(
                Problem(f"training_topics[{i}]", f"unknown topic; one of {list(TOPICS)}")
            )
    return problems


def _kpi_problems(scheme: Scheme) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, kpi in enumerate(scheme.kpis):
        if kpi.name not in KPI_NAMES:
            problems.append(
                Problem(f"kpis[{i}].name", f"unknown KPI {kpi.name!r}; one of {list(KPI_NAMES)}")
            )
            continue
        if kpi.name in seen:
            problems.append(Problem(f"kpis[{i}].name", f"{kpi.name} appears more than once"))
            continue
        seen.add(kpi.name)
        path = f"kpis.{kpi.name}"
        # Kind and direction are part of what the KPI means. Its bounds are judged by the true
        # ones, so a wrong direction is one problem, not also a second about a correct target.
        expected_kind = "measured" if kpi.name in MEASURED_KPIS else "rated"
        better = KPI_DIRECTIONS[kpi.name]
        if kpi.kind != expected_kind:
            problems.append(Problem(f"{path}.kind", f"{kpi.name} is a {expected_kind} KPI"))
        if kpi.direction != better:
            problems.append(Problem(f"{path}.direction", f"for {kpi.name}, {better} is better"))
        problems.extend(_bounds_problems(path, expected_kind, better, kpi.target, kpi.floor))
        if (p := _weight_problem(f"{path}.weight", kpi.weight)) is not None:
            problems.append(p)
        if kpi.prorate and kpi.name not in SUMMED_KPIS:
            problems.append(Problem(f"{path}.prorate", "only a summed KPI can be pro-rated"
                                    f" ({', '.join(SUMMED_KPIS)}); ratios and averages never"))
    if scheme.kpis:
        weights = [k.weight for k in scheme.kpis]
        if (p := _sum_problem("kpis", weights, "KPI weights")) is not None:
            problems.append(p)
    elif scheme.kpi_attainment_criterion() is not None:
        problems.append(Problem("kpis", "a criterion takes KPI attainment, but there are no KPIs"))
    return problems


def _override_problems(scheme: Scheme) -> list[Problem]:
    problems: list[Problem] = []
    defined = {k.name for k in scheme.kpis}
    for position, overrides in scheme.position_overrides.items():
        base = f"position_overrides.{position}"
        if not position:
            problems.append(Problem(base, "the position name must not be empty"))
        problems.extend(
            Problem(f"{base}.{name}", "not a KPI of this scheme")
            for name in overrides
            if name not in defined
        )
        effective = scheme.kpis_for(position)
        for kpi in effective:
            override = overrides.get(kpi.name)
            if override is None:
                continue
            path = f"{base}.{kpi.name}"
            if override.weight is not None:
                if (p := _weight_problem(f"{path}.weight", override.weight)) is not None:
                    problems.append(p)
            # Only bounds this position changed: the scheme's own are reported under kpis.
            if (override.target, override.floor) != (None, None):
                better = KPI_DIRECTIONS.get(kpi.name, kpi.direction)
                problems.extend(_bounds_problems(path, kpi.kind, better, kpi.target, kpi.floor))
        if overrides and effective:
            weights = [k.weight for k in effective]
            if (p := _sum_problem(base, weights, "KPI weights")) is not None:
                problems.append(p)
    return problems


def _results_problems(policy: ResultsPolicy) -> list[Problem]:
    problems: list[Problem] = []
    for name, amount in (
        ("reward_amount", policy.reward_amount),
        ("deduction_amount", policy.deduction_amount),
    ):
        if not math.isfinite(amount) or amount < 0:
            problems.append(Problem(f"results.{name}", "must be a finite amount of at least 0"))
    for name, value in (
        ("min_ranked_agents", policy.min_ranked_agents),
        ("plan_deadline_days", policy.plan_deadline_days),
        ("streak_length", policy.streak_length),
    ):
        if value < 1:
            problems.append(Problem(f"results.{name}", "must be at least 1"))
    if not (math.isfinite(policy.min_active_share) and 0 <= policy.min_active_share <= 1):
        problems.append(Problem("results.min_active_share", "must be between 0 and 1"))
    for name, value in (("release_days", policy.release_days),
                        ("appeal_days", policy.appeal_days)):
        if value < 0:
            problems.append(Problem(f"results.{name}", "must be at least 0"))
    return problems


def validate_scheme(scheme: Scheme) -> list[Problem]:
    """List every problem with a scheme; an empty list means it can be published."""
    problems: list[Problem] = []
    if not ID_RE.fullmatch(scheme.scheme_id):
        problems.append(Problem("scheme_id", "1 to 64 letters, digits, '.', '_', ':' or '-'"))
    if scheme.version < 1:
        problems.append(Problem("version", "must be at least 1"))
    if not scheme.name.strip():
        problems.append(Problem("name", "must not be empty"))
    if not (math.isfinite(scheme.scale_max) and scheme.scale_max > 0):
        problems.append(Problem("scale_max", "must be a finite number above 0"))
    problems.extend(_role_problems(scheme))
    problems.extend(_kpi_problems(scheme))
    problems.extend(_override_problems(scheme))
    problems.extend(_results_problems(scheme.results))
    return problems


# The default KPI targets and floors. Attainment is 100 at or beyond the target, 0 at or beyond
# the floor, linear between. Ratios are fractions; amounts are in the team's currency.
#
# | KPI                       | better | target | floor | weight |
# | ------------------------- | ------ | ------ | ----- | ------ |
# | conversion_rate           | higher | 0.30   | 0.05  | 0.15   |
# | avg_response_time_seconds | lower  | 30     | 180   | 0.10   |
# | churn_rate                | lower  | 0.05   | 0.30  | 0.10   |
# | order_amount              | higher | 50000  | 0     | 0.15   |
# | valid_order_ratio         | higher | 0.95   | 0.70  | 0.05   |
# | payment_ratio             | higher | 0.90   | 0.50  | 0.05   |
# | refund_ratio              | lower  | 0.05   | 0.30  | 0.05   |
# | avg_order_value           | higher | 300    | 50    | 0.05   |
# | report_timeliness         | rated  | -      | -     | 0.10   |
# | report_reliability        | rated  | -      | -     | 0.10   |
# | report_quality            | rated  | -      | -     | 0.10   |
_DEFAULT_KPIS: tuple[KpiDef, ...] = (
    KpiDef(
        name="conversion_rate",
        kind="measured",
        direction="higher",
        target=0.30,
        floor=0.05,
        weight=0.15,
        unit="ratio",
        description="conversions / consultations",
    ),
    KpiDef(
        name="avg_response_time_seconds",
        kind="measured",
        direction="lower",
        target=30.0,
        floor=180.0,
        weight=0.10,
        unit="seconds",
        description="sum of response_time_seconds / number of responses",
    ),
    KpiDef(
        name="churn_rate",
        kind="measured",
        direction="lower",
        target=0.05,
        floor=0.30,
        weight=0.10,
        unit="ratio",
        description="lost_customers / consultations",
    ),
    KpiDef(
        name="order_amount",
        kind="measured",
        direction="higher",
        target=50000.0,
        floor=0.0,
        weight=0.15,
        unit="currency",
        description="sum of order_amount",
    ),
    KpiDef(
        name="valid_order_ratio",
        kind="measured",
        direction="higher",
        target=0.95,
        floor=0.70,
        weight=0.05,
        unit="ratio",
        description="valid_orders / orders",
    ),
    KpiDef(
        name="payment_ratio",
        kind="measured",
        direction="higher",
        target=0.90,
        floor=0.50,
        weight=0.05,
        unit="ratio",
        description="paid_orders / orders",
    ),
    KpiDef(
        name="refund_ratio",
        kind="measured",
        direction="lower",
        target=0.05,
        floor=0.30,
        weight=0.05,
        unit="ratio",
        description="refunded_orders / paid_orders",
    ),
    KpiDef(
        name="avg_order_value",
        kind="measured",
        direction="higher",
        target=300.0,
        floor=50.0,
        weight=0.05,
        unit="currency",
        description="order_amount / paying_customers",
    ),
    *(
        KpiDef(
            name=name,
            kind="rated",
            weight=0.10,
            unit="score",
            description=f"{label}, rated by the manager (management duties)",
        )
        for name, label in zip(
            RATED_KPIS,
            (
                "timely submission of reports",
                "reliability of report data",
                "overall report quality",
            ),
            strict=True,
        )
    ),
)


def _single(role: str, weight: float, criterion: str) -> RaterRole:
    return RaterRole(role=role, weight=weight, criteria=(Criterion(name=criterion, weight=1.0),))


DEFAULT_SCHEME: Scheme = Scheme(
    scheme_id="online-shop-cs",
    version=1,
    name="Online shop customer service (monthly)",
    roles=(
        _single("self", 0.30, "task_completion"),
        RaterRole(
            role="manager",
            weight=0.70,
            criteria=(
                Criterion(name="work_performance", weight=0.25, source="kpi_attainment"),
                Criterion(name="work_ability", weight=0.25),
                Criterion(name="cooperation", weight=0.25),
                Criterion(name="service", weight=0.25),
            ),
        ),
        # Weight 0 in the seed's scenario; a later version may give them weight, and then their
        # ratings count once the rater's evaluator training is on record.
        _single("peer", 0.0, "collaboration"),
        _single("subordinate", 0.0, "leadership"),
        _single("customer", 0.0, "satisfaction"),
        _single("expert", 0.0, "professionalism"),
    ),
    kpis=_DEFAULT_KPIS,
    requires_training=("peer", "subordinate", "customer", "expert"),
)


#: Version 2, "fair months" (``domain.md``): presence decides who is ranked, order_amount's
#: target follows presence, one yardstick per team-month, results released after the feedback
#: interview, appeals; evaluator training of every rater role with weight but self.
DEFAULT_SCHEME_V2: Scheme = DEFAULT_SCHEME.model_copy(update={
    "version": 2,
    "kpis": tuple(k.model_copy(update={"prorate": True}) if k.name == "order_amount" else k
                  for k in _DEFAULT_KPIS),
    "results": ResultsPolicy(fair_months=True, min_active_share=0.5, release="after_interview",
                             release_days=3, appeal_days=5),
    "requires_training": ("manager", "peer", "subordinate", "customer", "expert"),
})

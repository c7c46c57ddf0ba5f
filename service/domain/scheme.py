"""Scoring schemes: who rates what with which weight, KPI targets, and the results policy.

A scheme is versioned data: admins publish new versions, and a cycle keeps the version it was
opened with. The models only check shapes; ``validate_scheme`` checks the meaning and reports
every problem at once, so an admin can fix a scheme in one round trip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field, model_validator

from service.domain.errors import Text
from service.domain.frozen import Frozen
from service.domain.ids import ID_RE
from service.domain.kpis import COUNT_UNIT, Direction, Formula, MetricDef, TeamTarget
from service.domain.problems import Problem, problem
from service.domain.training import TOPICS

#: Where a KPI's effective target came from, most specific last: the scheme, the agent's
#: position, the team (``kpi_targets``), a resolved goal dispute, pro-rating (fair months).
TargetSource = Literal["scheme", "position", "team", "goal", "prorated"]

RATER_ROLES: tuple[str, ...] = ("self", "manager", "peer", "subordinate", "customer", "expert")

# Weights are decimals typed by people (0.3 + 0.7); sums are compared with this tolerance.
WEIGHT_TOLERANCE = 1e-6


# -- the built-in metrics and formulas: data of the built-in scheme ---------------------------
# Also how a scheme written before KPIs were data is read: it meant these (see the validators).

#: The ten raw metrics of ``online-shop-cs``. Counts are whole occurrences; order_amount is a
#: summed money amount; response_time_seconds is one observation per response, averaged.
BUILTIN_METRICS: tuple[MetricDef, ...] = (
    *(MetricDef(name=name, unit=COUNT_UNIT, aggregation="sum", label=label)
      for name, label in (
          ("consultations", "Consultations"),
          ("conversions", "Conversions"),
      )),
    MetricDef(name="response_time_seconds", unit="seconds", aggregation="mean",
              label="Response time"),
    *(MetricDef(name=name, unit=COUNT_UNIT, aggregation="sum", label=label)
      for name, label in (
          ("lost_customers", "Lost customers"),
          ("orders", "Orders"),
      )),
    MetricDef(name="order_amount", unit="currency", aggregation="sum", label="Order amount"),
    *(MetricDef(name=name, unit=COUNT_UNIT, aggregation="sum", label=label)
      for name, label in (
          ("valid_orders", "Valid orders"),
          ("paid_orders", "Paid orders"),
          ("refunded_orders", "Refunded orders"),
          ("paying_customers", "Paying customers"),
      )),
)

#: Which way is better for the built-in KPIs: part of what they mean (validate_scheme holds a
#: KPI with a built-in name and formula to it).
BUILTIN_DIRECTIONS: dict[str, Direction] = {
    "conversion_rate": "higher",
    "avg_response_time_seconds": "lower",
    "churn_rate": "lower",
    "order_amount": "higher",
    "valid_order_ratio": "higher",
    "payment_ratio": "higher",
    "refund_ratio": "lower",
    "avg_order_value": "higher",
}

#: The formulas of the eight built-in measured KPIs (``domain.md``, the KPI table).
BUILTIN_FORMULAS: dict[str, Formula] = {
    "conversion_rate": Formula(op="ratio", of="conversions", over="consultations"),
    "avg_response_time_seconds": Formula(op="mean", of="response_time_seconds"),
    "churn_rate": Formula(op="ratio", of="lost_customers", over="consultations"),
    "order_amount": Formula(op="sum", of="order_amount"),
    "valid_order_ratio": Formula(op="ratio", of="valid_orders", over="orders"),
    "payment_ratio": Formula(op="ratio", of="paid_orders", over="orders"),
    "refund_ratio": Formula(op="ratio", of="refunded_orders", over="paid_orders"),
    "avg_order_value": Formula(op="ratio", of="order_amount", over="paying_customers"),
}


# Sequences are tuples so that a shared scheme (DEFAULT_SCHEME) cannot be changed in place and
# a scheme read back from JSON compares equal to the one written.
class KpiDef(Frozen):
    """A KPI of a scheme: measured (a formula over declared metrics) or rated (by a person,
    0..scale_max)."""

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
    #: How a measured KPI is computed; a rated KPI has none.
    formula: Formula | None = None
    #: What people read on the dashboard and the scorecard (the name when empty).
    label: str = ""

    @model_validator(mode="before")
    @classmethod
    def _builtin_formula(cls, data: object) -> object:
        # Schemes written before KPIs were data name a built-in KPI without its formula: they
        # meant the built-in one, so it is read (and kept working for old clients) that way.
        if (isinstance(data, dict) and data.get("formula") is None
                and data.get("kind") == "measured" and data.get("name") in BUILTIN_FORMULAS):
            return {**data, "formula": BUILTIN_FORMULAS[data["name"]]}
        return data

    @property
    def title(self) -> str:
        """Return the label, or the name when the scheme gives none."""
        return self.label or self.name


class KpiOverride(Frozen):
    """A position's change to one KPI; fields left out keep the scheme's value.

    Naming a KPI the scheme does not have *adds* it for the position: then ``kind``,
    ``weight`` and, for a measured one, ``formula``, ``target`` and ``floor`` are needed.
    A weight of 0 drops a KPI for the position.
    """

    target: float | None = None
    floor: float | None = None
    weight: float | None = None
    kind: Literal["measured", "rated"] | None = None
    direction: Direction | None = None
    formula: Formula | None = None
    unit: str | None = None
    label: str | None = None
    description: str | None = None
    prorate: bool | None = None

    def as_kpi(self, name: str) -> KpiDef:
        """Return the KPI this override adds (for a name the scheme does not have)."""
        return KpiDef.model_validate({"name": name, **self.model_dump(exclude_none=True)})


class Criterion(Frozen):
    """A criterion of a rater role: rated on the form, or derived from KPI attainment."""

    name: str
    weight: float
    source: Literal["rated", "kpi_attainment"] = "rated"


class RaterRole(Frozen):
    """A rater role, its share of the composite, and the criteria its raters score."""

    role: str
    weight: float
    criteria: tuple[Criterion, ...]


class ResultsPolicy(Frozen):
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


class Scheme(Frozen):
    """A versioned scoring scheme."""

    scheme_id: str
    version: int = 1
    name: str
    scale_max: float = 100.0
    roles: tuple[RaterRole, ...]
    kpis: tuple[KpiDef, ...]
    #: The raw metrics the scheme's KPIs are computed from, and which samples its teams send.
    metrics: tuple[MetricDef, ...] = ()
    position_overrides: dict[str, dict[str, KpiOverride]] = Field(default_factory=dict)
    results: ResultsPolicy = Field(default_factory=ResultsPolicy)
    requires_training: tuple[str, ...] = ()
    #: The training topics (``service.domain.training.TOPICS``) that a rater of a role in
    #: ``requires_training`` must have valid when submitting an evaluation.
    training_topics: tuple[str, ...] = TOPICS

    @model_validator(mode="before")
    @classmethod
    def _builtin_metrics(cls, data: object) -> object:
        # A scheme written before metrics were declared used the built-in ten.
        if isinstance(data, dict) and "metrics" not in data:
            return {**data, "metrics": BUILTIN_METRICS}
        return data

    def metric(self, name: str) -> MetricDef | None:
        """Return the declared metric named ``name``, or None."""
        return next((m for m in self.metrics if m.name == name), None)

    def all_kpis(self) -> list[KpiDef]:
        """Return every KPI any position of the scheme may use: the scheme's, then those a
        position adds (first definition of a name wins)."""
        found = {k.name: k for k in self.kpis}
        for overrides in self.position_overrides.values():
            for name, override in overrides.items():
                if name not in found and override.kind is not None:
                    try:
                        found[name] = override.as_kpi(name)
                    except ValueError:
                        continue  # incomplete: validate_scheme reports it
        return list(found.values())

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

    def form(self, role: str, position: str | None = None) -> frozenset[str]:
        """Return the criteria a rater of ``role`` must score for an agent of ``position``
        (empty for an unknown role)."""
        rater_role = self.role(role)
        if rater_role is None:
            return frozenset()
        names = {c.name for c in rater_role.criteria if c.source == "rated"}
        # KPI attainment is computed, not typed in, so it is not on the form; but the rated KPIs
        # that feed it are scored by whoever owns it (the manager, in the default scheme): those
        # of the agent's position, which may add some and drop others (weight 0: not asked for,
        # since a score nobody counts is a question with no purpose).
        if any(c.source == "kpi_attainment" for c in rater_role.criteria):
            names.update(k.name for k in self.kpis_for(position)
                         if k.kind == "rated" and k.weight > 0)
        return frozenset(names)

    def kpis_for(self, position: str | None) -> list[KpiDef]:
        """Return the scheme's KPIs with the position's overrides applied."""
        overrides = self.position_overrides.get(position, {}) if position is not None else {}
        if not overrides:
            # Most positions override nothing, and a close asks once per agent.
            return list(self.kpis)
        result = []
        for kpi in self.kpis:
            override = overrides.get(kpi.name)
            if override is None:
                result.append(kpi)
            else:
                result.append(kpi.model_copy(update=override.model_dump(exclude_none=True)))
        defined = {k.name for k in self.kpis}
        for name, override in overrides.items():
            if name not in defined and override.kind is not None:
                try:
                    result.append(override.as_kpi(name))
                except ValueError:
                    continue  # incomplete: validate_scheme reports it
        return result

    def kpi_names(self) -> frozenset[str]:
        """Return the names of every KPI of the scheme, those positions add included."""
        return frozenset(k.name for k in self.all_kpis())


def check_evaluation(
    scheme: Scheme,
    role: str,
    scores: Mapping[str, float],
    *,
    override_reason: str | None = None,
    position: str | None = None,
) -> list[Problem]:
    """List every problem with an evaluation by a rater of ``role`` of an agent of
    ``position``; empty means acceptable."""
    rater_role = scheme.role(role)
    if rater_role is None:
        return [Problem("rater_role", f"{role!r} is not a rater role of scheme {scheme.scheme_id}")]
    form = scheme.form(role, position)
    owner = scheme.kpi_attainment_criterion()
    overridable = owner[1].name if owner is not None and owner[0] == role else None
    # A rated KPI the position dropped is not asked for, but a score of it (a client sending
    # the scheme's whole form) is tolerated: it is kept with the evaluation and not counted.
    tolerated = scheme.form(role) - form if position is not None else frozenset()
    problems = [
        problem(f"scores.{name}", "missing: the %(role)s form requires it", role=Text(role))
        for name in sorted(form.difference(scores))
    ]
    for name, value in scores.items():
        field = f"scores.{name}"
        if name == overridable:
            # Overriding measured evidence must leave a trail: the reason is recorded with it.
            if override_reason is None or not override_reason.strip():
                problems.append(problem(field, "an override of %(name)s needs a written reason",
                                        name=name))
        elif name not in form and name not in tolerated:
            problems.append(problem(field, "not on the %(role)s form", role=Text(role)))
        if not (math.isfinite(value) and 0 <= value <= scheme.scale_max):
            problems.append(problem(field, "must be between 0 and %(max)s",
                                    max=f"{scheme.scale_max:g}"))
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


def _metric_problems(scheme: Scheme) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, metric in enumerate(scheme.metrics):
        path = f"metrics[{i}].name"
        if not ID_RE.fullmatch(metric.name):
            problems.append(Problem(path, "1 to 64 letters, digits, '.', '_', ':' or '-'"))
        elif metric.name in seen:
            problems.append(Problem(path, f"{metric.name} is declared more than once"))
        seen.add(metric.name)
    return problems


def _formula_problems(scheme: Scheme, path: str, kpi: KpiDef) -> list[Problem]:
    """List what is wrong with a KPI's formula: kind, declared metrics, a ratio over itself."""
    formula = kpi.formula
    if kpi.kind == "rated":
        return [] if formula is None else [
            Problem(f"{path}.formula", "a rated KPI is scored by a person; it has no formula")]
    if formula is None:
        return [Problem(f"{path}.formula", "a measured KPI needs a formula: ratio, sum, mean"
                                           " or per_active_day over declared metrics")]
    problems: list[Problem] = []
    if formula.op == "ratio":
        if formula.over is None:
            problems.append(Problem(f"{path}.formula.over", "a ratio needs a metric to divide by"))
        elif formula.over == formula.of:
            problems.append(Problem(f"{path}.formula.over",
                                    f"a ratio of {formula.of} over itself is always 1"))
    elif formula.over is not None:
        problems.append(Problem(f"{path}.formula.over",
                                f"only a ratio has 'over', not {formula.op}"))
    for key, name in (("of", formula.of), ("over", formula.over)):
        if name is None:
            continue
        metric = scheme.metric(name)
        if metric is None:
            problems.append(Problem(f"{path}.formula.{key}",
                                    f"{name!r} is not a metric the scheme declares"))
        elif metric.aggregation == "mean" and formula.op != "mean":
            # Summing or dividing response times means nothing: an averaged metric is read
            # per observation.
            problems.append(Problem(f"{path}.formula.{key}",
                                    f"{name} is averaged; only a mean formula can read it"))
    if kpi.prorate and formula.op != "sum":
        problems.append(Problem(f"{path}.prorate", "only a summed KPI can be pro-rated;"
                                                   " ratios and averages never"))
    builtin = BUILTIN_DIRECTIONS.get(kpi.name)
    if builtin is not None and formula == BUILTIN_FORMULAS.get(kpi.name) \
            and kpi.direction != builtin:
        # Which way is better is part of what the built-in KPI means, not a scheme choice.
        problems.append(Problem(f"{path}.direction", f"for {kpi.name}, {builtin} is better"))
    return problems


def _one_kpi_problems(scheme: Scheme, path: str, kpi: KpiDef) -> list[Problem]:
    problems = _formula_problems(scheme, path, kpi)
    # Bounds are judged by the built-in direction when that one is wrong, so a wrong direction
    # is one problem, not also a second about a correct target.
    direction = kpi.direction
    if any(p.field == f"{path}.direction" for p in problems):
        direction = BUILTIN_DIRECTIONS[kpi.name]
    problems.extend(_bounds_problems(path, kpi.kind, direction, kpi.target, kpi.floor))
    if (p := _weight_problem(f"{path}.weight", kpi.weight)) is not None:
        problems.append(p)
    return problems


def _kpi_problems(scheme: Scheme) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, kpi in enumerate(scheme.kpis):
        if not ID_RE.fullmatch(kpi.name):
            problems.append(Problem(f"kpis[{i}].name",
                                    "1 to 64 letters, digits, '.', '_', ':' or '-'"))
            continue
        if kpi.name in seen:
            problems.append(Problem(f"kpis[{i}].name", f"{kpi.name} appears more than once"))
            continue
        seen.add(kpi.name)
        problems.extend(_one_kpi_problems(scheme, f"kpis.{kpi.name}", kpi))
    if scheme.kpis:
        weights = [k.weight for k in scheme.kpis]
        if (p := _sum_problem("kpis", weights, "KPI weights")) is not None:
            problems.append(p)
    elif scheme.kpi_attainment_criterion() is not None and not scheme.position_overrides:
        problems.append(Problem("kpis", "a criterion takes KPI attainment, but there are no KPIs"))
    return problems


def _override_problems(scheme: Scheme) -> list[Problem]:
    problems: list[Problem] = []
    defined = {k.name for k in scheme.kpis}
    for position, overrides in scheme.position_overrides.items():
        base = f"position_overrides.{position}"
        if not position:
            problems.append(Problem(base, "the position name must not be empty"))
        for name, override in overrides.items():
            path = f"{base}.{name}"
            if name in defined:
                if override.kind is not None or override.formula is not None:
                    problems.append(Problem(path, "a position changes a scheme KPI's target,"
                                                  " floor or weight only; add a new name instead"))
                continue
            if override.kind is None or override.weight is None:
                problems.append(Problem(path, "not a KPI of this scheme: to add it for the"
                                              " position, give at least kind and weight"))
                continue
            if not ID_RE.fullmatch(name):
                problems.append(Problem(path, "1 to 64 letters, digits, '.', '_', ':' or '-'"))
                continue
            problems.extend(_one_kpi_problems(scheme, path, override.as_kpi(name)))
        effective = scheme.kpis_for(position)
        for kpi in effective:
            change = overrides.get(kpi.name)
            if change is None or kpi.name not in defined:
                continue
            path = f"{base}.{kpi.name}"
            if change.weight is not None:
                if (p := _weight_problem(f"{path}.weight", change.weight)) is not None:
                    problems.append(p)
            # Only bounds this position changed: the scheme's own are reported under kpis.
            if (change.target, change.floor) != (None, None):
                problems.extend(_bounds_problems(path, kpi.kind, kpi.direction, kpi.target,
                                                 kpi.floor))
        weights = [k.weight for k in effective]
        # Weights all 0 is a position with no KPIs at all: only its rated criteria count.
        if overrides and effective and any(w > 0 for w in weights if math.isfinite(w)):
            if (p := _sum_problem(base, weights, "KPI weights")) is not None:
                problems.append(p)
    return problems


def _clash_problems(scheme: Scheme) -> list[Problem]:
    # The rated KPIs share the form with the criteria, and both reach the reporting views by
    # name: one name, one meaning.
    kpis = scheme.kpi_names()
    return [
        Problem(f"roles[{i}].criteria[{j}].name", f"clashes with the KPI {criterion.name}")
        for i, rater_role in enumerate(scheme.roles)
        for j, criterion in enumerate(rater_role.criteria)
        if criterion.name in kpis
    ]


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


def team_target_problems(scheme: Scheme, targets: Mapping[str, TeamTarget]) -> list[Problem]:
    """List what is wrong with a team's own KPI targets under its scheme."""
    kpis = {k.name: k for k in scheme.all_kpis()}
    problems: list[Problem] = []
    for name, change in targets.items():
        path = f"kpi_targets.{name}"
        kpi = kpis.get(name)
        if kpi is None or kpi.kind != "measured":
            problems.append(Problem(path, f"not a measured KPI of scheme {scheme.scheme_id}"))
            continue
        if change.target is None and change.floor is None:
            problems.append(Problem(path, "give a target, a floor or both"))
            continue
        target = change.target if change.target is not None else kpi.target
        floor = change.floor if change.floor is not None else kpi.floor
        problems.extend(_bounds_problems(path, "measured", kpi.direction, target, floor))
    return problems


def with_team_targets(scheme: Scheme, team_targets: Mapping[str, TeamTarget]) -> Scheme:
    """Return the scheme as a team's agents are issued it: the team's own targets and floors
    over the scheme's and every position's (``effective_kpis``' rule)."""
    if not team_targets:
        return scheme

    def retarget(kpi: KpiDef) -> KpiDef:
        team = team_targets.get(kpi.name)
        if team is None or kpi.kind != "measured":
            return kpi
        return kpi.model_copy(update=team.model_dump(exclude_none=True))

    def give_way(name: str, change: KpiOverride) -> KpiOverride:
        team = team_targets.get(name)
        if team is None:
            return change
        numbers = team.model_dump(exclude_none=True)
        if change.kind is not None:  # a KPI the position adds: the team's numbers replace its
            return change.model_copy(update=numbers)
        # a position's change of a scheme KPI gives way where the team set its own
        return change.model_copy(update=dict.fromkeys(numbers))

    overrides = {position: {name: give_way(name, change) for name, change in changes.items()}
                 for position, changes in scheme.position_overrides.items()}
    return scheme.model_copy(update={"kpis": tuple(retarget(k) for k in scheme.kpis),
                                     "position_overrides": overrides})


def effective_kpis(scheme: Scheme, position: str | None, team_targets: Mapping[str, TeamTarget]
                   ) -> tuple[list[KpiDef], dict[str, TargetSource]]:
    """Return a position's KPIs with the team's own targets over them, and where each KPI's
    target came from (a team target wins over the position's: it is in the team's currency)."""
    overrides = scheme.position_overrides.get(position, {}) if position is not None else {}
    kpis: list[KpiDef] = []
    sources: dict[str, TargetSource] = {}
    for kpi in scheme.kpis_for(position):
        override = overrides.get(kpi.name)
        source: TargetSource = "scheme"
        if override is not None and (override.target, override.floor) != (None, None):
            source = "position"
        team = team_targets.get(kpi.name)
        if team is not None and kpi.kind == "measured":
            kpi = kpi.model_copy(update=team.model_dump(exclude_none=True))
            source = "team"
        kpis.append(kpi)
        sources[kpi.name] = source
    return kpis, sources


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
    problems.extend(_clash_problems(scheme))
    problems.extend(_metric_problems(scheme))
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
        formula=BUILTIN_FORMULAS["conversion_rate"],
        label="Consultation conversion rate",
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
        formula=BUILTIN_FORMULAS["avg_response_time_seconds"],
        label="Average response time",
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
        formula=BUILTIN_FORMULAS["churn_rate"],
        label="Customer churn rate",
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
        formula=BUILTIN_FORMULAS["order_amount"],
        label="Total order amount",
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
        formula=BUILTIN_FORMULAS["valid_order_ratio"],
        label="Valid order ratio",
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
        formula=BUILTIN_FORMULAS["payment_ratio"],
        label="Payment ratio",
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
        formula=BUILTIN_FORMULAS["refund_ratio"],
        label="Refund ratio",
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
        formula=BUILTIN_FORMULAS["avg_order_value"],
        label="Average order value per customer",
    ),
    *(
        KpiDef(
            name=name,
            kind="rated",
            weight=0.10,
            unit="score",
            description=f"{text}, rated by the manager (management duties)",
            label=label,
        )
        for name, text, label in (
            ("report_timeliness", "timely submission of reports", "Report timeliness"),
            ("report_reliability", "reliability of report data", "Report data reliability"),
            ("report_quality", "overall report quality", "Report quality"),
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
    metrics=BUILTIN_METRICS,
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

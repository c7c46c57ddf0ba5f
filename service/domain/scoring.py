"""Score an agent under a scheme, keeping every step so a scorecard can explain the number.

composite        = sum over counted rater roles of role weight * role score      (0..100)
role score       = sum over its criteria of criterion weight * criterion score   (0..100)
rated criterion  = rating / scale_max * 100
work_performance = sum over KPIs of KPI weight * attainment, or the manager's override
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SkipValidation,
    field_serializer,
    model_validator,
)

from service.domain.kpis import Direction
from service.domain.presence import prorated
from service.domain.scheme import Criterion, KpiDef, RaterRole, Scheme

# Stored with each score so that a scorecard computed by an older formula can be recognised.
FORMULA_VERSION = "csperf-scoring/1"
#: Fair months (scheme results.fair_months): one yardstick per team-month and pro-rated targets.
FAIR_FORMULA_VERSION = "csperf-scoring/2"

MissingRolesPolicy = Literal["zero", "renormalize"]
RoleStatus = Literal["scored", "missing", "missing_scored_zero", "missing_dropped", "unrated"]
#: measured: a value counted; no_data: nothing arrived for this agent (version 1: dropped;
#: fair months: attainment 0); unavailable: no ranked agent of the team has data (dropped).
KpiStatus = Literal["measured", "no_data", "unavailable"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class CriterionScore(_Frozen):
    """A criterion's weight in its role, its weight after re-normalisation, and its score."""

    weight: float
    effective_weight: float
    score: float | None


class RoleScore(_Frozen):
    """A rater role's part of the composite."""

    weight: float
    effective_weight: float
    score: float | None
    status: RoleStatus
    criteria: dict[str, CriterionScore]


class KpiScore(NamedTuple):
    """One KPI's value against its target and floor, and what it contributed.

    ``WorkPerformance`` holds each as a plain tuple of these fields (``rows``) and names them
    on the way out (``kpis``).
    """

    kind: Literal["measured", "rated"]
    value: float | None
    target: float | None
    floor: float | None
    direction: Direction
    weight: float
    effective_weight: float
    attainment: float | None
    dropped: bool
    status: KpiStatus | None = None
    #: Fair months: the share of the month target and floor were scaled by (prorate KPIs).
    prorated_by: float | None = None
    #: Where the target came from: scheme, position, team, goal or prorated (None: rated, or
    #: scored before the source was recorded).
    target_source: str | None = None


@dataclass(frozen=True)
class Yardstick:
    """Fair months: what the team-month says about one agent's KPIs.

    ``unavailable``: measured KPIs no ranked agent of the team (and position) has data for;
    ``has_data``: per measured KPI, whether this agent has any; ``share``: active days / days.
    """

    unavailable: frozenset[str] = frozenset()
    has_data: Mapping[str, bool] = field(default_factory=dict)
    share: float = 1.0


#: The fields of a KpiScore: the order of its row (``WorkPerformance.rows``).
KPI_FIELDS: tuple[str, ...] = KpiScore._fields
#: Where a row holds each field.
_KPI_AT = {name: i for i, name in enumerate(KPI_FIELDS)}
#: A row's fields at their defaults (None for those without one).
_DEFAULTS = [KpiScore._field_defaults.get(f) for f in KPI_FIELDS]
_KIND, _WEIGHT, _EFFECTIVE, _ATTAINMENT, _DROPPED, _STATUS = (
    _KPI_AT[f] for f in ("kind", "weight", "effective_weight", "attainment", "dropped", "status"))


def compact_kpis(performances: Sequence[WorkPerformance | None]
                 ) -> tuple[dict[str, dict[str, Any]], list[str],
                            list[dict[str, Any] | None]]:
    """Return a month's KPI scores compactly: the fields in which every agent's score of a KPI
    is alike, once, by field and KPI; the first agent's KPI names; and each agent's scores
    (None: no work performance) as the names of the other fields, their values column by
    column (each in the order of the agent's KPIs), and the agent's KPI names when they are
    not the first agent's.

    A close of 1,000 agents on 50 KPIs repeated each KPI's kind, target, floor, direction,
    weight... in each of its 50,000 scores: PostgreSQL took 0.25 s of CPU to store its 7 MB as
    jsonb, and 0.15 s with the alike fields left out. Stored as columns, each agent's scores
    are a few lists where they were an object of 50 named lists: the columns are the ones
    compared below (no list made per score, 50,000 a close), and the JSON is an eighth smaller
    (the KPIs' names once rather than once per agent). Every field is a JSON value already
    (numbers, text, booleans, None); ``expand_kpis`` reads them back.
    """
    first: dict[str, tuple[Any, ...]] = {}
    alike = list(range(len(KPI_FIELDS)))
    # Each agent's scores field by field (columns: transposed in C, 50,000 scores a close),
    # compared with the first agent's when both have the same KPIs, as they have when they
    # hold the same position; otherwise score by score.
    scored: list[tuple[list[str], list[tuple[Any, ...]]] | None] = []
    reference: tuple[list[str], list[tuple[Any, ...]]] | None = None
    for performance in performances:
        if performance is None or not performance.rows:
            scored.append(None)
            continue
        rows = performance.rows
        names, columns = list(rows), list(zip(*rows.values(), strict=True))
        scored.append((names, columns))
        if reference is None:
            reference = (names, columns)
            first.update(rows)
        elif names == reference[0]:
            alike = [i for i in alike if columns[i] == reference[1][i]]
        else:
            for name in rows.keys() - first.keys():
                first[name] = rows[name]
            alike = [i for i in alike if all(row[i] == first[name][i]
                                             for name, row in rows.items())]
    shared = {KPI_FIELDS[i]: {name: row[i] for name, row in first.items()} for i in alike}
    others = [i for i in range(len(KPI_FIELDS)) if i not in alike]
    fields = [KPI_FIELDS[i] for i in others]
    usual = reference[0] if reference is not None else []
    compact: list[dict[str, Any] | None] = []
    for performance, agent in zip(performances, scored, strict=True):
        if performance is None:
            compact.append(None)
            continue
        names, columns = agent if agent is not None else ([], [])
        kpis: dict[str, Any] = {"fields": fields, "columns": [columns[i] for i in others]}
        if names != usual:
            kpis["names"] = names
        compact.append(kpis)
    return shared, usual, compact


def _picker(at: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """Return a function giving the items of a sequence at these places, as a tuple."""
    if len(at) > 1:
        return operator.itemgetter(*at)
    return lambda values: tuple(values[i] for i in at)


def kpi_templates(shared: Mapping[str, Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Return each KPI's row as far as the fields alike for every agent fill it
    (``compact_kpis``), the others at their defaults."""
    templates: dict[str, list[Any]] = {}
    for name_of_field, by_kpi in shared.items():
        at = _KPI_AT[name_of_field]
        for name, value in by_kpi.items():
            templates.setdefault(name, list(_DEFAULTS))[at] = value
    return templates


def expand_kpis(templates: Mapping[str, list[Any]], compact: Mapping[str, Any],
                usual: Sequence[str] = ()) -> dict[str, tuple[Any, ...]]:
    """Return one agent's KPI rows from their compact form (``compact_kpis``; or, as stored
    before the columns, one list of values per KPI by name), the month's ``kpi_templates``
    and its usual KPI names."""
    fields = list(compact["fields"])
    # A row is its stored values followed by its template, picked into KPI_FIELDS order.
    row = _picker([fields.index(f) if f in fields else len(fields) + i
                   for i, f in enumerate(KPI_FIELDS)])
    if "rows" in compact:
        stored: Iterable[tuple[str, Sequence[Any]]] = compact["rows"].items()
    else:
        names, columns = compact.get("names", usual), compact["columns"]
        stored = zip(names, zip(*columns, strict=True) if columns else [()] * len(names),
                     strict=True)
    return {name: row([*values, *templates.get(name, _DEFAULTS)]) for name, values in stored}


class WorkPerformance(_Frozen):
    """The KPI-attainment criterion: computed from the KPIs unless overridden."""

    # Dumped as "kpis", each score a dict of its fields; built from "kpis" too.
    model_config = ConfigDict(frozen=True, serialize_by_alias=True, validate_by_name=True,
                              validate_by_alias=True)

    role: str
    criterion: str
    score: float | None
    computed: float | None
    overridden: bool
    override_reason: str | None
    #: Each KPI's score as a plain tuple of its fields (``KPI_FIELDS``). A close of 1,000
    #: agents on 50 KPIs holds 50,000 of them, for as long as the process holds the close:
    #: as objects, each full pass of the garbage collector walked them all (and their number
    #: brought the passes on sooner), where a tuple of plain values is one it stops following
    #: after its first pass. The scores are this module's numbers or the close event's, so
    #: they are not validated again one by one.
    rows: Annotated[dict[str, tuple[Any, ...]], SkipValidation] = Field(alias="kpis")

    @property
    def kpis(self) -> dict[str, KpiScore]:
        """Return each KPI's score, by KPI."""
        return {name: KpiScore._make(row) for name, row in self.rows.items()}

    # Read off the rows: a close's warnings and its ranking ask each agent's work performance
    # (1,000 agents on 50 KPIs: 50,000 named scores a question otherwise).

    def unavailable(self) -> list[str]:
        """Return the KPIs no ranked agent of the team had data for (fair months)."""
        return [name for name, row in self.rows.items() if row[_STATUS] == "unavailable"]

    def without_data(self) -> list[str]:
        """Return the weighted measured KPIs this agent had no data for, while teammates had
        (fair months: they score 0)."""
        return [name for name, row in self.rows.items() if row[_STATUS] == "no_data"
                and row[_KIND] == "measured" and row[_WEIGHT] > 0]

    @field_serializer("rows")
    def _dump_rows(self, rows: dict[str, tuple[Any, ...]]) -> dict[str, dict[str, Any]]:
        return {name: dict(zip(KPI_FIELDS, row, strict=True)) for name, row in rows.items()}

    @model_validator(mode="before")
    @classmethod
    def _expand(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        key = "kpis" if "kpis" in data else "rows"
        kpis = data.get(key)
        if not isinstance(kpis, dict):
            return data
        if set(kpis) == {"fields", "rows"}:  # the compact form of close events
            names, rows = kpis["fields"], kpis["rows"]
            if tuple(names) == KPI_FIELDS:
                kpis = {kpi: tuple(row) for kpi, row in rows.items()}
            else:  # stored with other fields (older code): the missing ones take defaults
                kpis = {kpi: tuple(KpiScore(**dict(zip(names, row, strict=True))))
                        for kpi, row in rows.items()}
        else:  # rows, scores, or each score a dict (a close stored before the compact form)
            # (an exact tuple: a named one is a tuple the collector keeps following)
            kpis = {kpi: row if type(row) is tuple else tuple(
                        KpiScore(**row) if isinstance(row, dict) else row)
                    for kpi, row in kpis.items()}
        return {**data, key: kpis}


def dump_performance(performance: WorkPerformance) -> dict[str, Any]:
    """Return work performance as the API shows it: each KPI score a dict of its fields."""
    return performance.model_dump(mode="json")


class AgentScore(_Frozen):
    """An agent's composite score and how it was computed (``roles``: those with weight)."""

    scheme_id: str
    scheme_version: int
    position: str | None
    formula_version: str
    composite: float | None
    missing_roles: tuple[str, ...]
    roles: dict[str, RoleScore]
    work_performance: WorkPerformance | None
    notes: tuple[str, ...]


def _percent(score: float) -> float:
    """Return a 0..100 score with floating-point rounding at the ends absorbed: a mean of
    0..100 scores under weights normalised to sum to 1 can land a last bit past 100 (weights
    3/9 and 5/9 of a total 8/9: 100.00000000000001)."""
    return min(100.0, max(0.0, score))


def attainment(
    value: float | None, target: float, floor: float, direction: Direction
) -> float | None:
    """Return 0..100: 100 at or beyond the target, 0 at or beyond the floor, linear between."""
    if value is None or math.isnan(value):
        return None
    if direction == "higher":
        if value >= target:
            return 100.0
        if value <= floor:
            return 0.0
    else:
        if value <= target:
            return 100.0
        if value >= floor:
            return 0.0
    # Strictly between floor and target here, so target != floor and the sign works out for
    # both directions; the clamp only absorbs floating-point rounding at the ends.
    return _percent(100.0 * (value - floor) / (target - floor))


def _names(names: Sequence[str]) -> str:
    return ", ".join(names) + (" has" if len(names) == 1 else " have")


# Scoring builds each KPI's fields as a list in ``KPI_FIELDS`` order and its row (a tuple) once
# at the end: a close scores every KPI of every agent (50,000 for 1,000 agents on 50 KPIs), and
# copying frozen models for each adjustment (pro-rating, no data, re-normalised weight) cost more
# than the arithmetic, and a dict of the fields by name each a third of the scoring.


def _kpi_rows(kpis: Sequence[KpiDef], kpi_values: Mapping[str, float | None],
              ratings: Mapping[str, float], scale_max: float, sources: Mapping[str, str],
              yardstick: Yardstick | None, notes: list[str]) -> dict[str, list[Any]]:
    """Return each KPI's fields (``KPI_FIELDS`` order, effective weight still 0), by KPI.

    A rated KPI is the rating on the scale; a measured one its attainment. Fair months (a
    ``yardstick``) score by the one-yardstick rule: a KPI unavailable to the team drops out, one
    the agent has no data for scores 0, and prorate KPIs scale their target and floor by the
    agent's active share.

    One loop with each KPI's fields read once: a close scores 50,000 KPIs for 1,000 agents on
    50, and two calls and a model copy per KPI cost more than the scoring itself.
    """
    fields: dict[str, list[Any]] = {}
    unavailable, has_data, share = ((yardstick.unavailable, yardstick.has_data, yardstick.share)
                                    if yardstick is not None else (frozenset(), {}, 1.0))
    for kpi in kpis:
        name, kind, target, floor, direction = (kpi.name, kpi.kind, kpi.target, kpi.floor,
                                                kpi.direction)
        # kind, value, target, floor, direction, weight, effective_weight, attainment,
        # dropped, status, prorated_by, target_source
        if kind == "rated":
            value = ratings.get(name)
            reached = None if value is None else value / scale_max * 100.0
            fields[name] = [kind, value, target, floor, direction, kpi.weight, 0.0, reached,
                            reached is None, "no_data" if reached is None else "measured",
                            None, None]
            continue
        source = sources.get(name, "scheme")
        if name in unavailable:
            fields[name] = [kind, None, target, floor, direction, kpi.weight, 0.0, None, True,
                            "unavailable", None, source]
            continue
        value = kpi_values.get(name)
        prorated_by = None
        if (yardstick is not None and kpi.prorate and share < 1 and target is not None
                and floor is not None):
            target, floor = prorated(target, share), prorated(floor, share)
            notes.append(f"{name} target and floor pro-rated to {share:.0%} of the month")
            source, prorated_by = "prorated", round(share, 4)
        if yardstick is not None and not has_data.get(name, False):
            # Not let off: teammates are judged on this KPI, so no data here counts as nothing
            # achieved, and the close lists it so that the feed is fixed before the month ends.
            fields[name] = [kind, value, target, floor, direction, kpi.weight, 0.0, 0.0, False,
                            "no_data", prorated_by, source]
            continue
        # (A scheme that passed validate_scheme has a measured KPI's target and floor.)
        reached = (None if target is None or floor is None
                   else attainment(value, target, floor, direction))
        fields[name] = [kind, value, target, floor, direction, kpi.weight, 0.0, reached,
                        reached is None, "no_data" if reached is None else "measured",
                        prorated_by, source]
    return fields


def _work_performance(
    scheme: Scheme,
    position: str | None,
    owner: tuple[str, Criterion],
    kpi_values: Mapping[str, float | None],
    ratings: Mapping[str, float],
    override: tuple[float, str] | None,
    notes: list[str],
    yardstick: Yardstick | None = None,
    sources: Mapping[str, str] | None = None,
) -> WorkPerformance:
    role, criterion = owner
    kpis = scheme.kpis_for(position)
    fields = _kpi_rows(kpis, kpi_values, ratings, scheme.scale_max, sources or {}, yardstick,
                       notes)
    kept = [f for f in fields.values() if not f[_DROPPED]]
    total = math.fsum(f[_WEIGHT] for f in kept)
    dropped = [name for name, f in fields.items() if f[_DROPPED] and f[_WEIGHT] > 0]
    computed: float | None = None
    if yardstick is not None:
        unavailable = [n for n in dropped if fields[n][_STATUS] == "unavailable"]
        if unavailable:
            notes.append(f"{', '.join(unavailable)}: no ranked agent of the team has data this"
                         " month; dropped for everyone, remaining KPI weights re-normalised")
        dropped = [n for n in dropped if n not in unavailable]
        no_data = [n for n, f in fields.items() if f[_STATUS] == "no_data"
                   and not f[_DROPPED] and f[_WEIGHT] > 0]
        if no_data:
            notes.append(f"{_names(no_data)} no data for this agent while teammates have;"
                         " attainment 0")
    if total > 0:
        # Version 1: a KPI with no data drops out rather than counting as 0 (no consultations
        # is no evidence either way). Fair months keep it, at 0, unless the whole team lacks it.
        for f in kept:
            f[_EFFECTIVE] = f[_WEIGHT] / total
        computed = _percent(math.fsum(f[_WEIGHT] / total * (f[_ATTAINMENT] or 0.0)
                                      for f in kept))
        if dropped:
            notes.append(f"{_names(dropped)} no data; remaining KPI weights re-normalised")
    elif not any(k.weight > 0 for k in kpis):
        notes.append(f"the position {position or '(none)'} has no KPIs: {criterion.name} does not"
                     f" count and only the rated criteria make up the {role} score")
    else:
        notes.append(f"no KPI has data; {criterion.name} cannot be computed")
    score = computed
    reason = None
    if override is not None:
        value, reason = override
        score = value / scheme.scale_max * 100.0
        notes.append(f"{criterion.name} overridden by {role}: {reason}")
    # Built here from numbers this module computed, rows as exact tuples: nothing for
    # validation to catch, and its pass over the rows cost a close of 1,000 agents on 50 KPIs
    # as much as making them.
    return WorkPerformance.model_construct(
        role=role,
        criterion=criterion.name,
        score=score,
        computed=computed,
        overridden=override is not None,
        override_reason=reason,
        rows={name: tuple(f) for name, f in fields.items()},
    )


def _role_score(
    scheme: Scheme,
    rater_role: RaterRole,
    ratings: Mapping[str, float] | None,
    work_performance: WorkPerformance | None,
    notes: list[str],
) -> tuple[float | None, dict[str, CriterionScore]]:
    raw: dict[str, float | None] = {}
    for criterion in rater_role.criteria:
        if ratings is None:
            raw[criterion.name] = None
        elif criterion.source == "kpi_attainment":
            raw[criterion.name] = None if work_performance is None else work_performance.score
        else:
            rating = ratings.get(criterion.name)
            raw[criterion.name] = None if rating is None else rating / scheme.scale_max * 100.0
    weights = {c.name: c.weight for c in rater_role.criteria}
    total = math.fsum(w for name, w in weights.items() if raw[name] is not None)
    criteria = {
        name: CriterionScore(
            weight=weights[name],
            effective_weight=weights[name] / total if total > 0 and score is not None else 0.0,
            score=score,
        )
        for name, score in raw.items()
    }
    if total <= 0:
        return None, criteria
    dropped = [name for name, score in raw.items() if score is None and weights[name] > 0]
    if dropped:
        notes.append(
            f"{_names(dropped)} no score; remaining {rater_role.role} criteria weights"
            " re-normalised"
        )
    role_score = _percent(
        math.fsum(c.effective_weight * (c.score or 0.0) for c in criteria.values()))
    return role_score, criteria


def _counted_ratings(
    scheme: Scheme,
    evaluations: Mapping[str, Mapping[str, float]],
    trained_roles: Set[str],
    notes: list[str],
) -> dict[str, Mapping[str, float]]:
    counted: dict[str, Mapping[str, float]] = {}
    for role, ratings in evaluations.items():
        rater_role = scheme.role(role)
        if rater_role is None:
            notes.append(f"{role} is not a rater role of this scheme; its ratings are ignored")
        elif rater_role.weight <= 0:
            notes.append(f"{role} ratings are recorded but not counted: the role's weight is 0")
        elif role in scheme.requires_training and role not in trained_roles:
            notes.append(f"{role} ratings are not counted: evaluator training is not on record")
        else:
            counted[role] = ratings
    return counted


def score_agent(
    scheme: Scheme,
    position: str | None,
    kpi_values: Mapping[str, float | None],
    evaluations: Mapping[str, Mapping[str, float]],
    *,
    override: tuple[float, str] | None = None,
    missing_roles_policy: MissingRolesPolicy | None = None,
    trained_roles: Set[str] = frozenset(),
    optional_roles: Set[str] = frozenset(),
    yardstick: Yardstick | None = None,
    target_sources: Mapping[str, str] | None = None,
) -> AgentScore:
    """Score one agent: KPI attainment, each role's criteria, and the composite, explained.

    ``evaluations`` maps rater role to its scores (0..scale_max); the manager's include the rated
    KPIs. ``override`` is the manager's work_performance (0..scale_max) and its written reason.
    ``missing_roles_policy`` None leaves the composite None while an evaluation is missing.
    ``trained_roles`` are the roles of ``scheme.requires_training`` whose raters are trained.
    ``optional_roles`` are roles an agent need not be rated by (invited raters: peers,
    customers...): without a counted rating such a role is ``unrated`` and drops out, the other
    role weights re-normalised, instead of leaving the composite missing.
    ``yardstick`` (fair months) scores the measured KPIs by the team-month's one yardstick.
    ``target_sources`` says where each KPI's target came from (``effective_kpis``).
    """
    if override is not None and not override[1].strip():
        raise ValueError("an override of work_performance needs a written reason")
    notes: list[str] = []
    counted = _counted_ratings(scheme, evaluations, trained_roles, notes)
    owner = scheme.kpi_attainment_criterion()
    work_performance = None
    if owner is not None:
        owner_ratings = counted.get(owner[0], {})
        if owner[1].name in owner_ratings:
            notes.append(
                f"{owner[1].name} in the {owner[0]} scores is ignored: an override comes with"
                " its written reason"
            )
        work_performance = _work_performance(
            scheme, position, owner, kpi_values, owner_ratings, override, notes, yardstick,
            target_sources,
        )
    elif override is not None:
        notes.append("override ignored: the scheme has no KPI attainment criterion")

    scores: dict[str, tuple[float | None, dict[str, CriterionScore]]] = {}
    for rater_role in scheme.roles:
        # Roles with weight 0 take no part in the composite.
        if rater_role.weight > 0:
            ratings = counted.get(rater_role.role)
            scores[rater_role.role] = _role_score(
                scheme, rater_role, ratings, work_performance, notes
            )
    absent = [role for role, (score, _) in scores.items() if score is None]
    missing = tuple(role for role in absent if role not in optional_roles)
    unrated = tuple(role for role in absent if role in optional_roles)
    composite, roles = _combine(scheme, scores, missing, missing_roles_policy, notes, unrated)
    return AgentScore(
        scheme_id=scheme.scheme_id,
        scheme_version=scheme.version,
        position=position,
        formula_version=FORMULA_VERSION if yardstick is None else FAIR_FORMULA_VERSION,
        composite=composite,
        missing_roles=missing,
        roles=roles,
        work_performance=work_performance,
        notes=tuple(notes),
    )


def _combine(
    scheme: Scheme,
    scores: Mapping[str, tuple[float | None, dict[str, CriterionScore]]],
    missing: Sequence[str],
    policy: MissingRolesPolicy | None,
    notes: list[str],
    unrated: Sequence[str] = (),
) -> tuple[float | None, dict[str, RoleScore]]:
    weights = {r.role: r.weight for r in scheme.roles if r.role in scores}
    present_total = math.fsum(
        w for role, w in weights.items() if role not in missing and role not in unrated
    )
    # Roles whose weight goes to the others: optional roles nobody rated, and missing ones
    # when the policy re-normalises.
    dropped = set(unrated) | (set(missing) if policy == "renormalize" else set())
    kept_total = math.fsum(w for role, w in weights.items() if role not in dropped)
    roles: dict[str, RoleScore] = {}
    for role, (score, criteria) in scores.items():
        status: RoleStatus = "scored"
        effective = weights[role]
        if role in unrated:
            status, effective = "unrated", 0.0
            notes.append(f"{role}: no counted rating; the role drops out and the other role"
                         " weights are re-normalised")
        elif role in missing:
            if policy is None:
                status = "missing"
                notes.append(f"{role} evaluation missing; the composite is provisional")
            elif policy == "zero":
                status, score = "missing_scored_zero", 0.0
                notes.append(f"{role} evaluation missing; scored as 0")
            else:
                status, effective = "missing_dropped", 0.0
                notes.append(f"{role} evaluation missing; remaining role weights re-normalised")
        if dropped and role not in dropped and kept_total > 0:
            effective = weights[role] / kept_total
        roles[role] = RoleScore(
            weight=weights[role],
            effective_weight=effective,
            score=score,
            status=status,
            criteria=criteria,
        )
    if missing and policy is None:
        return None, roles
    if present_total <= 0 and policy != "zero":
        notes.append("no evaluation counts; there is no composite")
        return None, roles
    total = _percent(math.fsum(r.effective_weight * (r.score or 0.0) for r in roles.values()))
    # Rounded so that agents with equal inputs get equal composites: float sums taken in a
    # different order can differ in the last bits and would split a genuine tie in the ranking.
    return round(total, 4), roles

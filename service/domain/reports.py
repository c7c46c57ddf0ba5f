"""The ranking and scorecard documents, from frozen or provisional results (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.domain.cycle import EvaluationSubmitted, FrozenResult
from service.domain.scheme import KpiDef, Scheme
from service.domain.scoring import dump_performance

FORMULA = (
    "composite = sum(role.effective_weight * role.score); role.score = sum(criterion."
    "effective_weight * criterion.score); work_performance = sum(kpi.effective_weight * "
    "kpi.attainment) unless overridden; attainment = 100 at or beyond target, 0 at or beyond "
    "floor, linear between; KPIs without data drop out and the others are re-normalised"
)


FAIR_FORMULA = (
    "composite = sum(role.effective_weight * role.score); role.score = sum(criterion."
    "effective_weight * criterion.score); work_performance = sum(kpi.effective_weight * "
    "kpi.attainment) unless overridden; attainment = 100 at or beyond target, 0 at or beyond "
    "floor, linear between; fair months: one yardstick per team-month and position (a KPI no"
    " ranked agent has data for is unavailable and drops out for everyone; a KPI this agent"
    " has no data for scores 0), prorate KPIs scale target and floor by the active share"
)


def components(result: FrozenResult) -> dict[str, float | None]:
    """Return the role scores and the criteria scores that make up the composite."""
    parts: dict[str, float | None] = {}
    for role, score in result.score.roles.items():
        parts[role] = score.score
        for name, criterion in score.criteria.items():
            parts[name] = criterion.score
    return parts


def ranking_document(
    team_id: str, period: str, status: str, results: Iterable[FrozenResult],
    published_at: datetime | None,
) -> dict[str, Any]:
    """Return the ranking as the API shows it, best first; agents without a score apart."""
    entries, unranked, not_ranked = [], [], []
    unavailable: set[str] = set()
    for r in results:
        elig = r.eligibility
        if elig is not None and r.score.work_performance is not None:
            unavailable.update(r.score.work_performance.unavailable())
        if elig is not None and not elig.ranked:
            not_ranked.append({"agent_id": r.agent_id, "name": r.name, "reason": elig.reason,
                               "active_days": elig.active_days, "days": elig.days})
            continue
        if r.rank is None or r.score.composite is None:
            unranked.append({"agent_id": r.agent_id, "name": r.name,
                             "missing_roles": list(r.score.missing_roles)})
            continue
        entries.append({
            "rank": r.rank, "agent_id": r.agent_id, "name": r.name,
            "score": r.score.composite, "components": components(r), "tied": r.tied,
            "places": list(r.places or (r.rank, r.rank)),
        })
    entries.sort(key=lambda e: (e["rank"], e["agent_id"]))
    return {
        "team_id": team_id, "period": period, "status": status,
        "provisional": status == "open",
        "published_at": published_at.isoformat() if published_at else None,
        "entries": entries, "unranked": unranked,
        "not_ranked": sorted(not_ranked, key=lambda n: n["agent_id"]),
        "unavailable_kpis": sorted(unavailable),
    }


def evaluation_document(
    team_id: str, period: str, e: EvaluationSubmitted, anonymous: bool = False
) -> dict[str, Any]:
    """Return an evaluation as the API shows it."""
    return {
        "team_id": team_id, "period": period, "agent_id": e.agent_id,
        "rater_role": e.rater_role, "rater_id": "anonymous" if anonymous else e.rater_id,
        "scores": e.scores, "comment": e.comment, "revision": e.revision,
        "submitted_at": e.submitted_at.isoformat(), "late": e.late,
        "deadline": e.deadline.isoformat() if e.deadline else None,
    }


#: A scorecard KPI entry's fields, in the order the API shows them; ``prorated_by`` is shown
#: only when the KPI was pro-rated.
KPI_ENTRY: tuple[str, ...] = ("value", "kind", "unit", "direction", "label", "formula",
                              "target_source", "target", "floor", "weight", "effective_weight",
                              "attainment", "dropped", "status", "prorated_by")
#: One KPI of one scorecard as stored: its name, then its entry's values in ``KPI_ENTRY`` order
#: (one flat tuple: a month of 1,000 agents on 50 KPIs holds 50,000 of them until they are
#: stored, and a tuple in a tuple was twice the objects for the garbage collector to count).
KpiEntry = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class StoredScorecard:
    """A scorecard as stored: each KPI once, apart from the rest of the document.

    The API's scorecard shows each KPI twice, as the card's entry and again in the work
    performance detail; a month of 1,000 agents on 50 KPIs stored both in its documents (27 KB
    each) and again in long form for the reporting views. Stored once, in long form
    (``scorecard_kpis``), the document is the rest, and ``scorecard`` puts them together.
    """

    document: dict[str, Any]
    kpis: list[KpiEntry]


def scorecard_document(
    team_id: str, period: str, status: str, result: FrozenResult, scheme: Scheme,
    evaluations: Sequence[EvaluationSubmitted],
) -> dict[str, Any]:
    """Return every number of an agent's month and how it was computed."""
    [stored] = stored_scorecards(team_id, period, status, [result], scheme,
                                 {result.agent_id: evaluations})
    return scorecard(stored.document, stored.kpis)


def scorecard(document: Mapping[str, Any], kpis: Iterable[KpiEntry]) -> dict[str, Any]:
    """Return a scorecard as the API shows it from its stored parts (``StoredScorecard``).

    The work performance detail of each KPI is its card entry seen from the scoring side:
    the same numbers, and the value the attainment was computed from (none for a KPI
    unavailable to the team, whose card still shows the agent's own value). A document that
    kept its detail (``_scorecard``) is shown as stored.
    """
    entries: dict[str, Any] = {}
    for name, *values in kpis:
        entry = dict(zip(KPI_ENTRY, values, strict=True))
        if entry["prorated_by"] is None:
            del entry["prorated_by"]
        entries[name] = entry
    card = {**document, "kpis": entries}
    performance = document.get("work_performance")
    if performance is not None and "kpis" not in performance:
        card["work_performance"] = {
            **performance, "kpis": {name: _detail(e) for name, e in entries.items()}}
    return card


def _detail(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Return a card entry's work performance detail (``scoring.KpiScore``'s fields)."""
    return {
        "kind": entry["kind"],
        "value": None if entry["status"] == "unavailable" else entry["value"],
        "target": entry["target"], "floor": entry["floor"], "direction": entry["direction"],
        "weight": entry["weight"], "effective_weight": entry["effective_weight"],
        "attainment": entry["attainment"], "dropped": entry["dropped"],
        "status": entry["status"], "prorated_by": entry.get("prorated_by"),
        "target_source": entry["target_source"],
    }


#: What a position's KPI says on every card whatever the agent: the KPI, its name, whether it is
#: measured, the kind, direction and weight its scores are checked against, and its entry's
#: kind, unit, direction, label and formula (``KPI_ENTRY[1:6]``). Read once per position: a
#: month of 1,000 agents on 50 KPIs asks 50,000 times.
_KpiPart = tuple[KpiDef, str, bool, tuple[Any, ...], tuple[Any, ...]]


def _kpi_parts(scheme: Scheme, position: str | None) -> list[_KpiPart]:
    """Return a position's KPIs with what their scorecard entries say whatever the agent."""
    return [(kpi, kpi.name, kpi.kind == "measured", (kpi.kind, kpi.direction, kpi.weight),
             (kpi.kind, kpi.unit, kpi.direction, kpi.title,
              kpi.formula.text() if kpi.formula is not None else None))
            for kpi in scheme.kpis_for(position)]


def stored_scorecards(
    team_id: str, period: str, status: str, results: Sequence[FrozenResult], scheme: Scheme,
    evaluations: Mapping[str, Sequence[EvaluationSubmitted]],
) -> list[StoredScorecard]:
    """Return the scorecards of a month's results as stored.

    A position's KPI labels and formulas are worked out once, not once per agent: a month of
    1,000 agents on 50 KPIs has 50,000 entries.
    """
    parts: dict[str | None, list[_KpiPart]] = {}
    stored = []
    for result in results:
        if result.position not in parts:
            parts[result.position] = _kpi_parts(scheme, result.position)
        stored.append(_scorecard(team_id, period, status, result, parts[result.position],
                                 evaluations.get(result.agent_id, ())))
    return stored


def _scorecard(
    team_id: str, period: str, status: str, result: FrozenResult,
    kpi_parts: Sequence[_KpiPart],
    evaluations: Sequence[EvaluationSubmitted],
) -> StoredScorecard:
    score = result.score
    kpis: list[KpiEntry] = []
    scored = score.work_performance.rows if score.work_performance else {}
    # Whether ``scorecard`` rebuilds the work performance detail from the entries exactly: it
    # does for every close this code scores, each of the position's KPIs scored with the kind,
    # direction and weight the card shows. A close scored otherwise (an older scheme's KPIs
    # that no longer match) keeps its detail in the document as it was.
    derivable = len(scored) == len(kpi_parts)
    values = result.kpis
    for kpi, name, measured, definition, fixed in kpi_parts:
        kind, unit, direction, label, formula = fixed
        row = scored.get(name)
        if row is None:
            derivable = False
            kpis.append((name, values.get(name) if measured else None, kind, unit, direction,
                         label, formula, None, kpi.target, kpi.floor, kpi.weight, None, None,
                         True, None, None))
            continue
        # A score's row, in ``scoring.KPI_FIELDS`` order (unpacked: 50,000 of them a month).
        (scored_kind, scored_value, target, floor, scored_direction, weight, effective_weight,
         attainment, dropped, kpi_status, prorated_by, target_source) = row
        value = values.get(name) if measured else scored_value
        derivable = derivable and effective_weight is not None and (
            scored_kind, scored_direction, weight) == definition and (
            scored_value == (None if kpi_status == "unavailable" else value))
        # The targets the agent was scored against (a resolved dispute may adjust them).
        kpis.append((name, value, kind, unit, direction, label, formula, target_source, target,
                     floor, definition[2], effective_weight, attainment, dropped, kpi_status,
                     prorated_by))
    performance = None
    if score.work_performance is not None:
        performance = (score.work_performance.model_dump(mode="json", exclude={"rows"})
                       if derivable else dump_performance(score.work_performance))
    document = {
        "team_id": team_id, "period": period, "agent_id": result.agent_id,
        "name": result.name, "position": result.position, "status": status,
        "provisional": status == "open", "composite": score.composite,
        "rank": result.rank, "tied": result.tied,
        "places": list(result.places) if result.places else None,
        "totals": result.totals,
        "evaluations": [
            evaluation_document(team_id, period, e, anonymous=e.rater_role == "peer")
            for e in evaluations
        ],
        "components": {role: r.model_dump(mode="json") for role, r in score.roles.items()},
        "work_performance": performance,
        "notes": list(score.notes),
        "transfers": [dict(t) for t in result.transfers],
        "scheme_id": score.scheme_id, "scheme_version": score.scheme_version,
        "formula_version": score.formula_version,
        "formula": FAIR_FORMULA if result.eligibility is not None else FORMULA,
        "eligibility": (result.eligibility.model_dump(mode="json")
                        if result.eligibility is not None else None),
    }
    return StoredScorecard(document, kpis)


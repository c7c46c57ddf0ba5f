"""The ranking and scorecard documents, from frozen or provisional results (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from service.domain.cycle import EvaluationSubmitted, FrozenResult
from service.domain.scheme import KpiDef, Scheme
from service.domain.scoring import KPI_FIELDS, dump_performance

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
#: One KPI of one scorecard as the API's card shows it: its name, then its entry's values in
#: ``KPI_ENTRY`` order (one flat tuple).
KpiEntry = tuple[Any, ...]
#: What a KPI's entry says on every card of a position in a month, whatever the agent: its
#: name, then these fields. Stored once per position and month (``scorecard_kpi_definitions``).
KPI_DEFINITION: tuple[str, ...] = ("kind", "unit", "direction", "label", "formula", "weight")
#: What a KPI's entry says for one agent: these fields, in this order (``scorecard_kpis``).
KPI_SCORE: tuple[str, ...] = ("value", "target_source", "target", "floor", "effective_weight",
                              "attainment", "dropped", "status", "prorated_by")
#: Where a work performance row (``scoring.KPI_FIELDS``) holds each of them but the value.
_SCORE_AT = [KPI_FIELDS.index(f) for f in KPI_SCORE[1:]]
KpiDefinition = tuple[Any, ...]
KpiScoreEntry = tuple[Any, ...]


def kpi_entry(definition: KpiDefinition, score: KpiScoreEntry) -> KpiEntry:
    """Return a card's KPI entry from its position's definition and the agent's score."""
    name, kind, unit, direction, label, formula, weight = definition
    (value, target_source, target, floor, effective_weight, attainment, dropped, status,
     prorated_by) = score
    return (name, value, kind, unit, direction, label, formula, target_source, target, floor,
            weight, effective_weight, attainment, dropped, status, prorated_by)


@dataclass(frozen=True, slots=True)
class StoredScorecard:
    """A scorecard as stored: each KPI once, apart from the rest of the document.

    The API's scorecard shows each KPI twice, as the card's entry and again in the work
    performance detail; a month of 1,000 agents on 50 KPIs stored both in its documents (27 KB
    each) and again in long form for the reporting views. Stored once, in long form, the
    document is the rest, and ``scorecard`` puts them together. What an entry says alike for
    every agent of a position (its label, unit, formula, weight...) is the position's
    ``definitions``, one list shared by its cards. The agent's own fields are the month's:
    ``columns`` holds each field (``KPI_SCORE`` order) of every card's KPIs, card after card,
    shared by its cards, and this card's are each column's run from ``start`` to ``end``.
    """

    document: dict[str, Any]
    definitions: Sequence[KpiDefinition]
    columns: Sequence[Sequence[Any]]
    start: int
    end: int

    @property
    def scores(self) -> list[KpiScoreEntry]:
        """Return the agent's fields of each KPI (``KpiScoreEntry``), in the position's order."""
        return list(zip(*(column[self.start:self.end] for column in self.columns),
                        strict=True))

    @property
    def kpis(self) -> list[KpiEntry]:
        """Return the card's KPI entries (``KpiEntry``), in the position's order."""
        return [kpi_entry(d, s) for d, s in zip(self.definitions, self.scores, strict=True)]


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


#: A position's KPIs as its cards show them: their definitions (``KPI_DEFINITION``, shared by
#: the position's cards), and for each KPI the KPI, whether it is measured, and the kind,
#: direction and weight its scores are checked against. Read once per position: a month of
#: 1,000 agents on 50 KPIs asks 50,000 times.
_Position = tuple[list[KpiDefinition], list[tuple[KpiDef, bool, tuple[Any, ...]]]]


def _position(scheme: Scheme, position: str | None) -> _Position:
    """Return a position's KPI definitions and what their scores are checked against."""
    kpis = scheme.kpis_for(position)
    return ([(kpi.name, kpi.kind, kpi.unit, kpi.direction, kpi.title,
              kpi.formula.text() if kpi.formula is not None else None, kpi.weight)
             for kpi in kpis],
            [(kpi, kpi.kind == "measured", (kpi.kind, kpi.direction, kpi.weight))
             for kpi in kpis])


def stored_scorecards(
    team_id: str, period: str, status: str, results: Sequence[FrozenResult], scheme: Scheme,
    evaluations: Mapping[str, Sequence[EvaluationSubmitted]],
) -> list[StoredScorecard]:
    """Return the scorecards of a month's results as stored.

    A position's KPI definitions are worked out once, not once per agent, and its cards share
    them: a month of 1,000 agents on 50 KPIs has 50,000 entries. Their fields are gathered as
    the month's columns (``StoredScorecard``), which the COPY of ``scorecard_kpis`` sends: each
    KPI's value, and its work performance row, whose other fields are taken off by place (in
    C). A tuple of fields per KPI, transposed into columns for the COPY, was 50,000 objects for
    the garbage collector to count, which brought its passes on sooner (a full pass walks
    everything the process holds: 0.1-0.2 s of CPU on this machine).
    """
    positions: dict[str | None, _Position] = {}
    values: list[Any] = []
    rows: list[tuple[Any, ...]] = []
    made = []
    for result in results:
        if result.position not in positions:
            positions[result.position] = _position(scheme, result.position)
        start = len(values)
        document = _scorecard(team_id, period, status, result, positions[result.position],
                              evaluations.get(result.agent_id, ()), values, rows)
        made.append((document, positions[result.position][0], start, len(values)))
    columns = [values, *(list(map(itemgetter(at), rows)) for at in _SCORE_AT)]
    return [StoredScorecard(document, definitions, columns, start, end)
            for document, definitions, start, end in made]


def _unscored(kpi: KpiDef) -> tuple[Any, ...]:
    """Return the row of a KPI its agent's work performance has no score of: dropped, with
    the scheme's target and floor."""
    row = dict.fromkeys(KPI_FIELDS)
    row.update(target=kpi.target, floor=kpi.floor, dropped=True)
    return tuple(row.values())


def _scorecard(
    team_id: str, period: str, status: str, result: FrozenResult, position: _Position,
    evaluations: Sequence[EvaluationSubmitted], values: list[Any], rows: list[tuple[Any, ...]],
) -> dict[str, Any]:
    """Return a card's document; its KPIs' values go on ``values`` and their rows (as scored,
    ``scoring.KPI_FIELDS``) on ``rows``."""
    score = result.score
    checks = position[1]
    scored = score.work_performance.rows if score.work_performance else {}
    # Whether ``scorecard`` rebuilds the work performance detail from the entries exactly: it
    # does for every close this code scores, each of the position's KPIs scored with the kind,
    # direction and weight the card shows. A close scored otherwise (an older scheme's KPIs
    # that no longer match) keeps its detail in the document as it was.
    derivable = len(scored) == len(checks)
    measures = result.kpis
    add_value, add_row = values.append, rows.append
    for kpi, measured, definition in checks:
        name = kpi.name
        row = scored.get(name)
        if row is None:
            derivable = False
            add_value(measures.get(name) if measured else None)
            add_row(_unscored(kpi))
            continue
        # A score's row, in ``scoring.KPI_FIELDS`` order (unpacked: 50,000 of them a month);
        # its targets are the ones the agent was scored against (a resolved dispute may adjust
        # them).
        (scored_kind, scored_value, _, _, scored_direction, weight, effective_weight, _, _,
         kpi_status, _, _) = row
        value = measures.get(name) if measured else scored_value
        derivable = derivable and effective_weight is not None and (
            scored_kind, scored_direction, weight) == definition and (
            scored_value == (None if kpi_status == "unavailable" else value))
        add_value(value)
        add_row(row)
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
    return document


"""The ranking and scorecard documents, from frozen or provisional results (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
            unavailable.update(n for n, k in r.score.work_performance.kpis.items()
                               if k.status == "unavailable")
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


def scorecard_document(
    team_id: str, period: str, status: str, result: FrozenResult, scheme: Scheme,
    evaluations: Sequence[EvaluationSubmitted],
) -> dict[str, Any]:
    """Return every number of an agent's month and how it was computed."""
    return scorecard_documents(team_id, period, status, [result], scheme,
                               {result.agent_id: evaluations})[0]


def _kpi_parts(scheme: Scheme, position: str | None) -> list[tuple[KpiDef, dict[str, Any]]]:
    """Return a position's KPIs with what their scorecard entry says whatever the agent."""
    return [(kpi, {"kind": kpi.kind, "unit": kpi.unit, "direction": kpi.direction,
                   "label": kpi.title,
                   "formula": kpi.formula.text() if kpi.formula is not None else None})
            for kpi in scheme.kpis_for(position)]


def scorecard_documents(
    team_id: str, period: str, status: str, results: Sequence[FrozenResult], scheme: Scheme,
    evaluations: Mapping[str, Sequence[EvaluationSubmitted]],
) -> list[dict[str, Any]]:
    """Return the scorecards of a month's results (``scorecard_document`` of each).

    A position's KPI labels and formulas are worked out once, not once per agent: a month of
    1,000 agents on 50 KPIs has 50,000 entries.
    """
    parts: dict[str | None, list[tuple[KpiDef, dict[str, Any]]]] = {}
    documents = []
    for result in results:
        if result.position not in parts:
            parts[result.position] = _kpi_parts(scheme, result.position)
        documents.append(_scorecard(team_id, period, status, result, parts[result.position],
                                    evaluations.get(result.agent_id, ())))
    return documents


def _scorecard(
    team_id: str, period: str, status: str, result: FrozenResult,
    kpi_parts: Sequence[tuple[KpiDef, Mapping[str, Any]]],
    evaluations: Sequence[EvaluationSubmitted],
) -> dict[str, Any]:
    score = result.score
    kpis: dict[str, Any] = {}
    measured = score.work_performance.kpis if score.work_performance else {}
    for kpi, fixed in kpi_parts:
        name = kpi.name
        detail = measured.get(name)
        if detail is None:
            kpis[name] = {
                "value": result.kpis.get(name) if kpi.kind == "measured" else None, **fixed,
                "target_source": None, "target": kpi.target, "floor": kpi.floor,
                "weight": kpi.weight, "effective_weight": None, "attainment": None,
                "dropped": True, "status": None,
            }
            continue
        kpis[name] = {
            "value": result.kpis.get(name) if kpi.kind == "measured" else detail.value,
            **fixed, "target_source": detail.target_source,
            # The targets the agent was scored against (a resolved dispute may adjust them).
            "target": detail.target, "floor": detail.floor, "weight": kpi.weight,
            "effective_weight": detail.effective_weight, "attainment": detail.attainment,
            "dropped": detail.dropped, "status": detail.status,
        }
        if detail.prorated_by is not None:
            kpis[name]["prorated_by"] = detail.prorated_by
    return {
        "team_id": team_id, "period": period, "agent_id": result.agent_id,
        "name": result.name, "position": result.position, "status": status,
        "provisional": status == "open", "composite": score.composite,
        "rank": result.rank, "tied": result.tied,
        "places": list(result.places) if result.places else None,
        "kpis": kpis, "totals": result.totals,
        "evaluations": [
            evaluation_document(team_id, period, e, anonymous=e.rater_role == "peer")
            for e in evaluations
        ],
        "components": {role: r.model_dump(mode="json") for role, r in score.roles.items()},
        "work_performance": (dump_performance(score.work_performance)
                             if score.work_performance else None),
        "notes": list(score.notes),
        "transfers": [dict(t) for t in result.transfers],
        "scheme_id": score.scheme_id, "scheme_version": score.scheme_version,
        "formula_version": score.formula_version,
        "formula": FAIR_FORMULA if result.eligibility is not None else FORMULA,
        "eligibility": (result.eligibility.model_dump(mode="json")
                        if result.eligibility is not None else None),
    }

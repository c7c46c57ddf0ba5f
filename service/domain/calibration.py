"""Calibration of raters: are standards neither too strict nor too loose? (seed, stage 2).

Each evaluation is reduced to one number, its *level*: the mean of the scores on its form,
scaled to 0..100 (a manager's ``work_performance`` override is left out: it replaces measured
evidence and is reviewed through its written reason instead).

- Per rater (everyone but ``self``): how many evaluations, their mean and standard deviation
  (population), and the deviation of their mean from a *baseline*: the mean of every other
  non-self evaluation of the cycle (leave-one-out, so a rater is never compared with
  themselves).
- The team: mean and standard deviation of all non-self evaluations.
- Per agent: the gap between their self-evaluation level and the manager's (positive: the agent
  sees themselves higher); a gap of ``GAP_POINTS`` (20) or more is flagged for the interview.

A rater is flagged ``lenient`` (or ``strict``) when they gave at least ``MIN_RATINGS`` (3)
evaluations, the baseline has at least ``MIN_RATINGS`` as well, and their mean lies above (or
below) the baseline by more than ``DEVIATION_POINTS`` (10) points *and* by more than one
standard deviation of the baseline's evaluations: both, so that a team that rates very evenly
does not get raters flagged for a few points, and a team that rates all over the place does
not hide a consistent 10-point bias either. Self-ratings are not in the baseline: how an agent
sees themselves is the gap's subject, not a standard for raters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.domain.cycle import EvaluationSubmitted

MIN_RATINGS = 3
DEVIATION_POINTS = 10.0
GAP_POINTS = 20.0


def level(e: EvaluationSubmitted, scale_max: float) -> float | None:
    """Return an evaluation's level: the mean of its form's scores on 0..100."""
    values = [v for k, v in e.scores.items() if k != "work_performance"]
    if not values or scale_max <= 0:
        return None
    return math.fsum(values) / len(values) / scale_max * 100.0


def _stats(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "mean": None, "stddev": None, "min": None, "max": None}
    mean = math.fsum(values) / len(values)
    spread = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
    return {"count": len(values), "mean": round(mean, 4), "stddev": round(spread, 4),
            "min": round(min(values), 4), "max": round(max(values), 4)}


def _flag(own: Sequence[float], others: Sequence[float]) -> tuple[str | None, float | None, str]:
    if len(own) < MIN_RATINGS:
        return None, None, f"fewer than {MIN_RATINGS} evaluations: not enough to judge"
    if len(others) < MIN_RATINGS:
        return None, None, (f"fewer than {MIN_RATINGS} evaluations by other raters: no"
                            " baseline to compare with")
    mine = math.fsum(own) / len(own)
    base = math.fsum(others) / len(others)
    spread = math.sqrt(math.fsum((v - base) ** 2 for v in others) / len(others))
    deviation = mine - base
    limit = max(DEVIATION_POINTS, spread)
    if deviation > limit:
        return "lenient", deviation, (f"mean {mine:.1f} is {deviation:.1f} points above the"
                                      f" other raters' {base:.1f} (limit {limit:.1f})")
    if deviation < -limit:
        return "strict", deviation, (f"mean {mine:.1f} is {-deviation:.1f} points below the"
                                     f" other raters' {base:.1f} (limit {limit:.1f})")
    return None, deviation, f"within {limit:.1f} points of the other raters' {base:.1f}"


@dataclass(frozen=True)
class Level:
    """One evaluation reduced to its level, with who gave it to whom and when."""

    agent_id: str
    rater_role: str
    rater_id: str
    submitted_at: datetime
    level: float


def levels_of(evaluations: Sequence[EvaluationSubmitted], scale_max: float) -> list[Level]:
    """Return the level of each evaluation that has one."""
    return [Level(e.agent_id, e.rater_role, e.rater_id, e.submitted_at, value)
            for e in evaluations if (value := level(e, scale_max)) is not None]


def rater_statistics(levels: Sequence[Level]) -> list[dict[str, Any]]:
    """Return each rater's (not self's) statistics against the other raters, and their flag."""
    others = [x for x in levels if x.rater_role != "self"]
    raters: dict[tuple[str, str], list[float]] = {}
    for x in others:
        raters.setdefault((x.rater_id, x.rater_role), []).append(x.level)
    items = []
    for (rater_id, role), own in sorted(raters.items()):
        rest = [x.level for x in others if x.rater_id != rater_id]
        flag, deviation, reason = _flag(own, rest)
        items.append({
            "rater_id": rater_id, "rater_role": role, **_stats(own),
            "baseline": _stats(rest)["mean"], "baseline_count": len(rest),
            "deviation": round(deviation, 4) if deviation is not None else None,
            "flag": flag, "reason": reason,
        })
    return items


def self_manager_gap(levels: Sequence[Level], agent_id: str) -> dict[str, Any]:
    """Return an agent's latest self level against their latest manager level, and the flag."""
    mine = _latest(levels, agent_id, "self")
    theirs = _latest(levels, agent_id, "manager")
    gap = None if mine is None or theirs is None else round(mine - theirs, 4)
    return {"agent_id": agent_id, "self": mine, "manager": theirs, "gap": gap,
            "flag": gap is not None and abs(gap) >= GAP_POINTS}


def _latest(levels: Sequence[Level], agent_id: str, role: str) -> float | None:
    found = [x for x in levels if x.agent_id == agent_id and x.rater_role == role]
    latest = max(found, key=lambda x: x.submitted_at, default=None)
    return latest.level if latest is not None else None


def calibrate(
    evaluations: Sequence[EvaluationSubmitted], scale_max: float, agent_ids: Sequence[str]
) -> dict[str, Any]:
    """Return the team's and each rater's statistics, flags, and the self-vs-manager gaps."""
    levels = levels_of(evaluations, scale_max)
    raters = rater_statistics(levels)
    for item in raters:
        del item["baseline_count"]
    gaps = [self_manager_gap(levels, agent_id) for agent_id in agent_ids]
    known = [g["gap"] for g in gaps if g["gap"] is not None]
    return {
        "team": _stats([x.level for x in levels if x.rater_role != "self"]),
        "raters": raters,
        "self_vs_manager": gaps,
        "mean_gap": round(math.fsum(known) / len(known), 4) if known else None,
        "thresholds": {"min_ratings": MIN_RATINGS, "deviation_points": DEVIATION_POINTS,
                       "deviation_stddevs": 1.0, "gap_points": GAP_POINTS},
    }

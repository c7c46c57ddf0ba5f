"""Rankings, scorecards and cycle warnings for the API."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from service.context import ServiceContext
from service.domain import cycle as c
from service.domain.directory import Team
from service.domain.errors import NotFound
from service.domain.metrics import quiet_feeds, scheme_inputs
from service.domain.periods import zone
from service.domain.presence import team_date
from service.domain.reports import ranking_document, scorecard_document
from service.domain.scheme import Scheme
from service.projections.cycle_results import CycleResults
from service.queries.cycles import cycle_scheme, presence_of, roster
from service.queries.documents import Document, StoredRanking
from service.queries.kpis import last_arrivals
from service.queries.wait import applied_stream

#: Process monitoring warns this long before the evaluation deadline.
DEADLINE_WARNING = timedelta(days=2)


# The composed fragment is code (applied_stream); every value is a parameter.
_STORED_RANKING = " ".join((
    "SELECT revision, status, document,",
    applied_stream("$3", "$4"),
    "AS current FROM rankings WHERE team_id = $1 AND period = $2",
))


async def stored_ranking(ctx: ServiceContext, team_id: str, period: str) -> StoredRanking | None:
    """Return the frozen ranking of a closed month, if one is stored (in one round trip).

    A ranking the store had caught up with is held (``ctx.rankings``) until the month's next
    close, publication, reopening or correction drops it in every process.
    """
    held = ctx.rankings.get((team_id, period))
    if held is not None:
        return held
    stamp = ctx.rankings.stamp()
    async with ctx.db.connection() as conn:
        row = await conn.fetchrow(_STORED_RANKING, team_id, period, CycleResults.name,
                                  c.cycle_stream(team_id, period))
    if row is None:
        return None
    stored = StoredRanking(Document(row["revision"], row["document"].encode()), row["status"],
                           row["current"])
    if stored.current:
        ctx.rankings.put((team_id, period), stored, stamp)
    return stored


async def stored_scorecard(
    ctx: ServiceContext, team_id: str, period: str, agent_id: str
) -> bytes | None:
    """Return a frozen scorecard document as JSON bytes."""
    async with ctx.db.connection() as conn:
        text = await conn.fetchval(
            # The status column is the truth: publishing updates it, not the document.
            "SELECT (document || jsonb_build_object('status', status))::text FROM scorecards"
            " WHERE team_id = $1 AND period = $2 AND agent_id = $3",
            team_id, period, agent_id,
        )
    return text.encode() if text is not None else None


async def _provisional(ctx: ServiceContext, team: Team, cycle: c.Cycle
                       ) -> tuple[list[c.FrozenResult], Any]:
    scheme = await cycle_scheme(ctx, cycle)
    # A per-active-day KPI of a month still running divides by the active days so far.
    today = team_date(ctx.clock(), zone(team.timezone))
    agents = await roster(ctx, team, cycle.period, scheme, through=today)
    # While open, agents still waiting for an evaluation are ranked on what exists so far.
    scored, _ = c.score_roster(cycle, scheme, agents, "renormalize",
                               presence=presence_of(team))
    return scored, scheme


async def provisional_ranking(ctx: ServiceContext, team: Team, cycle: c.Cycle) -> dict[str, Any]:
    """Compute the live ranking of an open month from the evaluations and KPIs so far."""
    scored, _ = await _provisional(ctx, team, cycle)
    return ranking_document(team.team_id, cycle.period, "open", scored, None)


async def provisional_scorecard(
    ctx: ServiceContext, team: Team, cycle: c.Cycle, agent_id: str
) -> dict[str, Any]:
    """Compute an agent's live scorecard for an open month."""
    scored, scheme = await _provisional(ctx, team, cycle)
    result = next((r for r in scored if r.agent_id == agent_id), None)
    if result is None:
        raise NotFound(f"agent {agent_id} is not in team {team.team_id}")
    evaluations = [e for (a, _, _), e in cycle.evaluations.items() if a == agent_id]
    document = scorecard_document(team.team_id, cycle.period, "open", result, scheme,
                                  evaluations)
    document["notes"].append(
        "provisional: missing evaluations are left out and the other weights re-normalised"
        " until the month closes"
    )
    return document


async def fairness_warnings(ctx: ServiceContext, team: Team, cycle: c.Cycle
                            ) -> list[dict[str, Any]]:
    """List fair months' warnings: ranked agents without data for a KPI, unavailable KPIs
    (from the frozen results once closed, from the live scoring while open)."""
    if cycle.closed is not None:
        return c.fairness_warnings(cycle.closed.results)
    scheme = await cycle_scheme(ctx, cycle)
    if not scheme.results.fair_months:
        return []
    scored, _ = await _provisional(ctx, team, cycle)
    return c.fairness_warnings(scored)


async def cycle_warnings(ctx: ServiceContext, team: Team, cycle: c.Cycle) -> list[dict[str, Any]]:
    """List what drifts from the plan: quiet metric feeds, evaluations missing near the
    deadline."""
    if cycle.status != "open":
        return []
    now = ctx.clock()
    scheme = await cycle_scheme(ctx, cycle)
    async with ctx.db.connection() as conn:
        arrivals = await last_arrivals(conn, team.team_id)
    warnings = quiet_feeds(
        scheme_inputs(scheme), arrivals, cycle.opened_at, now,
        timedelta(minutes=ctx.settings.feed_quiet_minutes),
    )
    return warnings + await _evaluation_warnings(ctx, team, cycle, scheme, now)


async def _evaluation_warnings(
    ctx: ServiceContext, team: Team, cycle: c.Cycle, scheme: Scheme, now: datetime
) -> list[dict[str, Any]]:
    if now < cycle.deadline - DEADLINE_WARNING:
        return []
    agents = await roster(ctx, team, cycle.period)
    missing = c.missing_evaluations(cycle, scheme, agents)
    if not missing:
        return []
    passed = now >= cycle.deadline
    return [{
        "kind": "evaluations_overdue" if passed else "evaluations_due_soon",
        "deadline": cycle.deadline.isoformat(),
        "missing": [m.summary() for m in missing],
        "detail": f"{len(missing)} evaluation(s) missing; the deadline "
                  + ("has passed" if passed else "is near"),
    }]

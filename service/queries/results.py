"""Rankings, scorecards and cycle warnings, for both doors (the JSON API and the pages)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter

from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import release as r
from service.domain.directory import Team
from service.domain.metrics import quiet_feeds, scheme_inputs
from service.domain.periods import zone
from service.domain.presence import team_date
from service.domain.reports import ranking_document, scorecard, scorecard_document
from service.domain.scheme import Scheme
from service.projections.cycle_results import CycleResults
from service.queries.cycles import cycle_scheme, get_cycle, presence_of, roster
from service.queries.directory import get_team
from service.queries.documents import Document, StoredRanking
from service.queries.kpis import last_arrivals
from service.queries.release import load_result, month_of
from service.queries.wait import applied_stream, wait
from service.store.reporting import card_kpis

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


@dataclass(frozen=True)
class RankingRead:
    """A month's ranking as its readers get it: frozen (stored, revisioned) or live (open)."""

    status: str
    document: Document | dict[str, Any]


async def ranking(
    ctx: ServiceContext, team_id: str, period: str, *, team: Team | None = None,
    admit: Callable[[str], None] = lambda status: None,
) -> RankingRead | None:
    """Return a month's ranking, or None while a closed month's is still being built.

    A closed month is served from its stored document when the projection has caught up with
    the month's stream (asked in the same round trip); the stream is read only while the month
    is open or the projection is behind it. ``admit(status)`` runs before the document is
    computed or returned, so a caller refused a status costs no scoring.
    """
    stored = await stored_ranking(ctx, team_id, period)
    if stored is None or not stored.current:
        cycle = await get_cycle(ctx, team_id, period)
        if cycle.status == "open":
            admit(cycle.status)
            team = team or await get_team(ctx, team_id)
            return RankingRead(cycle.status, await provisional_ranking(ctx, team, cycle))
        await wait(ctx, CycleResults(), stream=c.cycle_stream(team_id, period))
        stored = await stored_ranking(ctx, team_id, period)
        if stored is None:
            return None
    admit(stored.status)
    return RankingRead(stored.status, stored.document)


def ranking_data(read: RankingRead) -> dict[str, Any]:
    """Return a ranking's document as data (a stored one is kept as the JSON it is served as)."""
    if isinstance(read.document, Document):
        data: dict[str, Any] = orjson.loads(read.document.body)
        return data
    return read.document


#: The columns of a ranking as a table (CSV, Excel), for both doors.
RANKING_COLUMNS = ("rank", "agent_id", "name", "score", "tied", "self", "manager",
                   "work_performance", "work_ability", "cooperation", "service")


def ranking_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return a ranking's entries as table rows, each component a column of its own."""
    return [{**e, **e["components"]} for e in document["entries"]]


def ranking_filename(document: Mapping[str, Any]) -> str:
    """Return the name a ranking's download is saved under."""
    return f"ranking-{document['team_id']}-{document['period']}"


_INSTANT = TypeAdapter(datetime | None)
OPEN_MONTH = ("the month is open: your live KPIs, targets and your own self-evaluation; other"
              " raters' scores and your rank follow once the month is published and released"
              " to you")
WITHHELD = ("your result is released to you at your feedback interview, or by your manager,"
            " and at the latest at {when}")


#: Each frozen scorecard's document and its KPIs, each KPI its name and its entry's fields in
#: ``reports.KPI_ENTRY`` order (``reports.KpiEntry``), in the card's order. The status column
#: is the truth: publishing updates it, not the document.
_STORED_SCORECARDS = f"""
    SELECT s.period, s.agent_id,
           (s.document || jsonb_build_object('status', s.status))::text AS document,
           (SELECT array_agg((d.kpi, k.value, d.kind, d.unit, d.direction, d.label,
                              d.formula, k.target_source, k.target, k.floor, d.weight,
                              k.effective_weight, k.attainment, k.dropped, k.kpi_status,
                              k.prorated_by) ORDER BY k.n)
            FROM scorecard_kpis x CROSS JOIN LATERAL {card_kpis("x")}
            JOIN scorecard_kpi_definitions d ON d.kpi_def = k.kpi_def
            WHERE x.card = s.card) AS kpis
    FROM scorecards s
    WHERE s.team_id = $1 AND s.period = ANY($2::text[]) AND s.agent_id = ANY($3::text[])
"""  # noqa: S608


async def stored_scorecards(
    ctx: ServiceContext, team_id: str, periods: Sequence[str], agent_ids: Sequence[str]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Return the frozen scorecards of agents in a team's months, in one query."""
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(_STORED_SCORECARDS, team_id, list(periods), list(agent_ids))
    return {(row["period"], row["agent_id"]): scorecard(orjson.loads(row["document"]),
                                                        row["kpis"] or ())
            for row in rows}


def _live_card(team: Team, cycle: c.Cycle, scored: Sequence[c.FrozenResult], scheme: Scheme,
               agent_id: str) -> dict[str, Any] | None:
    result = next((x for x in scored if x.agent_id == agent_id), None)
    if result is None:
        return None
    evaluations = [e for (a, _, _), e in cycle.evaluations.items() if a == agent_id]
    document = scorecard_document(team.team_id, cycle.period, "open", result, scheme,
                                  evaluations)
    document["notes"].append(
        "provisional: missing evaluations are left out and the other weights re-normalised"
        " until the month closes"
    )
    return {**document, "released": None, "release_due_at": None, "withheld": False}


async def scorecards(
    ctx: ServiceContext, team: Team, cycles: Sequence[c.Cycle], agent_ids: Sequence[str], *,
    withhold: bool = False,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Return every number of agents' months and how it was computed, keyed (period, agent).

    Live while a month is open (one scoring of the team per month), frozen once closed (one
    query for every frozen card of every month asked), each with its release. ``withhold``:
    the reader is the agent of the cards (``policy.sees_own_result_only_when_released``), so
    a result not released to them yet leaves out their rank, composite and other raters'
    scores. An agent without a card in a month is absent from the answer.
    """
    found: dict[tuple[str, str], dict[str, Any]] = {}
    frozen = [cycle for cycle in cycles if cycle.status != "open"]
    for cycle in cycles:
        if cycle.status != "open":
            continue
        scored, scheme = await _provisional(ctx, team, cycle)
        for agent_id in agent_ids:
            card = _live_card(team, cycle, scored, scheme, agent_id)
            if card is not None:
                # Every scheme version: the self-evaluation is given without anchoring on the
                # manager's scores, and no provisional rank gives the result away.
                found[(cycle.period, agent_id)] = r.withhold(card, OPEN_MONTH) if withhold \
                    else card
    for cycle in frozen:
        await wait(ctx, CycleResults(), stream=c.cycle_stream(team.team_id, cycle.period))
    stored = (await stored_scorecards(ctx, team.team_id, [x.period for x in frozen], agent_ids)
              if frozen else {})
    for cycle in frozen:
        policy = (await cycle_scheme(ctx, cycle)).results
        month = month_of(cycle, policy)
        due = (r.release_due_at(month.first_published_at, policy)
               if month.first_published_at is not None else None)
        for agent_id in agent_ids:
            card = stored.get((cycle.period, agent_id))
            if card is None:
                continue
            # The result stream matters only when results wait for the interview.
            state = (await load_result(ctx, team.team_id, cycle.period, agent_id)
                     if cycle.status == "published" and policy.release == "after_interview"
                     else None)
            released = cycle.status == "published" and r.is_released(state, month)
            goals = cycle.closed.goals.get(agent_id) if cycle.closed is not None else None
            card = {**card, "goals_status": goals, "released": released,
                    "release_due_at": _INSTANT.dump_python(due, mode="json"), "withheld": False}
            if withhold and not released:
                card = r.withhold(card, WITHHELD.format(when=due.isoformat()) if due else
                                  "your result is released to you when the month is published")
            found[(cycle.period, agent_id)] = card
    return found


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

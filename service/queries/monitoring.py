"""Process monitoring: what drifts from a cycle's plan, assembled in one place.

Every warning a cycle shows comes from here: the metric feeds and missing evaluations
(``service.queries.results.cycle_warnings``), and the process around them: goals not
acknowledged or disputed, invited ratings not given, feedback interviews not held after
publication, and improvement plans past their deadline. Each warning is ``{kind, detail, ...}``
with the agents or raters it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import goals as g
from service.domain.directory import Team
from service.domain.feedback import INTERVIEW_DUE
from service.domain.scheme import with_team_targets
from service.projections.cycle_results import CycleResults
from service.projections.directory import Directory
from service.projections.sanctions import Sanctions
from service.queries import cycles, results
from service.queries.directory import get_team
from service.queries.feedback import interview_rows, missing_interviews
from service.queries.roster import team_agents
from service.queries.sanctions import Filters, list_items
from service.queries.wait import READ_TIMEOUT, wait
from service.store import metrics as metric_store

#: How many months the team overview shows by default.
OVERVIEW_MONTHS = 12


@dataclass
class Process:
    """Where a cycle's process stands, and its warnings."""

    goals_unacknowledged: list[str] = field(default_factory=list)
    goals_disputed: list[str] = field(default_factory=list)
    interviews_missing: list[str] = field(default_factory=list)
    #: Samples kept because they arrived after the month closed (still not counted).
    late_samples: int = 0
    warnings: list[dict[str, Any]] = field(default_factory=list)


async def _roster(ctx: ServiceContext, team_id: str) -> list[c.RosterEntry]:
    await wait(ctx, Directory(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        agents = await team_agents(conn, team_id)
    return [c.RosterEntry(a["agent_id"], a["name"], a["position"]) for a in agents]


async def _open_process(ctx: ServiceContext, cycle: c.Cycle, process: Process, now: datetime
                        ) -> None:
    # The targets agents are issued: the team's own over the scheme's (issue 19).
    scheme = with_team_targets(await cycles.cycle_scheme(ctx, cycle),
                               (await get_team(ctx, cycle.team_id)).kpi_targets)
    roster = await _roster(ctx, cycle.team_id)
    for agent in roster:
        record = cycle.goals.get(agent.agent_id)
        targets = g.issued_targets(scheme, agent.position, record.adjustments if record else {})
        status = g.goal_status(record, targets)
        if status == "pending":
            process.goals_unacknowledged.append(agent.agent_id)
        elif status == "disputed":
            process.goals_disputed.append(agent.agent_id)
    if process.goals_unacknowledged:
        process.warnings.append({
            "kind": "goals_unacknowledged", "agents": process.goals_unacknowledged,
            "detail": f"{len(process.goals_unacknowledged)} agent(s) have not acknowledged"
                      " the targets issued to them",
        })
    if process.goals_disputed:
        process.warnings.append({
            "kind": "goals_disputed", "agents": process.goals_disputed,
            "detail": f"{len(process.goals_disputed)} dispute(s) of targets await a manager's"
                      " resolution",
        })
    if now >= cycle.deadline - results.DEADLINE_WARNING:
        unanswered = c.invited_missing(cycle, roster)
        if unanswered:
            passed = now >= cycle.deadline
            process.warnings.append({
                "kind": "invited_ratings_overdue" if passed else "invited_ratings_due_soon",
                "deadline": cycle.deadline.isoformat(), "missing": unanswered,
                "detail": f"{len(unanswered)} invited rating(s) not given; the deadline "
                          + ("has passed" if passed else "is near"),
            })


async def _published_process(ctx: ServiceContext, cycle: c.Cycle, process: Process,
                             now: datetime) -> None:
    rows = await interview_rows(ctx, cycle.team_id, cycle.period)
    missing = missing_interviews(cycle, rows)
    process.interviews_missing = [m["agent_id"] for m in missing]
    if missing:
        due = cycle.published_at + INTERVIEW_DUE if cycle.published_at else None
        overdue = due is not None and now > due
        process.warnings.append({
            "kind": "interviews_overdue" if overdue else "interviews_missing",
            "due_at": due.isoformat() if due else None,
            "missing": [{**m, "starts_at": m["starts_at"].isoformat() if m["starts_at"]
                         else None} for m in missing],
            "detail": f"{len(missing)} feedback interview(s) not held yet"
                      + ("; they were due within a week of publication" if overdue else ""),
        })
    unacknowledged = [r["agent_id"] for r in rows if r["status"] == "recorded"]
    if unacknowledged:
        process.warnings.append({
            "kind": "interview_records_unacknowledged", "agents": unacknowledged,
            "detail": f"{len(unacknowledged)} interview record(s) await the agent's"
                      " acknowledgement",
        })
    await wait(ctx, Sanctions(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        plans = await list_items(conn, Filters(team_id=cycle.team_id, period=cycle.period,
                                               kinds=["improvement_plan"], status="overdue"),
                                 now)
    if plans:
        process.warnings.append({
            "kind": "plans_overdue",
            "plans": [{"agent_id": p["agent_id"], "due_at": p["due_at"].isoformat()}
                      for p in plans],
            "detail": f"{len(plans)} improvement plan(s) past their deadline unsubmitted",
        })


async def cycle_process(ctx: ServiceContext, team: Team, cycle: c.Cycle) -> Process:
    """Return where a cycle's process stands and every warning about it."""
    now = ctx.clock()
    process = Process(warnings=list(await results.cycle_warnings(ctx, team, cycle)))
    process.warnings += await results.fairness_warnings(ctx, team, cycle)
    late = c.late_evaluations(cycle)
    if late:
        # Who rated stays out: a peer's rating is anonymous, and agents read these warnings.
        process.warnings.append({
            "kind": "evaluations_late", "deadline": cycle.deadline.isoformat(),
            "evaluations": [{"agent_id": e.agent_id, "rater_role": e.rater_role,
                             "submitted_at": e.submitted_at.isoformat()} for e in late],
            "detail": f"{len(late)} evaluation(s) were stored after the evaluation deadline"
                      f" ({cycle.deadline.isoformat()})",
        })
    if cycle.status == "open":
        await _open_process(ctx, cycle, process, now)
    else:
        await _late_samples(ctx, cycle, process)
    if cycle.status == "published":
        await _published_process(ctx, cycle, process, now)
    return process


async def month_process(ctx: ServiceContext, team: Team, cycle: c.Cycle) -> Process:
    """Return a month's process as its page and its API answer show it: a closed month keeps
    the goals it was judged on, never accepted or disputed, visible for good."""
    process = await cycle_process(ctx, team, cycle)
    if cycle.closed is not None:
        process.goals_unacknowledged = cycle.closed.goals_in("pending")
        process.goals_disputed = cycle.closed.goals_in("disputed")
        process.warnings = [*process.warnings, *c.goal_warnings(cycle.closed)]
    return process


async def _late_samples(ctx: ServiceContext, cycle: c.Cycle, process: Process) -> None:
    async with ctx.db.connection() as conn:
        count, agents, latest = await metric_store.late_samples(conn, cycle.team_id,
                                                                cycle.period)
    if count:
        process.late_samples = count
        process.warnings.append({
            "kind": "late_samples", "count": count, "agents": agents,
            "last_received_at": latest.isoformat() if latest else None,
            "detail": f"{count} sample(s) arrived after the month closed; they are kept in the"
                      " quarantine (GET /v1/metrics/quarantine?team_id="
                      f"{cycle.team_id}&period={cycle.period}&reason=period_closed) and do not"
                      " change the result; reopen the month and replay them to count them",
        })


async def team_overview(ctx: ServiceContext, team: Team, months: int = OVERVIEW_MONTHS
                        ) -> dict[str, Any]:
    """Return the team's latest cycles, newest first, each with its status and warnings."""
    await wait(ctx, CycleResults(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        periods = [r["period"] for r in await conn.fetch(
            "SELECT period FROM cycles WHERE team_id = $1 ORDER BY period DESC LIMIT $2",
            team.team_id, months,
        )]
    items = []
    for period in periods:
        cycle = await cycles.find_cycle(ctx, team.team_id, period)
        if cycle is None:
            continue
        process = await cycle_process(ctx, team, cycle)
        items.append({
            "period": period, "status": cycle.status, "scheme_id": cycle.scheme_id,
            "scheme_version": cycle.scheme_version, "deadline": cycle.deadline,
            "opened_at": cycle.opened_at,
            "closed_at": cycle.closed.closed_at if cycle.closed else None,
            "published_at": cycle.published_at,
            "evaluations_submitted": len(cycle.evaluations),
            "goals_unacknowledged": process.goals_unacknowledged,
            "goals_disputed": process.goals_disputed,
            "interviews_missing": process.interviews_missing,
            "late_samples": process.late_samples,
            "warnings": process.warnings,
        })
    return {"team_id": team.team_id, "name": team.name, "cycles": items}

"""Participatory goals: the targets a cycle issues to each agent, acknowledged or disputed.

The seed (stage 1): goals are set participatively, and only targets both sides accept motivate.
When a cycle opens, each agent's targets are *issued*: the KPIs of the cycle's pinned scheme
version for the agent's position (target, floor, weight), so they are derived from data the
cycle already pins rather than copied into events that a later position change would make
wrong. What the people do with them are events of the cycle stream (so that a close sees every
adjustment in the same read, and nothing can be acknowledged once the month is closed):

- the agent acknowledges the targets as issued (``GoalsAcknowledged``, with a snapshot of what
  was acknowledged), or disputes them with a comment (``GoalsDisputed``);
- a manager resolves a dispute (``GoalDisputeResolved``): ``adjusted`` (new targets or floors
  for named KPIs, which then apply to this agent's scoring in this cycle) or ``kept``, always
  with a reason. The agent is then asked to acknowledge the outcome.

An acknowledgement holds only for the targets it saw: if the targets change afterwards (an
adjustment, a change of position), the agent's goals are pending again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from service.domain.errors import Conflict, DomainError, FieldError
from service.domain.events import DomainEvent, event
from service.domain.frozen import Frozen
from service.domain.scheme import KpiDef, Scheme

GoalStatus = Literal["pending", "acknowledged", "disputed"]


class Month(Protocol):
    """What the goal decisions read of a month: ``service.domain.cycle.Cycle`` is one (a
    protocol, so that this module need not import the cycle that folds its events)."""

    @property
    def status(self) -> str: ...

    @property
    def team_id(self) -> str: ...

    @property
    def goals(self) -> Mapping[str, GoalRecord]: ...
Decision = Literal["adjusted", "kept"]




class TargetValue(Frozen):
    """The numbers of one KPI target as an agent saw them."""

    target: float | None
    floor: float | None
    weight: float


class TargetAdjustment(Frozen):
    """A manager's change to one KPI's target or floor for one agent and cycle."""

    target: float | None = None
    floor: float | None = None


class Target(Frozen):
    """One issued target: the KPI, its bounds and weight, and whether a manager adjusted it."""

    kpi: str
    kind: Literal["measured", "rated"]
    direction: str
    target: float | None
    floor: float | None
    weight: float
    unit: str
    description: str
    adjusted: bool = False

    def value(self) -> TargetValue:
        """Return the numbers an acknowledgement snapshots."""
        return TargetValue(target=self.target, floor=self.floor, weight=self.weight)


# --- events (appended to the cycle stream) ---------------------------------------------------


@event
class GoalsAcknowledged(DomainEvent):
    """The agent accepted the targets issued to them for the cycle."""

    type: Literal["GoalsAcknowledged"] = "GoalsAcknowledged"
    agent_id: str
    targets: dict[str, TargetValue]
    comment: str | None = None
    acknowledged_at: datetime


@event
class GoalsDisputed(DomainEvent):
    """The agent disputed their targets (all of them, or the KPIs named), saying why."""

    type: Literal["GoalsDisputed"] = "GoalsDisputed"
    agent_id: str
    targets: dict[str, TargetValue]
    kpis: tuple[str, ...] = ()
    comment: str
    disputed_at: datetime


@event
class GoalDisputeResolved(DomainEvent):
    """A manager resolved a dispute: targets adjusted for this agent, or kept, with a reason."""

    type: Literal["GoalDisputeResolved"] = "GoalDisputeResolved"
    agent_id: str
    decision: Decision
    adjustments: dict[str, TargetAdjustment] = {}
    reason: str
    resolved_by: str
    resolved_at: datetime


GOAL_EVENTS = (GoalsAcknowledged, GoalsDisputed, GoalDisputeResolved)
GoalEvent = GoalsAcknowledged | GoalsDisputed | GoalDisputeResolved


@dataclass(frozen=True)
class GoalRecord:
    """What an agent and their manager did with the agent's targets in one cycle."""

    acknowledged: GoalsAcknowledged | None = None
    dispute: GoalsDisputed | None = None
    adjustments: Mapping[str, TargetAdjustment] = field(default_factory=dict)
    history: tuple[GoalEvent, ...] = ()


def evolve_goal(record: GoalRecord | None, e: GoalEvent) -> GoalRecord:
    """Apply one goal event to an agent's record."""
    current = record or GoalRecord()
    history = (*current.history, e)
    if isinstance(e, GoalsAcknowledged):
        return GoalRecord(e, None, current.adjustments, history)
    if isinstance(e, GoalsDisputed):
        return GoalRecord(None, e, current.adjustments, history)
    adjustments = dict(current.adjustments)
    for kpi, change in e.adjustments.items():
        previous = adjustments.get(kpi, TargetAdjustment())
        adjustments[kpi] = TargetAdjustment(
            target=change.target if change.target is not None else previous.target,
            floor=change.floor if change.floor is not None else previous.floor,
        )
    # The outcome is new to the agent: they are asked to acknowledge it.
    return GoalRecord(None, None, adjustments, history)


# --- targets ----------------------------------------------------------------------------------


def _adjusted(kpi: KpiDef, change: TargetAdjustment | None) -> KpiDef:
    if change is None:
        return kpi
    return kpi.model_copy(update=change.model_dump(exclude_none=True))


def issued_targets(
    scheme: Scheme, position: str | None, adjustments: Mapping[str, TargetAdjustment]
) -> dict[str, Target]:
    """Return the targets of an agent: the scheme's KPIs for the position, plus adjustments."""
    targets = {}
    for kpi in scheme.kpis_for(position):
        change = adjustments.get(kpi.name)
        effective = _adjusted(kpi, change)
        targets[kpi.name] = Target(
            kpi=kpi.name, kind=kpi.kind, direction=kpi.direction, target=effective.target,
            floor=effective.floor, weight=kpi.weight, unit=kpi.unit,
            description=kpi.description, adjusted=change is not None,
        )
    return targets


def scheme_for_agent(
    scheme: Scheme, position: str | None, adjustments: Mapping[str, TargetAdjustment]
) -> Scheme:
    """Return the scheme as it scores one agent: position overrides and adjustments applied."""
    if not adjustments:
        return scheme
    kpis = tuple(_adjusted(k, adjustments.get(k.name)) for k in scheme.kpis_for(position))
    # The position's overrides are already in ``kpis``; dropping them keeps them from being
    # applied twice (kpis_for would otherwise overwrite an adjusted target with the position's).
    return scheme.model_copy(update={"kpis": kpis, "position_overrides": {}})


def goal_status(record: GoalRecord | None, targets: Mapping[str, Target]) -> GoalStatus:
    """Return where an agent's goals stand against the targets issued now."""
    if record is None:
        return "pending"
    if record.dispute is not None:
        return "disputed"
    acknowledged = record.acknowledged
    if acknowledged is not None and acknowledged.targets == snapshot(targets):
        return "acknowledged"
    return "pending"


def snapshot(targets: Mapping[str, Target]) -> dict[str, TargetValue]:
    """Return the numbers of the targets, as an acknowledgement or a dispute records them."""
    return {name: t.value() for name, t in targets.items()}


# --- decisions ----------------------------------------------------------------------------


def _open(cycle: Month | None, what: str) -> Month:
    if cycle is None:
        raise Conflict(f"no open cycle to {what}")
    if cycle.status != "open":
        raise Conflict(f"the cycle is {cycle.status}; goals can no longer be {what}",
                       cycle_status=cycle.status)
    return cycle


def _member(cycle: Month, agent_id: str, member: bool) -> None:
    if not member:
        raise DomainError(f"agent {agent_id} is not in team {cycle.team_id}",
                          [FieldError("agent_id", "not a current member of this team")])


def decide_acknowledge(
    cycle: Month | None,
    agent_id: str,
    targets: Mapping[str, Target],
    *,
    member: bool,
    comment: str | None,
    now: datetime,
) -> list[DomainEvent]:
    """Acknowledge the targets as issued now; nothing when they already are."""
    state = _open(cycle, "acknowledged")
    _member(state, agent_id, member)
    record = state.goals.get(agent_id)
    if goal_status(record, targets) == "acknowledged":
        return []
    text = comment.strip() if comment and comment.strip() else None
    return [GoalsAcknowledged(agent_id=agent_id, targets=snapshot(targets), comment=text,
                              acknowledged_at=now)]


def decide_dispute(
    cycle: Month | None,
    agent_id: str,
    targets: Mapping[str, Target],
    *,
    member: bool,
    kpis: Sequence[str],
    comment: str,
    now: datetime,
) -> list[DomainEvent]:
    """Dispute the targets with a written comment; one open dispute at a time."""
    state = _open(cycle, "disputed")
    _member(state, agent_id, member)
    problems = []
    if not comment.strip():
        problems.append(FieldError("comment", "must not be blank: say what is wrong"))
    problems.extend(
        FieldError(f"kpis[{i}]", f"{name!r} is not one of this agent's targets")
        for i, name in enumerate(kpis)
        if name not in targets
    )
    if problems:
        raise DomainError("invalid dispute", problems)
    record = state.goals.get(agent_id)
    if record is not None and record.dispute is not None:
        raise Conflict(f"agent {agent_id} already disputed their targets on"
                       f" {record.dispute.disputed_at.isoformat()}; a manager resolves it first")
    return [GoalsDisputed(agent_id=agent_id, targets=snapshot(targets),
                          kpis=tuple(dict.fromkeys(kpis)), comment=comment.strip(),
                          disputed_at=now)]


def _bounds_problems(
    path: str, direction: str, target: float | None, floor: float | None
) -> list[FieldError]:
    if target is None or floor is None:
        return [FieldError(path, "a measured KPI needs a target and a floor")]
    if direction == "higher" and not target > floor:
        return [FieldError(f"{path}.target", "must be above the floor (higher is better)")]
    if direction == "lower" and not target < floor:
        return [FieldError(f"{path}.target", "must be below the floor (lower is better)")]
    return []


def adjustment_problems(
    targets: Mapping[str, Target], adjustments: Mapping[str, TargetAdjustment]
) -> list[FieldError]:
    """List what is wrong with a manager's adjustment of an agent's targets."""
    problems = []
    for name, change in adjustments.items():
        path = f"targets.{name}"
        current = targets.get(name)
        if current is None:
            problems.append(FieldError(path, "not one of this agent's targets"))
            continue
        if current.kind == "rated":
            problems.append(FieldError(path, "a rated KPI has no target or floor to adjust"))
            continue
        values = (("target", change.target), ("floor", change.floor))
        if all(v is None for _, v in values):
            problems.append(FieldError(path, "give a new target, a new floor or both"))
            continue
        bad = [FieldError(f"{path}.{key}", "must be a finite number")
               for key, v in values if v is not None and not math.isfinite(v)]
        if bad:
            problems.extend(bad)
            continue
        target = change.target if change.target is not None else current.target
        floor = change.floor if change.floor is not None else current.floor
        direction = current.direction
        problems.extend(_bounds_problems(path, direction, target, floor))
    return problems


def decide_resolve(
    cycle: Month | None,
    agent_id: str,
    targets: Mapping[str, Target],
    *,
    decision: Decision,
    adjustments: Mapping[str, TargetAdjustment],
    reason: str,
    resolved_by: str,
    now: datetime,
) -> list[DomainEvent]:
    """Resolve the agent's open dispute: adjust targets or keep them, with a reason."""
    state = _open(cycle, "resolved")
    problems = []
    if not reason.strip():
        problems.append(FieldError("reason", "must not be blank: record why"))
    if decision == "adjusted" and not adjustments:
        problems.append(FieldError("targets", "an adjusted decision names the new targets"))
    if decision == "kept" and adjustments:
        problems.append(FieldError("targets", "only an adjusted decision changes targets"))
    problems.extend(adjustment_problems(targets, adjustments))
    if problems:
        raise DomainError("invalid resolution", problems)
    record = state.goals.get(agent_id)
    if record is None or record.dispute is None:
        raise Conflict(f"agent {agent_id} has no open dispute of their targets to resolve")
    return [GoalDisputeResolved(
        agent_id=agent_id, decision=decision, adjustments=dict(adjustments),
        reason=reason.strip(), resolved_by=resolved_by, resolved_at=now,
    )]

"""The monthly cycle of a team: open, evaluate, close (freezing every number), publish.

Closing freezes the KPI values, every score and the ranking into the close event itself, so a
published month never changes when late data or a new scheme version arrives. A correction is
an explicit reopening followed by a new close and publication, never an edit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, model_validator

from service.domain import goals as g
from service.domain import invitations as inv
from service.domain.conflicts import ensure_not_own_case
from service.domain.errors import Conflict, DomainError, FieldError, Forbidden, NotFound, Text
from service.domain.events import DomainEvent, event, upcaster
from service.domain.kpis import TeamTarget, compute_all, has_data_all
from service.domain.presence import (
    DateRange,
    Eligibility,
    Span,
    active_day_count,
    eligibility,
)
from service.domain.ranking import RankEntry, rank
from service.domain.release import appeal_until as appeal_window_end
from service.domain.release import release_due_at
from service.domain.results import ResultDecision, decide_results, last_place_agents
from service.domain.scheme import (
    ResultsPolicy,
    Scheme,
    TargetSource,
    check_evaluation,
    effective_kpis,
)
from service.domain.scoring import (
    KPI_FIELDS,
    AgentScore,
    Yardstick,
    compact_kpis,
    expand_kpis,
    kpi_templates,
    score_agent,
)
from service.domain.training import (
    TrainingRecorded,
    how_to_record,
    missing_topics,
    record_path,
)

CycleStatus = Literal["open", "closed", "published"]
MissingPolicy = Literal["zero", "renormalize"]
#: Roles every agent of the team is expected to be evaluated by (when they carry weight).
EXPECTED_ROLES = ("self", "manager")


def cycle_stream(team_id: str, period: str) -> str:
    """Return the stream id of a team's cycle for a period."""
    return f"cycle:{team_id}:{period}"


# --- events -------------------------------------------------------------------------------


@event
class CycleOpened(DomainEvent):
    """A team's month was opened, pinned to a scheme version."""

    type: Literal["CycleOpened"] = "CycleOpened"
    team_id: str
    period: str
    scheme_id: str
    scheme_version: int
    deadline: datetime
    opened_at: datetime


@event
class EvaluationSubmitted(DomainEvent):
    """A rater submitted (or revised) an evaluation of an agent."""

    type: Literal["EvaluationSubmitted"] = "EvaluationSubmitted"
    agent_id: str
    rater_role: str
    rater_id: str
    scores: dict[str, float]
    comment: str | None = None
    revision: int
    submitted_at: datetime
    #: The rater's training, required by the scheme for this role, was valid at submission.
    #: False on evaluations of roles that need none, and on those recorded before the check.
    training_on_record: bool = False
    #: Stored after the cycle's evaluation deadline (accepted, and shown as late). False on
    #: evaluations recorded before lateness was marked; ``deadline`` is None on those.
    late: bool = False
    deadline: datetime | None = None


class MissingEvaluation(BaseModel):
    """An expected evaluation that was not there at close, or that does not count."""

    model_config = ConfigDict(frozen=True)
    agent_id: str
    rater_role: str
    #: Why an evaluation that was submitted still counts as missing (None: none submitted).
    #: Left out of the dumps when None, so that months closed before it read as they did.
    reason: str | None = None

    def summary(self) -> dict[str, str]:
        """Return the evaluation as the API and the 409 at close list it."""
        return self.model_dump(exclude_none=True)


class FrozenResult(BaseModel):
    """One agent's frozen result in the close event."""

    model_config = ConfigDict(frozen=True)
    agent_id: str
    name: str
    position: str | None
    kpis: dict[str, float | None]
    totals: dict[str, float]
    score: AgentScore
    rank: int | None
    tied: bool
    places: tuple[int, int] | None
    transfers: tuple[dict[str, Any], ...] = ()
    #: Fair months: the agent's days in the month and whether they were ranked.
    eligibility: Eligibility | None = None


@event
class CycleClosed(DomainEvent):
    """The month was closed; every number that will be published is in this event."""

    schema_version = 4
    type: Literal["CycleClosed"] = "CycleClosed"
    team_id: str
    period: str
    closed_at: datetime
    forced: bool
    reason: str | None
    missing: tuple[MissingEvaluation, ...]
    missing_policy: MissingPolicy | None
    results: tuple[FrozenResult, ...]
    #: Each agent's goals at close: acknowledged, pending (not acknowledged) or disputed (a
    #: forced close). Empty on closes recorded before goals were recorded at close.
    goals: dict[str, str] = {}

    @cached_property
    def not_ranked(self) -> Mapping[str, str | None]:
        """Return each agent of the results: None when ranked, or why they are not.

        Worked out once per event: every release and appeal of the month asks it, and a
        1,000-agent month's loop cost as much as the rest of a release's route.
        """
        return MappingProxyType({
            x.agent_id: x.eligibility.reason
            if x.eligibility is not None and not x.eligibility.ranked else None
            for x in self.results})

    def goals_in(self, status: str) -> list[str]:
        """Return the agents whose goals were in ``status`` at close."""
        return sorted(a for a, s in self.goals.items() if s == status)

    def data(self) -> dict[str, Any]:
        """Return the payload with the KPI scores in the compact form (``kpi_shared``: the
        fields alike for every agent, once; ``kpi_names``: the KPIs of most agents, in the
        order of their scores' columns), and each agent's KPI values and totals stored once
        (``stored_once``)."""
        # The scores go straight from the objects into their rows: dumping 50,000 of them to
        # dicts first (1,000 agents on 50 KPIs) cost more than the rest of the event.
        data = self.model_dump(mode="json", exclude={
            "type": True, "results": {"__all__": {
                "kpis": True, "totals": True, "score": {"work_performance": {"rows"}}}}})
        shared, usual, compact = compact_kpis([r.score.work_performance for r in self.results])
        for result, kpis in zip(data["results"], compact, strict=True):
            if kpis is not None:
                result["score"]["work_performance"]["kpis"] = kpis
        return {**data, **stored_once(self.results, data["results"]), "kpi_shared": shared,
                "kpi_names": usual}

    @model_validator(mode="before")
    @classmethod
    def _stored_once(cls, data: Any) -> Any:
        """Put the fields stored once (``kpi_shared``) back into each agent's KPI scores, and
        its KPI values and totals back into their dicts (``read_once``)."""
        if not isinstance(data, dict) or "kpi_shared" not in data:
            return data
        data = dict(data)
        templates = kpi_templates(data.pop("kpi_shared"))
        usual = data.pop("kpi_names", ())
        value_names = data.pop("kpi_value_names", None)
        total_names = data.pop("total_names", None)
        results = []
        for result in data["results"]:
            performance = result["score"]["work_performance"]
            rows: Mapping[str, Sequence[Any]] = {}
            if performance is not None:
                rows = expand_kpis(templates, performance["kpis"], usual)
                result = {**result, "score": {
                    **result["score"], "work_performance": {**performance, "kpis": rows}}}
            if value_names is not None:
                result = read_once(result, rows, value_names, total_names or [])
            results.append(result)
        return {**data, "results": results}


#: Where a KPI score's row holds the KPI's value.
_VALUE = KPI_FIELDS.index("value")


def stored_once(results: Sequence[FrozenResult], dumped: Sequence[dict[str, Any]]
                ) -> dict[str, list[str]]:
    """Put each agent's KPI values and totals into its dumped result (``dumped``, in the
    order of ``results``) stored once; return the month's names they are stored under
    (``kpi_value_names``, ``total_names``), which ``read_once`` reads them back with.

    An agent's KPI value is also the value of its score of that KPI, save where its scoring
    had none (a KPI unavailable to the team) or the KPI is not one of its position's: only
    those are stored in ``kpis``, the others read off the scores. Its totals are a list in
    the order of the month's metric names when the agent has the same metrics as the first
    agent (a dict otherwise). A close of 1,000 agents on 50 KPIs over 40 metrics stored
    47,000 values twice and 40,000 totals under their names: 0.9 MB of its 3.2 MB of JSON,
    which PostgreSQL parses (every number a numeric) and compresses on the append.
    """
    value_names = list(results[0].kpis) if results else []
    total_names = sorted(results[0].totals) if results else []
    metrics = set(total_names)
    for result, stored in zip(results, dumped, strict=True):
        performance = result.score.work_performance
        rows = performance.rows if performance is not None else {}
        own: dict[str, float | None] = {}
        for name, value in result.kpis.items():
            row = rows.get(name)
            # (NaN is stored: it is not equal to itself, and both are stored as null.)
            if row is None or row[_VALUE] != value:
                own[name] = value
        stored["kpis"] = own
        if list(result.kpis) != value_names:
            stored["kpi_value_names"] = list(result.kpis)
        totals = result.totals
        stored["totals"] = ([totals[m] for m in total_names]
                            if len(totals) == len(metrics) and metrics.issuperset(totals)
                            else dict(totals))
    return {"kpi_value_names": value_names, "total_names": total_names}


def read_once(stored: Mapping[str, Any], rows: Mapping[str, Sequence[Any]],
              value_names: Sequence[str], total_names: Sequence[str]) -> dict[str, Any]:
    """Return a stored result with its KPI values and totals whole (``stored_once``): ``rows``
    are the agent's KPI scores by KPI."""
    result = dict(stored)
    own = result["kpis"]
    names = result.pop("kpi_value_names", value_names)
    result["kpis"] = {name: own[name] if name in own else rows[name][_VALUE]
                      for name in names}
    if isinstance(result["totals"], list):
        result["totals"] = dict(zip(total_names, result["totals"], strict=True))
    return result


@upcaster("CycleClosed", 1)
def _closed_v1(data: dict[str, Any]) -> dict[str, Any]:
    # Version 2 may store the KPI score fields alike for every agent once (kpi_shared); a
    # version 1 close has each agent's scores whole, which version 2 reads as they are.
    return data


@upcaster("CycleClosed", 2)
def _closed_v2(data: dict[str, Any]) -> dict[str, Any]:
    # Version 3 stores each agent's scores column by column under the month's KPI names
    # (kpi_names); version 2's scores by KPI name (rows) read as they are.
    return data


@upcaster("CycleClosed", 3)
def _closed_v3(data: dict[str, Any]) -> dict[str, Any]:
    # Version 4 stores each agent's KPI values and totals once (kpi_value_names, total_names);
    # version 3's, each agent's whole dicts, read as they are.
    return data


@event
class CyclePublished(DomainEvent):
    """The closed month's ranking was published, with the consequences decided for it.

    The decisions (rewards, deductions, improvement plans, reassignment reviews) are taken
    once, here, from the frozen ranking and the cycle's pinned policy, so that replaying the
    stream years later gives the same ledger whatever the scheme or the code says by then.
    """

    schema_version = 2
    type: Literal["CyclePublished"] = "CyclePublished"
    team_id: str
    period: str
    published_at: datetime
    publication: int
    decisions: tuple[ResultDecision, ...] = ()
    #: The reason of the correction (the reopening) this publication follows, if any.
    correction: str | None = None
    #: ``after_interview``: the latest release of an agent's result (``release_days`` after
    #: the first publication); None when the publication released everyone.
    release_due_at: datetime | None = None
    #: ``on_publication``: the end of every agent's appeal window (``appeal_days`` after the
    #: first publication); None under after_interview (each release sets its own).
    appeal_until: datetime | None = None


@upcaster("CyclePublished", 1)
def _published_v1(data: dict[str, Any]) -> dict[str, Any]:
    # Version 1 publications predate decided consequences: they decided none.
    return {**data, "decisions": []}


@event
class ConsequencesRevised(DomainEvent):
    """A published month's consequences were re-derived after an earlier month's correction.

    Its frozen ranking stands; what changes is what depends on the corrected month: the
    reassignment reviews whose streak of last places included it. ``publication`` numbers the
    revision in the month's ledger, after its publications (the ledger settles it like one).
    """

    type: Literal["ConsequencesRevised"] = "ConsequencesRevised"
    team_id: str
    period: str
    revised_at: datetime
    publication: int
    decisions: tuple[ResultDecision, ...]
    corrected_period: str
    corrected_publication: int
    correction: str | None = None

    def cause(self) -> str:
        """Name the correction this revision follows, in words."""
        if self.corrected_publication == 1:
            return f"the first publication of {self.corrected_period}"
        why = f": {self.correction}" if self.correction else ""
        return (f"the correction of {self.corrected_period}"
                f" (publication {self.corrected_publication}{why})")


@event
class CycleReopened(DomainEvent):
    """A closed or published month was reopened for a correction, with the reason."""

    type: Literal["CycleReopened"] = "CycleReopened"
    team_id: str
    period: str
    reopened_at: datetime
    reason: str


# --- state --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cycle:
    """A cycle as its stream tells it."""

    team_id: str
    period: str
    scheme_id: str
    scheme_version: int
    deadline: datetime
    opened_at: datetime
    status: CycleStatus = "open"
    evaluations: Mapping[tuple[str, str, str], EvaluationSubmitted] = field(default_factory=dict)
    closed: CycleClosed | None = None
    published_at: datetime | None = None
    #: The first publication's time: releases and appeal windows count from it.
    first_published_at: datetime | None = None
    publications: int = 0
    #: How many of the publication numbers are revisions after an earlier month's correction.
    revisions: int = 0
    #: The consequences in force: the latest publication's, or the latest revision's.
    decisions: tuple[ResultDecision, ...] = ()
    #: The reason of the latest reopening (the correction a new publication follows).
    correction: str | None = None
    #: What each agent did with their issued targets (``service.domain.goals``).
    goals: Mapping[str, g.GoalRecord] = field(default_factory=dict)
    #: (rater_id, rater_role) -> the agents the rater was invited to rate in that role.
    invitations: inv.Invitations = field(default_factory=dict)
    version: int = 0


def evolve(state: Cycle | None, e: DomainEvent) -> Cycle | None:
    """Apply one cycle event."""
    if isinstance(e, CycleOpened):
        return Cycle(e.team_id, e.period, e.scheme_id, e.scheme_version, e.deadline,
                     e.opened_at, version=1)
    if state is None:
        return None
    if isinstance(e, EvaluationSubmitted):
        # A month's commonest event, folded after every revision: one copy of the state.
        key = (e.agent_id, e.rater_role, e.rater_id)
        return replace(state, version=state.version + 1,
                       evaluations={**state.evaluations, key: e})
    state = replace(state, version=state.version + 1)
    if isinstance(e, CycleClosed):
        return replace(state, status="closed", closed=e)
    if isinstance(e, CyclePublished):
        return replace(state, status="published", published_at=e.published_at,
                       first_published_at=state.first_published_at or e.published_at,
                       publications=e.publication, decisions=e.decisions)
    if isinstance(e, ConsequencesRevised):
        return replace(state, publications=e.publication, revisions=state.revisions + 1,
                       decisions=e.decisions)
    if isinstance(e, CycleReopened):
        return replace(state, status="open", closed=None, correction=e.reason)
    if isinstance(e, g.GOAL_EVENTS):
        record = g.evolve_goal(state.goals.get(e.agent_id), e)
        return replace(state, goals={**state.goals, e.agent_id: record})
    if isinstance(e, inv.RaterInvited):
        return replace(state, invitations=inv.invite(state.invitations, e))
    return state


def evolve_all(state: Cycle | None, events: Sequence[DomainEvent]) -> Cycle | None:
    """Apply many events; runs of evaluations are merged at once instead of one copy each."""
    pending: dict[tuple[str, str, str], EvaluationSubmitted] = {}
    for e in events:
        if isinstance(e, EvaluationSubmitted) and state is not None:
            pending[(e.agent_id, e.rater_role, e.rater_id)] = e
            state = replace(state, version=state.version + 1)
            continue
        if pending and state is not None:
            state = replace(state, evaluations={**state.evaluations, **pending})
            pending = {}
        state = evolve(state, e)
    if pending and state is not None:
        state = replace(state, evaluations={**state.evaluations, **pending})
    return state


# --- decisions ----------------------------------------------------------------------------


def decide_open(
    state: Cycle | None, team_id: str, period: str, scheme: Scheme, deadline: datetime,
    now: datetime,
) -> list[DomainEvent]:
    """Open a month once; a second opening is a conflict."""
    if state is not None:
        raise Conflict("the cycle %(team)s/%(period)s is already open or done",
                       values={"team": team_id, "period": period}, cycle_status=state.status)
    return [CycleOpened(team_id=team_id, period=period, scheme_id=scheme.scheme_id,
                        scheme_version=scheme.version, deadline=deadline, opened_at=now)]


def require_open(state: Cycle | None, what: Text) -> Cycle:
    """Return the cycle if it takes evaluations; else raise a conflict saying why."""
    if state is None:
        raise Conflict("no open cycle to %(what)s", values={"what": what})
    if state.status != "open":
        raise Conflict("the cycle is %(status)s; cannot %(what)s",
                       values={"status": Text(state.status), "what": what},
                       cycle_status=state.status)
    return state


def decide_evaluate(
    state: Cycle | None,
    scheme: Scheme,
    *,
    agent_id: str,
    rater_role: str,
    rater_id: str,
    scores: Mapping[str, float],
    comment: str | None,
    agent_in_team: bool,
    now: datetime,
    rater_training: Mapping[str, TrainingRecorded] | None = None,
    manager_ids: Sequence[str] = (),
    position: str | None = None,
) -> list[DomainEvent]:
    """Record an evaluation (or a revision of the same rater's) while the cycle is open.

    The form is the one of the agent's ``position`` (its own rated KPIs).

    Nobody rates themselves in any role but ``self`` (403 conflict-of-interest, naming who may:
    ``manager_ids`` are the team's managers). Peers, subordinates, customers and experts rate
    only the agents they were invited to rate in that role (403 otherwise). A role the scheme
    requires training for is refused (422, naming each missing topic and where to record it)
    unless ``rater_training`` has every topic valid at ``now``. An evaluation stored after the
    cycle's deadline is accepted and marked late.
    """
    cycle = require_open(state, Text("evaluate"))
    if rater_role != "self":
        ensure_not_own_case(rater_id, agent_id,
                            Text("give the %(role)s evaluation of",
                                 {"role": Text(rater_role)}),
                            team_id=cycle.team_id, manager_ids=manager_ids)
    if not agent_in_team:
        # Each refusal's field error apart: a keyword call inside another hides both from
        # Babel's extractor (tests/unit/test_catalogues.py checks every one is found).
        wrong = FieldError("agent_id", "not a current member of this team")
        raise DomainError("agent %(agent)s is not in team %(team)s", [wrong],
                          values={"agent": agent_id, "team": cycle.team_id})
    if inv.needs_invitation(rater_role) and not inv.is_invited(
        cycle.invitations, rater_id, rater_role, agent_id
    ):
        raise Forbidden("%(rater)s was not invited to rate %(agent)s as %(role)s in"
                        " %(team)s/%(period)s", values={
                            "rater": rater_id, "agent": agent_id, "role": Text(rater_role),
                            "team": cycle.team_id, "period": cycle.period})
    problems = check_evaluation(scheme, rater_role, scores, override_reason=comment,
                                position=position)
    if problems:
        raise DomainError("invalid evaluation", problems)
    trained = False
    if rater_role in scheme.requires_training:
        untrained = missing_topics(rater_training or {}, scheme.training_topics, now)
        if untrained:
            topics = [p.field.removeprefix("training.") for p in untrained]
            raise DomainError(
                "evaluator %(rater)s lacks the training scheme %(scheme)s requires of a"
                " %(role)s rater: %(topics)s; %(how)s", untrained,
                values={"rater": rater_id, "scheme": scheme.scheme_id,
                        "role": Text(rater_role), "topics": ", ".join(topics),
                        "how": how_to_record(rater_id, topics)},
                missing_training=topics,
                record_with=[record_path(rater_id, topic) for topic in topics],
            )
        trained = True
    previous = cycle.evaluations.get((agent_id, rater_role, rater_id))
    return [EvaluationSubmitted(
        agent_id=agent_id, rater_role=rater_role, rater_id=rater_id, scores=dict(scores),
        comment=comment, revision=(previous.revision + 1) if previous else 1, submitted_at=now,
        training_on_record=trained, late=is_late_evaluation(cycle.deadline, now),
        deadline=cycle.deadline,
    )]


def is_late_evaluation(deadline: datetime, submitted_at: datetime) -> bool:
    """Tell whether an evaluation was stored after the cycle's evaluation deadline."""
    # The deadline instant itself (the end of the 7th, team time) is still on time.
    return submitted_at > deadline


@dataclass(frozen=True)
class RosterEntry:
    """An agent of the team at close, with what scoring needs to know about them."""

    agent_id: str
    name: str
    position: str | None
    kpis: Mapping[str, float | None] = field(default_factory=dict)
    totals: Mapping[str, float] = field(default_factory=dict)
    transfers: Sequence[Mapping[str, Any]] = ()
    #: Samples per raw metric (a mean formula divides by them).
    observations: Mapping[str, int] = field(default_factory=dict)
    span: Span = field(default_factory=Span)
    absences: Sequence[DateRange] = ()
    #: (team_id, since, until) of the agent's memberships, for days_in_team.
    memberships: Sequence[tuple[str, datetime, datetime | None]] = ()


@dataclass(frozen=True)
class Presence:
    """What scoring needs of the team: its id and time zone (fair months place transfers on
    team dates) and its own KPI targets."""

    team_id: str
    tz: ZoneInfo | None = None
    kpi_targets: Mapping[str, TeamTarget] = field(default_factory=dict)


def measure(scheme: Scheme, period: str, roster: Sequence[RosterEntry],
            through: date | None = None) -> list[RosterEntry]:
    """Return the roster with each agent's KPI values computed by the scheme's formulas.

    Every measured KPI any position of the scheme uses is computed for everyone; scoring
    then takes those of the agent's position. Active days (per_active_day) are the period's
    days inside the employment span and outside absences, as fair months count them; with
    ``through`` (a month still open), only the days up to that one, so that a live
    per-active-day KPI divides the samples so far by the days so far.
    """
    formulas = {k.name: k.formula for k in scheme.all_kpis()
                if k.kind == "measured" and k.formula is not None}
    per_day = any(f.op == "per_active_day" for f in formulas.values())
    values = compute_all(formulas, [
        (agent.totals, agent.observations,
         active_day_count(period, agent.span, agent.absences, through) if per_day else None)
        for agent in roster])
    return [replace(agent, kpis=kpis) for agent, kpis in zip(roster, values, strict=True)]


def eligibilities(scheme: Scheme, period: str, roster: Sequence[RosterEntry],
                  presence: Presence | None = None) -> dict[str, Eligibility]:
    """Return each roster agent's eligibility under fair months, leaving out those not in
    the month at all (hired after it, left before it); empty when the scheme has no fair
    months (version 1: everyone on the roster is ranked)."""
    if not scheme.results.fair_months:
        return {}
    found: dict[str, Eligibility] = {}
    for agent in roster:
        decided = eligibility(
            period, agent.span, agent.absences, scheme.results.min_active_share,
            tz=presence.tz if presence else None, memberships=agent.memberships,
            team_id=presence.team_id if presence else None,
        )
        if decided is not None:
            found[agent.agent_id] = decided
    return found


def expected_agents(scheme: Scheme, period: str, roster: Sequence[RosterEntry]
                    ) -> list[RosterEntry]:
    """Return the agents whose evaluations a close waits for: fair months, the ranked ones."""
    if not scheme.results.fair_months:
        return list(roster)
    ranked = eligibilities(scheme, period, roster)
    return [a for a in roster if a.agent_id in ranked and ranked[a.agent_id].ranked]


def expected_roles(scheme: Scheme) -> list[str]:
    """Return the roles whose evaluation every agent must have before a close."""
    return [r.role for r in scheme.roles if r.role in EXPECTED_ROLES and r.weight > 0]


def missing_evaluations(cycle: Cycle, scheme: Scheme, roster: Sequence[RosterEntry]
                        ) -> list[MissingEvaluation]:
    """List the expected evaluations not yet submitted, and those that do not count.

    An evaluation of a role the scheme requires training for, recorded without that training
    on record (an event from before the rule, or appended by an import), is not counted by
    scoring (``trained_roles_of``): it is missing like one never submitted, with the reason,
    so that a close waits for it (or a forced close applies the missing-evaluation policy)
    instead of leaving the agent without a composite and out of the ranking.
    """
    present: dict[tuple[str, str], bool] = {}
    for (agent, role, _), evaluation in cycle.evaluations.items():
        counted = role not in scheme.requires_training or evaluation.training_on_record
        present[(agent, role)] = present.get((agent, role), True) and counted
    untrained = (f"submitted without the evaluator training scheme {scheme.scheme_id}"
                 f" v{scheme.version} requires on record: it does not count")
    found = []
    for a in expected_agents(scheme, cycle.period, roster):
        for role in expected_roles(scheme):
            status = present.get((a.agent_id, role))
            if status is None:
                found.append(MissingEvaluation(agent_id=a.agent_id, rater_role=role))
            elif not status:
                found.append(MissingEvaluation(agent_id=a.agent_id, rater_role=role,
                                               reason=untrained))
    return found


def late_evaluations(cycle: Cycle) -> list[EvaluationSubmitted]:
    """List the cycle's evaluations (latest revision of each) stored after its deadline."""
    return sorted((e for e in cycle.evaluations.values() if e.late),
                  key=lambda e: (e.agent_id, e.rater_role, e.submitted_at))


def evaluations_by_agent(cycle: Cycle) -> dict[str, list[EvaluationSubmitted]]:
    """Group the cycle's evaluations by the agent evaluated."""
    grouped: dict[str, list[EvaluationSubmitted]] = {}
    for (agent, _, _), evaluation in cycle.evaluations.items():
        grouped.setdefault(agent, []).append(evaluation)
    return grouped


def invited_missing(cycle: Cycle, roster: Sequence[RosterEntry]) -> list[dict[str, str]]:
    """List the invited ratings of current agents not yet submitted."""
    members = {a.agent_id for a in roster}
    return [
        {"rater_id": rater_id, "rater_role": role, "agent_id": agent_id}
        for (rater_id, role), agents in sorted(cycle.invitations.items())
        for agent_id in sorted(agents)
        if agent_id in members and (agent_id, role, rater_id) not in cycle.evaluations
    ]


def trained_roles_of(scheme: Scheme, evaluations: Sequence[EvaluationSubmitted]) -> frozenset[str]:
    """Return the roles needing training whose every evaluation had it on record."""
    return frozenset(
        role for role in scheme.requires_training
        if all(e.training_on_record for e in evaluations if e.rater_role == role)
    )


def optional_roles(scheme: Scheme) -> frozenset[str]:
    """Return the roles an agent may go without: the invited ones (not self or manager)."""
    return frozenset(r.role for r in scheme.roles if r.role not in EXPECTED_ROLES)


def ratings_of(evaluations: Sequence[EvaluationSubmitted]
               ) -> tuple[dict[str, dict[str, float]], tuple[float, str] | None]:
    """Return one agent's ratings per role and the manager's work_performance override.

    Self and manager: the latest submission counts (a team may have several managers).
    Other roles: each criterion is averaged over the raters.
    """
    latest: dict[str, EvaluationSubmitted] = {}
    pooled: dict[str, dict[str, list[float]]] = {}
    for evaluation in evaluations:
        role = evaluation.rater_role
        if role in EXPECTED_ROLES:
            if role not in latest or evaluation.submitted_at >= latest[role].submitted_at:
                latest[role] = evaluation
        else:
            for criterion, score in evaluation.scores.items():
                pooled.setdefault(role, {}).setdefault(criterion, []).append(score)
    ratings = {role: dict(e.scores) for role, e in latest.items()}
    for role, criteria in pooled.items():
        ratings[role] = {c: sum(v) / len(v) for c, v in criteria.items()}
    override = None
    manager = latest.get("manager")
    if manager is not None and "work_performance" in manager.scores:
        override = (manager.scores["work_performance"], manager.comment or "")
        ratings["manager"] = {k: v for k, v in manager.scores.items() if k != "work_performance"}
    return ratings, override


def score_roster(
    cycle: Cycle,
    scheme: Scheme,
    roster: Sequence[RosterEntry],
    missing_policy: MissingPolicy | None,
    trained_roles: frozenset[str] = frozenset(),
    presence: Presence | None = None,
) -> tuple[list[FrozenResult], list[RankEntry]]:
    """Score every agent of the roster and rank those with a composite.

    Each agent is scored with the targets issued to them (a resolved dispute may have adjusted
    them); invited roles nobody rated drop out. ``trained_roles`` adds roles counted as
    trained whatever their evaluations recorded. Under fair months, agents outside the month
    are left out, those below ``min_active_share`` are scored but not ranked, and every
    ranked agent is measured by the team-month's one yardstick (``yardsticks``).
    """
    scored: dict[str, tuple[RosterEntry, AgentScore]] = {}
    grouped = evaluations_by_agent(cycle)
    optional = optional_roles(scheme)
    fair = scheme.results.fair_months
    present = eligibilities(scheme, cycle.period, roster, presence)
    if fair:
        roster = [a for a in roster if a.agent_id in present]
    sticks = yardsticks(scheme, roster, present) if fair else {}
    team_targets = presence.kpi_targets if presence is not None else {}
    by_position: dict[str | None, tuple[Scheme, dict[str, TargetSource]]] = {}
    for agent in roster:
        evaluations = grouped.get(agent.agent_id, [])
        ratings, override = ratings_of(evaluations)
        record = cycle.goals.get(agent.agent_id)
        adjustments = record.adjustments if record is not None else {}
        if agent.position not in by_position:
            # Targets: the scheme's, the position's, then the team's own (its currency).
            kpis, sources = effective_kpis(scheme, agent.position, team_targets)
            by_position[agent.position] = (scheme.model_copy(update={
                "kpis": tuple(kpis), "position_overrides": {}}), sources)
        position_scheme, sources = by_position[agent.position]
        agent_scheme = g.scheme_for_agent(position_scheme, agent.position, adjustments)
        if adjustments:
            sources = {**sources, **{n: "goal" for n in adjustments}}
        score = score_agent(
            agent_scheme, agent.position, agent.kpis, ratings, override=override,
            missing_roles_policy=missing_policy, optional_roles=optional,
            trained_roles=trained_roles | trained_roles_of(scheme, evaluations),
            yardstick=sticks.get(agent.agent_id), target_sources=sources,
        )
        if adjustments:
            note = ("targets adjusted for this agent after a dispute: "
                    + ", ".join(sorted(adjustments)))
            score = score.model_copy(update={"notes": (*score.notes, note)})
        elig = present.get(agent.agent_id)
        if elig is not None and not elig.ranked:
            note = (f"not ranked: {elig.reason}, below the scheme's minimum share of"
                    f" {scheme.results.min_active_share:.0%}; no reward, deduction or plan,"
                    " and evaluations are not expected")
            score = score.model_copy(update={"notes": (*score.notes, note)})
        scored[agent.agent_id] = (agent, score)
    entries = rank({a: s.composite for a, (_, s) in scored.items()
                    if s.composite is not None and (not fair or present[a].ranked)})
    by_agent = {e.agent_id: e for e in entries}
    results = []
    for agent_id, (agent, score) in scored.items():
        entry = by_agent.get(agent_id)
        results.append(FrozenResult(
            agent_id=agent_id, name=agent.name, position=agent.position, kpis=dict(agent.kpis),
            totals=dict(agent.totals), score=score, rank=entry.rank if entry else None,
            tied=entry.tied if entry else False, places=entry.places if entry else None,
            transfers=tuple(dict(t) for t in agent.transfers),
            eligibility=present.get(agent_id),
        ))
    results.sort(key=lambda r: (r.rank is None, r.rank or 0, r.agent_id))
    return results, entries


def yardsticks(scheme: Scheme, roster: Sequence[RosterEntry],
               present: Mapping[str, Eligibility]) -> dict[str, Yardstick]:
    """Return each agent's yardstick: one per team-month and position.

    A measured KPI is unavailable for a position when none of its ranked agents has data for
    it (when none is ranked, none of its agents in the month): it drops out for everyone.
    """
    by_position: dict[str | None, list[RosterEntry]] = {}
    for agent in roster:
        by_position.setdefault(agent.position, []).append(agent)
    sticks: dict[str, Yardstick] = {}
    for position, agents in by_position.items():
        measured = [k for k in scheme.kpis_for(position)
                    if k.kind == "measured" and k.formula is not None]
        found = has_data_all({k.name: k.formula for k in measured if k.formula is not None},
                             [(a.kpis, a.totals) for a in agents])
        data = {a.agent_id: has for a, has in zip(agents, found, strict=True)}
        ranked = [a for a in agents if present[a.agent_id].ranked] or agents
        unavailable = frozenset(
            k.name for k in measured if not any(data[a.agent_id][k.name] for a in ranked)
        )
        for agent in agents:
            elig = present[agent.agent_id]
            sticks[agent.agent_id] = Yardstick(unavailable=unavailable,
                                               has_data=data[agent.agent_id],
                                               share=elig.active_days / elig.days)
    return sticks


def fairness_warnings(results: Sequence[FrozenResult]) -> list[dict[str, Any]]:
    """List what the manager should fix before closing: ranked agents with no data for a
    counting KPI, and KPIs unavailable to the whole team (fair months)."""
    warnings: list[dict[str, Any]] = []
    no_data: list[dict[str, Any]] = []
    unavailable: set[str] = set()
    for r in results:
        wp = r.score.work_performance
        if wp is None or r.eligibility is None:
            continue
        unavailable.update(wp.unavailable())
        if r.eligibility.ranked:
            missing = sorted(wp.without_data())
            if missing:
                no_data.append({"agent_id": r.agent_id, "kpis": missing})
    if no_data:
        warnings.append({
            "kind": "kpi_no_data", "agents": no_data,
            "detail": f"{len(no_data)} ranked agent(s) have no data for a KPI their teammates"
                      " are measured on: it scores 0; fix the feed or record the absence",
        })
    if unavailable:
        warnings.append({
            "kind": "kpi_unavailable", "kpis": sorted(unavailable),
            "detail": f"{len(unavailable)} KPI(s) have no data for any ranked agent of the team"
                      " and drop out for everyone",
        })
    return warnings


def decide_close(
    state: Cycle | None,
    scheme: Scheme,
    roster: Sequence[RosterEntry],
    *,
    force: bool,
    reason: str | None,
    missing_policy: MissingPolicy | None,
    now: datetime,
    presence: Presence | None = None,
) -> list[DomainEvent]:
    """Close the month: refuse while evaluations are missing or a goal dispute is unresolved,
    unless forced with a reason (recorded, with each agent's goals at close)."""
    cycle = require_open(state, Text("close"))
    missing = missing_evaluations(cycle, scheme, roster)
    goals = goals_at_close(cycle, scheme, roster)
    disputed = sorted(a for a, s in goals.items() if s == "disputed")
    if (missing or disputed) and not force:
        why: dict[str, Any] = {
            "values": {"missing": len(missing), "disputed": len(disputed),
                       "agents": ", ".join(disputed)},
            "missing": [m.summary() for m in missing], "goals_disputed": disputed}
        if not disputed:
            raise Conflict("%(missing)s expected evaluation(s) missing; resolve them, or close"
                           " with force and a reason", **why)
        if not missing:
            raise Conflict("%(disputed)s goal dispute(s) unresolved (%(agents)s): a judgement on"
                           " targets one side rejected is not fair; resolve them, or close with"
                           " force and a reason", **why)
        raise Conflict("%(missing)s expected evaluation(s) missing; %(disputed)s goal dispute(s)"
                       " unresolved (%(agents)s): a judgement on targets one side rejected is"
                       " not fair; resolve them, or close with force and a reason", **why)
    if force and not (reason and reason.strip()):
        wrong = FieldError("reason", "required when force is true")
        raise DomainError("a forced close needs a reason", [wrong])
    policy = (missing_policy or scheme.results.missing_evaluation_policy) if missing else None
    results, _ = score_roster(cycle, scheme, roster, policy, presence=presence)
    return [CycleClosed(
        team_id=cycle.team_id, period=cycle.period, closed_at=now, forced=force,
        reason=reason.strip() if reason else None, missing=tuple(missing),
        missing_policy=policy, results=tuple(results), goals=goals,
    )]


def goals_at_close(cycle: Cycle, scheme: Scheme, roster: Sequence[RosterEntry]
                   ) -> dict[str, str]:
    """Return each agent's goal status (acknowledged, pending or disputed) at close."""
    statuses: dict[str, str] = {}
    # Most agents have no adjustment: their position's targets are issued once.
    issued: dict[str | None, dict[str, g.Target]] = {}
    for agent in roster:
        record = cycle.goals.get(agent.agent_id)
        if record is not None and record.adjustments:
            targets = g.issued_targets(scheme, agent.position, record.adjustments)
        else:
            if agent.position not in issued:
                issued[agent.position] = g.issued_targets(scheme, agent.position, {})
            targets = issued[agent.position]
        statuses[agent.agent_id] = g.goal_status(record, targets)
    return statuses


def goal_warnings(closed: CycleClosed) -> list[dict[str, Any]]:
    """List the goals not acknowledged at close (and disputes a forced close left open)."""
    warnings: list[dict[str, Any]] = []
    pending, disputed = closed.goals_in("pending"), closed.goals_in("disputed")
    if pending:
        warnings.append({"kind": "goals_unacknowledged", "agents": pending,
                         "detail": f"{len(pending)} agent(s) never acknowledged the targets"
                                   " they were judged on"})
    if disputed:
        warnings.append({"kind": "goals_disputed", "agents": disputed,
                         "detail": f"{len(disputed)} agent(s) were judged on targets they"
                                   " disputed (closed by force: " + (closed.reason or "") + ")"})
    return warnings


def frozen_ranking(closed: CycleClosed) -> list[RankEntry]:
    """Return the ranking frozen in a close event (ranked agents only, best first)."""
    return [
        RankEntry(agent_id=r.agent_id, score=r.score.composite, rank=r.rank, tied=r.tied,
                  places=r.places)
        for r in closed.results
        if r.rank is not None and r.places is not None and r.score.composite is not None
    ]


def decide_publish(
    state: Cycle | None,
    now: datetime,
    *,
    policy: ResultsPolicy,
    currency: str,
    previous_last_places: Mapping[str, int],
) -> list[DomainEvent]:
    """Publish a closed month and decide its consequences from the frozen ranking.

    ``previous_last_places[agent]``: the published months of this team right before this one
    in which the agent was last, without a gap (``results.consecutive_last_places``).
    """
    if state is None:
        raise NotFound("no such cycle to publish")
    if state.status != "closed" or state.closed is None:
        raise Conflict("only a closed cycle can be published; this one is %(status)s",
                       values={"status": Text(state.status)}, cycle_status=state.status)
    first = state.first_published_at or now
    decisions = decide_results(
        frozen_ranking(state.closed), policy, published_at=now,
        previous_last_places=previous_last_places, currency=currency, period=state.period,
        plan_from=release_due_at(now, policy),
    )
    return [CyclePublished(team_id=state.team_id, period=state.period, published_at=now,
                           publication=state.publications + 1, decisions=tuple(decisions),
                           correction=state.correction if state.publications else None,
                           release_due_at=release_due_at(first, policy),
                           appeal_until=(None if policy.release == "after_interview"
                                         else appeal_window_end(first, policy)))]


def last_in_month(closed: CycleClosed, policy: ResultsPolicy) -> frozenset[str]:
    """Return the agents in last place in a closed month (the month a streak counts).

    Judged on the frozen ranking with the month's pinned policy; an agent who is not ranked
    is never last, so such a month breaks their streak.
    """
    return last_place_agents(frozen_ranking(closed), min_ranked_agents=policy.min_ranked_agents)


def decide_revise_consequences(
    state: Cycle | None,
    now: datetime,
    *,
    policy: ResultsPolicy,
    previous_last_places: Mapping[str, int],
    corrected_period: str,
    corrected_publication: int,
    correction: str | None,
) -> list[DomainEvent]:
    """Re-derive a published month's reassignment reviews after an earlier month changed.

    Only the reviews depend on other months (rewards, deductions and plans follow this
    month's own ranking), so only they are decided again, with the publication's own time;
    when the reviews come out the same, nothing is recorded (a second correction of the same
    month changes nothing twice). A month not published (never, or reopened) is left alone:
    its own publication will decide.
    """
    if state is None or state.status != "published" or state.closed is None:
        return []
    published_at = state.published_at or now
    reviews = tuple(
        d for d in decide_results(
            frozen_ranking(state.closed), policy, published_at=published_at,
            previous_last_places=previous_last_places, period=state.period,
        )
        if d.kind == "reassignment_review"
    )
    before = {d.agent_id for d in state.decisions if d.kind == "reassignment_review"}
    if {d.agent_id for d in reviews} == before:
        return []
    kept = tuple(d for d in state.decisions if d.kind != "reassignment_review")
    return [ConsequencesRevised(
        team_id=state.team_id, period=state.period, revised_at=now,
        publication=state.publications + 1, decisions=kept + reviews,
        corrected_period=corrected_period, corrected_publication=corrected_publication,
        correction=correction,
    )]


def decide_reopen(state: Cycle | None, reason: str | None, now: datetime) -> list[DomainEvent]:
    """Reopen a closed or published month for a correction, with a written reason."""
    if state is None or state.status == "open":
        raise Conflict("only a closed or published cycle can be reopened")
    if not (reason and reason.strip()):
        wrong = FieldError("reason", "required to reopen a cycle")
        raise DomainError("a correction needs a reason", [wrong])
    return [CycleReopened(team_id=state.team_id, period=state.period, reopened_at=now,
                          reason=reason.strip())]

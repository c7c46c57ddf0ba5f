"""Request and response bodies of the JSON API (never the events themselves)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from service.domain.ids import ID_PATTERN
from service.domain.kpis import TeamTarget
from service.domain.periods import PERIOD_PATTERN
from service.domain.scheme import Scheme
from service.domain.text import unusable_strings

Id = Field(pattern=ID_PATTERN, min_length=1, max_length=64)
#: A JSON number and nothing else: lax parsing read `true` as 1.0 and `"80"` as 80, and
#: Python's JSON reader takes NaN and Infinity, which no score or target means.
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]


def _date_text(value: object) -> object:
    # A plain date as text; lax parsing would also take a number of seconds for a date.
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a date as YYYY-MM-DD")
    return value


#: A calendar day in a body, as YYYY-MM-DD text only.
DateText = Annotated[date, BeforeValidator(_date_text)]


def refuse_unusable_text(model: str, data: Any) -> Any:
    """Return decoded JSON unchanged; raise a ValidationError naming each string, key or value,
    that holds a NUL or a lone surrogate (PostgreSQL stores neither)."""
    errors = [
        InitErrorDetails(type=PydanticCustomError("unusable_text", reason), loc=path, input=None)
        for path, reason in unusable_strings(data)
    ]
    if errors:
        raise ValidationError.from_exception_data(model, errors)
    return data


class Body(BaseModel):
    """Request bodies refuse unknown fields, so a misspelt field is an error, not ignored, and
    text PostgreSQL cannot store, so it is refused naming the field, not by the driver."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _usable_text(cls, data: Any) -> Any:
        return refuse_unusable_text(cls.__name__, data)


class TeamIn(Body):
    """PUT /v1/teams/{team_id}."""

    name: str = Field(min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64, examples=["Asia/Seoul"])
    currency: str | None = Field(default=None, max_length=3, examples=["CNY"])
    manager_ids: list[Annotated[str, Id]] | None = Field(default=None, max_length=100)
    scheme_id: Annotated[str, Id] | None = None
    kpi_targets: dict[str, TeamTarget] | None = Field(default=None, max_length=200, description=(
        "The team's own target and floor per measured KPI of its scheme (for example in its"
        " own currency), over the scheme's and the position's. Left out: unchanged; {}:"
        " cleared."), examples=[{"order_amount": {"target": 6000, "floor": 0}}])
    locale: str | None = Field(default=None, max_length=35, examples=["zh-Hans"], description=(
        "The team's locale (a BCP 47 or CLDR tag: ko, zh-Hans, de-DE): the language its pages"
        " default to when the reader's browser asks for none we have, and the conventions of"
        " its numbers and dates for readers of that language. Stored as CLDR names it"
        " (de_DE). Left out: unchanged; \"\": cleared."))


class TeamOut(BaseModel):
    """A team."""

    team_id: str
    name: str
    timezone: str
    currency: str
    manager_ids: list[str]
    scheme_id: str
    version: int
    kpi_targets: dict[str, TeamTarget] = Field(default_factory=dict)
    locale: str | None = None


class AgentIn(Body):
    """PUT /v1/agents/{agent_id}."""

    name: str = Field(min_length=1, max_length=200)
    team_id: Annotated[str, Id]
    position: str | None = Field(default=None, max_length=100,
                                 examples=["pre-sale", "in-sale", "after-sale"])
    hired_on: DateText | None = Field(default=None, description=(
        "First day of employment (YYYY-MM-DD, team time zone). Left out: unchanged; null:"
        " cleared."))
    left_on: DateText | None = Field(default=None, description=(
        "Last day of employment (YYYY-MM-DD, team time zone), not before hired_on. Left out:"
        " unchanged; null: cleared (re-hired)."))


class AbsenceIn(Body):
    """PUT /v1/agents/{agent_id}/absences/{absence_id}: dates inclusive, team time zone."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_date: DateText = Field(alias="from", examples=["2026-11-03"])
    to_date: DateText = Field(alias="to", examples=["2026-11-20"])
    kind: Literal["leave", "sick", "training", "other"]
    note: str | None = Field(default=None, max_length=2000)


class AbsenceOut(BaseModel):
    """An absence of an agent, as recorded last (cancelled ones stay listed)."""

    model_config = ConfigDict(populate_by_name=True)

    agent_id: str
    absence_id: str
    from_date: date = Field(alias="from", serialization_alias="from")
    to_date: date = Field(alias="to", serialization_alias="to")
    kind: str
    note: str | None
    status: Literal["active", "cancelled"]
    revision: int
    recorded_at: datetime
    cancelled_at: datetime | None = None


class AbsenceList(BaseModel):
    """An agent's absences, oldest first."""

    agent_id: str
    items: list[AbsenceOut]


class MembershipOut(BaseModel):
    """A stretch of time an agent spent in a team."""

    team_id: str
    since: datetime
    until: datetime | None


class AgentOut(BaseModel):
    """An agent, with the teams they have belonged to."""

    agent_id: str
    name: str
    team_id: str
    position: str | None
    history: list[MembershipOut]
    version: int
    hired_on: date | None = None
    left_on: date | None = None


class AgentList(BaseModel):
    """A team's current agents."""

    team_id: str
    items: list[AgentOut]


class SchemeIn(Scheme):
    """PUT /v1/schemes/{scheme_id}: a scheme in the shape GET returns; the id comes from the path
    and the version is assigned."""

    scheme_id: str | None = None  # type: ignore[assignment]
    version: int | None = None  # type: ignore[assignment]
    approvers: list[str] | None = Field(default=None, max_length=50, description=(
        "Adoption by agreement: name the people who must approve this version. It is then"
        " proposed, not in force, until `quorum` of them approve"
        " (POST /v1/schemes/{scheme_id}/versions/{version}/approve). Left out: the version is"
        " in force at once."))
    quorum: StrictInt | None = Field(default=None, ge=1, le=50, description=(
        "How many of the approvers must approve; all of them when left out."))

    @model_validator(mode="before")
    @classmethod
    def _usable_text(cls, data: Any) -> Any:
        return refuse_unusable_text(cls.__name__, data)


class CycleIn(Body):
    """POST /v1/teams/{team_id}/cycles."""

    # The pattern is documented, not enforced here: check_period (in the command) refuses a
    # bad month with a reason a person can act on, which a regex mismatch is not.
    period: str = Field(examples=["2026-11"], max_length=7,
                        json_schema_extra={"pattern": PERIOD_PATTERN},
                        description="YYYY-MM, from 2000-01 to ten years ahead")
    scheme_id: Annotated[str, Id] | None = None
    scheme_version: int | None = Field(default=None, ge=1, description=(
        "Open the month on an earlier version in force (for example version 1 of"
        " online-shop-cs, to finish a quarter under the rules it started with); the latest"
        " when left out."))


class CloseIn(Body):
    """POST .../close."""

    # Strict: `"force": 0` or `"force": "yes"` is a client's mistake, not a forced close.
    force: StrictBool = False
    reason: str | None = Field(default=None, max_length=2000)
    missing_policy: Literal["zero", "renormalize"] | None = Field(
        default=None, description="How missing evaluations are scored on a forced close;"
        " the scheme's policy when left out.")


class ReopenIn(Body):
    """POST .../reopen: a correction needs its reason."""

    reason: str = Field(min_length=1, max_length=2000)


class MissingOut(BaseModel):
    """An expected evaluation not submitted, or submitted but not counted."""

    agent_id: str
    rater_role: str
    # Left out when None: a missing evaluation never submitted reads as it always did.
    reason: str | None = Field(default=None, exclude_if=lambda v: v is None, description=(
        "why a submitted evaluation counts as missing: recorded without the evaluator"
        " training the scheme requires of the role (absent: none was submitted)"))


class CycleOut(BaseModel):
    """A team's month."""

    team_id: str
    period: str
    status: Literal["open", "closed", "published"]
    scheme_id: str
    scheme_version: int
    deadline: datetime
    opened_at: datetime
    closed_at: datetime | None = None
    published_at: datetime | None = None
    publications: int = Field(description=(
        "The number of the month's latest settlement of consequences: each publication takes"
        " the next one, and so does each revision of its reassignment reviews after an"
        " earlier month's correction (counted in `revisions`)."))
    revisions: int = Field(default=0, description=(
        "How many times the month's reassignment reviews were re-derived after a correction"
        " of an earlier month (its ranking and other consequences stand)."))
    forced: bool | None = None
    close_reason: str | None = None
    missing_policy: str | None = None
    missing_at_close: list[MissingOut] = []
    evaluations_submitted: int
    warnings: list[dict[str, Any]] = []
    goals_unacknowledged: list[str] = Field(default=[], description=(
        "Open cycle: agents who have not acknowledged the targets issued to them."))
    goals_disputed: list[str] = Field(default=[], description=(
        "Open cycle: agents whose dispute of their targets awaits a manager."))
    interviews_missing: list[str] = Field(default=[], description=(
        "Published cycle: evaluated agents whose feedback interview was not held yet."))
    late_samples: int = Field(default=0, description=(
        "Closed or published cycle: samples that arrived after the close, kept in the"
        " quarantine (reason period_closed) and not counted."))


class EvaluationIn(Body):
    """PUT .../evaluations/{agent_id}/{rater_role}."""

    scores: dict[str, Number] = Field(examples=[{"task_completion": 85}])
    comment: str | None = Field(default=None, max_length=5000, description=(
        "Free text; required as the written reason when work_performance is overridden."))


class EvaluationOut(BaseModel):
    """A stored evaluation."""

    team_id: str
    period: str
    agent_id: str
    rater_role: str
    rater_id: str
    scores: dict[str, float]
    comment: str | None
    revision: int
    submitted_at: datetime
    late: bool = Field(default=False, description=(
        "Stored after the cycle's evaluation deadline (accepted, and shown as late)."))
    deadline: datetime | None = Field(default=None, description=(
        "The cycle's evaluation deadline when it was stored (the end of the 7th of the"
        " following month, team time)."))


class RankingEntryOut(BaseModel):
    """One line of a ranking."""

    rank: int
    agent_id: str
    name: str
    score: float
    components: dict[str, float | None]
    tied: bool
    places: list[int]


class NotRankedOut(BaseModel):
    """An agent present too little of the month to be ranked."""

    agent_id: str
    name: str
    reason: str
    active_days: int
    days: int


class RankingOut(BaseModel):
    """A team's ranking for a month, best first; provisional while the cycle is open."""

    team_id: str
    period: str
    status: str
    provisional: bool
    published_at: datetime | None = None
    entries: list[RankingEntryOut]
    unranked: list[dict[str, Any]] = []
    not_ranked: list[NotRankedOut] = Field(default=[], description=(
        "Fair months: agents in the month but below the scheme's min_active_share; no reward,"
        " deduction or plan."))
    unavailable_kpis: list[str] = Field(default=[], description=(
        "Fair months: measured KPIs no ranked agent of the team has data for; they drop out"
        " for everyone."))


class EligibilityOut(BaseModel):
    """Whether an agent is ranked in a month, and the days that decided it."""

    days: int
    active_days: int
    share: float
    ranked: bool
    reason: str | None = None
    days_in_team: int | None = None


class ScorecardOut(BaseModel):
    """Every number of an agent's month and how it was computed."""

    team_id: str
    period: str
    agent_id: str
    name: str
    position: str | None
    status: str
    provisional: bool
    composite: float | None
    rank: int | None
    tied: bool
    places: list[int] | None
    kpis: dict[str, Any]
    totals: dict[str, float]
    evaluations: list[EvaluationOut]
    components: dict[str, Any]
    work_performance: dict[str, Any] | None
    notes: list[str]
    transfers: list[dict[str, Any]]
    scheme_id: str
    scheme_version: int
    formula_version: str
    formula: str
    eligibility: EligibilityOut | None = Field(default=None, description=(
        "Fair months: the agent's days in the month and whether they are ranked."))
    released: bool | None = Field(default=None, description=(
        "Whether the agent's result of the month has been released to them (null while open)"))
    release_due_at: datetime | None = Field(default=None, description=(
        "after_interview: when the result is released at the latest"))
    goals_status: str | None = Field(default=None, description=(
        "Closed months: the agent's goals at close (acknowledged, pending: never acknowledged,"
        " or disputed: closed by force)"))
    withheld: bool = Field(default=False, description=(
        "The agent's own view before their release (or while the month is open): no rank,"
        " composite or other raters' scores"))


# --- results: sanctions, improvement plans, reassignment reviews, payroll --------------------

SanctionKind = Literal["reward", "deduction", "improvement_plan", "reassignment_review"]
SanctionStatus = Literal[
    "active", "reversed", "reversal", "due", "submitted", "approved", "rejected", "overdue",
    "cancelled", "cancellation", "open", "reassign", "retain", "basis_change",
]


class SanctionOut(BaseModel):
    """One ledger entry: a reward, deduction, plan or review, or the reversal of one."""

    id: str
    team_id: str
    period: str
    agent_id: str
    kind: SanctionKind
    entry: Literal["grant", "reversal", "cancellation", "basis_change"] = Field(description=(
        "grant: decided by a publication (or by a revision after an earlier month's"
        " correction); reversal (of a reward or deduction) or cancellation (of a plan or"
        " review): a later publication or revision no longer holds the entry in `reverses`;"
        " basis_change: it no longer holds a review a person already decided, which keeps"
        " its decision and is marked `basis_changed`"))
    amount: float | None = Field(description="Rewards and deductions; a reversal is negative.")
    currency: str | None
    due_at: datetime | None
    status: SanctionStatus
    reason: str
    publication: int = Field(description="The publication of the month that wrote the entry.")
    reverses: str | None
    rank: int | None
    places: list[int] | None
    months: list[str] = Field(description="A reassignment review's streak, oldest first.")
    late: bool | None = Field(description="A plan first submitted after its deadline.")
    submitted_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    note: str | None = Field(description="The latest review comment or decision note.")
    overdue_at: datetime | None
    basis_changed: bool = Field(default=False, description=(
        "A decided review whose streak a correction no longer holds: the decision stands,"
        " for a person to look at again."))
    basis_note: str | None = Field(default=None, description=(
        "Why the basis changed, naming the correction."))
    final: bool = Field(default=False, description=(
        "The agent's appeal window of the month passed unused, or their appeal was decided"))
    review_id: str | None
    created_at: datetime


class SanctionList(BaseModel):
    """Ledger entries, oldest month first."""

    items: list[SanctionOut]


class PlanActionIn(Body):
    """One action of an improvement plan."""

    action: str = Field(min_length=1, max_length=2000)
    due_date: DateText = Field(examples=["2026-12-20"])


class PlanIn(Body):
    """PUT .../improvement-plans/{agent_id}: the agent's analysis and actions."""

    root_causes: str = Field(min_length=1, max_length=10000)
    actions: list[PlanActionIn] = Field(min_length=1, max_length=100)


class PlanReviewIn(Body):
    """POST .../improvement-plans/{agent_id}/review."""

    decision: Literal["approved", "rejected"]
    comment: str = Field(default="", max_length=5000,
                         description="Required when the plan is rejected.")


class PlanReviewOut(BaseModel):
    """A manager's review of one submission."""

    decision: Literal["approved", "rejected"]
    comment: str
    reviewer_id: str
    reviewed_at: datetime


class PlanSubmissionOut(BaseModel):
    """One submission of a plan."""

    submission: int
    root_causes: str
    actions: list[dict[str, Any]]
    submitted_at: datetime
    late: bool
    review: PlanReviewOut | None


class PlanOut(BaseModel):
    """An improvement plan owed by an agent, with its submissions and reviews."""

    team_id: str
    period: str
    agent_id: str
    sanction_id: str
    publication: int
    status: Literal["due", "submitted", "approved", "rejected", "overdue", "cancelled"]
    due_at: datetime
    reason: str
    late: bool | None
    overdue_recorded_at: datetime | None
    submissions: list[PlanSubmissionOut]


class ReviewDecisionIn(Body):
    """POST /v1/reassignment-reviews/{review_id}/decision."""

    decision: Literal["reassign", "retain"]
    note: str = Field(min_length=1, max_length=5000)


class ReviewOut(BaseModel):
    """A reassignment review and its decision."""

    review_id: str
    team_id: str
    period: str
    agent_id: str
    sanction_id: str
    publication: int
    status: Literal["open", "reassign", "retain", "cancelled"]
    reason: str
    months: list[str]
    decision: Literal["reassign", "retain"] | None
    note: str | None
    decided_by: str | None
    decided_at: datetime | None
    basis_changed: bool = Field(default=False, description=(
        "Decided, and then a correction no longer holds the streak it stood on: the decision"
        " stands, for a person to look at again."))
    ended_by: str | None = Field(default=None, description=(
        "Why a later publication or revision ended the review (naming the correction)."))


class PayrollLineOut(BaseModel):
    """A reward or deduction (or its reversal) with the ranking it came from."""

    sanction_id: str
    team_id: str
    period: str
    agent_id: str
    kind: Literal["reward", "deduction"]
    entry: Literal["grant", "reversal"]
    amount: float
    effect: float = Field(description="The change to the agent's pay: + rewards, - deductions.")
    currency: str | None
    publication: int
    rank: int | None
    places: list[int] | None
    reason: str
    reverses: str | None
    status: str
    created_at: datetime
    final: bool = Field(default=False, description=(
        "The agent's appeal window of the month passed unused, or their appeal was decided"))


class PayrollTotalOut(BaseModel):
    """What one agent is owed for the month: the sums of their lines."""

    team_id: str
    agent_id: str
    currency: str | None
    rewards: float
    deductions: float
    net: float


class PayrollOut(BaseModel):
    """A month's rewards and deductions, each traceable to its ranking, and the totals."""

    period: str
    team_id: str | None
    lines: list[PayrollLineOut]
    totals: list[PayrollTotalOut]
    net_by_currency: dict[str, float]


# --- schemes: adoption by agreement ----------------------------------------------------------


class ApprovalOut(BaseModel):
    """One approver's agreement to a proposed version."""

    approver_id: str
    approved_at: datetime
    comment: str | None


class SchemeVersionOut(Scheme):
    """A version of a scheme (as GET returns it) and how it came into force, or why not."""

    status: Literal["proposed", "adopted", "superseded"] = Field(description=(
        "adopted: in force (cycles open with the newest adopted version); proposed: awaiting"
        " approvals; superseded: a newer version came into force first"))
    proposed_by: str | None
    proposed_at: datetime | None
    approvers: list[str]
    quorum: int
    approvals: list[ApprovalOut]
    adopted_at: datetime | None


class SchemeVersionList(BaseModel):
    """Every version of a scheme, newest first."""

    scheme_id: str
    in_force: int | None
    items: list[SchemeVersionOut]


class ApproveIn(Body):
    """POST /v1/schemes/{scheme_id}/versions/{version}/approve."""

    comment: str | None = Field(default=None, max_length=2000)


# --- goals ----------------------------------------------------------------------------------


class TargetOut(BaseModel):
    """One issued target."""

    kind: Literal["measured", "rated"]
    direction: str
    target: float | None
    floor: float | None
    weight: float
    unit: str
    description: str
    adjusted: bool


class DisputeOut(BaseModel):
    """An open dispute of an agent's targets."""

    kpis: list[str]
    comment: str
    disputed_at: datetime


class GoalsOut(BaseModel):
    """The targets issued to an agent for a cycle, and where they stand."""

    team_id: str
    period: str
    agent_id: str
    position: str | None
    scheme_id: str
    scheme_version: int
    issued_at: datetime
    status: Literal["pending", "acknowledged", "disputed"]
    targets: dict[str, TargetOut]
    acknowledged_at: datetime | None
    dispute: DisputeOut | None
    history: list[dict[str, Any]]


class GoalsList(BaseModel):
    """Every current agent's goals for a cycle."""

    team_id: str
    period: str
    items: list[GoalsOut]


class AcknowledgeIn(Body):
    """POST .../acknowledge."""

    comment: str | None = Field(default=None, max_length=2000)


class DisputeIn(Body):
    """POST .../goals/{agent_id}/dispute."""

    comment: str = Field(min_length=1, max_length=5000)
    kpis: list[Annotated[str, Field(max_length=64)]] = Field(
        default=[], max_length=20, description="The KPIs disputed; all of them when left empty.")


class TargetAdjustmentIn(Body):
    """A new target or floor (or both) for one KPI."""

    target: Number | None = None
    floor: Number | None = None


class ResolveIn(Body):
    """POST .../goals/{agent_id}/resolve."""

    decision: Literal["adjusted", "kept"]
    targets: dict[str, TargetAdjustmentIn] = Field(default={}, max_length=20, description=(
        "For an adjusted decision: the KPIs whose target or floor change for this agent."))
    reason: str = Field(min_length=1, max_length=5000)


# --- training -------------------------------------------------------------------------------


class TrainingIn(Body):
    """PUT /v1/training/{evaluator_id}/{topic}."""

    completed_at: AwareDatetime
    valid_until: AwareDatetime


class TrainingTopicOut(BaseModel):
    """One topic of an evaluator's training, and whether it is valid now."""

    topic: str
    title: str
    status: Literal["valid", "expired", "not_yet_valid", "missing"]
    completed_at: datetime | None
    valid_until: datetime | None
    recorded_by: str | None
    recorded_at: datetime | None


class TrainingOut(BaseModel):
    """An evaluator's training on each topic."""

    evaluator_id: str
    topics: list[TrainingTopicOut]
    history: list[dict[str, Any]]


# --- raters ---------------------------------------------------------------------------------


class InvitationIn(Body):
    """POST .../invitations."""

    rater_id: Annotated[str, Id]
    rater_role: Literal["peer", "subordinate", "customer", "expert"]
    agent_ids: list[Annotated[str, Id]] = Field(min_length=1, max_length=500)


class InvitationOut(BaseModel):
    """A rater's invitation: whom they may rate in which role, and whom they rated."""

    rater_id: str
    rater_role: str
    agent_ids: list[str]
    submitted: list[str]


class InvitationList(BaseModel):
    """A cycle's invitations."""

    team_id: str
    period: str
    items: list[InvitationOut]


class EvaluationList(BaseModel):
    """A cycle's evaluations (peer raters anonymous to agents)."""

    team_id: str
    period: str
    items: list[EvaluationOut]


# --- feedback -------------------------------------------------------------------------------


class ClassificationItemOut(BaseModel):
    """One agent's place in the feedback grid."""

    agent_id: str
    name: str
    rank: int | None
    score: float | None
    band: Literal["top", "middle", "bottom"] | None
    trend: Literal["improving", "steady", "declining"] | None
    previous_score: float | None
    delta: float | None
    category: str | None
    focus: str


class CategoryOut(BaseModel):
    """A cell of the grid."""

    band: str
    trend: str
    category: str
    focus: str


class ClassificationOut(BaseModel):
    """A published month's agents classified by result band and trend."""

    team_id: str
    period: str
    previous_period: str
    bands: list[str]
    trends: list[str]
    trend_points: float
    categories: list[CategoryOut]
    items: list[ClassificationItemOut]


class InterviewIn(Body):
    """POST .../interviews/{agent_id}: when, where, who."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    place: str = Field(min_length=1, max_length=200)
    participants: list[Annotated[str, Id]] = Field(default=[], max_length=20, description=(
        "Ids of the people taking part; the manager and the agent are always included."))
    manager_id: Annotated[str, Id] | None = Field(default=None, description=(
        "Who holds the interview (a manager of the team); the caller when left out."))


class OutlineIn(Body):
    """PUT .../interviews/{agent_id}/outline."""

    objective: str = Field(min_length=1, max_length=2000)
    sub_objectives: list[Annotated[str, Field(max_length=2000)]] = Field(default=[],
                                                                          max_length=20)
    questions: list[Annotated[str, Field(max_length=2000)]] = Field(
        min_length=1, max_length=50, description="The questions, in the order to ask them.")


class AgreedActionIn(Body):
    """One action agreed in the interview."""

    action: str = Field(min_length=1, max_length=2000)
    due_date: DateText | None = None


class InterviewRecordIn(Body):
    """PUT .../interviews/{agent_id}/record: the seed's four questions and what was agreed."""

    expectations: str = Field(min_length=1, max_length=10000,
                              description="What should the person do?")
    achievements: str = Field(min_length=1, max_length=10000,
                              description="What did they do?")
    reasons: str = Field(min_length=1, max_length=10000, description="Why this result?")
    improvements: str = Field(min_length=1, max_length=10000,
                              description="What to improve, and in which direction?")
    agreed_actions: list[AgreedActionIn] = Field(min_length=1, max_length=50)
    next_cycle_plan: str = Field(min_length=1, max_length=10000)
    notes: str | None = Field(default=None, max_length=10000)


class InterviewOut(BaseModel):
    """A feedback interview: plan, outline, record and the agent's acknowledgement."""

    interview_id: str
    team_id: str
    period: str
    agent_id: str
    status: Literal["scheduled", "recorded", "acknowledged"]
    manager_id: str
    starts_at: datetime
    ends_at: datetime
    place: str
    participants: list[str]
    revision: int
    scheduled_at: datetime
    outline: dict[str, Any] | None
    record: dict[str, Any] | None
    acknowledgement: dict[str, Any] | None


class InterviewRowOut(BaseModel):
    """An interview as the list shows it."""

    agent_id: str
    manager_id: str
    starts_at: datetime
    ends_at: datetime
    place: str
    participants: list[str]
    status: str
    outline: bool
    recorded_at: datetime | None
    acknowledged_at: datetime | None


class MissingInterviewOut(BaseModel):
    """An evaluated agent whose interview was not held yet."""

    agent_id: str
    status: Literal["unscheduled", "scheduled"]
    starts_at: datetime | None


class InterviewList(BaseModel):
    """A published month's interviews, and the agents still without one held."""

    team_id: str
    period: str
    items: list[InterviewRowOut]
    missing: list[MissingInterviewOut]
    waiting_for_result: list[str] = Field(default_factory=list, description=(
        "Agents of the published month whose result has not been released to them yet"
        " (results.release after_interview)"))
    release_due_at: datetime | None = Field(default=None, description=(
        "When the results still withheld are released automatically"))


# --- monitoring and calibration -------------------------------------------------------------


class OverviewCycleOut(BaseModel):
    """One month of a team, its status and what drifts from the plan."""

    period: str
    status: Literal["open", "closed", "published"]
    scheme_id: str
    scheme_version: int
    deadline: datetime
    opened_at: datetime
    closed_at: datetime | None
    published_at: datetime | None
    evaluations_submitted: int
    goals_unacknowledged: list[str]
    goals_disputed: list[str]
    interviews_missing: list[str]
    late_samples: int = 0
    warnings: list[dict[str, Any]]


class OverviewOut(BaseModel):
    """A team's latest months, newest first."""

    team_id: str
    name: str
    cycles: list[OverviewCycleOut]


class CalibrationStatsOut(BaseModel):
    """Count, mean, spread and range of evaluation levels (0..100)."""

    count: int
    mean: float | None
    stddev: float | None
    min: float | None
    max: float | None


class RaterCalibrationOut(CalibrationStatsOut):
    """One rater's levels against the other raters' (the baseline)."""

    rater_id: str
    rater_role: str
    baseline: float | None
    deviation: float | None
    flag: Literal["lenient", "strict"] | None
    reason: str


class GapOut(BaseModel):
    """An agent's self-evaluation level against the manager's."""

    agent_id: str
    self: float | None
    manager: float | None
    gap: float | None
    flag: bool


class CalibrationOut(BaseModel):
    """Rater calibration of a team's month."""

    team_id: str
    period: str
    status: str
    team: CalibrationStatsOut
    raters: list[RaterCalibrationOut]
    self_vs_manager: list[GapOut]
    mean_gap: float | None
    thresholds: dict[str, float]


class PersonIn(Body):
    """PUT /v1/people/{person_id}: fields left out keep their value."""

    email: str | None = Field(default=None, max_length=254, examples=["mina@example.com"],
                              description="null: no address (reminders are skipped); admins"
                                          " only")
    locale: str | None = Field(default=None, max_length=16, examples=["ko"],
                               description="the language of reminders: en, ko or zh_Hans")
    reminders: Literal["on", "off"] | None = Field(
        default=None, description="off: the person receives no reminders")


class PersonOut(BaseModel):
    """How to reach a person: an agent, a manager or a rater."""

    person_id: str
    email: str | None
    locale: str
    reminders: Literal["on", "off"]
    version: int


class ReminderOut(BaseModel):
    """A reminder of a person, and the state of the email that carries it."""

    reminder_id: str
    kind: str
    subject: str
    params: dict[str, str]
    status: str = Field(description="pending (not in an email yet), queued (in an email not"
                                    " sent yet), sent, failed, skipped_no_email, opted_out")
    created_at: datetime
    settled_at: datetime | None
    message_id: str | None
    attempts: int | None
    last_error: str | None
    sent_at: datetime | None
    next_attempt_at: datetime | None


class ReminderList(BaseModel):
    """A person's latest reminders, newest first."""

    person_id: str
    sending: bool = Field(description="false: CSPERF_SMTP_URL is unset, so reminders are"
                                      " recorded but not sent")
    items: list[ReminderOut]


# --- releases and appeals -------------------------------------------------------------------


class ReleaseOut(BaseModel):
    """Whether an agent's result of a month has reached them, and the windows that follow."""

    team_id: str
    period: str
    agent_id: str
    released: bool
    released_at: datetime | None
    by: Literal["publication", "interview", "manager", "automatic"] | None
    released_by: str | None
    release_due_at: datetime | None
    appeal_until: datetime | None
    plan_due_at: datetime | None
    not_ranked: str | None = Field(default=None, description=(
        "Fair months: why the agent is not ranked (they still see their month)"))


class AppealIn(Body):
    """An agent's appeal of their month."""

    reason: str = Field(min_length=1, max_length=4000)


class AppealDecisionIn(Body):
    """A decision on an appeal: uphold (with a note) or amend (reopens the month)."""

    decision: Literal["uphold", "amend"]
    note: str | None = Field(default=None, max_length=4000)


class AppealOut(BaseModel):
    """An appeal and its decision."""

    appeal_id: str
    team_id: str
    period: str
    agent_id: str
    status: Literal["open", "upheld", "amended"]
    reason: str
    filed_at: datetime
    appeal_until: datetime
    decision: Literal["uphold", "amend"] | None = None
    note: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    cycle_status: str | None = Field(default=None, description=(
        "After an amend: the month's status (open: reopened for the correction)"))


class AppealList(BaseModel):
    """Appeals, oldest first."""

    items: list[AppealOut]

"""Request and response bodies of the JSON API (never the events themselves)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from service.domain.scheme import Scheme

Id = Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$", min_length=1, max_length=64)


class Body(BaseModel):
    """Request bodies refuse unknown fields, so a misspelt field is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class TeamIn(Body):
    """PUT /v1/teams/{team_id}."""

    name: str = Field(min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64, examples=["Asia/Seoul"])
    currency: str | None = Field(default=None, max_length=3, examples=["CNY"])
    manager_ids: list[str] | None = Field(default=None, max_length=100)
    scheme_id: str | None = Field(default=None, max_length=64)


class TeamOut(BaseModel):
    """A team."""

    team_id: str
    name: str
    timezone: str
    currency: str
    manager_ids: list[str]
    scheme_id: str
    version: int


class AgentIn(Body):
    """PUT /v1/agents/{agent_id}."""

    name: str = Field(min_length=1, max_length=200)
    team_id: str = Field(min_length=1, max_length=64)
    position: str | None = Field(default=None, max_length=100,
                                 examples=["pre-sale", "in-sale", "after-sale"])


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


class AgentList(BaseModel):
    """A team's current agents."""

    team_id: str
    items: list[AgentOut]


class SchemeIn(Scheme):
    """PUT /v1/schemes/{scheme_id}: a scheme in the shape GET returns; the id comes from the path
    and the version is assigned."""

    scheme_id: str | None = None  # type: ignore[assignment]
    version: int | None = None  # type: ignore[assignment]


class CycleIn(Body):
    """POST /v1/teams/{team_id}/cycles."""

    period: str = Field(examples=["2026-11"], max_length=7)
    scheme_id: str | None = Field(default=None, max_length=64)


class CloseIn(Body):
    """POST .../close."""

    force: bool = False
    reason: str | None = Field(default=None, max_length=2000)
    missing_policy: Literal["zero", "renormalize"] | None = Field(
        default=None, description="How missing evaluations are scored on a forced close;"
        " the scheme's policy when left out.")


class ReopenIn(Body):
    """POST .../reopen: a correction needs its reason."""

    reason: str = Field(min_length=1, max_length=2000)


class MissingOut(BaseModel):
    """An expected evaluation not submitted."""

    agent_id: str
    rater_role: str


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
    publications: int
    forced: bool | None = None
    close_reason: str | None = None
    missing_policy: str | None = None
    missing_at_close: list[MissingOut] = []
    evaluations_submitted: int
    warnings: list[dict[str, Any]] = []


class EvaluationIn(Body):
    """PUT .../evaluations/{agent_id}/{rater_role}."""

    scores: dict[str, float] = Field(examples=[{"task_completion": 85}])
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


class RankingEntryOut(BaseModel):
    """One line of a ranking."""

    rank: int
    agent_id: str
    name: str
    score: float
    components: dict[str, float | None]
    tied: bool
    places: list[int]


class RankingOut(BaseModel):
    """A team's ranking for a month, best first; provisional while the cycle is open."""

    team_id: str
    period: str
    status: str
    provisional: bool
    published_at: datetime | None = None
    entries: list[RankingEntryOut]
    unranked: list[dict[str, Any]] = []


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


# --- results: sanctions, improvement plans, reassignment reviews, payroll --------------------

SanctionKind = Literal["reward", "deduction", "improvement_plan", "reassignment_review"]
SanctionStatus = Literal[
    "active", "reversed", "reversal", "due", "submitted", "approved", "rejected", "overdue",
    "cancelled", "cancellation", "open", "reassign", "retain",
]


class SanctionOut(BaseModel):
    """One ledger entry: a reward, deduction, plan or review, or the reversal of one."""

    id: str
    team_id: str
    period: str
    agent_id: str
    kind: SanctionKind
    entry: Literal["grant", "reversal", "cancellation"] = Field(description=(
        "grant: decided by a publication; reversal (of a reward or deduction) or cancellation"
        " (of a plan or review): a later publication no longer holds the entry in `reverses`"))
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
    review_id: str | None
    created_at: datetime


class SanctionList(BaseModel):
    """Ledger entries, oldest month first."""

    items: list[SanctionOut]


def _date_text(value: object) -> object:
    # A plain date as text; lax parsing would also take a number of seconds for a date.
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a date as YYYY-MM-DD")
    return value


class PlanActionIn(Body):
    """One action of an improvement plan."""

    action: str = Field(min_length=1, max_length=2000)
    due_date: Annotated[date, BeforeValidator(_date_text)] = Field(examples=["2026-12-20"])


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

"""Request and response bodies of the JSON API (never the events themselves)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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

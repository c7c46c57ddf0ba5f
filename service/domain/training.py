"""Evaluator training: who has been trained on what, and until when (seed, stage 3).

The seed trains evaluators in professional ethics and in the skills of the job: how to use the
evaluation tools, how to read the criteria and how to apply the company's policy. Each of the
four is a topic with its own record, completed on a date and valid until another. A scheme names
the rater roles that need training (``Scheme.requires_training``) and the topics they need
(``Scheme.training_topics``, all four by default); an evaluation by such a rater is accepted only
while every one of those topics is valid *at submission time*.

One stream per evaluator (``training:{evaluator_id}``); a new record of a topic replaces the
previous one, which stays in the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from service.domain.errors import DomainError, FieldError, Text
from service.domain.events import DomainEvent, event

TOPICS: tuple[str, ...] = ("ethics", "tools", "criteria", "policy")
TOPIC_TITLES: dict[str, str] = {
    "ethics": "professional ethics",
    "tools": "how to use the evaluation tools",
    "criteria": "how to read the evaluation criteria",
    "policy": "how to apply the company's policy",
}
TopicStatus = Literal["valid", "expired", "not_yet_valid", "missing"]
#: Dates outside these are typing mistakes (and beyond what the database stores as a moment).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def record_path(evaluator_id: str, topic: str) -> str:
    """Return the API path where an admin records an evaluator's training on a topic."""
    return f"PUT /v1/training/{evaluator_id}/{topic}"


def how_to_record(evaluator_id: str, topics: Iterable[str]) -> Text:
    """Say, in words, how the missing topics get on record."""
    paths = ", ".join(record_path(evaluator_id, t) for t in topics)
    return Text("an admin records each completed topic with %(paths)s (body: completed_at,"
                " valid_until)", {"paths": paths})


def training_stream(evaluator_id: str) -> str:
    """Return the stream id of an evaluator's training records."""
    return f"training:{evaluator_id}"


@event
class TrainingRecorded(DomainEvent):
    """An evaluator completed training on a topic, valid until a date."""

    type: Literal["TrainingRecorded"] = "TrainingRecorded"
    evaluator_id: str
    topic: str
    completed_at: datetime
    valid_until: datetime
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class Training:
    """An evaluator's current record per topic, and every record ever made."""

    evaluator_id: str
    records: Mapping[str, TrainingRecorded] = field(default_factory=dict)
    history: tuple[TrainingRecorded, ...] = ()


def evolve(state: Training | None, e: DomainEvent) -> Training | None:
    """Apply one training event."""
    if not isinstance(e, TrainingRecorded):
        return state
    current = state or Training(e.evaluator_id)
    return Training(e.evaluator_id, {**current.records, e.topic: e}, (*current.history, e))


def decide_record(
    state: Training | None,
    evaluator_id: str,
    topic: str,
    *,
    completed_at: datetime,
    valid_until: datetime,
    recorded_by: str,
    now: datetime,
) -> list[DomainEvent]:
    """Record a completed training; nothing when the same record is already in force."""
    problems = []
    if topic not in TOPICS:
        problems.append(FieldError("topic", f"unknown topic; one of {list(TOPICS)}"))
    if completed_at > now:
        problems.append(FieldError("completed_at", "must not be in the future"))
    elif completed_at < EARLIEST:
        problems.append(FieldError("completed_at", f"must be after {EARLIEST.date()}"))
    if valid_until <= completed_at:
        problems.append(FieldError("valid_until", "must be after completed_at"))
    elif valid_until >= LATEST:
        problems.append(FieldError("valid_until", f"must be before {LATEST.date()}"))
    if problems:
        raise DomainError("invalid training record", problems)
    current = state.records.get(topic) if state else None
    if current is not None and (current.completed_at, current.valid_until) == (
        completed_at, valid_until
    ):
        return []
    return [TrainingRecorded(evaluator_id=evaluator_id, topic=topic, completed_at=completed_at,
                             valid_until=valid_until, recorded_by=recorded_by, recorded_at=now)]


def topic_status(record: TrainingRecorded | None, at: datetime) -> TopicStatus:
    """Return whether a topic's training is valid at a moment (valid_until itself is expired)."""
    if record is None:
        return "missing"
    if at < record.completed_at:
        return "not_yet_valid"
    return "valid" if at < record.valid_until else "expired"


def missing_topics(
    records: Mapping[str, TrainingRecorded], topics: Iterable[str], at: datetime
) -> list[FieldError]:
    """List each required topic not valid at ``at``, as a field error saying why."""
    problems = []
    for topic in topics:
        record = records.get(topic)
        status = topic_status(record, at)
        if status == "valid":
            continue
        title = TOPIC_TITLES.get(topic, topic)
        if record is None:
            reason = f"no training on record ({title})"
        elif status == "expired":
            reason = f"training expired on {record.valid_until.isoformat()} ({title})"
        else:
            reason = f"training completes on {record.completed_at.isoformat()} ({title})"
        problems.append(FieldError(f"training.{topic}", reason))
    return problems

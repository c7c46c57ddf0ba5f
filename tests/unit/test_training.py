"""Evaluator training, pure: records, validity, and the gate on evaluations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.api.problems import status_of
from service.domain import cycle as c
from service.domain import training as t
from service.domain.errors import DomainError, Forbidden
from service.domain.invitations import RaterInvited
from service.domain.scheme import DEFAULT_SCHEME

NOW = datetime(2026, 11, 5, tzinfo=UTC)
YEAR = timedelta(days=365)


def trained(*topics: str, until: datetime = NOW + YEAR) -> dict[str, t.TrainingRecorded]:
    state: t.Training | None = None
    for topic in topics:
        for e in t.decide_record(state, "r", topic, completed_at=NOW - YEAR / 2,
                                 valid_until=until, recorded_by="hr", now=NOW):
            state = t.evolve(state, e)
    return dict(state.records) if state else {}


@pytest.mark.parametrize(("topic", "completed", "until", "field"), [
    ("karate", NOW - YEAR, NOW, "topic"),
    ("ethics", NOW + timedelta(days=1), NOW + YEAR, "completed_at"),
    ("ethics", NOW - YEAR, NOW - YEAR, "valid_until"),
    ("ethics", NOW - YEAR, NOW - 2 * YEAR, "valid_until"),
])
def test_bad_records_name_the_field(topic: str, completed: datetime, until: datetime,
                                    field: str) -> None:
    with pytest.raises(DomainError) as bad:
        t.decide_record(None, "r", topic, completed_at=completed, valid_until=until,
                        recorded_by="hr", now=NOW)
    assert field in {e.field for e in bad.value.errors}


def test_validity_ends_at_valid_until() -> None:
    record = trained("ethics", until=NOW + timedelta(days=1))["ethics"]
    assert t.topic_status(record, NOW) == "valid"
    assert t.topic_status(record, NOW + timedelta(days=1)) == "expired"
    assert t.topic_status(None, NOW) == "missing"
    assert [p.field for p in t.missing_topics(trained("ethics", "tools"), t.TOPICS, NOW)] == [
        "training.criteria", "training.policy"]


def opened_with_expert() -> c.Cycle:
    state = c.evolve(None, c.CycleOpened(
        team_id="t", period="2026-11", scheme_id="online-shop-cs", scheme_version=1,
        deadline=NOW + YEAR, opened_at=NOW))
    state = c.evolve(state, RaterInvited(rater_id="r", rater_role="expert", agent_ids=("a",),
                                         invited_by="m", invited_at=NOW))
    assert state is not None
    return state


def evaluate(state: c.Cycle, training: dict[str, t.TrainingRecorded] | None,
             at: datetime = NOW, agent: str = "a") -> list[object]:
    return list(c.decide_evaluate(
        state, DEFAULT_SCHEME, agent_id=agent, rater_role="expert", rater_id="r",
        scores={"professionalism": 70}, comment=None, agent_in_team=True, now=at,
        rater_training=training))


def test_an_untrained_or_expired_rater_is_refused_naming_the_topics() -> None:
    state = opened_with_expert()
    with pytest.raises(DomainError) as untrained:
        evaluate(state, None)
    assert status_of(untrained.value) == 422
    assert untrained.value.extra["missing_training"] == list(t.TOPICS)
    with pytest.raises(DomainError) as partly:
        evaluate(state, trained("ethics", "tools", "criteria"))
    assert partly.value.extra["missing_training"] == ["policy"]
    records = trained(*t.TOPICS, until=NOW + timedelta(days=3))
    [accepted] = evaluate(state, records)
    assert isinstance(accepted, c.EvaluationSubmitted) and accepted.training_on_record
    with pytest.raises(DomainError):
        evaluate(state, records, at=NOW + timedelta(days=3))


def test_the_scheme_decides_which_topics_and_roles() -> None:
    state = opened_with_expert()
    only_ethics = DEFAULT_SCHEME.model_copy(update={"training_topics": ("ethics",)})
    events = c.decide_evaluate(
        state, only_ethics, agent_id="a", rater_role="expert", rater_id="r",
        scores={"professionalism": 70}, comment=None, agent_in_team=True, now=NOW,
        rater_training=trained("ethics"))
    assert len(events) == 1
    # a manager needs no training under the default scheme
    manager = c.decide_evaluate(
        state, DEFAULT_SCHEME, agent_id="a", rater_role="self", rater_id="a",
        scores={"task_completion": 70}, comment=None, agent_in_team=True, now=NOW)
    assert isinstance(manager[0], c.EvaluationSubmitted)
    assert manager[0].training_on_record is False


def test_invitation_comes_before_training() -> None:
    with pytest.raises(Forbidden):
        evaluate(opened_with_expert(), None, agent="b")

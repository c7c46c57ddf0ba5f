"""Feedback communication, pure: the classification grid and the interview rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.api.problems import status_of
from service.domain import feedback as f
from service.domain.cycle import FrozenResult
from service.domain.errors import Conflict, DomainError, Forbidden
from service.domain.events import DomainEvent
from service.domain.scheme import DEFAULT_SCHEME
from service.domain.scoring import score_agent

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
TEN = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def result(agent: str, rank: int | None, composite: float | None) -> FrozenResult:
    score = score_agent(DEFAULT_SCHEME, None, {}, {}).model_copy(
        update={"composite": composite})
    return FrozenResult(agent_id=agent, name=agent, position=None, kpis={}, totals={},
                        score=score, rank=rank, tied=False,
                        places=(rank, rank) if rank else None)


@pytest.mark.parametrize(("rank", "ranked", "band"), [
    (1, 4, "top"), (2, 4, "middle"), (3, 4, "middle"), (4, 4, "bottom"),
    (1, 3, "top"), (2, 3, "middle"), (3, 3, "bottom"), (1, 2, "top"), (2, 2, "bottom"),
    (2, 5, "top"), (4, 5, "bottom"), (1, 1, "middle"),
])
def test_bands_by_place_in_the_ranking(rank: int, ranked: int, band: str) -> None:
    assert f.band_of(rank, ranked, has_first_and_last=ranked > 1) == band


def test_everyone_tied_is_middle() -> None:
    assert f.band_of(1, 5, has_first_and_last=False) == "middle"


@pytest.mark.parametrize(("score", "previous", "trend"), [
    (80, 75, "improving"), (80, 75.01, "steady"), (70, 75, "declining"), (80, None, "steady"),
])
def test_trend_against_the_previous_month(score: float, previous: float | None,
                                          trend: str) -> None:
    assert f.trend_of(score, previous) == trend


def test_the_grid_has_nine_named_cells_and_unranked_agents_have_none() -> None:
    assert len(f.CATEGORIES) == 9 and len({name for name, _ in f.CATEGORIES.values()}) == 9
    items = f.classify([result("a", 1, 90), result("b", 2, 50), result("c", None, None)],
                       {"a": 70.0, "b": 60.0})
    by = {i["agent_id"]: i for i in items}
    assert (by["a"]["category"], by["b"]["category"]) == ("rising_star", "at_risk")
    assert by["c"]["category"] is None and by["c"]["band"] is None


def schedule(agent: str, start: datetime, minutes: int = 60, manager: str = "m"
             ) -> f.Schedule:
    return f.Schedule("t", "2026-11", agent, manager, start, start + timedelta(minutes=minutes),
                      "room", ())


def booked(*interviews: tuple[str, datetime]) -> f.Calendar:
    calendar = f.Calendar()
    for agent, start in interviews:
        events = f.decide_schedule(None, {"m": calendar}, schedule(agent, start),
                                   cycle_status="published", evaluated=True, now=NOW)
        for e in events[f.calendar_stream("m")]:
            calendar = f.evolve_calendar(calendar, e) or calendar
    return calendar


def test_no_two_interviews_of_a_manager_overlap() -> None:
    calendar = booked(("a", TEN))
    with pytest.raises(Conflict) as clash:
        f.decide_schedule(None, {"m": calendar}, schedule("b", TEN + timedelta(minutes=59)),
                          cycle_status="published", evaluated=True, now=NOW)
    assert clash.value.extra["clash"]["interview_id"] == "t:2026-11:a"
    with pytest.raises(Conflict):
        f.decide_schedule(None, {"m": calendar}, schedule("b", TEN - timedelta(minutes=30)),
                          cycle_status="published", evaluated=True, now=NOW)
    # touching ends are fine, and another manager's calendar is theirs
    assert f.decide_schedule(None, {"m": calendar}, schedule("b", TEN + timedelta(hours=1)),
                             cycle_status="published", evaluated=True, now=NOW)
    assert f.decide_schedule(None, {"n": None}, schedule("b", TEN, manager="n"),
                             cycle_status="published", evaluated=True, now=NOW)


def test_moving_to_another_manager_releases_the_old_slot() -> None:
    first = f.decide_schedule(None, {"m": None}, schedule("a", TEN),
                              cycle_status="published", evaluated=True, now=NOW)
    interview = f.evolve_interview(None, first[f.interview_stream("t", "2026-11", "a")][0])
    moved = f.decide_schedule(interview, {"m": booked(("a", TEN)), "n": None},
                              schedule("a", TEN, manager="n"), cycle_status="published",
                              evaluated=True, now=NOW)
    assert set(moved) == {f.interview_stream("t", "2026-11", "a"), f.calendar_stream("n"),
                          f.calendar_stream("m")}
    assert isinstance(moved[f.calendar_stream("m")][0], f.InterviewReleased)


@pytest.mark.parametrize("status", [None, "open", "closed"])
def test_interviews_follow_publication(status: str | None) -> None:
    with pytest.raises(DomainError) as refused:
        f.decide_schedule(None, {"m": None}, schedule("a", TEN), cycle_status=status,
                          evaluated=True, now=NOW)
    assert status_of(refused.value) == (404 if status is None else 409)


def held() -> f.Interview:
    interview: f.Interview | None = None
    events: list[DomainEvent] = f.decide_schedule(
        None, {"m": None}, schedule("a", TEN), cycle_status="published", evaluated=True,
        now=NOW)[f.interview_stream("t", "2026-11", "a")]
    for e in events:
        interview = f.evolve_interview(interview, e)
    assert interview is not None
    return interview


RECORD = f.Record(expectations="x", achievements="y", reasons="z", improvements="w",
                  agreed_actions=[f.AgreedAction(action="do")], next_cycle_plan="plan")


def test_the_record_needs_all_four_questions_and_follows_the_meeting() -> None:
    interview = held()
    with pytest.raises(DomainError) as bad:
        f.decide_record(interview, f.Record("", " ", "z", "w", [], " "), recorded_by="m",
                        now=TEN)
    assert {e.field for e in bad.value.errors} == {
        "expectations", "achievements", "next_cycle_plan", "agreed_actions"}
    with pytest.raises(Conflict):
        f.decide_record(interview, RECORD, recorded_by="m", now=TEN - timedelta(seconds=1))
    [recorded] = f.decide_record(interview, RECORD, recorded_by="m", now=TEN)
    interview = f.evolve_interview(interview, recorded) or interview
    with pytest.raises(Forbidden):
        f.decide_acknowledge(interview, "a", by="b", comment=None, now=TEN)
    [ack] = f.decide_acknowledge(interview, "a", by="a", comment=" ", now=TEN)
    assert isinstance(ack, f.InterviewAcknowledged) and ack.comment is None
    interview = f.evolve_interview(interview, ack) or interview
    assert interview.status == "acknowledged"
    with pytest.raises(Conflict):
        f.decide_acknowledge(interview, "a", by="a", comment=None, now=TEN)
    with pytest.raises(Conflict):
        f.decide_record(interview, RECORD, recorded_by="m", now=TEN)

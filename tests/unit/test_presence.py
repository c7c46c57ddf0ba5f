"""Who is in a month: active days, share and eligibility (pure, no database)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.domain.presence import (
    DateRange,
    Span,
    active_dates,
    active_day_count,
    eligibility,
    in_month,
    period_dates,
    prorated,
    team_date,
)

NOV = "2026-11"  # 30 days


def test_a_full_month_without_span_or_absence_is_all_active() -> None:
    found = eligibility(NOV, Span(), [], 0.5)
    assert found is not None
    assert (found.days, found.active_days, found.share, found.ranked) == (30, 30, 1.0, True)
    assert found.reason is None


@pytest.mark.parametrize("span", [
    Span(hired_on=date(2026, 12, 1)),                        # hired after the period ends
    Span(hired_on=date(2025, 1, 1), left_on=date(2026, 10, 31)),  # left before it starts
])
def test_hired_after_or_left_before_the_period_is_not_in_the_month(span: Span) -> None:
    assert not in_month(NOV, span)
    assert eligibility(NOV, span, [], 0.5) is None


def test_hired_on_the_last_day_or_left_on_the_first_is_in_the_month_and_not_ranked() -> None:
    late = eligibility(NOV, Span(hired_on=date(2026, 11, 28)), [], 0.5)
    assert late is not None and (late.active_days, late.ranked) == (3, False)
    assert late.reason == "active 3 of 30 days"
    gone = eligibility(NOV, Span(left_on=date(2026, 11, 1)), [], 0.5)
    assert gone is not None and gone.active_days == 1


def test_overlapping_absences_count_each_day_once() -> None:
    absences = [DateRange(date(2026, 11, 1), date(2026, 11, 10)),
                DateRange(date(2026, 11, 5), date(2026, 11, 12)),
                DateRange(date(2026, 11, 12), date(2026, 11, 12))]
    assert len(active_dates(NOV, Span(), absences)) == 30 - 12


def test_active_day_count_is_the_number_of_active_dates() -> None:
    # Counted without making the dates when no absence falls in the month: the same number
    # for spans inside, across and outside the month, absences or none, and a cut-off day.
    rng = random.Random(19)
    for _ in range(5_000):
        hired = date(2026, 10, 15) + timedelta(days=rng.randrange(60))
        left = hired + timedelta(days=rng.randrange(-5, 50))
        span = Span(hired_on=rng.choice([None, hired]), left_on=rng.choice([None, left]))
        absences = []
        for _ in range(rng.choice([0, 0, 1, 3])):
            start = date(2026, 10, 20) + timedelta(days=rng.randrange(50))
            absences.append(DateRange(start, start + timedelta(days=rng.randrange(10))))
        through = rng.choice([None, date(2026, 10, 31) + timedelta(days=rng.randrange(32))])
        assert active_day_count(NOV, span, absences, through) == len(
            active_dates(NOV, span, absences, through)), (span, absences, through)


def test_an_absence_reaching_into_the_month_counts_only_its_days_inside() -> None:
    absences = [DateRange(date(2026, 10, 20), date(2026, 11, 3)),
                DateRange(date(2026, 11, 29), date(2026, 12, 15))]
    found = eligibility(NOV, Span(), absences, 0.5)
    assert found is not None and found.active_days == 30 - 3 - 2


def test_share_exactly_min_active_share_is_ranked_and_one_day_less_is_not() -> None:
    half = eligibility(NOV, Span(), [DateRange(date(2026, 11, 16), date(2026, 11, 30))], 0.5)
    assert half is not None and (half.active_days, half.share, half.ranked) == (15, 0.5, True)
    below = eligibility(NOV, Span(), [DateRange(date(2026, 11, 15), date(2026, 11, 30))], 0.5)
    assert below is not None and (below.active_days, below.ranked) == (14, False)
    assert below.reason == "active 14 of 30 days"


def test_parental_leave_all_month_is_not_ranked() -> None:
    found = eligibility(NOV, Span(hired_on=date(2024, 3, 1)),
                        [DateRange(date(2026, 9, 1), date(2027, 2, 28))], 0.5)
    assert found is not None and (found.active_days, found.share, found.ranked) == (0, 0.0, False)


def test_a_transfer_mid_month_with_an_absence_keeps_the_whole_month_worked() -> None:
    # Moved from team a to b on 16 November (Seoul), sick 3 to 9 November while in team a:
    # every sample of the month follows the agent to b, so the share counts the whole month;
    # days_in_team says how much of it was spent in b.
    tz = ZoneInfo("Asia/Seoul")
    memberships = [("a", datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 11, 15, 15, tzinfo=UTC)),
                   ("b", datetime(2026, 11, 15, 15, tzinfo=UTC), None)]
    sick = [DateRange(date(2026, 11, 3), date(2026, 11, 9))]
    found = eligibility(NOV, Span(), sick, 0.5, tz=tz, memberships=memberships, team_id="b")
    assert found is not None
    assert (found.active_days, found.days_in_team, found.ranked) == (23, 15, True)
    in_a = eligibility(NOV, Span(), sick, 0.5, tz=tz, memberships=memberships, team_id="a")
    assert in_a is not None and in_a.days_in_team == 23 - 15


def test_the_month_is_the_teams_calendar_month_whatever_day_it_is_in_utc() -> None:
    # November starts on 31 October at 15:00 UTC in Seoul: a transfer at that instant is on
    # 1 November in the team's calendar, and an absence on 1 November is a November day.
    seoul = ZoneInfo("Asia/Seoul")
    moment = datetime(2026, 10, 31, 15, 0, tzinfo=UTC)
    assert team_date(moment, seoul) == date(2026, 11, 1)
    assert team_date(moment, ZoneInfo("UTC")) == date(2026, 10, 31)
    memberships = [("old", datetime(2026, 1, 1, tzinfo=UTC), moment), ("new", moment, None)]
    found = eligibility(NOV, Span(), [DateRange(date(2026, 11, 1), date(2026, 11, 1))], 0.5,
                        tz=seoul, memberships=memberships, team_id="new")
    assert found is not None and (found.active_days, found.days_in_team) == (29, 29)
    # In UTC the same move falls on 31 October: November is all "new" there too, but a move
    # at 16:00 on 1 November UTC is 2 November in Kiritimati (UTC+14), not in UTC.
    kiritimati = ZoneInfo("Pacific/Kiritimati")
    moved = datetime(2026, 11, 1, 16, 0, tzinfo=UTC)
    stay = [("old", datetime(2026, 1, 1, tzinfo=UTC), moved), ("new", moved, None)]
    far = eligibility(NOV, Span(), [], 0.5, tz=kiritimati, memberships=stay, team_id="new")
    utc = eligibility(NOV, Span(), [], 0.5, tz=ZoneInfo("UTC"), memberships=stay,
                      team_id="new")
    assert far is not None and utc is not None
    assert (far.days_in_team, utc.days_in_team) == (29, 30)


def test_period_dates_and_prorating() -> None:
    assert period_dates("2028-02") == (date(2028, 2, 1), date(2028, 2, 29))
    assert prorated(50000.0, 0.5) == 25000.0
    assert prorated(50000.0, 1.0) == 50000.0

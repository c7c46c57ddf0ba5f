"""Who is in a month: employment span, absences, active days, share and eligibility (pure).

Version 2 of ``online-shop-cs`` ("Fair months", ``domain.md``): an agent's *active days* are the
period's calendar days inside their employment span and outside their absences; their *share*
is active days / days in the period. Below the scheme's ``min_active_share`` they are not
ranked. Every date here is a calendar date in the team's time zone: the month is the team's
month, so an absence on 1 November in Seoul is a November day although it starts on 31 October
in UTC. Instants (a transfer's moment) are turned into team dates with ``team_date``.

A transfer does not cut active days: an agent who moved mid-month is ranked in the team they
belong to at close with every sample of the month (``domain.md``, "Agents move"), so the whole
month they worked is the yardstick of their targets. ``days_in_team`` says how much of it was
spent in the closing team, for the scorecard.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from service.domain.periods import parse_period

AbsenceKind = Literal["leave", "sick", "training", "other"]
ABSENCE_KINDS: tuple[str, ...] = ("leave", "sick", "training", "other")
#: The share below which an agent is not ranked, when a scheme does not say.
DEFAULT_MIN_ACTIVE_SHARE = 0.5


@dataclass(frozen=True)
class Span:
    """An employment span: hired_on (None: employed before any month we know of) to left_on
    (None: still employed), both inclusive."""

    hired_on: date | None = None
    left_on: date | None = None

    def contains(self, day: date) -> bool:
        """Tell whether the agent was employed on a day."""
        return (self.hired_on is None or day >= self.hired_on) and (
            self.left_on is None or day <= self.left_on)


@dataclass(frozen=True)
class DateRange:
    """An inclusive range of dates (an absence)."""

    start: date
    end: date

    def days(self) -> Iterable[date]:
        """Yield every date of the range."""
        day = self.start
        while day <= self.end:
            yield day
            day += timedelta(days=1)


class Eligibility(BaseModel):
    """Whether an agent is ranked in a month, and the days that decided it."""

    model_config = ConfigDict(frozen=True)

    days: int
    active_days: int
    share: float
    ranked: bool
    reason: str | None = None
    #: Active days spent in the team that closes the month (differs after a transfer).
    days_in_team: int | None = None


def period_dates(period: str) -> tuple[date, date]:
    """Return the first and last calendar day of a period ("2026-11")."""
    year, month = parse_period(period)
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def team_date(moment: datetime, tz: ZoneInfo) -> date:
    """Return the team's calendar date of an instant."""
    return moment.astimezone(tz).date()


def in_month(period: str, span: Span) -> bool:
    """Tell whether the employment span touches the period at all."""
    first, last = period_dates(period)
    return (span.hired_on is None or span.hired_on <= last) and (
        span.left_on is None or span.left_on >= first)


def active_dates(period: str, span: Span, absences: Iterable[DateRange],
                 through: date | None = None) -> set[date]:
    """Return the period's dates inside the span and outside every absence (overlaps once);
    with ``through``, only those up to that day (a month still running: its days so far)."""
    first, last, start, end = _span_run(period, span, through)
    # The span is one run of days: its part of the period, made directly (a close asks for
    # every agent's days, up to three times).
    days = {start + timedelta(days=n) for n in range((end - start).days + 1)}
    for absence in absences:
        if absence.end < first or absence.start > last:
            continue
        days.difference_update(DateRange(max(absence.start, first), min(absence.end, last))
                               .days())
    return days


def active_day_count(period: str, span: Span, absences: Sequence[DateRange],
                     through: date | None = None) -> int:
    """Return how many dates ``active_dates`` gives, counted without making them when no
    absence falls in the period (a close counts every agent's, for per-active-day KPIs)."""
    first, last, start, end = _span_run(period, span, through)
    if any(a.end >= first and a.start <= last for a in absences):
        return len(active_dates(period, span, absences, through))
    return max(0, (end - start).days + 1)


def _span_run(period: str, span: Span, through: date | None
              ) -> tuple[date, date, date, date]:
    """Return the period's first and last day (up to ``through``) and the span's run of days
    inside them (empty when the run ends before it starts)."""
    first, last = period_dates(period)
    if through is not None:
        last = max(min(last, through), first - timedelta(days=1))
    start = first if span.hired_on is None else max(first, span.hired_on)
    end = last if span.left_on is None else min(last, span.left_on)
    return first, last, start, end


def reason_text(active: int, days: int) -> str:
    """Describe presence in words: "active 9 of 30 days"."""
    return f"active {active} of {days} days"


def eligibility(
    period: str,
    span: Span,
    absences: Iterable[DateRange],
    min_active_share: float,
    *,
    tz: ZoneInfo | None = None,
    memberships: Sequence[tuple[str, datetime, datetime | None]] = (),
    team_id: str | None = None,
) -> Eligibility | None:
    """Return an agent's eligibility in a period; None when they are not in the month at all.

    ``memberships`` (team, since, until) with ``tz`` and ``team_id`` add ``days_in_team``.
    A share exactly at ``min_active_share`` is ranked: the rule excludes those *below* it.
    """
    if not in_month(period, span):
        return None
    first, last = period_dates(period)
    days = (last - first).days + 1
    active = active_dates(period, span, absences)
    share = len(active) / days
    ranked = share >= min_active_share
    in_team = None
    if tz is not None and team_id is not None and memberships:
        in_team = sum(1 for d in active if _team_on(d, memberships, tz) == team_id)
    return Eligibility(
        days=days, active_days=len(active), share=round(share, 4), ranked=ranked,
        reason=None if ranked else reason_text(len(active), days), days_in_team=in_team,
    )


def _team_on(day: date, memberships: Sequence[tuple[str, datetime, datetime | None]],
             tz: ZoneInfo) -> str | None:
    # A day belongs to the team the agent was in at the day's end (a move at 10:00 makes the
    # rest of that day the new team's); before the first membership, to the first team.
    found = memberships[0][0] if memberships else None
    for team, since, _until in memberships:
        if team_date(since, tz) <= day:
            found = team
    return found


def prorated(value: float, share: float) -> float:
    """Scale a target or floor by the agent's share of the month (never above the original)."""
    return value * share if share < 1 else value

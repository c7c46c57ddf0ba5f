"""Monthly periods ("2026-11") in a team's time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from service.domain.errors import DomainError, FieldError
from service.domain.problems import problem

#: A month as YYYY-MM; the same text is the pattern of every period parameter of the API.
PERIOD_PATTERN = r"^(\d{4})-(0[1-9]|1[0-2])$"
_PERIOD = re.compile(PERIOD_PATTERN)
EVALUATION_DAY = 7
#: The first month the service keeps: older is a typo or a broken clock (metric samples are
#: refused from before 2000 too).
FIRST_PERIOD = (2000, 1)
#: How far ahead a month may be opened or asked for: up to December of the clock's year plus
#: this many years.
YEARS_AHEAD = 10


def parse_period(text: str, field: str = "period") -> tuple[int, int]:
    """Return (year, month) of a "YYYY-MM" period; raise DomainError naming the field."""
    match = _PERIOD.fullmatch(text)
    if match is None:
        wrong = problem(field, "%(text)s is not a month as YYYY-MM (01 to 12)", text=repr(text))
        raise DomainError("%(field)s must be a month as YYYY-MM", [wrong], values={"field": field})
    return int(match.group(1)), int(match.group(2))


def check_period(text: str, now: datetime, field: str = "period") -> str:
    """Return a period from 2000-01 to December of now's year plus ten; else raise DomainError.

    Every period the API takes (path, query or body) passes here: outside the range, a month
    is a typo, and the calendar arithmetic of deadlines fails on years like 0000 or 9999.
    """
    year, month = parse_period(text, field)
    last = (now.year + YEARS_AHEAD, 12)
    if not FIRST_PERIOD <= (year, month) <= last:
        first, until = f"{FIRST_PERIOD[0]:04d}-{FIRST_PERIOD[1]:02d}", f"{last[0]:04d}-12"
        wrong = problem(field, "%(text)s is outside %(first)s to %(last)s", text=repr(text),
                      first=first, last=until)
        raise DomainError(
            "%(field)s must be a month from %(first)s to %(last)s", [wrong],
            values={"field": field, "first": first, "last": until},
        )
    return text


@cache
def _iana_names() -> frozenset[str]:
    # available_timezones() walks the tz database on every call (about 8 ms here); the
    # database does not change under a running process.
    return frozenset(available_timezones())


def zone(name: str, field: str = "timezone") -> ZoneInfo:
    """Return the IANA time zone; raise DomainError naming the field when unknown."""
    try:
        if name not in _iana_names():
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        wrong = FieldError(field, "not an IANA time zone name")
        raise DomainError("unknown time zone %(name)s", [wrong], values={"name": repr(name)}
                          ) from exc


def period_of(moment: datetime, tz: ZoneInfo) -> str:
    """Return the period a moment falls in, in the given time zone."""
    local = moment.astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"


def month_start(period: str, tz: ZoneInfo) -> datetime:
    """Return the first instant of the period in the time zone."""
    year, month = parse_period(period)
    return datetime(year, month, 1, tzinfo=tz)


def next_period(period: str) -> str:
    """Return the following month."""
    year, month = parse_period(period)
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def previous_period(period: str) -> str:
    """Return the preceding month."""
    year, month = parse_period(period)
    return f"{year - (month == 1):04d}-{(month - 2) % 12 + 1:02d}"


def evaluation_deadline(period: str, tz: ZoneInfo) -> datetime:
    """Return the default deadline: the end of the 7th of the following month, team time."""
    start = month_start(next_period(period), tz)
    # Wall-clock arithmetic in the team's zone, then stored in UTC like every timestamp.
    return (start + timedelta(days=EVALUATION_DAY)).astimezone(UTC)

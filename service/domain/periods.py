"""Monthly periods ("2026-11") in a team's time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from service.domain.errors import DomainError, FieldError

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
EVALUATION_DAY = 7


def parse_period(text: str, field: str = "period") -> tuple[int, int]:
    """Return (year, month) of a "YYYY-MM" period; raise DomainError naming the field."""
    match = _PERIOD.fullmatch(text)
    if match is None:
        raise DomainError(
            f"{field} must be a month as YYYY-MM",
            [FieldError(field, f"{text!r} is not a month as YYYY-MM (01 to 12)")],
        )
    return int(match.group(1)), int(match.group(2))


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
        raise DomainError(
            f"unknown time zone {name!r}", [FieldError(field, "not an IANA time zone name")]
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

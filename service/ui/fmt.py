"""Numbers, money, percentages, months and times as a reader of a team writes them, by Babel.

The formatting locale joins the page's language with the team (``i18n.formatting_locale``): the
team's own ``locale`` when the reader reads that language, else the reader's language in the
team's country where CLDR has that pairing (an English reader of a Berlin team: ``en_DE``,
``1.234,50 €``), else the language alone (a Chinese reader of a Shanghai team:
``zh_Hans_CN``, ``¥1,234.50``; a Korean month: ``2026년 11월``). Instants are shown in the
team's time zone. Babel (CLDR) does the writing: separators, symbol placement, minor units
(none for KRW and JPY) and month names are its data, not ours.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time
from babel.numbers import format_currency, format_decimal, format_percent

from service import i18n
from service.ui.page_language import language

DASH = "\u2013"  # what a missing value shows
NBSP = "\u00a0"


def locale_for(timezone: str, team_locale: str | None = None) -> Locale:
    """Return the locale the page being answered writes a team's numbers in."""
    return i18n.formatting_locale(language(team_locale), team_locale, timezone)


def page_locale() -> Locale:
    """Return the locale of the page's language alone (month names where no team applies)."""
    return i18n.babel_locale(language())


def number(value: float | None, loc: Locale, decimals: int = 0) -> str:
    """Write a number with the locale's grouping and decimal separators; None is a dash."""
    if value is None or not math.isfinite(value):
        return DASH
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(round(value, decimals) + 0.0, pattern, locale=loc)


def money(value: float | None, currency: str, loc: Locale) -> str:
    """Write an amount of ``currency`` as the locale does (its own minor units)."""
    if value is None or not math.isfinite(value):
        return DASH
    if not currency:
        return number(value, loc, 2)
    return format_currency(value, currency, locale=loc)


def percent(fraction: float | None, loc: Locale, decimals: int = 1) -> str:
    """Write a fraction (0.253) as a percentage (25.3%, 25,3 % in German)."""
    if fraction is None or not math.isfinite(fraction):
        return DASH
    # The locale's own pattern (where the sign goes, with or without a space) with decimals.
    base = str(loc.percent_formats[None].pattern).split(";")[0]
    last = base.rfind("0")
    pattern = base[:last + 1] + "." + "0" * decimals + base[last + 1:] if decimals else base
    return format_percent(fraction, pattern, locale=loc)


def _local(value: datetime | str, timezone: str) -> datetime:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(ZoneInfo(timezone))


def moment(value: datetime | str | None, timezone: str, loc: Locale) -> str:
    """Write an instant in the team's time zone, with the zone's abbreviation."""
    if value is None:
        return DASH
    local = _local(value, timezone)
    joined = str(loc.datetime_formats["medium"]).replace("'", "")
    text = joined.format(format_time(local, "short", locale=loc),
                         format_date(local, "medium", locale=loc))
    return f"{text} {local.strftime('%Z')}"


def day(value: datetime | str | None, timezone: str, loc: Locale) -> str:
    """Write the calendar day of an instant in the team's time zone."""
    if value is None:
        return DASH
    return format_date(_local(value, timezone), "medium", locale=loc)


def month(year: int, number_: int, loc: Locale, *, short: bool = False) -> str:
    """Write a month (``Nov 2026``, ``2026년 11월``); short: the month alone, for chart ticks."""
    first = date(year, number_, 1)
    return format_skeleton("MMM" if short else "yMMM", first, locale=loc)


def kpi_value(name: str, value: float | None, unit: str, currency: str, loc: Locale) -> str:
    """Write a KPI value in its unit: ratios as percentages, money in the team's currency."""
    if value is None:
        return DASH
    if unit == "ratio":
        return percent(value, loc)
    if unit == "currency":
        return money(value, currency, loc)
    if unit == "seconds":
        return number(value, loc, 1) + NBSP + "s"
    return number(value, loc, 1)


class Fmt:
    """Numbers and times as the page's reader reads a team's (its currency and time zone)."""

    def __init__(self, timezone: str, currency: str, locale: str | None = None) -> None:
        self.timezone = timezone
        self.currency = currency
        self.loc = locale_for(timezone, locale)

    def money(self, value: float | None) -> str:
        """Write an amount in the team's currency."""
        return money(value, self.currency, self.loc)

    def pct(self, value: float | None) -> str:
        """Write a fraction as a percentage."""
        return percent(value, self.loc)

    def num(self, value: float | None, decimals: int = 1) -> str:
        """Write a number."""
        return number(value, self.loc, decimals)

    def when(self, value: datetime | str | None) -> str:
        """Write an instant in the team's time zone."""
        return moment(value, self.timezone, self.loc)

    def day(self, value: datetime | str | None) -> str:
        """Write the day of an instant in the team's time zone."""
        return day(value, self.timezone, self.loc)

    def kpi(self, name: str, value: float | None, unit: str) -> str:
        """Write a KPI value in its unit."""
        return kpi_value(name, value, unit, self.currency, self.loc)

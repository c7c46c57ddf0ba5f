"""Numbers, money, percentages and times as a team's locale writes them, in its time zone.

A team has a time zone and a currency but no locale of its own; the locale follows the time
zone (a Shanghai team reads ``¥1,234.50``, a Berlin team ``1.234,50 €``). The table is small on
purpose: the conventions the demo and the seed's shops need, with ``en-US`` as the fallback. A
library with all of CLDR (Babel) would be more complete and ten megabytes heavier; should teams
one day carry a locale of their own, this is the one place to change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

NBSP = "\u00a0"
DASH = "\u2013"  # what a missing value shows
MINUS = "\u2212"
NNBSP = "\u202f"


@dataclass(frozen=True, slots=True)
class Locale:
    """How one locale writes numbers and times."""

    tag: str
    group: str
    decimal: str
    #: ``{symbol}`` and ``{number}``: where the currency symbol goes.
    money: str
    #: ``{number}``: where the percent sign goes.
    percent: str
    moment: str
    day: str


LOCALES: dict[str, Locale] = {
    "en-US": Locale("en-US", ",", ".", "{symbol}{number}", "{number}%",
                    "%b %-d, %Y, %H:%M", "%b %-d, %Y"),
    "en-GB": Locale("en-GB", ",", ".", "{symbol}{number}", "{number}%",
                    "%-d %b %Y, %H:%M", "%-d %b %Y"),
    "zh-CN": Locale("zh-CN", ",", ".", "{symbol}{number}", "{number}%",
                    "%Y/%m/%d %H:%M", "%Y/%m/%d"),
    "ko-KR": Locale("ko-KR", ",", ".", "{symbol}{number}", "{number}%",
                    "%Y. %-m. %-d. %H:%M", "%Y. %-m. %-d."),
    "ja-JP": Locale("ja-JP", ",", ".", "{symbol}{number}", "{number}%",
                    "%Y/%m/%d %H:%M", "%Y/%m/%d"),
    "de-DE": Locale("de-DE", ".", ",", "{number}" + NBSP + "{symbol}", "{number}" + NBSP + "%",
                    "%d.%m.%Y, %H:%M", "%d.%m.%Y"),
    "fr-FR": Locale("fr-FR", NNBSP, ",", "{number}" + NBSP + "{symbol}",
                    "{number}" + NNBSP + "%", "%d/%m/%Y %H:%M", "%d/%m/%Y"),
}

ZONE_LOCALES: dict[str, str] = {
    "Asia/Shanghai": "zh-CN", "Asia/Chongqing": "zh-CN", "Asia/Harbin": "zh-CN",
    "Asia/Urumqi": "zh-CN", "Asia/Seoul": "ko-KR", "Asia/Tokyo": "ja-JP",
    "Europe/Berlin": "de-DE", "Europe/Vienna": "de-DE", "Europe/Zurich": "de-DE",
    "Europe/Paris": "fr-FR", "Europe/Brussels": "fr-FR", "Europe/Luxembourg": "fr-FR",
    "Europe/London": "en-GB", "Europe/Dublin": "en-GB",
}

CURRENCY_SYMBOLS: dict[str, str] = {
    "CNY": "¥", "JPY": "¥", "KRW": "₩", "EUR": "€", "USD": "$", "GBP": "£",
}
#: Currencies written without minor units.
WHOLE_CURRENCIES = frozenset({"KRW", "JPY"})


def locale_for(timezone: str) -> Locale:
    """Return the locale a team in ``timezone`` reads numbers in."""
    return LOCALES[ZONE_LOCALES.get(timezone, "en-US")]


def number(value: float | None, loc: Locale, decimals: int = 0) -> str:
    """Write a number with the locale's grouping and decimal separators; None is a dash."""
    if value is None or not math.isfinite(value):
        return DASH
    text = f"{abs(value):,.{decimals}f}"
    text = text.replace(",", "\x00").replace(".", loc.decimal).replace("\x00", loc.group)
    negative = value < 0 and any(ch not in "0,." for ch in f"{abs(value):,.{decimals}f}")
    return (MINUS if negative else "") + text


def money(value: float | None, currency: str, loc: Locale) -> str:
    """Write an amount of ``currency`` as the locale does."""
    if value is None:
        return DASH
    decimals = 0 if currency in WHOLE_CURRENCIES else 2
    symbol = CURRENCY_SYMBOLS.get(currency, currency + NBSP)
    body = number(abs(value), loc, decimals)
    text = loc.money.format(symbol=symbol, number=body).strip()
    return (MINUS if value < 0 else "") + text


def percent(fraction: float | None, loc: Locale, decimals: int = 1) -> str:
    """Write a fraction (0.253) as a percentage (25.3 %)."""
    if fraction is None:
        return DASH
    return loc.percent.format(number=number(fraction * 100, loc, decimals))


def moment(value: datetime | str | None, timezone: str, loc: Locale) -> str:
    """Write an instant in the team's time zone with the zone's abbreviation."""
    if value is None:
        return DASH
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = at.astimezone(ZoneInfo(timezone))
    return f"{local.strftime(loc.moment)} {local.strftime('%Z')}"


def day(value: datetime | str | None, timezone: str, loc: Locale) -> str:
    """Write the calendar day of an instant in the team's time zone."""
    if value is None:
        return DASH
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(ZoneInfo(timezone)).strftime(loc.day)


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

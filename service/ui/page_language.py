"""The language of the page being answered, and its words in that language.

UiRoute notes what the person asked for (``?lang=``, the cookie, ``Accept-Language``) once per
page request (``asked_for``); whatever formats or translates on the way reads it from a context
variable, so the choice needs no threading through each call. The templates, the ledger's
reasons and the charts all build on this module, which builds on none of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime

from babel.dates import format_date, format_datetime
from babel.support import NullTranslations
from fastapi import Request

from service import i18n
from service.domain.errors import Text, filled

#: What the person asked for on this request, None when nothing we have.
_preference: ContextVar[str | None] = ContextVar("csperf_ui_preference", default=None)


def preferred(request: Request) -> str | None:
    """Return the language the person asked for: ``?lang=``, else the cookie, else the browser."""
    return (i18n.language_of(request.query_params.get("lang"))
            or i18n.language_of(request.cookies.get(i18n.COOKIE))
            or i18n.accepted(request.headers.get("accept-language")))


@contextmanager
def asked_for(lang: str | None) -> Iterator[None]:
    """Answer in ``lang`` (None: the team's language) inside the block."""
    token = _preference.set(lang)
    try:
        yield
    finally:
        _preference.reset(token)


def language(team_locale: str | None = None) -> str:
    """Return the language of the page being answered: the person's choice, else the team's."""
    return _preference.get() or i18n.choose(team_locale)


def translated(catalogue: NullTranslations, message: str) -> str:
    """Return a message from a catalogue; an empty one stays empty (gettext answers "" with
    the catalogue's header: its project, dates and plural rule would show on the page)."""
    return catalogue.gettext(message) if message else message


def gettext(message: str) -> str:
    """Translate a message into the language of the page being answered."""
    return translated(i18n.translations(language(), "ui"), message)


def ngettext(one: str, many: str, count: int) -> str:
    """Translate a message with a count into the language of the page being answered."""
    return i18n.translations(language(), "ui").ngettext(one, many, count)


#: A value that is a day or an instant in ISO 8601 (how refusals carry them, as the API says
#: them); a month ("2026-11") or any other text is left as it is.
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?")


def _time_said(value: str) -> str:
    """Return a day or an instant as the page's language writes it (Babel); an instant in UTC
    with the zone named, as the API gives it (a refusal does not know the reader's team)."""
    loc = i18n.babel_locale(language())
    try:
        if len(value) == 10:
            return format_date(date.fromisoformat(value), "medium", locale=loc)
        at = datetime.fromisoformat(value)
    except ValueError:
        return value
    at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    return format_datetime(at, "medium", tzinfo=UTC, locale=loc) + " UTC"


def said(message: str, values: Mapping[str, object] | None = None) -> str:
    """Return a refusal (a ``DomainError``'s or ``Problem``'s message and values) in the page's
    language: the message from the catalogue, its values filled in, those that are words
    themselves (``Text``: a status, an act, a clause) said in the page's language too, and
    days and instants written as the page's language writes them."""
    shown = {name: said(value.message, value.values) if isinstance(value, Text)
             else _time_said(value) if isinstance(value, str) and _ISO_TIME.fullmatch(value)
             else value
             for name, value in (values or {}).items()}
    return filled(gettext(message), shown)

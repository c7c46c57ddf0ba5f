"""The one catalogue mechanism of the pages and the emails: gettext ``.po`` files read by Babel.

The catalogues live in the package, ``service/locale/<language>/LC_MESSAGES/<domain>.po``, one
domain for the pages (``ui``) and one for the emails (``mail``). Each is read as it is the first
time a process needs it and compiled in memory (Babel's ``read_po`` then ``write_mo`` into a
buffer): a fresh checkout or ``make run`` needs no compile step, and no ``.mo`` file can go stale
beside its ``.po``. A catalogue is a few hundred messages, read in milliseconds, once.
``make messages`` extracts the strings of the templates and the code and updates the catalogues.

Which language a person reads is chosen here too (``choose``): the page's ``?lang=``, then the
``csperf_lang`` cookie it leaves, then ``Accept-Language``, then the team's ``locale``, then
English. Numbers, money and dates are written by Babel (CLDR) in a *formatting locale* that
joins the reader's language with the team's own locale or its time zone's country
(``formatting_locale``): an English reader of a Berlin team sees ``1.234,50 €``, a Chinese
reader of a Shanghai team ``¥1,234.50``.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.core import UnknownLocaleError, get_global
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from service.domain.directory import DEFAULT_LOCALE, LOCALES

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: The languages a person can read the pages and emails in (each has a catalogue but English,
#: the language the strings are written in).
LANGUAGES: tuple[str, ...] = LOCALES
DEFAULT_LANGUAGE = DEFAULT_LOCALE
DOMAINS = ("ui", "mail")
COOKIE = "csperf_lang"
#: How long the choice made on a page is remembered (a year: it is a preference, not a secret).
COOKIE_MAX_AGE = 365 * 24 * 3600
#: Longest Accept-Language header read; anything past it is ignored rather than parsed.
MAX_ACCEPT_LANGUAGE = 1024


#: The calls whose (first, or numbered) argument ``make messages`` extracts besides gettext's:
#: ``N_`` and ``Np_`` (a singular and its plural), ``said`` (service.ui.render), and the
#: refusals a page shows (service.domain.errors; the API's ``Problem`` and a field's
#: ``FieldError`` carry theirs second).
EXTRACT_KEYWORDS = ("N_", "Np_:1,2", "said", "Text", "DomainError", "NotFound", "Conflict",
                    "Forbidden", "IdTaken", "ConflictOfInterest", "Problem:2", "FieldError:2",
                    "problem:2")


def N_(message: str) -> str:
    """Mark a string for the catalogues where it is defined; the page translates it when shown.

    Labels and messages chosen by key (``DONE["closed"]``) are defined once, at import, before
    any request has a language: ``make messages`` finds them by this mark, and the templates
    translate the value they are given (the ``t`` filter).
    """
    return message


def Np_(one: str, many: str) -> tuple[str, str]:
    """Mark a message's singular and plural for the catalogues, as ``N_`` marks one string
    (the page says them with ``ngettext`` and the count)."""
    return one, many


def catalogue_path(language: str, domain: str) -> Path:
    """Return where the catalogue of a language and domain lives."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"


@lru_cache(maxsize=len(LANGUAGES) * len(DOMAINS))
def translations(language: str, domain: str) -> NullTranslations:
    """Return the gettext translations of a language (English and unknown: the strings as they are).

    Fuzzy entries are left out (``write_mo`` skips them), so a string whose translation was
    never checked after its English changed shows in English rather than wrongly.
    """
    path = catalogue_path(language, domain)
    if language == DEFAULT_LANGUAGE or language not in LANGUAGES or not path.is_file():
        return NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=babel_locale(language), domain=domain)
    catalog.fuzzy = False  # the header (its plural forms) counts even where a tool marked it
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=domain)


def messages(language: str, domain: str) -> dict[str, str]:
    """Return a catalogue's translated strings by message id (for checks of the catalogues).

    A plural's English forms each map to a translated form (Korean and Chinese have one).
    """
    path = catalogue_path(language, domain)
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=babel_locale(language), domain=domain)
    found: dict[str, str] = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
        forms = message.string if isinstance(message.string, tuple | list) else (message.string,)
        for index, one in enumerate(ids):
            text = forms[min(index, len(forms) - 1)] if forms else ""
            if text:
                found[str(one)] = str(text)
    return found


def babel_locale(language: str) -> Locale:
    """Return the Babel locale of one of our languages (``zh_Hans`` as Simplified Chinese)."""
    return Locale.parse(language)


def language_of(tag: str | None) -> str | None:
    """Return which of our languages a BCP 47 or POSIX tag asks for, or None.

    ``zh``, ``zh-CN``, ``zh-Hans`` and ``zh-SG`` are Simplified Chinese; ``zh-TW`` and
    ``zh-Hant`` are Traditional, which we do not have, so they give None and the next choice
    applies. A tag Babel cannot read gives None too, never an error.
    """
    if not tag or len(tag) > 35:
        return None
    try:
        locale = Locale.parse(tag.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    if locale.language == "zh":
        return "zh_Hans" if (locale.script or "Hans") == "Hans" else None
    return locale.language if locale.language in LANGUAGES else None


def accepted(header: str | None) -> str | None:
    """Return the best of our languages an ``Accept-Language`` header asks for, or None."""
    if not header:
        return None
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(header[:MAX_ACCEPT_LANGUAGE].split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip() and tag.strip() != "*" and 0 < quality <= 1:
            choices.append((-quality, index, tag.strip()))
    for _, _, tag in sorted(choices):
        found = language_of(tag)
        if found:
            return found
    return None


def choose(*preferences: str | None) -> str:
    """Return the first preference that is one of our languages (the order is the caller's)."""
    for preference in preferences:
        found = language_of(preference)
        if found:
            return found
    return DEFAULT_LANGUAGE


def normal_locale(tag: str) -> str | None:
    """Return a locale tag as Babel names it (``de-de`` -> ``de_DE``), or None if unknown."""
    try:
        return str(Locale.parse(tag.strip().replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def _exists(name: str) -> Locale | None:
    try:
        return Locale.parse(name)
    except (UnknownLocaleError, ValueError):
        return None


@lru_cache(maxsize=256)
def formatting_locale(language: str, team_locale: str | None, timezone: str) -> Locale:
    """Return the locale numbers and dates are written in for a reader of a team.

    The team's own locale when the reader reads its language; else the reader's language in
    the team's country (the team locale's, or its time zone's: ``en_DE`` writes ``1.234,50 €``)
    where CLDR knows that pairing; else the reader's language alone.
    """
    reader = babel_locale(language)
    team = _exists(team_locale) if team_locale else None
    if team is not None and team.language == reader.language:
        return team
    territory = (team.territory if team is not None else None) or \
        get_global("zone_territories").get(timezone)
    if territory:
        script = f"_{reader.script}" if reader.script else ""
        joined = _exists(f"{reader.language}{script}_{territory}")
        if joined is not None:
            return joined
    return reader


def language_name(language: str) -> str:
    """Return a language's name in itself (``한국어``, ``中文 (简体)``), as a switcher shows it."""
    locale = babel_locale(language)
    return locale.get_display_name(locale) or language

"""The email catalogues: service/locale/<lang>/LC_MESSAGES/mail.po, read with Babel.

The ``.po`` files are read as they are when first needed (and kept for the process), so a fresh
checkout or ``make run`` needs no compile step and no ``.mo`` files to go stale; a catalogue
is a few dozen messages, read in milliseconds.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

from service.domain.directory import DEFAULT_LOCALE, LOCALES
from service.domain.reminders import Translate

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "mail"


def catalogue_path(locale: str) -> Path:
    """Return where the catalogue of a language lives."""
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> dict[str, str]:
    """Return a language's translations by message id (empty for English, the source)."""
    if locale == DEFAULT_LOCALE:
        return {}
    with catalogue_path(locale).open("rb") as handle:
        catalog = read_po(handle, locale=locale.replace("_Hans", ""))
    return {str(m.id): str(m.string) for m in catalog
            if m.id and isinstance(m.string, str) and m.string and not m.fuzzy}


def translator(locale: str) -> Translate:
    """Return the function that translates a message id into a language (or leaves it)."""
    found = translations(locale if locale in LOCALES else DEFAULT_LOCALE)
    return lambda message: found.get(message, message)

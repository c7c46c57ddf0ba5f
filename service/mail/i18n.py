"""The email catalogues: the ``mail`` domain of the one catalogue mechanism (service/i18n.py)."""

from __future__ import annotations

from service import i18n
from service.domain.directory import DEFAULT_LOCALE, LOCALES
from service.domain.reminders import Translate

DOMAIN = "mail"


def translations(locale: str) -> dict[str, str]:
    """Return a language's email translations by message id (empty for English, the source)."""
    return {} if locale == DEFAULT_LOCALE else i18n.messages(locale, DOMAIN)


def translator(locale: str) -> Translate:
    """Return the function that translates a message id into a language (or leaves it)."""
    return i18n.translations(locale if locale in LOCALES else DEFAULT_LOCALE, DOMAIN).gettext

"""Errors a domain decision raises; the API maps them to problem+json, the pages to a page.

A refusal's message is written once, in English, with ``%(name)s`` placeholders for what it
names (an agent, a month, a date), and its ``values`` apart: the API answers the message filled
in (``str(error)``), and a page looks the same message up in its reader's catalogue and fills
that in (``service.ui.render.said``). So the message is the catalogue's id and there is no
second copy of it. ``make messages`` finds the messages by the error classes' names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.domain.problems import Problem

#: One problem with one field; the scheme validator's Problem is the same thing.
FieldError = Problem


@dataclass(frozen=True, slots=True)
class Text:
    """A value of a message that is itself words the pages translate (a status, an act, a
    clause with values of its own); it reads as its English wherever it is filled in."""

    message: str
    values: Mapping[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        return filled(self.message, self.values)


def filled(message: str, values: Mapping[str, object]) -> str:
    """Return a message with its values in (a message without values is taken as written)."""
    return message % values if values else message


class DomainError(Exception):
    """A command that the rules refuse; ``kind`` names the refusal (the API maps it to a status)."""

    kind = "rule-violation"

    def __init__(
        self, message: str, errors: Sequence[FieldError] = (), *,
        values: Mapping[str, object] | None = None, **extra: Any,
    ) -> None:
        self.message = message
        self.values: dict[str, object] = dict(values or {})
        super().__init__(filled(message, self.values))
        self.errors = list(errors)
        self.extra = extra


class NotFound(DomainError):
    """The addressed thing does not exist."""

    kind = "not-found"


class Conflict(DomainError):
    """The command does not fit the current state (opened twice, already closed...)."""

    kind = "state-conflict"


class IdTaken(Conflict):
    """A freshly drawn random id is taken already: draw another."""


class Forbidden(DomainError):
    """The caller may use the route, but not on this data (an uninvited rater, a non-approver)."""

    kind = "out-of-scope"

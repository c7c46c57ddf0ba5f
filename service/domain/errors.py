"""Errors a domain decision raises; the API maps them to problem+json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.domain.problems import Problem

#: One problem with one field; the scheme validator's Problem is the same thing.
FieldError = Problem


class DomainError(Exception):
    """A command that the rules refuse; ``kind`` names the refusal (the API maps it to a status)."""

    kind = "rule-violation"

    def __init__(
        self, message: str, errors: Sequence[FieldError] = (), **extra: Any
    ) -> None:
        super().__init__(message)
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

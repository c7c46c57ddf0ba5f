"""A validation problem: which field is wrong and why, so every problem can be reported at once."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, named by its field path (``roles[1].weight``).

    ``reason`` is what the API says. A reason that names values (a bound, a role) keeps its
    ``message`` (``%(name)s`` placeholders) and ``values`` too, as a refusal does
    (``service.domain.errors``), so a page can say it in its reader's language.
    """

    field: str
    reason: str
    message: str = dataclasses.field(default="", compare=False)
    values: Mapping[str, object] = dataclasses.field(default_factory=dict, compare=False)


def problem(field: str, message: str, **values: object) -> Problem:
    """Return a problem whose reason names values, kept apart from its message."""
    return Problem(field, message % values, message, values)

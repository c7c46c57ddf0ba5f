"""A validation problem: which field is wrong and why, so every problem can be reported at once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, named by its field path (``roles[1].weight``)."""

    field: str
    reason: str

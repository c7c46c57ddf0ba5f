"""Which raw metrics a team's samples may carry: those its scheme declares.

A sample is accepted when a scheme version in force for its team declares its metric. "In
force" is decided here, once: the latest version of the team's scheme, or the version the
team's cycle of the sample's month is pinned to. So a metric renamed in a new version is still
taken for a month already open on the old version (that cycle keeps its version), and a metric
only a later version declares is quarantined until that version is published, then replayed.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.domain.scheme import Scheme

#: The ``period`` of the declarations that hold for every month: the latest version's.
ANY_MONTH = ""


@dataclass(frozen=True, slots=True)
class Declared:
    """A metric as a scheme declares it: its unit and how its samples combine."""

    unit: str
    aggregation: str


def declared(scheme: Scheme) -> dict[str, Declared]:
    """Return the metrics a scheme version declares, by name."""
    return {m.name: Declared(m.unit, m.aggregation) for m in scheme.metrics}


def in_force(latest: dict[str, Declared], month: dict[str, Declared] | None
             ) -> dict[str, Declared]:
    """Return what a team accepts for a month: its cycle's version's metrics (when the month
    has a cycle) over the latest version's."""
    return latest if month is None else {**latest, **month}

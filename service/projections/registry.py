"""Every projection the service runs."""

from __future__ import annotations

from service.projections.base import Projection
from service.projections.cycle_process import CycleProcess
from service.projections.cycle_results import CycleResults
from service.projections.directory import Directory
from service.projections.releases import Releases
from service.projections.sanctions import Sanctions
from service.projections.stream_index import StreamIndex
from service.projections.team_metrics import TeamMetrics


def all_projections() -> list[Projection]:
    """Return a fresh instance of each projection."""
    return [StreamIndex(), Directory(), CycleResults(), Sanctions(),
            CycleProcess(), Releases(), TeamMetrics()]


def by_name(name: str) -> Projection:
    """Return the projection called name; raise KeyError when there is none."""
    for projection in all_projections():
        if projection.name == name:
            return projection
    raise KeyError(name)

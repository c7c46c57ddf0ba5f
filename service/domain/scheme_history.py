"""Scheme versions as a stream: publishing a new version never changes an old one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from service.domain.errors import DomainError
from service.domain.events import DomainEvent, event
from service.domain.scheme import Scheme, validate_scheme


def scheme_stream(scheme_id: str) -> str:
    """Return the stream id of a scheme."""
    return f"scheme:{scheme_id}"


@event
class SchemePublished(DomainEvent):
    """A scheme version was published; cycles opened from now on use it."""

    type: Literal["SchemePublished"] = "SchemePublished"
    scheme_id: str
    version: int
    scheme: dict[str, Any]


@dataclass(frozen=True)
class SchemeVersions:
    """Every published version of one scheme."""

    versions: dict[int, Scheme] = field(default_factory=dict)

    @property
    def latest(self) -> Scheme | None:
        """Return the newest version, if any."""
        return self.versions[max(self.versions)] if self.versions else None


def evolve(state: SchemeVersions | None, e: DomainEvent) -> SchemeVersions | None:
    """Apply one scheme event."""
    if isinstance(e, SchemePublished):
        versions = dict(state.versions) if state else {}
        versions[e.version] = Scheme.model_validate(e.scheme)
        return SchemeVersions(versions)
    return state


def decide_publish(state: SchemeVersions | None, proposed: Scheme) -> list[DomainEvent]:
    """Publish proposed as the next version, after checking everything about it."""
    latest = state.latest if state else None
    version = latest.version + 1 if latest else 1
    scheme = proposed.model_copy(update={"version": version})
    problems = validate_scheme(scheme)
    if problems:
        raise DomainError(f"invalid scheme: {len(problems)} problem(s)", problems)
    return [SchemePublished(scheme_id=scheme.scheme_id, version=version,
                            scheme=scheme.model_dump(mode="json"))]

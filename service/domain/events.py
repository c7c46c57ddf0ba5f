"""Domain events: frozen models named in the past tense, a registry, and upcasters.

Events carry a schema version. When an event's shape changes, the class's ``schema_version``
goes up and an upcaster registered for the old version turns stored data into the new shape
on read, so old streams stay readable without rewriting history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from service.domain.frozen import Frozen


class DomainEvent(Frozen):
    """Base of every event; ``type`` is a Literal on each subclass."""

    schema_version: ClassVar[int] = 1
    type: str

    def data(self) -> dict[str, Any]:
        """Return the JSON payload stored with the event (its type lives in its own column)."""
        return self.model_dump(mode="json", exclude={"type"})


E = TypeVar("E", bound=DomainEvent)
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

EVENT_TYPES: dict[str, type[DomainEvent]] = {}
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def event(cls: type[E]) -> type[E]:
    """Register an event class under its type name."""
    name = cls.model_fields["type"].default
    if not isinstance(name, str) or name in EVENT_TYPES:
        raise ValueError(f"event type {name!r} missing or registered twice")
    EVENT_TYPES[name] = cls
    return cls


def upcaster(type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function that turns version from_version of an event into from_version+1."""

    def register(fn: Upcaster) -> Upcaster:
        UPCASTERS[(type_name, from_version)] = fn
        return fn

    return register


def upcast(type_name: str, schema_version: int, data: Mapping[str, Any]) -> dict[str, Any]:
    """Bring stored data up to the current schema version of its event type."""
    current = EVENT_TYPES[type_name].schema_version if type_name in EVENT_TYPES else 1
    payload = dict(data)
    for version in range(schema_version, current):
        step = UPCASTERS.get((type_name, version))
        if step is None:
            raise ValueError(f"no upcaster for {type_name} v{version}")
        payload = step(payload)
    return payload


def decode(type_name: str, schema_version: int, data: Mapping[str, Any]) -> DomainEvent:
    """Rebuild the event model from stored data, upcasting old versions."""
    cls = EVENT_TYPES[type_name]
    return cls.model_validate({**upcast(type_name, schema_version, data), "type": type_name})

"""Scheme commands: publish a version; make sure the built-in default exists."""

from __future__ import annotations

from service.commands.base import Caller, execute, load
from service.context import ServiceContext
from service.domain.errors import NotFound
from service.domain.scheme import DEFAULT_SCHEME, Scheme
from service.domain.scheme_history import (
    SchemeVersions,
    decide_publish,
    evolve,
    scheme_stream,
)
from service.store.errors import ConcurrencyError

SYSTEM = Caller(metadata={"actor": {"subject": "system", "role": "admin", "key_id": None}})


async def versions(ctx: ServiceContext, scheme_id: str) -> SchemeVersions:
    """Return every version of a scheme; 404 when there is none."""
    async with ctx.db.connection() as conn:
        state, _ = await load(conn, scheme_stream(scheme_id), evolve)
    if state is None or state.latest is None:
        raise NotFound(f"no scheme {scheme_id}")
    return state


async def get_scheme(ctx: ServiceContext, scheme_id: str, version: int | None = None) -> Scheme:
    """Return a scheme version (the latest when version is None)."""
    state = await versions(ctx, scheme_id)
    if version is None:
        assert state.latest is not None
        return state.latest
    if version not in state.versions:
        raise NotFound(f"scheme {scheme_id} has no version {version}")
    return state.versions[version]


async def publish(ctx: ServiceContext, caller: Caller, proposed: Scheme) -> Scheme:
    """Publish a new version of a scheme (version = latest + 1)."""
    state, _ = await execute(
        ctx, caller, scheme_stream(proposed.scheme_id), evolve,
        lambda current: decide_publish(current, proposed),
    )
    assert state is not None and state.latest is not None
    return state.latest


async def ensure_default(ctx: ServiceContext) -> None:
    """Publish the built-in online-shop-cs version 1 on first start (idempotent, race-safe)."""
    try:
        await execute(
            ctx, SYSTEM, scheme_stream(DEFAULT_SCHEME.scheme_id), evolve,
            lambda current: [] if current is not None else decide_publish(None, DEFAULT_SCHEME),
        )
    except ConcurrencyError:
        pass  # another replica published it first

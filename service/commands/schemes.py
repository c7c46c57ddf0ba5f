"""Scheme commands: publish or propose a version, approve a proposal; the built-in default."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.commands.base import Caller, execute, read_state
from service.context import ServiceContext
from service.domain.errors import Conflict, NotFound
from service.domain.scheme import DEFAULT_SCHEME, Scheme
from service.domain.scheme_history import (
    SchemeVersions,
    decide_approve,
    decide_builtin,
    decide_propose,
    decide_publish,
    evolve,
    scheme_stream,
    version_history,
)
from service.store.errors import ConcurrencyError

SYSTEM = Caller(metadata={"actor": {"subject": "system", "role": "admin", "key_id": None}})


async def history(ctx: ServiceContext, scheme_id: str) -> SchemeVersions:
    """Return every version of a scheme, in force or proposed; 404 when there is none."""
    state = await read_state(ctx, scheme_stream(scheme_id), evolve)
    if state is None or not (state.versions or state.proposals):
        raise NotFound(f"no scheme {scheme_id}")
    return state


async def versions(ctx: ServiceContext, scheme_id: str) -> SchemeVersions:
    """Return the versions of a scheme; 409 while none is in force yet."""
    state = await history(ctx, scheme_id)
    if state.latest is None:
        waiting = sorted(state.proposals)
        raise Conflict(f"scheme {scheme_id} has no version in force yet: version(s)"
                       f" {', '.join(map(str, waiting))} await approval")
    return state


async def get_scheme(ctx: ServiceContext, scheme_id: str, version: int | None = None) -> Scheme:
    """Return a scheme version in force (the latest when version is None)."""
    state = await versions(ctx, scheme_id)
    if version is None:
        assert state.latest is not None
        return state.latest
    if version not in state.versions:
        if version in state.proposals:
            raise NotFound(f"version {version} of scheme {scheme_id} is"
                           f" {state.status(version)}, not in force")
        raise NotFound(f"scheme {scheme_id} has no version {version}")
    return state.versions[version]


def version_document(state: SchemeVersions, version: int) -> dict[str, Any]:
    """Return one version as the history shows it: its scheme and how it was adopted."""
    return next(v for v in version_history(state) if v["version"] == version)


async def publish(ctx: ServiceContext, caller: Caller, proposed: Scheme) -> dict[str, Any]:
    """Publish a new version of a scheme, in force at once (version = newest + 1)."""
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, scheme_stream(proposed.scheme_id), evolve,
        lambda current: decide_publish(current, proposed, now),
    )
    assert state is not None and state.latest is not None
    return version_document(state, state.latest.version)


async def propose(
    ctx: ServiceContext, caller: Caller, proposed: Scheme, *, approvers: Sequence[str],
    quorum: int | None, proposed_by: str,
) -> dict[str, Any]:
    """Propose a new version that comes into force once enough named approvers agree."""
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, scheme_stream(proposed.scheme_id), evolve,
        lambda current: decide_propose(current, proposed, approvers=approvers, quorum=quorum,
                                       proposed_by=proposed_by, now=now),
    )
    assert state is not None
    return version_document(state, max(state.proposals))


async def approve(
    ctx: ServiceContext, caller: Caller, scheme_id: str, version: int, *, approver_id: str,
    comment: str | None,
) -> dict[str, Any]:
    """Approve a proposed version as a named approver; return the version's history entry."""
    await history(ctx, scheme_id)
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, scheme_stream(scheme_id), evolve,
        lambda current: decide_approve(current, scheme_id, version, approver_id=approver_id,
                                       comment=comment, now=now),
    )
    assert state is not None
    return version_document(state, version)


async def ensure_default(ctx: ServiceContext) -> None:
    """Put the built-in online-shop-cs in force: version 1 on first start, then its
    fair-months version once on new and upgraded installations (idempotent, race-safe)."""
    try:
        await execute(
            ctx, SYSTEM, scheme_stream(DEFAULT_SCHEME.scheme_id), evolve,
            lambda current: decide_builtin(current, ctx.clock()),
        )
    except ConcurrencyError:
        pass  # another replica published it first

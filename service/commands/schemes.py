"""Scheme commands: publish or propose a version, approve a proposal; the built-in default."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.commands.base import Caller, execute
from service.context import ServiceContext
from service.domain.scheme import DEFAULT_SCHEME, Scheme
from service.domain.scheme_history import (
    decide_approve,
    decide_builtin,
    decide_propose,
    decide_publish,
    evolve,
    scheme_stream,
)
from service.queries.schemes import history, version_document
from service.store.errors import ConcurrencyError

SYSTEM = Caller(metadata={"actor": {"subject": "system", "role": "admin", "key_id": None}})


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

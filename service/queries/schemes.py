"""Read a scheme's versions, in force or proposed."""

from __future__ import annotations

from typing import Any

from service.context import ServiceContext
from service.domain.errors import Conflict, NotFound, Text
from service.domain.scheme import Scheme
from service.domain.scheme_history import (
    SchemeVersions,
    evolve,
    scheme_stream,
    version_history,
)
from service.queries.streams import held, read_state


async def history(ctx: ServiceContext, scheme_id: str) -> SchemeVersions:
    """Return every version of a scheme, in force or proposed; 404 when there is none."""
    state = await read_state(ctx, scheme_stream(scheme_id), evolve)
    if state is None or not (state.versions or state.proposals):
        raise NotFound("no scheme %(scheme)s", values={"scheme": scheme_id})
    return state


async def versions(ctx: ServiceContext, scheme_id: str) -> SchemeVersions:
    """Return the versions of a scheme; 409 while none is in force yet."""
    state = await history(ctx, scheme_id)
    if state.latest is None:
        waiting = sorted(state.proposals)
        raise Conflict("scheme %(scheme)s has no version in force yet: version(s)"
                       " %(versions)s await approval",
                       values={"scheme": scheme_id, "versions": ", ".join(map(str, waiting))})
    return state


async def get_scheme(ctx: ServiceContext, scheme_id: str, version: int | None = None) -> Scheme:
    """Return a scheme version in force (the latest when version is None)."""
    if version is not None:
        # A version in force never changes: when this process holds it, it is the one.
        known = held(ctx, scheme_stream(scheme_id), evolve)
        if known is not None and version in known.versions:
            return known.versions[version]
    state = await versions(ctx, scheme_id)
    if version is None:
        assert state.latest is not None
        return state.latest
    if version not in state.versions:
        if version in state.proposals:
            raise NotFound("version %(version)s of scheme %(scheme)s is %(status)s, not in"
                           " force", values={"version": version, "scheme": scheme_id,
                                             "status": Text(state.status(version))})
        raise NotFound("scheme %(scheme)s has no version %(version)s",
                       values={"scheme": scheme_id, "version": version})
    return state.versions[version]


def version_document(state: SchemeVersions, version: int) -> dict[str, Any]:
    """Return one version as the history shows it: its scheme and how it was adopted."""
    return next(v for v in version_history(state) if v["version"] == version)

"""Scoring schemes: versioned data, adopted by agreement.

A PUT that names ``approvers`` proposes the version: it comes into force once ``quorum`` of
them approve. A PUT without approvers (an admin's own decision, as for the built-in default)
is in force at once, as before: both paths exist so that a company can choose how much
agreement it wants, and existing clients keep working.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request

from service.api.auth import allow
from service.api.deps import caller, service_context
from service.api.params import IdPath
from service.api.problems import Problem
from service.api.routing import Router
from service.api.schemas import ApproveIn, SchemeIn, SchemeVersionList, SchemeVersionOut
from service.commands import schemes as commands
from service.domain.directory import check_id
from service.domain.principal import Principal
from service.domain.scheme import Scheme
from service.domain.scheme_history import version_history
from service.queries import schemes as reads

router = Router(prefix="/v1", tags=["schemes"])


@router.get("/schemes/{scheme_id}", response_model=Scheme,
            responses={409: {"description": "no version of the scheme is in force yet"}})
async def get_scheme(
    scheme_id: IdPath,
    request: Request, principal: Annotated[Principal, allow("manager", "agent", "rater")],
    version: int | None = None,
) -> Scheme:
    """Return the version of a scheme in force (or ?version=N); 409 while none is."""
    ctx = service_context(request)
    return await reads.get_scheme(ctx, scheme_id, version)


@router.put("/schemes/{scheme_id}", response_model=SchemeVersionOut)
async def put_scheme(
    scheme_id: IdPath, body: SchemeIn, request: Request, principal: Annotated[Principal, allow()],
) -> dict[str, Any]:
    """Publish a new version (admin), or propose it when approvers are named; invalid is 422."""
    ctx = service_context(request)
    check_id(scheme_id, "scheme_id")
    if body.scheme_id not in (None, scheme_id):
        raise Problem(422, "scheme_id in the body differs from the path",
                      errors=[{"field": "scheme_id", "reason": "must equal the path's id"}])
    proposed = Scheme.model_validate(
        {**body.model_dump(exclude={"scheme_id", "version", "approvers", "quorum"}),
         "scheme_id": scheme_id}
    )
    if body.approvers is None:
        if body.quorum is not None:
            raise Problem(422, "a quorum needs approvers",
                          errors=[{"field": "quorum", "reason": "name the approvers too"}])
        return await commands.publish(ctx, caller(principal, request), proposed)
    return await commands.propose(ctx, caller(principal, request), proposed,
                                  approvers=body.approvers, quorum=body.quorum,
                                  proposed_by=principal.subject)


@router.get("/schemes/{scheme_id}/versions", response_model=SchemeVersionList)
async def list_versions(
    scheme_id: IdPath, request: Request,
    principal: Annotated[Principal, allow("manager", "agent", "rater")],
) -> dict[str, Any]:
    """Return every version, newest first: status, approvers, quorum and who approved when."""
    ctx = service_context(request)
    state = await reads.history(ctx, scheme_id)
    return {"scheme_id": scheme_id,
            "in_force": state.latest.version if state.latest else None,
            "items": version_history(state)}


@router.post("/schemes/{scheme_id}/versions/{version}/approve", response_model=SchemeVersionOut)
async def approve_version(
    scheme_id: IdPath, version: int, request: Request,
    principal: Annotated[Principal, allow("manager", "agent", "rater")],
    body: ApproveIn | None = None,
) -> dict[str, Any]:
    """Approve a proposed version as one of the people it names; the quorum puts it in force."""
    ctx = service_context(request)
    return await commands.approve(ctx, caller(principal, request), scheme_id, version,
                                  approver_id=principal.subject,
                                  comment=body.comment if body else None)

"""Scoring schemes: versioned data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from service.api.auth import allow
from service.api.deps import caller, context
from service.api.problems import Problem
from service.api.schemas import SchemeIn
from service.commands import schemes as commands
from service.context import ServiceContext
from service.domain.directory import check_id
from service.domain.principal import Principal
from service.domain.scheme import Scheme

router = APIRouter(prefix="/v1", tags=["schemes"])
Ctx = Annotated[ServiceContext, Depends(context)]


@router.get("/schemes/{scheme_id}", response_model=Scheme)
async def get_scheme(
    scheme_id: str, ctx: Ctx, principal: Annotated[Principal, allow("manager", "agent", "rater")],
    version: int | None = None,
) -> Scheme:
    """Return the latest version of a scheme (or ?version=N)."""
    return await commands.get_scheme(ctx, scheme_id, version)


@router.put("/schemes/{scheme_id}", response_model=Scheme)
async def put_scheme(
    scheme_id: str, body: SchemeIn, request: Request, ctx: Ctx,
    principal: Annotated[Principal, allow()],
) -> Scheme:
    """Publish a new version of a scheme (admin); invalid weights and bounds are 422."""
    check_id(scheme_id, "scheme_id")
    if body.scheme_id not in (None, scheme_id):
        raise Problem(422, "scheme_id in the body differs from the path",
                      errors=[{"field": "scheme_id", "reason": "must equal the path's id"}])
    proposed = Scheme.model_validate(
        {**body.model_dump(exclude={"scheme_id", "version"}), "scheme_id": scheme_id}
    )
    return await commands.publish(ctx, caller(principal, request), proposed)

"""API keys over HTTP (admin only), and the start-up registration of the bootstrap admin key."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, Field

from service.api.auth import allow
from service.api.deps import actor_metadata, service_context
from service.api.pagination import Paging, link, matches, paginate, paging
from service.api.params import IdPath, IdQuery
from service.api.problems import Problem
from service.api.routing import Router
from service.api.schemas import Body
from service.commands import keys as commands
from service.commands.base import Caller
from service.context import ServiceContext
from service.domain.ids import ID_PATTERN
from service.domain.principal import BOOTSTRAP_PRINCIPAL, Principal, credential_problems
from service.domain.principal import event_metadata as make_metadata
from service.store import keys

log = logging.getLogger("csperf.auth")

router = Router(prefix="/v1/keys", tags=["keys"])

Role = Literal["admin", "manager", "agent", "rater", "ingest", "reader"]


class KeyCreate(Body):
    """What a new key is for."""

    role: Role
    subject: str | None = Field(
        default=None, pattern=ID_PATTERN,
        description="The agent, manager or rater the key stands for (required for those roles).",
    )
    source: str | None = Field(
        default=None, pattern=ID_PATTERN, description="The metric source of an ingest key."
    )
    name: str | None = Field(default=None, max_length=200, description="A label for people.")


class KeyView(BaseModel):
    """A key as listings show it: never its secret or hash."""

    key_id: str
    prefix: str
    role: str
    subject: str | None
    source: str | None
    name: str | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None

    @classmethod
    def of(cls, record: keys.ApiKey) -> KeyView:
        """Return the view of a stored key."""
        return cls(
            key_id=record.key_id, prefix=record.prefix, role=record.role,
            subject=record.subject, source=record.source, name=record.name,
            created_at=record.created_at, created_by=record.created_by,
            revoked_at=record.revoked_at, revoked_by=record.revoked_by,
        )


class IssuedKeyView(KeyView):
    """A key just issued, with the secret: shown this once, stored only as a hash."""

    key: str = Field(description="The credential for `Authorization: Bearer`; shown only once.")


class KeyList(BaseModel):
    """A page of keys, oldest first unless sorted otherwise."""

    items: list[KeyView]
    next: str | None = Field(default=None, description="pass as `after` for the next page")


Admin = Annotated[Principal, allow()]


@router.post("", status_code=201, response_model=IssuedKeyView)
async def create_key(
    body: KeyCreate, principal: Admin, request: Request, response: Response
) -> IssuedKeyView:
    """Issue a key; its secret is in this answer and nowhere else."""
    ctx = service_context(request)
    problems = credential_problems(body.role, body.subject, body.source)
    if problems:
        raise Problem(
            422, "invalid request: " + ", ".join(field for field, _ in problems),
            kind="validation-error",
            errors=[{"field": f, "reason": r, "location": "body"} for f, r in problems],
        )
    issued = await commands.issue(
        ctx, Caller(actor_metadata(principal, request)), role=body.role, subject=body.subject,
        source=body.source, name=body.name, created_by=principal.subject,
    )
    response.headers["Cache-Control"] = "no-store"
    return IssuedKeyView(**KeyView.of(issued.record).model_dump(), key=issued.key)


_KEY_PAGING = paging(("created_at", "key_id", "role", "subject", "source", "revoked_at"),
                     "created_at", ("key_id",))


# Keys are administration, not business data: readers (BI tools) do not list them.
@router.get("", response_model=KeyList, dependencies=[allow(reads=False)])
async def list_keys(
    request: Request, response: Response,
    page: Annotated[Paging, Depends(_KEY_PAGING)],
    role: Role | None = None,
    subject: IdQuery = None,
    revoked: Annotated[bool | None, Query(description="true: only revoked keys; false: only"
                                                      " active ones")] = None,
) -> KeyList:
    """List keys, revoked ones included unless filtered, without secrets."""
    ctx = service_context(request)
    found = paginate(
        [k for k in await keys.list_keys(ctx.db)
         if matches(k.role, role) and matches(k.subject, subject)
         and matches(k.revoked_at is not None, revoked)],
        page, lambda k, f: getattr(k, f),
    )
    link(response, request, found.next)
    return KeyList(items=[KeyView.of(k) for k in found.items], next=found.next)


@router.post("/{key_id}/revoke", response_model=KeyView)
async def revoke_key(
    key_id: IdPath,
    principal: Admin,
    request: Request,
) -> KeyView:
    """Revoke a key: the next request that presents it is refused. Revoking twice is a no-op."""
    ctx = service_context(request)
    result = await commands.revoke(
        ctx, Caller(actor_metadata(principal, request)), key_id, revoked_by=principal.subject,
    )
    if result is None:
        raise Problem(404, f"no API key {key_id!r}", kind="not-found")
    return KeyView.of(result[0])


async def register_bootstrap_key(ctx: ServiceContext) -> None:
    """Register CSPERF_BOOTSTRAP_ADMIN_KEY as an admin key, once (a start-up hook)."""
    configured = ctx.settings.bootstrap_admin_key
    if configured is None:
        return
    record, created = await commands.ensure_bootstrap(
        ctx, Caller(make_metadata(BOOTSTRAP_PRINCIPAL, request_id=uuid.uuid4().hex)),
        configured.get_secret_value(),
    )
    if record.revoked_at is not None:
        log.warning(
            "CSPERF_BOOTSTRAP_ADMIN_KEY %s is revoked and stays revoked; configure another",
            record.key_id,
        )
    elif not created:
        log.info("bootstrap admin key %s already registered", record.key_id)

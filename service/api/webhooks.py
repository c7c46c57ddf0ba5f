"""Outgoing webhooks over HTTP (admin only): subscribe, list, delete, and see deliveries.

A subscription's URL may hold a token and its secret signs every delivery, so subscriptions are
administration, not business data: readers (BI tools) do not list them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from service.api.auth import allow
from service.api.deps import actor_metadata, service_context
from service.api.events import parse_cursor
from service.api.pagination import Paging, invalid, link, paginate, paging
from service.api.problems import Problem
from service.api.routing import Router
from service.api.schemas import Body
from service.commands import webhooks as commands
from service.commands.base import Caller
from service.context import ServiceContext
from service.domain import webhooks as w
from service.domain.principal import Principal
from service.store import webhooks as store

router = Router(prefix="/v1/webhooks", tags=["webhooks"])
Admin = Annotated[Principal, allow()]
SubscriptionId = Annotated[str, Path(pattern=r"^wh_[a-z0-9]{16}$",
                                     description="the id POST /v1/webhooks returned")]


class WebhookIn(Body):
    """POST /v1/webhooks: where to send which events."""

    url: str = Field(max_length=w.MAX_URL, examples=["https://bi.example.com/hooks/csperf"],
                     description="http or https; receives a POST per event")
    event_types: list[str] = Field(min_length=1, max_length=100,
                                   examples=[["CyclePublished", "PlanOverdue"]],
                                   description="event types to receive; `*` for every type")
    stream_types: list[str] | None = Field(
        default=None, max_length=50, examples=[["cycle", "plan"]],
        description="only events of these stream types (default: every stream)")
    description: str | None = Field(default=None, max_length=500)
    after: str | None = Field(
        default=None, max_length=200,
        description="a feed cursor: deliver the events after it too (default: only events"
                    " committed from now on)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        problem = w.url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("event_types", "stream_types")
    @classmethod
    def _types(cls, values: list[str] | None) -> list[str] | None:
        for value in values or ():
            problem = w.type_problem(value)
            if problem is not None:
                raise ValueError(f"{value[:100]!r}: {problem}")
        return sorted(set(values)) if values is not None else None


class WebhookOut(BaseModel):
    """A subscription, without its secret."""

    subscription_id: str
    url: str
    event_types: list[str]
    stream_types: list[str] | None
    description: str | None
    status: Literal["active", "deleted"]
    start_cursor: str = Field(description="events after this feed cursor are delivered")
    created_at: datetime
    created_by: str
    deleted_at: datetime | None
    deleted_by: str | None

    @classmethod
    def of(cls, s: store.Subscription) -> WebhookOut:
        """Render a stored subscription."""
        return cls(subscription_id=s.subscription_id, url=s.url, event_types=s.event_types,
                   stream_types=s.stream_types, description=s.description, status=s.status,
                   start_cursor=s.start.encode(), created_at=s.created_at,
                   created_by=s.created_by, deleted_at=s.deleted_at, deleted_by=s.deleted_by)


class CreatedWebhookOut(WebhookOut):
    """A subscription just made, with its signing secret: shown this once."""

    secret: str = Field(description=(
        "HMAC-SHA256 key: each delivery carries X-Csperf-Signature: t=<unix seconds>,v1=<hex"
        " of HMAC(secret, '<t>.' + body)>; shown only now"))


class WebhookList(BaseModel):
    """A page of subscriptions."""

    items: list[WebhookOut]
    next: str | None


class AttemptOut(BaseModel):
    """One POST of a delivery."""

    attempt: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None


class DeliveryOut(BaseModel):
    """One event for one subscription, and what became of it."""

    delivery_id: uuid.UUID = Field(description="X-Csperf-Delivery: the same on every attempt")
    event_id: uuid.UUID
    event_type: str
    stream_id: str
    position: int
    status: Literal["pending", "sending", "delivered", "failed", "cancelled"]
    attempts: int
    next_attempt_at: datetime | None = Field(description="when pending: the next attempt")
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptOut]


class DeliveryList(BaseModel):
    """A page of a subscription's deliveries."""

    subscription_id: str
    items: list[DeliveryOut]
    next: str | None


async def _get(ctx: ServiceContext, subscription_id: str) -> store.Subscription:
    found = await store.get(ctx.db, subscription_id)
    if found is None:
        raise Problem(404, f"no webhook subscription {subscription_id}", kind="not-found")
    return found


@router.post("", status_code=201, response_model=CreatedWebhookOut)
async def create_webhook(
    body: WebhookIn, principal: Admin, request: Request, response: Response,
) -> CreatedWebhookOut:
    """Subscribe a URL to event types; the signing secret is in this answer and nowhere else."""
    ctx = service_context(request)
    start = parse_cursor(body.after, "after", "body") if body.after is not None else None
    subscription, secret = await commands.create(
        ctx, Caller(actor_metadata(principal, request)), url=body.url,
        event_types=body.event_types, stream_types=body.stream_types,
        description=body.description, start=start, created_by=principal.subject,
    )
    response.headers["Cache-Control"] = "no-store"
    return CreatedWebhookOut(**WebhookOut.of(subscription).model_dump(), secret=secret)


@router.get("", response_model=WebhookList, dependencies=[allow(reads=False)])
async def list_webhooks(
    request: Request, response: Response,
    page: Annotated[Paging, Depends(paging(("created_at", "subscription_id", "url", "status"),
                                           "created_at", ("subscription_id",)))],
    status: Literal["active", "deleted"] | None = "active",
) -> WebhookList:
    """List subscriptions (active ones unless `status` says otherwise), without secrets."""
    ctx = service_context(request)
    found = paginate(await store.list_all(ctx.db, status=status), page,
                     lambda s, f: getattr(s, f))
    link(response, request, found.next)
    return WebhookList(items=[WebhookOut.of(s) for s in found.items], next=found.next)


@router.get("/{subscription_id}", response_model=WebhookOut, dependencies=[allow(reads=False)])
async def get_webhook(subscription_id: SubscriptionId, request: Request) -> WebhookOut:
    """Return a subscription, without its secret."""
    ctx = service_context(request)
    return WebhookOut.of(await _get(ctx, subscription_id))


@router.delete("/{subscription_id}", response_model=WebhookOut)
async def delete_webhook(
    subscription_id: SubscriptionId, principal: Admin, request: Request,
) -> WebhookOut:
    """Delete a subscription: nothing more is sent, pending deliveries are cancelled."""
    ctx = service_context(request)
    result = await commands.delete(ctx, Caller(actor_metadata(principal, request)),
                                   subscription_id, deleted_by=principal.subject)
    if result is None:
        raise Problem(404, f"no webhook subscription {subscription_id}", kind="not-found")
    return WebhookOut.of(result[0])


_DELIVERY_PAGING = paging(("seq",), "-seq", ("seq",))


@router.get("/{subscription_id}/deliveries", response_model=DeliveryList,
            dependencies=[allow(reads=False)])
async def list_deliveries(
    subscription_id: SubscriptionId, request: Request, response: Response,
    page: Annotated[Paging, Depends(_DELIVERY_PAGING)],
    status: Literal["pending", "sending", "delivered", "failed", "cancelled"] | None = None,
    event_type: Annotated[str | None, Query(max_length=100, pattern=w.TYPE_NAME.pattern)] = None,
) -> DeliveryList:
    """List a subscription's deliveries, newest first by default, each with its attempts.

    `seq` is the order deliveries were enqueued in.
    """
    ctx = service_context(request)
    await _get(ctx, subscription_id)
    after_seq = None
    if page.after_key is not None:
        if not isinstance(page.after_key[0], int):
            raise invalid("after", "not a cursor returned by this list")
        after_seq = page.after_key[0]
    rows = await store.deliveries(
        ctx.db, subscription_id, status=status, event_type=event_type, after_seq=after_seq,
        descending=page.sort.fields[0][1], limit=page.limit + 1,
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    next_cursor = page.cursor([rows[-1]["seq"]]) if more else None
    link(response, request, next_cursor)
    items: list[dict[str, Any]] = []
    for row in rows:
        pending = row["status"] in ("pending", "sending")
        items.append({**row, "next_attempt_at": row["next_attempt_at"] if pending else None})
    return DeliveryList(subscription_id=subscription_id,
                        items=[DeliveryOut.model_validate(i) for i in items], next=next_cursor)

"""The sender: POST due deliveries, signed, and record every attempt.

Every replica may run one; they share the work through ``FOR UPDATE SKIP LOCKED`` claims with a
lease. No transaction stays open while a receiver is called: an open transaction with a
transaction id would hold back the event-store horizon that every reader waits for.

A failed delivery is tried again from its row (its next attempt time, ``retry_delay``), not by
an in-memory retry such as tenacity's: the schedule outlives the process, and whichever
replica is free takes the next attempt. The loop itself polls (``service.background.poll``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import httpx
from prometheus_client import Counter

from service import observability
from service.background import Background, poll
from service.domain import webhooks as w
from service.store import webhooks as store
from service.store.database import Database
from service.webhooks.settings import WebhookSettings

log = logging.getLogger("csperf.webhooks")

USER_AGENT = "csperf-webhooks/1"
MIN_POLL = 0.02

ATTEMPTS = Counter(
    "csperf_webhook_attempts_total", "Webhook delivery attempts by outcome.", ["outcome"],
    registry=observability.REGISTRY,
)


def _scrub(text: str, url: str) -> str:
    # Error messages may quote the URL, whose path can hold a token: keep only its origin.
    return text.replace(url, w.url_origin(url))[:500]


class _OriginOnly(logging.Filter):
    """Cut httpx's own request log lines down to the URL's origin (webhook URLs often carry
    a token in their path or query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the URL argument of httpx's "HTTP Request" lines."""
        if isinstance(record.args, tuple) and len(record.args) > 1 and isinstance(
                record.args[1], httpx.URL):
            args = list(record.args)
            args[1] = w.url_origin(str(args[1]))
            record.args = tuple(args)
        return True


_HTTPX_LOG = logging.getLogger("httpx")
if not any(isinstance(f, _OriginOnly) for f in _HTTPX_LOG.filters):
    _HTTPX_LOG.addFilter(_OriginOnly())


class WebhookSender(Background):
    """Claim due deliveries, POST them, and record each attempt, in a background task."""

    def __init__(
        self, db: Database, settings: WebhookSettings | None = None, *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.settings = settings or WebhookSettings()
        self._transport = transport
        self._clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for due deliveries now (new ones were enqueued)."""
        self._wake.set()

    task_name = "webhook-sender"

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport, timeout=self.settings.timeout_seconds,
            follow_redirects=False, headers={"User-Agent": USER_AGENT},
        )

    async def run(self) -> None:
        """Deliver until stopped, over one HTTP client; a claimed delivery that was not
        recorded is retried after its lease."""
        async with self._client() as client:
            await poll(partial(self.run_once, client), self._wake, first=MIN_POLL,
                       cap=self.settings.poll_seconds, name="webhook sender", log=log)

    async def run_once(self, client: httpx.AsyncClient | None = None) -> int:
        """Claim one batch of due deliveries and attempt each; return how many."""
        settings = self.settings
        # The lease outlives the longest attempt, so a live sender never loses its claim.
        lease = max(settings.lease_seconds, settings.timeout_seconds * 2 + 5)
        async with self.db.connection() as conn:
            await store.cancel_orphans(conn)
            claimed = await store.claim(conn, settings.batch, lease)
        if not claimed:
            return 0
        own = client is None
        client = client or self._client()
        try:
            limit = asyncio.Semaphore(settings.concurrency)

            async def attempt(delivery: store.Claimed) -> None:
                async with limit:
                    await self._attempt(client, delivery)

            await asyncio.gather(*(attempt(c) for c in claimed))
        finally:
            if own:
                await client.aclose()
        return len(claimed)

    async def _attempt(self, client: httpx.AsyncClient, delivery: store.Claimed) -> None:
        body = delivery.body.encode()
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            w.SIGNATURE_HEADER: w.signature(delivery.secret, timestamp, body),
            w.TIMESTAMP_HEADER: str(timestamp),
            w.DELIVERY_HEADER: str(delivery.delivery_id),
            w.EVENT_TYPE_HEADER: delivery.event_type,
            w.EVENT_ID_HEADER: str(delivery.event_id),
        }
        started = datetime.now(UTC)
        clock = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            response = await client.post(delivery.url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}" + (" (redirects are not followed)"
                                                 if 300 <= status_code < 400 else "")
        except httpx.HTTPError as exc:
            error = _scrub(f"{type(exc).__name__}: {exc}", delivery.url)
        outcome = store.Outcome(started, round((time.perf_counter() - clock) * 1000, 2),
                                status_code, error)
        settings = self.settings
        retry_in = None
        if not outcome.delivered and delivery.attempt < settings.max_attempts:
            retry_in = w.retry_delay(delivery.attempt, base=settings.retry_base_seconds,
                                     cap=settings.retry_max_seconds)
        label = "delivered" if outcome.delivered else ("retry" if retry_in is not None
                                                       else "failed")
        ATTEMPTS.labels(label).inc()
        log.info(
            "webhook delivery %s attempt %d to %s: %s", delivery.delivery_id, delivery.attempt,
            w.url_origin(delivery.url), label,
            extra={"subscription_id": delivery.subscription_id, "status": status_code},
        )
        async with self.db.connection() as conn:
            if not await store.record(conn, delivery, outcome, retry_in=retry_in):
                log.warning("webhook delivery %s: claim lapsed before its result was recorded",
                            delivery.delivery_id)

"""The sender: POST due deliveries, signed, and record every attempt.

Every replica may run one; they share the work through ``FOR UPDATE SKIP LOCKED`` claims with a
lease. No transaction stays open while a receiver is called: an open transaction with a
transaction id would hold back the event-store horizon that every reader waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from prometheus_client import Counter

from service import observability
from service.domain import webhooks as w
from service.store import webhooks as store
from service.store.database import DATABASE_AWAY, Database
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


class WebhookSender:
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
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look for due deliveries now (new ones were enqueued)."""
        self._wake.set()

    def start(self) -> None:
        """Start the background loop."""
        self._task = asyncio.create_task(self._loop(), name="webhook-sender")

    async def stop(self) -> None:
        """Stop the loop; a claimed delivery that was not recorded is retried after its lease."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport, timeout=self.settings.timeout_seconds,
            follow_redirects=False, headers={"User-Agent": USER_AGENT},
        )

    async def _loop(self) -> None:
        idle = MIN_POLL
        async with self._client() as client:
            while True:
                self._wake.clear()
                try:
                    sent = await self.run_once(client)
                except asyncio.CancelledError:
                    raise
                except DATABASE_AWAY as exc:
                    log.warning("webhook sender lost the database (%s)", type(exc).__name__)
                    sent = 0
                    idle = self.settings.poll_seconds
                except Exception:
                    log.exception("webhook sender failed; retrying")
                    sent = 0
                    idle = self.settings.poll_seconds
                if sent:
                    idle = MIN_POLL
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=idle)
                idle = min(idle * 2, self.settings.poll_seconds)

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

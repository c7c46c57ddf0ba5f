"""Outgoing webhooks against a loopback receiver that fails first: each event still arrives
once after deduplication by delivery id, signed, with every attempt recorded."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest

from service.domain import webhooks as w
from service.projections.webhooks import WebhookDispatch
from service.store.database import Database
from service.store.event_store import Cursor, read_all
from service.webhooks.sender import WebhookSender
from service.webhooks.settings import WebhookSettings
from tests import conftest
from tests.support.scenario import ADMIN, make_team


class Receiver:
    """A tiny HTTP server on 127.0.0.1 that answers 500 to the first attempts of each delivery
    and, once, takes a delivery but loses its answer (so it is sent again)."""

    def __init__(self, fail_first: int, lose_answer_once: bool = False) -> None:
        self.fail_first = fail_first
        self.lose_answer_once = lose_answer_once
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.attempts: Counter[str] = Counter()
        self.processed: dict[str, dict[str, Any]] = {}  # by delivery id: the dedupe
        self.duplicates = 0
        self.lost_answers = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks/csperf?token=abc123"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()  # the request line
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append((headers, body))
            delivery = headers["x-csperf-delivery"]
            self.attempts[delivery] += 1
            if self.attempts[delivery] <= self.fail_first:
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
                return
            if delivery in self.processed:
                self.duplicates += 1  # at least once: already done, acknowledge again
            else:
                self.processed[delivery] = orjson.loads(body)
                if self.lose_answer_once and not self.lost_answers:
                    self.lost_answers += 1
                    return  # processed, but the sender never hears so
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        finally:
            await writer.drain()
            writer.close()


@pytest.fixture
def fast_retries(app_client: httpx.AsyncClient) -> Iterator[WebhookSender]:
    """The app's sender with retries in tens of milliseconds instead of seconds."""
    sender = app_client.app.state.ctx.extras.webhook_sender  # type: ignore[attr-defined]
    assert isinstance(sender, WebhookSender)
    saved = sender.settings
    sender.settings = WebhookSettings(retry_base_seconds=0.05, retry_max_seconds=0.2,
                                      poll_seconds=0.1, timeout_seconds=2, max_attempts=6)
    yield sender
    sender.settings = saved


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver(fail_first=2, lose_answer_once=True)
    await r.start()
    yield r
    await r.stop()


async def _wait(predicate: Any, seconds: float = 20) -> None:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_a_receiver_that_fails_first_still_gets_each_event_once(
    app_client: httpx.AsyncClient, uid: str, fast_retries: WebhookSender, receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await app_client.post("/v1/webhooks", headers=ADMIN, json={
        "url": receiver.url, "event_types": ["AgentRegistered"], "stream_types": ["agent"],
        "description": f"test {uid}"})
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    hook = created.json()
    secret = hook["secret"]
    assert secret.startswith("whsec_") and hook["status"] == "active"

    team = await make_team(app_client, uid, 3)
    ours = set(team.agents)

    def received() -> bool:
        return ours <= {d["event"]["data"]["agent_id"] for d in receiver.processed.values()}

    await _wait(received)
    url = f"/v1/webhooks/{hook['subscription_id']}/deliveries"

    async def all_delivered() -> bool:
        items = (await app_client.get(url, headers=ADMIN)).json()["items"]
        return len([d for d in items if d["status"] == "delivered"]) >= 3

    await _wait_async(all_delivered)
    deliveries = {i: d for i, d in receiver.processed.items()
                  if d["event"]["data"]["agent_id"] in ours}
    assert len(deliveries) == 3  # each event once, after dedupe by delivery id
    assert receiver.lost_answers == 1 and receiver.duplicates >= 1  # at least once, really
    for headers, body in receiver.requests:
        delivery = headers["x-csperf-delivery"]
        if delivery not in deliveries:
            continue
        assert w.verify(secret, headers["x-csperf-signature"], body)
        assert not w.verify("whsec_wrong", headers["x-csperf-signature"], body)
        assert headers["x-csperf-event-type"] == "AgentRegistered"
        assert headers["x-csperf-timestamp"] in headers["x-csperf-signature"]
        document = orjson.loads(body)
        assert document["delivery_id"] == delivery  # the same id on every attempt
        assert document["event"]["event_id"] == headers["x-csperf-event-id"]
        assert document["subscription_id"] == hook["subscription_id"]

    listed = await app_client.get(url, headers=ADMIN)
    assert listed.status_code == 200, listed.text
    items = [d for d in listed.json()["items"] if d["delivery_id"] in deliveries]
    assert len(items) == 3 and {d["status"] for d in items} == {"delivered"}
    for d in items:
        codes = [a["status_code"] for a in d["attempt_log"]]
        assert codes[:2] == [500, 500] and codes[-1] == 204, codes
        assert d["attempts"] == len(codes) and d["last_status_code"] == 204
        assert d["next_attempt_at"] is None
    one_page = await app_client.get(
        f"/v1/webhooks/{hook['subscription_id']}/deliveries?limit=1&status=delivered",
        headers=ADMIN)
    assert len(one_page.json()["items"]) == 1 and one_page.json()["next"]
    assert 'rel="next"' in one_page.headers["link"]

    # The secret is never shown again, logged, or put in an event; nor is the URL's token.
    shown = (await app_client.get(f"/v1/webhooks/{hook['subscription_id']}",
                                  headers=ADMIN)).json()
    assert "secret" not in shown and shown["url"] == receiver.url
    history = (await app_client.get(f"/v1/streams/webhook:{hook['subscription_id']}/events",
                                    headers=ADMIN)).text
    assert secret not in history and "abc123" not in history
    assert secret not in caplog.text and "abc123" not in caplog.text

    # Deleted: nothing more is sent.
    deleted = await app_client.delete(f"/v1/webhooks/{hook['subscription_id']}",
                                      headers=ADMIN)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    assert (await app_client.delete(f"/v1/webhooks/{hook['subscription_id']}",
                                    headers=ADMIN)).status_code == 200
    before = len(receiver.requests)
    await app_client.put(f"/v1/agents/late-{uid}", headers=ADMIN,
                         json={"name": "Late", "team_id": team.team_id})
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == before
    active = (await app_client.get("/v1/webhooks", headers=ADMIN)).json()["items"]
    assert hook["subscription_id"] not in {s["subscription_id"] for s in active}


async def test_a_delivery_is_given_up_after_its_attempts(
    app_client: httpx.AsyncClient, uid: str, fast_retries: WebhookSender,
) -> None:
    fast_retries.settings = WebhookSettings(retry_base_seconds=0.02, retry_max_seconds=0.05,
                                            poll_seconds=0.1, timeout_seconds=2,
                                            max_attempts=3)
    failing = Receiver(fail_first=100)
    await failing.start()
    try:
        hook = (await app_client.post("/v1/webhooks", headers=ADMIN, json={
            "url": failing.url, "event_types": ["TeamRegistered"]})).json()
        await make_team(app_client, uid, 0)
        url = f"/v1/webhooks/{hook['subscription_id']}/deliveries"

        async def failed() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = (await app_client.get(
                url, headers=ADMIN, params={"status": "failed"})).json()["items"]
            return items

        found: list[dict[str, Any]] = []
        for _ in range(200):
            found = await failed()
            if found:
                break
            await asyncio.sleep(0.05)
        assert found and found[0]["attempts"] == 3
        assert [a["status_code"] for a in found[0]["attempt_log"]] == [500, 500, 500]
    finally:
        await app_client.delete(f"/v1/webhooks/{hook['subscription_id']}", headers=ADMIN)
        await failing.stop()


async def test_replaying_the_dispatcher_enqueues_nothing_twice(
    app_client: httpx.AsyncClient, db: Database, uid: str, receiver: Receiver,
) -> None:
    async with db.connection() as conn:
        start = await conn.fetchrow("SELECT tx_id, position FROM event"
                                    " ORDER BY tx_id DESC, position DESC LIMIT 1")
    hook = (await app_client.post("/v1/webhooks", headers=ADMIN, json={
        "url": receiver.url, "event_types": ["*"], "stream_types": ["team"],
        "after": Cursor(start["tx_id"], start["position"]).encode()})).json()
    try:
        await make_team(app_client, uid, 0)
        dispatch = WebhookDispatch()
        async with db.connection() as conn:
            events = await read_all(conn, Cursor(start["tx_id"], start["position"]), 1000)
            count = "SELECT count(*) FROM webhook_delivery WHERE subscription_id = $1"
            await _wait_async(lambda: conn.fetchval(count, hook["subscription_id"]))
            before = await conn.fetchval(count, hook["subscription_id"])
            async with conn.transaction():
                await dispatch.apply(conn, events, dispatch.table_names(1))
                await dispatch.apply(conn, events, dispatch.table_names(1))
            assert await conn.fetchval(count, hook["subscription_id"]) == before >= 1
    finally:
        await app_client.delete(f"/v1/webhooks/{hook['subscription_id']}", headers=ADMIN)


async def _wait_async(probe: Any) -> None:
    for _ in range(200):
        if await probe():
            return
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://example.com/x", "event_types": ["*"]}, "url"),
    ({"url": "http://user:pw@example.com/x", "event_types": ["*"]}, "url"),
    ({"url": "not a url", "event_types": ["*"]}, "url"),
    ({"url": "http:///nohost", "event_types": ["*"]}, "url"),
    ({"url": "https://example.com/x", "event_types": []}, "event_types"),
    ({"url": "https://example.com/x", "event_types": ["bad type!"]}, "event_types"),
    ({"url": "https://example.com/x", "event_types": ["*"], "stream_types": ["=x"]},
     "stream_types"),
    ({"url": "https://example.com/x", "event_types": ["*"], "after": "nope"}, "after"),
    ({"url": "https://example.com/x", "event_types": ["*"], "secret": "mine"}, "secret"),
])
async def test_bad_subscriptions_are_422_naming_the_field(
    app_client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await app_client.post("/v1/webhooks", headers=ADMIN, json=body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_unknown_subscriptions_are_404(app_client: httpx.AsyncClient) -> None:
    for method, path in (("GET", "/v1/webhooks/wh_0000000000000000"),
                         ("DELETE", "/v1/webhooks/wh_0000000000000000"),
                         ("GET", "/v1/webhooks/wh_0000000000000000/deliveries")):
        assert (await app_client.request(method, path, headers=ADMIN)).status_code == 404


def test_signatures_and_retry_delays() -> None:
    body = b'{"a": 1}'
    header = w.signature("whsec_x", 1700000000, body)
    assert header.startswith("t=1700000000,v1=")
    assert w.verify("whsec_x", header, body)
    assert not w.verify("whsec_x", header, body + b" ")
    assert not w.verify("whsec_x", "t=1700000001," + header.split(",")[1], body)
    assert not w.verify("whsec_x", "garbage", body)
    delays = [w.retry_delay(n, base=1, cap=60) for n in range(1, 10)]
    assert 0.8 <= delays[0] <= 1.2 and 1.6 <= delays[1] <= 2.4 and 3.2 <= delays[2] <= 4.8
    assert all(d <= 72 for d in delays) and delays[-1] >= 48
    assert w.delivery_id("wh_a", w.DELIVERY_NAMESPACE) == w.delivery_id("wh_a",
                                                                          w.DELIVERY_NAMESPACE)
    assert w.url_origin("https://h.example:8443/p?token=x") == "https://h.example:8443"


async def test_the_app_takes_its_webhook_settings_from_create_app(database_url: str) -> None:
    # Without the parameter the sender's settings come from CSPERF_WEBHOOK_*, read inside the
    # app's start; a test (or an embedding program) hands its own instead.
    from service.main import create_app

    chosen = WebhookSettings(poll_seconds=0.3, max_attempts=2)
    settings = conftest.test_settings(run_scheduler=False, run_projections=False, db_pool_size=2)
    app = create_app(settings, database_url=database_url, migrate_on_start=False,
                     webhook_settings=chosen)
    async with app.router.lifespan_context(app):
        sender = app.state.ctx.extras.webhook_sender
        assert isinstance(sender, WebhookSender) and sender.settings is chosen
    quiet = create_app(settings, database_url=database_url, migrate_on_start=False,
                       webhook_settings=WebhookSettings(run_sender=False))
    async with quiet.router.lifespan_context(quiet):
        assert quiet.state.ctx.extras.webhook_sender is None

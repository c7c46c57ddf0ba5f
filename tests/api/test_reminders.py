"""Email reminders against a real SMTP server (aiosmtpd on a free loopback port): the words and
language of each person, one digest a day, retries after a refusal and an hour-long outage,
no second email after a crash mid-delivery, people without an address skipped and counted."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from service.domain import reminders as r
from service.domain.cycle import CyclePublished
from service.domain.results import ResultDecision
from service.mail.sender import ReminderSender
from service.mail.settings import MailSettings
from service.mail.smtp import parse_smtp_url
from service.projections.base import Tables
from service.projections.reminders import Reminders
from service.queries.wait import wait
from service.scheduler import evaluation_reminders, overdue_pass
from service.store import reminders as store
from service.store.event_store import RecordedEvent
from tests import conftest
from tests.conftest import TestClock as PinnedClock
from tests.support.scenario import ADMIN, Team, make_team

FROM = "reminders@csperf.test"
PERIOD = "2026-11"
PUBLISHED = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
DUE = PUBLISHED + timedelta(days=7)


class Inbox:
    """An aiosmtpd handler that keeps what it accepts; it can refuse (451) the next emails,
    or hold one after taking it, before answering, until released."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = 0
        self.hold = False
        self.arrived = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            self.refuse -= 1
            return "451 4.3.0 Mailbox busy, try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        if self.hold:
            self.hold = False
            self.arrived.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
        return "250 2.0.0 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def smtp_server(port: int, inbox: Inbox) -> Iterator[None]:
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield
    finally:
        controller.stop()


@pytest.fixture
def smtp_port() -> int:
    """A free loopback port for the test's SMTP server."""
    return free_port()


@pytest.fixture
def inbox(smtp_port: int) -> Iterator[Inbox]:
    """A real SMTP server (aiosmtpd) on the test's port, and what it received."""
    received = Inbox()
    with smtp_server(smtp_port, received):
        yield received


def make_sender(client: httpx.AsyncClient, port: int, clock: PinnedClock,
                **settings: Any) -> ReminderSender:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    values: dict[str, Any] = {"digest_hold_seconds": 0, "retry_base_seconds": 30,
                              "timeout_seconds": 5, "lease_seconds": 60, **settings}
    return ReminderSender(ctx.db, parse_smtp_url(f"smtp://127.0.0.1:{port}"), FROM,
                          MailSettings(**values), clock=clock)


async def set_person(client: httpx.AsyncClient, person_id: str, **body: object) -> None:
    response = await client.put(f"/v1/people/{person_id}", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text


async def reminders_of(client: httpx.AsyncClient, person_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/people/{person_id}/reminders", headers=ADMIN)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def remind(client: httpx.AsyncClient, clock: PinnedClock, person_id: str, *subjects: str,
                 kind: str = "plan_due") -> None:
    """Record reminders as the scheduler does (its idempotency keys included)."""
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    async with ctx.db.transaction() as conn:
        await store.enqueue(conn, [
            r.Reminder(person_id, kind, subject, {"team_id": "t-none", "period": PERIOD,
                                                  "due_at": DUE.isoformat()})
            for subject in subjects], created_at=clock.now)


async def publish_month(team: Team, clock: PinnedClock, scores: dict[str, float]) -> None:
    clock.set(PUBLISHED)
    await team.open(PERIOD)
    await team.evaluate_all(PERIOD, scores)
    assert (await team.close(PERIOD)).status_code == 200
    published = await team.publish(PERIOD)
    assert published.status_code == 200, published.text


async def deliver(sender: ReminderSender) -> None:
    """Compose every batch due, then send: the shared database holds other tests' pending
    reminders too (most for agents without an address, settled as skipped), and one batch of
    people need not reach this test's."""
    for _ in range(100):
        if not await sender.compose():
            break
    await sender.run_once()


async def counted(client: httpx.AsyncClient, outcome: str) -> float:
    text = (await client.get("/metrics", headers=ADMIN)).text
    found = re.search(rf'^csperf_reminders_total\{{outcome="{outcome}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_each_person_is_reminded_in_their_language_and_overdue_goes_at_once(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock, inbox: Inbox,
    smtp_port: int,
) -> None:
    team = await make_team(app_client, uid, 4)
    first, _, c, d = team.agents
    await set_person(app_client, c, email=f"{c}@example.com", locale="ko")
    await set_person(app_client, d, email=f"{d}@example.com", locale="zh_Hans")
    await set_person(app_client, first, email=f"{first}@example.com")
    await publish_month(team, app_clock, dict(zip(team.agents, (90, 80, 70, 60), strict=True)))
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    assert await wait(ctx, Reminders())

    sender = make_sender(app_client, smtp_port, app_clock)
    await deliver(sender)
    [korean] = inbox.to(f"{c}@example.com")
    assert korean["Subject"] == "개선 계획 제출 기한 안내"
    assert korean["From"] == FROM and korean["Content-Language"] == "ko"
    body = korean.get_content()
    assert f"Team {uid} 2026-11 개선 계획 제출 기한은 2026. 12. 10. 오후 6:30:00 (Asia/Seoul)" \
        in body
    assert f"PUT /v1/people/{c}" in body
    [chinese] = inbox.to(f"{d}@example.com")
    assert chinese["Subject"] == "改进计划待提交"
    assert "2026年12月10日 18:30:00 (Asia/Seoul)" in chinese.get_content()
    assert inbox.to(f"{first}@example.com") == []  # first place owes no plan
    [item] = await reminders_of(app_client, c)
    assert (item["kind"], item["status"], item["attempts"]) == ("plan_due", "sent", 1)
    assert korean["Message-ID"] == f"<{item['message_id']}@csperf.test>"

    # The plan goes overdue: the scheduler records it, and the agent hears at once
    app_clock.set(DUE + timedelta(minutes=1))
    await overdue_pass(ctx)
    assert await wait(ctx, Reminders())
    await deliver(sender)
    overdue = inbox.to(f"{c}@example.com")[1:]
    assert [m["Subject"] for m in overdue] == ["개선 계획 제출 기한이 지났습니다"]
    assert "2026. 12. 10. 오후 6:30:00 (Asia/Seoul)" in overdue[0].get_content()
    # Replaying changes nothing: the same reminders are the same rows
    await sender.run_once()
    assert len(inbox.to(f"{c}@example.com")) == 2


async def test_one_digest_a_day_gathers_what_is_pending_but_overdue_items_go_at_once(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock, inbox: Inbox,
    smtp_port: int,
) -> None:
    person, address = f"p-{uid}", f"p-{uid}@example.com"
    await set_person(app_client, person, email=address)
    app_clock.set(PUBLISHED)
    sender = make_sender(app_client, smtp_port, app_clock, digest_hold_seconds=300)
    await remind(app_client, app_clock, person, "one", "two")
    await sender.run_once()
    assert inbox.to(address) == []  # held five minutes for more to join
    app_clock.advance(minutes=5)
    await sender.run_once()
    [digest] = inbox.to(address)
    assert digest["Subject"] == "Your csperf reminders"
    assert digest.get_content().count("Your improvement plan for t-none 2026-11 is due") == 2

    # Later the same day: a new item waits for tomorrow, an overdue one does not
    app_clock.advance(hours=3)
    await remind(app_client, app_clock, person, "three")
    await remind(app_client, app_clock, person, "late", kind="plan_overdue")
    await sender.run_once()
    app_clock.advance(minutes=10)  # past the hold: only the day's limit keeps it back now
    await sender.run_once()
    assert [m["Subject"] for m in inbox.to(address)[1:]] == ["Your improvement plan is overdue"]
    assert [i["status"] for i in await reminders_of(app_client, person)][:2] == [
        "sent", "pending"]  # newest first: the overdue one went, "three" waits
    app_clock.advance(days=1)
    await sender.run_once()
    assert len(inbox.to(address)) == 3
    assert "t-none 2026-11 is due" in inbox.to(address)[2].get_content()
    assert {i["status"] for i in await reminders_of(app_client, person)} == {"sent"}


async def test_people_whose_digest_waits_for_tomorrow_do_not_hold_up_the_others(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock, inbox: Inbox,
    smtp_port: int,
) -> None:
    app_clock.set(datetime(2026, 12, 6, 8, tzinfo=UTC))
    sender = make_sender(app_client, smtp_port, app_clock, batch=1)
    waiting = [f"a-{uid}-{i}" for i in range(4)]
    for person in waiting:
        await set_person(app_client, person, email=f"{person}@example.com")
        await remind(app_client, app_clock, person, "today")
    while await sender.run_once():
        pass
    for person in waiting:  # their digest went; the next item waits for tomorrow
        await remind(app_client, app_clock, person, "tomorrow")
    fresh = f"z-{uid}"
    await set_person(app_client, fresh, email=f"{fresh}@example.com")
    await remind(app_client, app_clock, fresh, "now")
    await sender.run_once()
    assert len(inbox.to(f"{fresh}@example.com")) == 1
    assert sum(len(inbox.to(f"{p}@example.com")) for p in waiting) == 4


async def test_a_refusing_server_is_tried_again_after_a_backoff(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock, inbox: Inbox,
    smtp_port: int,
) -> None:
    person, address = f"p-{uid}", f"p-{uid}@example.com"
    await set_person(app_client, person, email=address)
    app_clock.set(PUBLISHED)
    await remind(app_client, app_clock, person, "refused-once")
    inbox.refuse = 1
    sender = make_sender(app_client, smtp_port, app_clock)
    await sender.run_once()
    [item] = await reminders_of(app_client, person)
    assert (item["status"], item["attempts"]) == ("queued", 1)
    assert item["last_error"].startswith("SMTP 451")
    await sender.run_once()  # the backoff (about 30 s) has not passed
    assert (await reminders_of(app_client, person))[0]["attempts"] == 1
    app_clock.advance(seconds=40)
    await sender.run_once()
    assert len(inbox.to(address)) == 1
    [item] = await reminders_of(app_client, person)
    assert (item["status"], item["attempts"]) == ("sent", 2)


async def test_smtp_down_for_an_hour_delivers_afterwards_once(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock, smtp_port: int,
) -> None:
    person, address = f"p-{uid}", f"p-{uid}@example.com"
    await set_person(app_client, person, email=address)
    app_clock.set(PUBLISHED)
    await remind(app_client, app_clock, person, "outage")
    sender = make_sender(app_client, smtp_port, app_clock)
    for _ in range(12):  # nothing listens on the port for an hour
        await sender.run_once()
        app_clock.advance(minutes=5)
    [item] = await reminders_of(app_client, person)
    assert item["status"] == "queued" and 4 <= item["attempts"] <= 8, item
    assert "Connection" in item["last_error"] or "refused" in item["last_error"]
    inbox = Inbox()
    with smtp_server(smtp_port, inbox):
        for _ in range(6):
            app_clock.advance(minutes=30)
            await sender.run_once()
    assert len(inbox.to(address)) == 1
    assert (await reminders_of(app_client, person))[0]["status"] == "sent"


async def test_a_crash_mid_delivery_resends_the_same_message_and_nothing_else(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock, inbox: Inbox,
    smtp_port: int,
) -> None:
    person, address = f"p-{uid}", f"p-{uid}@example.com"
    await set_person(app_client, person, email=address)
    app_clock.set(PUBLISHED)
    await remind(app_client, app_clock, person, "a", "b")
    inbox.hold = True
    dying = make_sender(app_client, smtp_port, app_clock)
    attempt = asyncio.create_task(dying.run_once())
    assert await asyncio.to_thread(inbox.arrived.wait, 10)
    attempt.cancel()  # the server has the email; the sender dies before recording it
    with pytest.raises(asyncio.CancelledError):
        await attempt
    inbox.release.set()

    survivor = make_sender(app_client, smtp_port, app_clock)
    await survivor.run_once()  # the dead sender's claim still holds
    assert len(inbox.to(address)) == 1
    app_clock.advance(seconds=61)  # its lease lapses
    await survivor.run_once()
    app_clock.advance(days=2)
    await survivor.run_once()
    received = inbox.to(address)
    assert len(received) == 2  # at least once: the same email again ...
    assert received[0]["Message-ID"] == received[1]["Message-ID"]  # ... recognisably the same
    assert received[0].get_content() == received[1].get_content()
    items = await reminders_of(app_client, person)
    assert {(i["status"], i["message_id"]) for i in items} == {("sent", items[0]["message_id"])}
    assert received[0]["Message-ID"] == f"<{items[0]['message_id']}@csperf.test>"


async def test_people_without_an_address_are_skipped_and_counted_and_opting_out_works(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock, inbox: Inbox,
    smtp_port: int, token_headers: Any,
) -> None:
    nobody, quiet = f"nobody-{uid}", f"quiet-{uid}"
    await set_person(app_client, quiet, email=f"{quiet}@example.com", locale="ko")
    off = await app_client.put(f"/v1/people/{quiet}", json={"reminders": "off"},
                               headers=token_headers("agent", quiet))
    assert off.status_code == 200 and off.json()["reminders"] == "off", off.text
    app_clock.set(datetime(2026, 12, 4, 1, 2, 3, tzinfo=UTC))
    await remind(app_client, app_clock, nobody, "x", "y")
    await remind(app_client, app_clock, quiet, "x")
    skipped_before = await counted(app_client, "skipped_no_email")
    opted_before = await counted(app_client, "opted_out")
    await make_sender(app_client, smtp_port, app_clock).run_once()
    assert {i["status"] for i in await reminders_of(app_client, nobody)} == {"skipped_no_email"}
    assert {i["status"] for i in await reminders_of(app_client, quiet)} == {"opted_out"}
    assert inbox.to(f"{quiet}@example.com") == []
    # Others' reminders (other tests') may be settled in the same pass: count this moment's
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    async with ctx.db.connection() as conn:
        skipped_now = await conn.fetchval(
            "SELECT count(*) FROM reminder WHERE status = 'skipped_no_email'"
            " AND settled_at = $1", app_clock.now)
    assert skipped_now >= 2
    assert await counted(app_client, "skipped_no_email") - skipped_before == skipped_now
    assert await counted(app_client, "opted_out") - opted_before >= 1


async def test_raters_who_still_owe_evaluations_are_reminded_once_before_the_deadline(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock,
) -> None:
    team = await make_team(app_client, uid, 2)
    done, owing = team.agents
    app_clock.set(datetime(2026, 11, 20, tzinfo=UTC))
    await team.open(PERIOD)
    await team.self_eval(PERIOD, done, 4)
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    await evaluation_reminders(ctx)
    assert await reminders_of(app_client, team.manager_id) == []  # the deadline is far
    # Two days before the deadline (the end of 7 December, Seoul)
    app_clock.set(datetime(2026, 12, 5, 12, tzinfo=UTC))
    await evaluation_reminders(ctx)
    await evaluation_reminders(ctx)
    [manager] = await reminders_of(app_client, team.manager_id)
    assert manager["kind"] == "evaluation_due"
    assert manager["params"]["agents"] == "Agent 0, Agent 1"
    [agent] = await reminders_of(app_client, owing)
    assert agent["params"]["agents"] == "Agent 1"
    assert await reminders_of(app_client, done) == []


async def test_contact_details_through_the_api(
    app_client: httpx.AsyncClient, uid: str, token_headers: Any,
) -> None:
    person = f"a-{uid}"
    fresh = await app_client.get(f"/v1/people/{person}", headers=token_headers("agent", person))
    assert fresh.json() == {"person_id": person, "email": None, "locale": "en",
                            "reminders": "on", "version": 0}
    mine = token_headers("agent", person)
    assert (await app_client.put(f"/v1/people/{person}", json={"email": "x@example.com"},
                                 headers=mine)).status_code == 403
    assert (await app_client.get("/v1/people/someone-else", headers=mine)).status_code == 403
    changed = await app_client.put(f"/v1/people/{person}", json={"locale": "zh-Hans"},
                                   headers=mine)
    assert changed.status_code == 200 and changed.json()["locale"] == "zh_Hans"
    for body, field in (({"locale": "fr"}, "locale"), ({"email": "not an address"}, "email"),
                        ({"reminders": "maybe"}, "reminders")):
        refused = await app_client.put(f"/v1/people/{person}", json=body, headers=ADMIN)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert field in refused.text
    # Without CSPERF_SMTP_URL (this app has none) reminders are recorded, not sent
    listed = await app_client.get(f"/v1/people/{person}/reminders", headers=mine)
    assert listed.json()["sending"] is False


async def test_events_from_before_reminders_were_installed_remind_no_one(
    app_client: httpx.AsyncClient, uid: str,
) -> None:
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    published = CyclePublished(team_id=f"t-{uid}", period=PERIOD, published_at=PUBLISHED,
                               publication=1, decisions=(ResultDecision(
        kind="improvement_plan", agent_id=f"a-{uid}", rank=4, places=(4, 4), due_at=DUE,
        reason="bottom two"),))

    def recorded(tx_id: int, position: int) -> RecordedEvent:
        return RecordedEvent(position, tx_id, f"cycle:t-{uid}:{PERIOD}", 9, uuid.uuid4(),
                             published.type, published.schema_version, published.data(), {},
                             PUBLISHED)

    projection = Reminders()
    async with ctx.db.connection() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:  # rolled back: the shared database keeps its real start
            await conn.execute("UPDATE reminder_start SET tx_id = 1000, position = 50")
            await projection.apply(conn, [recorded(999, 60), recorded(1000, 50)], Tables([], 1))
            assert await conn.fetchval("SELECT count(*) FROM reminder WHERE person_id = $1",
                                       f"a-{uid}") == 0
            await projection.apply(conn, [recorded(1000, 51)], Tables([], 1))
            assert await conn.fetchval("SELECT kind FROM reminder WHERE person_id = $1",
                                       f"a-{uid}") == "plan_due"
        finally:
            await transaction.rollback()


async def test_a_service_with_an_smtp_url_sends_reminders_by_itself(
    database_url: str, app_client: httpx.AsyncClient, uid: str, inbox: Inbox, smtp_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service.main import create_app

    monkeypatch.setenv("CSPERF_MAIL_DIGEST_HOLD_SECONDS", "0")
    monkeypatch.setenv("CSPERF_MAIL_POLL_SECONDS", "0.05")
    person, address = f"p-{uid}", f"p-{uid}@example.com"
    await set_person(app_client, person, email=address, locale="zh_Hans")
    clock = PinnedClock(PUBLISHED + timedelta(days=300))
    settings = conftest.test_settings(smtp_url=f"smtp://127.0.0.1:{smtp_port}", smtp_from=FROM,
                             run_projections=False, run_scheduler=False, db_pool_size=4)
    app = create_app(settings, database_url=database_url, migrate_on_start=False, clock=clock)
    async with app.router.lifespan_context(app):
        await remind(app_client, clock, person, "by-itself")
        for _ in range(200):
            if inbox.to(address):
                break
            await asyncio.sleep(0.05)
    [message] = inbox.to(address)
    assert message["Subject"] == "改进计划待提交"

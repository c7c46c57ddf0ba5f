"""The reminder sender: compose the due emails, hand them to the mail server, record each try.

Every replica may run one (where ``CSPERF_SMTP_URL`` is set); they share the work through
``FOR UPDATE SKIP LOCKED``: on a person's pending reminders while composing, on emails with a
lease while sending. No transaction stays open while the mail server is talked to.

Duplicates: an email is written once (its id derives from the person and day, or from its one
urgent reminder, and the reminders it carries are tied to it in the same transaction), and every
attempt sends it with the same ``Message-ID``. A sender that dies after the server took the
email but before the result was recorded loses its lease, and the email is sent again: at least
once, and a resend is the same message (same id, same words), which mail systems and readers
recognise. The window is the moment between the server's "250" and one UPDATE.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import uuid
from collections.abc import Iterable
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import asyncpg

from service import observability
from service.background import Background, poll
from service.context import Clock, system_clock
from service.domain import directory as d
from service.domain import reminders as r
from service.domain.webhooks import retry_delay
from service.mail import smtp
from service.mail.i18n import translator
from service.mail.settings import MailSettings
from service.queries.streams import load
from service.store import reminders as store
from service.store.database import Database

log = logging.getLogger("csperf.mail")

MIN_POLL = 0.05


def message_id_header(message_id: object, from_address: str) -> str:
    """Return the Message-ID header of an email: the same on every attempt."""
    domain = from_address.rpartition("@")[2] or "csperf.invalid"
    return f"<{message_id}@{domain}>"


class ReminderSender(Background):
    """Compose due reminder emails and send them, in a background task."""

    def __init__(
        self, db: Database, server: smtp.SmtpServer, from_address: str,
        settings: MailSettings | None = None, *, clock: Clock = system_clock,
    ) -> None:
        self.db = db
        self.server = server
        self.from_address = from_address
        self.settings = settings or MailSettings()
        self._clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for due work now (reminders were recorded)."""
        self._wake.set()

    task_name = "reminder-sender"

    async def run(self) -> None:
        """Send until stopped; a claimed email that was not recorded is sent again after its
        lease."""
        await poll(self.run_once, self._wake, first=MIN_POLL, cap=self.settings.poll_seconds,
                   name="reminder sender", log=log)

    async def run_once(self) -> int:
        """Compose what is due, then attempt one batch of due emails; return how many emails
        were written or attempted."""
        return await self.compose() + await self.send_due()

    # -- composing ----------------------------------------------------------------------------

    async def compose(self) -> int:
        """Write the emails due now from the pending reminders; return how many."""
        async with self.db.connection() as conn:
            people = await store.people_due(conn, self.settings.batch, now=self._clock(),
                                            hold_seconds=self.settings.digest_hold_seconds)
        written = 0
        for person_id in people:
            written += await self._compose(person_id)
        return written

    async def _compose(self, person_id: str) -> int:
        now = self._clock()
        skipped: str | None = None
        async with self.db.connection() as conn, conn.transaction():
            pending = await store.take_pending(conn, person_id)
            if not pending:
                return 0
            person, _ = await load(conn, d.person_stream(person_id), d.evolve_person)
            if person is None or person.email is None or not person.reminders:
                skipped = "opted_out" if person is not None and person.email is not None \
                    else "skipped_no_email"
                await store.settle(conn, [p.reminder_id for p in pending], skipped, now)
            else:
                day = r.digest_day(now)
                urgent, digest = r.due_now(
                    pending, now=now, hold_seconds=self.settings.digest_hold_seconds,
                    digest_sent_today=await store.digest_sent(conn, person_id, day))
                teams = await _teams(conn, (p.reminder.params.get("team_id", "")
                                            for p in [*urgent, *digest]))
                translate = translator(person.locale)
                emails: list[tuple[uuid.UUID, date | None, list[r.Pending]]] = [
                    (r.urgent_message_id(p.reminder_id), None, [p]) for p in urgent]
                if digest:
                    emails.append((r.digest_message_id(person_id, day), day, digest))
                for message_id, digest_day, carried in emails:
                    email = r.render(person_id, [p.reminder for p in carried], person.locale,
                                     translate, teams)
                    await store.add_message(
                        conn, message_id, person_id=person_id, digest_day=digest_day,
                        to_address=person.email, locale=person.locale, email=email,
                        reminders=[p.reminder_id for p in carried], now=now)
        if skipped is not None:
            observability.REMINDERS.labels(skipped).inc(len(pending))
            log.info("%d reminder(s) of %s skipped: %s", len(pending), person_id, skipped)
            return 0
        return len(emails)

    # -- sending ------------------------------------------------------------------------------

    async def send_due(self) -> int:
        """Claim one batch of due emails and attempt each; return how many."""
        settings = self.settings
        # The lease outlives the longest attempt, so a live sender never loses its claim.
        lease = max(settings.lease_seconds, settings.timeout_seconds * 2 + 5)
        async with self.db.connection() as conn:
            claimed = await store.claim(conn, settings.batch, lease, self._clock())
        limit = asyncio.Semaphore(settings.concurrency)

        async def attempt(email: store.Claimed) -> None:
            async with limit:
                await self._attempt(email)

        await asyncio.gather(*(attempt(email) for email in claimed))
        return len(claimed)

    def _message(self, email: store.Claimed) -> EmailMessage:
        message = EmailMessage()
        message.set_content(email.body)  # first: it replaces every Content-* header
        message["From"] = self.from_address
        message["To"] = email.to_address
        message["Subject"] = email.subject
        message["Date"] = format_datetime(email.created_at)
        message["Message-ID"] = message_id_header(email.message_id, self.from_address)
        message["Content-Language"] = email.locale.replace("_", "-")
        # RFC 3834: machine-written, so out-of-office replies leave it alone.
        message["Auto-Submitted"] = "auto-generated"
        return message

    async def _attempt(self, email: store.Claimed) -> None:
        settings = self.settings
        error: str | None = None
        permanent = False
        try:
            await smtp.send(self.server, self._message(email),
                            wait_seconds=settings.timeout_seconds)
        except smtp.Refused as exc:
            error, permanent = str(exc), exc.permanent
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        now = self._clock()
        retry_at = None
        if error is None:
            status = "sent"
        elif permanent or email.attempt >= settings.max_attempts:
            status = "failed"
        else:
            status = "pending"
            retry_at = now + timedelta(seconds=retry_delay(
                email.attempt, base=settings.retry_base_seconds, cap=settings.retry_max_seconds))
        label = "retry" if status == "pending" else status
        observability.REMINDER_ATTEMPTS.labels(label).inc()
        log.info("reminder email %s to %s, attempt %d via %s: %s%s", email.message_id,
                 email.person_id, email.attempt, self.server.origin, label,
                 f" ({error})" if error else "")
        async with self.db.connection() as conn:
            settled = await store.record(conn, email, status=status, error=error,
                                         retry_at=retry_at, now=now)
        if settled is None:
            log.warning("reminder email %s: claim lapsed before its result was recorded",
                        email.message_id)
        elif settled:
            observability.REMINDERS.labels(status).inc(settled)


async def _teams(conn: asyncpg.Connection, team_ids: Iterable[str]) -> dict[str, r.TeamView]:
    """Return the name and time zone of each team named (read from its stream)."""
    found: dict[str, r.TeamView] = {}
    for team_id in sorted(set(team_ids) - {""}):
        team, _ = await load(conn, d.team_stream(team_id), d.evolve_team)
        if team is not None:
            found[team_id] = r.TeamView(team.name, team.timezone)
    return found

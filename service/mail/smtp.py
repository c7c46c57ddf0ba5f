"""Speak SMTP: the server a ``CSPERF_SMTP_URL`` names, and one email handed to it.

``smtp://user:pass@host:587?starttls=true`` (STARTTLS), ``smtps://user:pass@host:465``
(TLS from the start) or ``smtp://host:25`` (a relay on a trusted network). The standard
library's ``smtplib`` does the talking, in a worker thread: one email at a time per worker
needs no asynchronous client, and no dependency is added for it.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

Security = Literal["none", "starttls", "tls"]
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class SmtpServer:
    """Where to hand emails over, and how to log in (the password never shown)."""

    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def origin(self) -> str:
        """Return what may be logged: host and port."""
        return f"{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpServer:
    """Read an SMTP URL; raise ValueError saying what is wrong without quoting it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("not a valid URL (smtp://user:pass@host:587?starttls=true)") from None
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("the scheme must be smtp or smtps")
    if not parts.hostname:
        raise ValueError("the URL must name a host")
    query = parse_qs(parts.query)
    unknown = set(query) - {"starttls"}
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}; only starttls is known")
    starttls = query.get("starttls", ["false"])[-1].lower() in _TRUE
    if parts.scheme == "smtps" and starttls:
        raise ValueError("smtps is TLS from the start; starttls applies to smtp only")
    security: Security = "tls" if parts.scheme == "smtps" else (
        "starttls" if starttls else "none")
    return SmtpServer(
        host=parts.hostname, port=port or (465 if security == "tls" else 25),
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


class Refused(Exception):
    """The server answered an SMTP error; 5xx is permanent, anything else may pass."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"SMTP {code} {text}"[:300])
        self.code = code

    @property
    def permanent(self) -> bool:
        """Tell whether trying again cannot help (a 5xx answer)."""
        return 500 <= self.code < 600


def _send(server: SmtpServer, message: EmailMessage, timeout: float) -> None:
    client = (smtplib.SMTP_SSL(server.host, server.port, timeout=timeout,
                               context=ssl.create_default_context())
              if server.security == "tls" else smtplib.SMTP(server.host, server.port,
                                                             timeout=timeout))
    with client:
        if server.security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if server.username is not None:
            client.login(server.username, server.password or "")
        try:
            client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise Refused(code, text.decode(errors="replace")) from None
        except smtplib.SMTPResponseException as exc:
            raw: bytes | str = exc.smtp_error
            answer = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            raise Refused(exc.smtp_code, answer) from None


async def send(server: SmtpServer, message: EmailMessage, *, wait_seconds: float) -> None:
    """Hand one email to the server, waiting at most ``wait_seconds`` for each answer; raise
    Refused or OSError/SMTPException when it fails."""
    await asyncio.to_thread(_send, server, message, wait_seconds)

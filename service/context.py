"""What a running service holds: settings, database, clock, runners."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from service.caching import LRU, Shared
from service.config import Settings
from service.domain.principal import Principal, VerifiedToken
from service.notifier import Notifier
from service.projections.runner import ProjectionRunner
from service.queries.documents import StoredRanking
from service.store.database import Database
from service.store.feed import CommitSignal
from service.webhooks.sender import WebhookSender

Clock = Callable[[], datetime]

#: Aggregates by (stream, evolve, fold): the state folded so far and the stream version it is
#: at. Loading reads only the events after that version (service.commands.base.load).
StreamStates = LRU[tuple[object, ...], tuple[object, int]]

#: How many folded events the held aggregates may stand for in all (a 1,000-agent month is
#: about 2,000).
STATE_CAPACITY = 50_000


def stream_states(capacity: int = STATE_CAPACITY) -> StreamStates:
    """Return an empty cache of aggregates, weighed by the events folded into each."""
    return LRU(capacity, lambda held: held[1] + 1)


#: How long a cached entry lives while the process hears every invalidation: a bound on memory
#: kept by what is no longer used, not on staleness (a change drops it at once).
SHARED_TTL_SECONDS = 300.0
#: How long an entry is served while invalidations may be missed (the listener is down).
FALLBACK_TTL_SECONDS = 1.0
#: Verified API keys held, and the bytes of ranking documents (a 1,000-agent one is ~300 KB).
KEYS_HELD = 10_000
#: Verified JWTs held: a token cannot be revoked, so each is held until its exp passes.
TOKENS_HELD = 10_000
RANKING_BYTES_HELD = 64 * 1024 * 1024


#: Bytes of finished ranking workbooks held (a 1,000-agent one is ~45 KB).
WORKBOOK_BYTES_HELD = 16 * 1024 * 1024
#: A frozen ranking's workbook by its document's revision: the file name and the bytes.
Workbooks = LRU[UUID, tuple[str, bytes]]


def workbook_cache() -> Workbooks:
    """Return an empty cache of ranking workbooks, weighed in bytes (a revision never changes,
    so nothing is dropped but by size)."""
    return LRU(WORKBOOK_BYTES_HELD, lambda held: len(held[1]))


def key_cache() -> Shared[bytes, Principal]:
    """Return an empty cache of verified API keys' principals, by the key's SHA-256."""
    return Shared("keys", KEYS_HELD, ttl=SHARED_TTL_SECONDS, fallback_ttl=FALLBACK_TTL_SECONDS)


def token_cache() -> LRU[bytes, VerifiedToken]:
    """Return an empty cache of verified JWTs, by the token's HMAC (as keys are held)."""
    return LRU(TOKENS_HELD, lambda _token: 1)


def ranking_cache() -> Shared[tuple[str, str], StoredRanking]:
    """Return an empty cache of closed months' rankings, by (team, period), weighed in bytes."""
    return Shared("rankings", RANKING_BYTES_HELD, ttl=SHARED_TTL_SECONDS,
                  fallback_ttl=FALLBACK_TTL_SECONDS,
                  weight=lambda stored: len(stored.document.body))


def system_clock() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


@dataclass
class Extras:
    """What the running app adds to the context, by name and type."""

    #: Wakes the live feed's streams when this process commits (service.api.stream).
    commit_signal: CommitSignal | None = None
    #: Wakes this process's reminder sender (the scheduler records reminders).
    reminder_wake: Callable[[], None] | None = None
    #: This process's webhook sender, when it runs one.
    webhook_sender: WebhookSender | None = None
    #: How many Server-Sent Events streams this process serves.
    open_streams: int = 0
    #: The month whose metric partitions this process has made (ingestion).
    partitions_month: str | None = None


@dataclass
class ServiceContext:
    """Shared by every request; nothing here is per-process state two replicas could disagree on."""

    settings: Settings
    db: Database
    clock: Clock = system_clock
    runner: ProjectionRunner | None = None
    notifier: Notifier | None = None
    #: dropped in every process at once when they change (service.store.invalidation)
    keys: Shared[bytes, Principal] = field(default_factory=key_cache)
    rankings: Shared[tuple[str, str], StoredRanking] = field(default_factory=ranking_cache)
    #: checked against the clock on every use (service.api.auth.authenticate)
    tokens: LRU[bytes, VerifiedToken] = field(default_factory=token_cache)
    #: a frozen ranking's workbook, by revision (service.api.ranking_table)
    workbooks: Workbooks = field(default_factory=workbook_cache)
    #: checked against the stream's version on every use (service.commands.base.load)
    states: StreamStates = field(default_factory=stream_states)
    extras: Extras = field(default_factory=lambda: Extras())
    #: CSPERF_READ_DATABASE_URL's pool (a replica), when configured: see ``lag_tolerant``.
    read_db: Database | None = None

    def lag_tolerant(self) -> Database:
        """Return the pool for reads that may be a moment behind the latest commits (the
        replica when one is configured). A read that must see what a request just wrote
        (KPI totals after a 200, anything a command decides on) uses ``db``."""
        return self.read_db or self.db

    def shared_caches(self) -> tuple[Shared[Any, Any], ...]:
        """Return the caches a ``NOTIFY csperf_cache`` names."""
        return (self.keys, self.rankings)

    def dropped(self, name: str) -> None:
        """Drop the named cache in this process (a command changed it: every other process
        drops it on the command's ``NOTIFY``)."""
        for cache in self.shared_caches():
            if cache.name == name:
                cache.clear()

    def committed(self, stream_types: Collection[str] | None = None,
                  event_types: Collection[str] | None = None) -> None:
        """Wake projections after a command's events committed (of these types to streams of
        these types; None: of any type)."""
        if self.notifier is not None:
            self.notifier.poke(stream_types, event_types)

"""The process's caches.

``LRU``: a least-recently-used map bounded by the total weight of what it holds, for what is
checked on every use (an aggregate against its stream version, a verified JWT against the
clock), so it saves work and never decides anything.

``Shared``: what changes rarely (verified API keys, closed months' rankings), served without
asking the database, and dropped in every process at once by a ``NOTIFY`` from the command
that changes it, with a short time-to-live while the notifications may be missed.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TLRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """Values by key; the least recently used go first once their weights pass the capacity."""

    def __init__(self, capacity: int, weight: Callable[[V], int]) -> None:
        self.capacity = capacity
        self._weight = weight
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._total = 0

    def get(self, key: K) -> V | None:
        """Return the value held under key, if any."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: K, value: V) -> None:
        """Hold value under key; a value heavier than the whole capacity is not held."""
        self.discard(key)
        weight = self._weight(value)
        if weight > self.capacity:
            return
        self._items[key] = (value, weight)
        self._total += weight
        while self._total > self.capacity:
            _, (_, dropped) = self._items.popitem(last=False)
            self._total -= dropped

    def discard(self, key: K) -> None:
        """Forget the value under key."""
        item = self._items.pop(key, None)
        if item is not None:
            self._total -= item[1]

    @property
    def total(self) -> int:
        """Return the summed weight of what is held."""
        return self._total


class Shared(Generic[K, V]):
    """What changes rarely, cached in this process and dropped in every process at once.

    A command that changes what is cached sends ``NOTIFY csperf_cache`` naming the cache in
    its own transaction (``service.store.invalidation``); every process listens and drops the
    whole cache when the name arrives, so no replica serves the old value for longer than the
    notification takes. While this process is not listening (not yet connected, or the
    connection is lost), nothing held is served after ``fallback_ttl`` seconds: the worst a
    missed notification costs is that long. Size-bounded, least recently used first.
    """

    def __init__(
        self, name: str, maxsize: int, *, ttl: float, fallback_ttl: float,
        weight: Callable[[V], int] | None = None, timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.ttl = ttl
        self.fallback_ttl = fallback_ttl
        self.listening = False
        self._timer = timer
        self._generation = 0
        size = (lambda held: weight(held[0])) if weight is not None else None
        self._held: TLRUCache[K, tuple[V, float]] = TLRUCache(
            maxsize, ttu=lambda _key, _held, now: now + self.ttl, timer=timer, getsizeof=size
        )

    def get(self, key: K) -> V | None:
        """Return what is held under key, unless it may have been changed since."""
        # Indexed, not .get(): TLRUCache.get wraps a membership test and an index in a timer
        # context, 1.4 us a hit against 0.3, and two are asked on every held ranking read.
        try:
            value, at = self._held[key]
        except KeyError:
            return None
        if not self.listening and self._timer() - at > self.fallback_ttl:
            return None
        return value

    def stamp(self) -> int:
        """Return the current generation; take it before reading what ``put`` will hold."""
        return self._generation

    def put(self, key: K, value: V, stamp: int) -> None:
        """Hold value, read after ``stamp()`` returned stamp, unless dropped since: a value read
        before a change must not outlive the notification of that change."""
        if stamp != self._generation:
            return
        with contextlib.suppress(ValueError):  # heavier than the whole cache: not held
            self._held[key] = (value, self._timer())

    def clear(self) -> None:
        """Drop everything held, and every value being read meanwhile."""
        self._generation += 1
        self._held.clear()

    def __len__(self) -> int:
        return len(self._held)

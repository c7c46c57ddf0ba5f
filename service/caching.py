"""A least-recently-used map bounded by the total weight of what it holds.

The service caches only what it can check against the database on every use (a ranking under
its revision, an aggregate under its stream version), so a cache here saves work and never
decides anything: two replicas with different caches still answer the same.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

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

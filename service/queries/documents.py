"""Frozen documents (published rankings) served from memory, checked against their revision.

A published ranking of a large team is a few hundred kilobytes that PostgreSQL would detoast,
decompress and send on every read, which costs far more than the request around it. Each
ranking row carries a revision that is new on every write, so a reader asks PostgreSQL for the
revision and gets the document only when it differs from the one held here. Every read still
asks the database, so two replicas never serve different versions of a row: the cache saves
bytes, never a decision.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from uuid import UUID

import asyncpg

#: What the cache may hold in all; a 1,000-agent ranking is about 300 KB.
DEFAULT_CAPACITY = 64 * 1024 * 1024


@dataclass(frozen=True)
class Document:
    """A stored document and the revision it was read at."""

    revision: UUID
    body: bytes


class DocumentCache:
    """Least recently used documents by key, bounded by their total size in bytes."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, ...], Document] = OrderedDict()
        self._size = 0

    def get(self, key: tuple[str, ...]) -> Document | None:
        """Return the document held under key, if any."""
        document = self._items.get(key)
        if document is not None:
            self._items.move_to_end(key)
        return document

    def put(self, key: tuple[str, ...], document: Document) -> None:
        """Hold document under key, dropping the least recently used beyond the capacity."""
        self.discard(key)
        if len(document.body) > self.capacity:
            return
        self._items[key] = document
        self._size += len(document.body)
        while self._size > self.capacity:
            _, dropped = self._items.popitem(last=False)
            self._size -= len(dropped.body)

    def discard(self, key: tuple[str, ...]) -> None:
        """Forget the document under key."""
        dropped = self._items.pop(key, None)
        if dropped is not None:
            self._size -= len(dropped.body)

    @property
    def size(self) -> int:
        """Return the bytes held."""
        return self._size


async def read_revisioned(
    conn: asyncpg.Connection, cache: DocumentCache, key: tuple[str, ...], query: str,
    *args: object,
) -> Document | None:
    """Return the current document of a row, reading its body only when its revision changed.

    query selects ``revision`` and ``document`` and takes the known revision (or NULL) as its
    last parameter; it answers a NULL document when that revision is still current.
    """
    held = cache.get(key)
    row = await conn.fetchrow(query, *args, held.revision if held else None)
    if row is None:
        cache.discard(key)
        return None
    if held is not None and row["document"] is None:
        return held
    document = Document(row["revision"], row["document"].encode())
    cache.put(key, document)
    return document

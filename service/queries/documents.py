"""Frozen documents (published rankings) served from memory, checked against their revision.

A published ranking of a large team is a few hundred kilobytes that PostgreSQL would detoast,
decompress and send on every read, which costs far more than the request around it. Each
ranking row carries a revision that is new on every write, so a reader asks PostgreSQL for the
revision and gets the document only when it differs from the one held here. Every read still
asks the database, so two replicas never serve different versions of a row: the cache saves
bytes, never a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from service.caching import LRU

#: What the cache may hold in all; a 1,000-agent ranking is about 300 KB.
DEFAULT_CAPACITY = 64 * 1024 * 1024


@dataclass(frozen=True)
class Document:
    """A stored document and the revision it was read at."""

    revision: UUID
    body: bytes


DocumentCache = LRU[tuple[str, ...], Document]


def document_cache(capacity: int = DEFAULT_CAPACITY) -> DocumentCache:
    """Return an empty cache holding at most capacity bytes of documents."""
    return LRU(capacity, lambda document: len(document.body))


async def read_revisioned(
    conn: asyncpg.Connection, cache: DocumentCache, key: tuple[str, ...], query: str,
    *args: object,
) -> tuple[Document, asyncpg.Record] | None:
    """Return the current document of a row (and the row), reading the body only when new.

    query selects ``revision`` and ``document`` (and whatever else the caller needs) and takes
    the known revision (or NULL) as its last parameter; it answers a NULL document when that
    revision is still current.
    """
    held = cache.get(key)
    row = await conn.fetchrow(query, *args, held.revision if held else None)
    if row is None:
        cache.discard(key)
        return None
    if held is not None and row["document"] is None:
        return held, row
    document = Document(row["revision"], row["document"].encode())
    cache.put(key, document)
    return document, row

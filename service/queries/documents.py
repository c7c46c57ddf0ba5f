"""Closed months' stored documents as the API serves them: JSON bytes under their revision."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class Document:
    """A stored document and the revision it was read at (its ETag)."""

    revision: UUID
    body: bytes


@dataclass(frozen=True)
class StoredRanking:
    """A frozen ranking as stored, and whether the store had caught up with its month."""

    document: Document
    status: str
    #: the projection has applied every event of the month's stream committed before the read,
    #: so the row says what the stream says (closed or published, never reopened since)
    current: bool

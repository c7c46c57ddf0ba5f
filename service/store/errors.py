"""Errors the store raises; the API maps each to one HTTP status."""

from __future__ import annotations


class ConcurrencyError(Exception):
    """An append stated an expected version that the stream no longer has."""

    def __init__(self, stream_id: str, expected: int | None, current: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {current}, not the expected {expected}"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.current = current


class DatabaseUnavailable(Exception):
    """PostgreSQL cannot be reached right now; the caller should retry later."""

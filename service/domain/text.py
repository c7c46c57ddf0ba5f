"""What text the service can store: PostgreSQL's text and JSONB hold neither NUL nor a lone
UTF-16 surrogate, so input carrying one is refused up front, naming the field."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
#: Free text in a query string: no control characters (a URL cannot carry a lone surrogate).
PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f]*$"


def unusable(text: str) -> str | None:
    """Return why PostgreSQL cannot store the text, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character"
    # Most text is ASCII, and ASCII holds no surrogate: the regular expression is skipped.
    if not text.isascii() and _SURROGATE.search(text):
        return "contains a lone UTF-16 surrogate (not a character)"
    return None


def unusable_strings(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[
        tuple[tuple[str | int, ...], str]]:
    """Yield (path, reason) for every string, key or value, of decoded JSON that is unusable."""
    if isinstance(value, str):
        reason = unusable(value)
        if reason is not None:
            yield path, reason
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and (reason := unusable(key)) is not None:
                yield (*path, key), f"the key {reason}"
            yield from unusable_strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unusable_strings(item, (*path, index))

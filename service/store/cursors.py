"""The one codec of opaque cursors in URLs: our bytes as base64url without padding.

The event feed's position, a list's keyset and the quarantine listing's place all travel as
such text; what is inside is each reader's own (``Cursor``, ``api.pagination``, the quarantine),
and a text that does not decode is refused the same way everywhere (ValueError).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson


def pack(raw: bytes) -> str:
    """Return the URL-safe text of a cursor's bytes."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unpack(text: str) -> bytes:
    """Return the bytes of a cursor's text; raise ValueError when it is not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a valid cursor") from exc


def pack_json(value: Any) -> str:
    """Return the cursor text of a JSON value."""
    return pack(orjson.dumps(value))


def unpack_json(text: str) -> Any:
    """Return the JSON value of a cursor's text; raise ValueError when it holds none."""
    try:
        return orjson.loads(unpack(text))
    except orjson.JSONDecodeError as exc:
        raise ValueError("not a valid cursor") from exc

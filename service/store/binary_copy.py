"""Rows of arrays for PostgreSQL's binary COPY, written here rather than by asyncpg.

asyncpg encodes an array at about a microsecond an element, most of it an ``isinstance``
check against an abstract class for each element (is it a sub-array?): a month's scorecard
KPIs as arrays, 450,000 elements for 1,000 agents on 50 KPIs, took 190-260 ms of the
process's CPU that way, against 45-55 ms for the same numbers as 50,000 rows of scalars,
whose COPY cost PostgreSQL 100-110 ms against 20-30 ms for the arrays (at load 8). Written
here, an array of numbers without nulls is one ``struct`` call.

Each encoder returns a whole field: its length, then the value in PostgreSQL's binary form
(``array_send``: dimensions, whether any element is null, the element type, the length and
lower bound, then each element's length and bytes; -1 for a null). ``copy`` sends rows of
such fields.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import AsyncIterator, Iterable, Sequence
from itertools import pairwise
from typing import Any

import asyncpg

_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # the signature, no flags, no extension
_TRAILER = b"\xff\xff"
#: About how many fields ``copy`` sends at a time.
_PIECE = 1000
_NULL = b"\xff\xff\xff\xff"
#: A field's length, then a one-dimensional array's header: its dimensions (1), whether it
#: holds a null, its element type, its length and its lower bound (1).
_ARRAY = struct.Struct(">iiiIii")
_FIELDS = struct.Struct(">h")
_INT8_FIELD = struct.Struct(">iq")
_FLOAT8 = 701
_INT8 = 20
_BOOL = 16
_TEXT = 25
#: Text elements as sent, by value: a few recur (statuses, sources).
_TEXTS: dict[str | None, bytes] = {None: _NULL}
_ELEMENT = {code: struct.Struct(">i" + code).pack for code in "dq"}
_LENGTH_8 = b"\x00\x00\x00\x08" + bytes(8)
_BOOLS = {True: b"\x00\x00\x00\x01\x01", False: b"\x00\x00\x00\x01\x00", None: _NULL}


def _field(oid: int, body: bytes, count: int, nulls: bool) -> bytes:
    """Return an array field: its length, its header, then ``count`` elements (``body``)."""
    return _ARRAY.pack(20 + len(body), 1, nulls, oid, count, 1) + body


def _by_row(oid: int, elements: Sequence[bytes], bounds: Sequence[int]) -> list[bytes]:
    """Return each row's array field: its elements between its bounds, each encoded."""
    return [_field(oid, b"".join(row), len(row), _NULL in row)
            for row in (elements[start:end] for start, end in pairwise(bounds))]


def _fixed(oid: int, code: str, values: Sequence[Any], bounds: Sequence[int]) -> list[bytes]:
    """Return each row's array field of elements of 8 bytes (struct ``code``)."""
    try:
        # No element is null, found at C speed (``None in values`` compares each with None):
        # then the elements are the array's bytes, each after its length (8).
        packed = array(code, values)
    except TypeError:
        element = _ELEMENT[code]
        return _by_row(oid, [_NULL if v is None else element(8, v) for v in values], bounds)
    if sys.byteorder == "little":
        packed.byteswap()
    data = packed.tobytes()
    spaced = bytearray(_LENGTH_8 * len(values))
    for i in range(8):
        spaced[4 + i::12] = data[i::8]
    whole = bytes(spaced)
    return [_field(oid, whole[12 * start:12 * end], end - start, False)
            for start, end in pairwise(bounds)]


def float8_arrays(values: Sequence[float | None], bounds: Sequence[int]) -> list[bytes]:
    """Return double precision[] fields: row i holds ``values[bounds[i]:bounds[i + 1]]``.

    A month's column is encoded at once: per card, the calls cost more than the elements.
    """
    return _fixed(_FLOAT8, "d", values, bounds)


def int8_arrays(values: Sequence[int | None], bounds: Sequence[int]) -> list[bytes]:
    """Return bigint[] fields, as ``float8_arrays``."""
    return _fixed(_INT8, "q", values, bounds)


def text_arrays(values: Sequence[str | None], bounds: Sequence[int]) -> list[bytes]:
    """Return text[] fields, as ``float8_arrays``."""
    try:
        elements = list(map(_TEXTS.__getitem__, values))
    except KeyError:
        if len(_TEXTS) > 1024:
            _TEXTS.clear()
            _TEXTS[None] = _NULL
        for v in values:
            if v not in _TEXTS:
                data = v.encode()  # type: ignore[union-attr]  # None is always there
                _TEXTS[v] = len(data).to_bytes(4, "big") + data
        elements = list(map(_TEXTS.__getitem__, values))
    return _by_row(_TEXT, elements, bounds)


def bool_arrays(values: Sequence[bool | None], bounds: Sequence[int]) -> list[bytes]:
    """Return boolean[] fields, as ``float8_arrays``."""
    return _by_row(_BOOL, list(map(_BOOLS.__getitem__, values)), bounds)


def int8(value: int) -> bytes:
    """Return a bigint field."""
    return _INT8_FIELD.pack(8, value)


async def copy(conn: asyncpg.Connection, table: str, columns: Sequence[str],
               rows: Iterable[Sequence[bytes]]) -> None:
    """COPY rows of encoded fields (one per column, in order) into a table."""

    async def data() -> AsyncIterator[bytes]:
        # Sent in pieces of some rows: one piece of a whole month (4 MB for 1,000 agents on
        # 50 KPIs) cost as much again to join.
        piece = [_HEADER]
        for row in rows:
            piece.append(_FIELDS.pack(len(row)))
            piece += row
            if len(piece) > _PIECE:
                yield b"".join(piece)
                piece = []
        piece.append(_TRAILER)
        yield b"".join(piece)

    await conn.copy_to_table(table, source=data(), columns=list(columns), format="binary")

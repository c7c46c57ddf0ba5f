"""Arrays written for PostgreSQL's binary COPY by ``service.store.binary_copy`` arrive as the
values they were made from: nulls anywhere or everywhere, empty arrays, any text."""

from __future__ import annotations

from service.store import binary_copy
from service.store.database import Database

FLOATS = [(1.5, -0.0, 1e-300, 73.33333333333333), (None, 2.0, None), (None, None), (), (7, 8)]
INTS = [(1, 2**62), (None,), (), (-5, None, 3), (0,)]
TEXTS = [("scheme", "équipe ✓", ""), (None, "a\"b\\c", None), (), ("measured",), (None,)]
BOOLS = [(True, False), (None, True), (), (False,), (None, None)]


def _bounds(rows: list[tuple[object, ...]]) -> list[int]:
    bounds = [0]
    for row in rows:
        bounds.append(bounds[-1] + len(row))
    return bounds


async def test_rows_of_arrays_arrive_as_made(db: Database, uid: str) -> None:
    table = f"binary_copy_{uid}"
    columns = [FLOATS, INTS, TEXTS, BOOLS]
    encoders = [binary_copy.float8_arrays, binary_copy.int8_arrays, binary_copy.text_arrays,
                binary_copy.bool_arrays]
    # Each column of the rows encoded at once, each row its run of the column.
    fields = [encode([v for row in rows for v in row], _bounds(rows))
              for encode, rows in zip(encoders, columns, strict=True)]
    async with db.transaction() as conn:
        await conn.execute(f"CREATE TEMP TABLE {table} (n bigint, f float8[], i bigint[],"
                           " t text[], b boolean[]) ON COMMIT DROP")
        await binary_copy.copy(conn, table, ["n", "f", "i", "t", "b"],
                               zip([binary_copy.int8(n) for n in range(len(FLOATS))], *fields,
                                   strict=True))
        rows = await conn.fetch(f"SELECT n, f, i, t, b, array_length(f, 1) AS length,"
                                f" array_ndims(f) AS dims FROM {table} ORDER BY n")
    assert [r["n"] for r in rows] == list(range(len(FLOATS)))
    for r, f, i, t, b in zip(rows, FLOATS, INTS, TEXTS, BOOLS, strict=True):
        assert (tuple(r["f"]), tuple(r["i"]), tuple(r["t"]), tuple(r["b"])) == (f, i, t, b)
    # An empty array is PostgreSQL's own empty array ('{}'), not one of length 0.
    assert (rows[3]["length"], rows[3]["dims"]) == (None, None)
    assert rows[0]["length"] == 4

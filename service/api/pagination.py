"""One way to page, sort and filter every list of the API.

- ``limit``: 1 to 1000 items, 100 by default.
- ``after``: the opaque cursor of the previous page's ``next``. Cursors are *keysets* (the sort
  values of the last item), not offsets, so a row added or removed between two requests never
  makes a page repeat or skip another row.
- ``sort``: fields from the endpoint's allow-list separated by commas, ``-`` for descending
  (``sort=-score,agent_id``). The list's unique key always ends the order, so it is total.
  ``null`` sorts last ascending and first descending, as in PostgreSQL.
- Filters are plain query parameters named after the field they match.
- The answer carries ``next`` (``null`` on the last page) and, when there is a next page, a
  ``Link: <url>; rel="next"`` header; CSV answers carry the same ``Link`` and ``X-Next-Cursor``.

A bad ``limit``, ``sort`` or ``after`` is a 422 whose ``errors`` name the parameter.

Most lists are small and bounded (a team's agents, a month's ledger), so ``paginate`` sorts and
slices them in memory; a list that may grow without bound (deliveries, a stream's history)
pages in SQL with the same cursor format (``Paging.after_key``).
"""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Query, Request, Response

from service.api.problems import Problem
from service.store import cursors

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_CURSOR_VERSION = 1

LimitQuery = Annotated[
    int,
    Query(ge=1, le=MAX_LIMIT, description=f"items per page, 1 to {MAX_LIMIT}"),
]
AfterQuery = Annotated[
    str | None,
    Query(max_length=1000, description="the cursor of the previous page's `next`"),
]


def invalid(parameter: str, reason: str, location: str = "query") -> Problem:
    """Return the 422 that names a bad request parameter."""
    return Problem(
        422, f"invalid request: {parameter}", kind="validation-error",
        errors=[{"field": parameter, "reason": reason, "location": location}],
    )


@dataclass(frozen=True)
class Sort:
    """An order: (field, descending) pairs, most significant first."""

    fields: tuple[tuple[str, bool], ...]

    @property
    def text(self) -> str:
        """Return the canonical ``sort`` parameter of this order."""
        return ",".join(("-" if desc else "") + name for name, desc in self.fields)

    def then(self, key: Sequence[str]) -> "Sort":
        """Return this order followed by the key fields it does not already name."""
        named = {name for name, _ in self.fields}
        return Sort(self.fields + tuple((k, False) for k in key if k not in named))


def parse_sort(text: str | None, allowed: Sequence[str], default: str) -> Sort:
    """Parse ``sort``; refuse (422) a field outside the allow-list or named twice."""
    raw = text if text not in (None, "") else default
    assert raw is not None
    fields: list[tuple[str, bool]] = []
    for part in raw.split(","):
        part = part.strip()
        desc = part.startswith("-")
        name = part[1:] if desc or part.startswith("+") else part
        if name not in allowed:
            shown = name if len(name) <= 40 and name.isprintable() else name[:40].encode(
                "unicode_escape").decode()
            raise invalid("sort", f"cannot sort by {shown!r}; sort by one of {list(allowed)},"
                                  " with - for descending")
        if any(name == seen for seen, _ in fields):
            raise invalid("sort", f"{name!r} is named twice")
        fields.append((name, desc))
    return Sort(tuple(fields))


@dataclass(frozen=True)
class Paging:
    """A request's page: its size, order and where it starts."""

    limit: int
    sort: Sort
    after_key: list[Any] | None = None

    def cursor(self, key: Sequence[Any]) -> str:
        """Return the cursor that resumes after an item whose sort values are ``key``."""
        return encode_cursor(self.sort.text, key)


def encode_cursor(sort_text: str, key: Sequence[Any]) -> str:
    """Return the opaque cursor for a keyset under an order."""
    return cursors.pack_json({"v": _CURSOR_VERSION, "s": sort_text, "k": list(key)})


def decode_cursor(text: str, sort_text: str) -> list[Any]:
    """Return a cursor's keyset; refuse (422) one that is not ours or was made for another
    order."""
    try:
        payload = cursors.unpack_json(text)
    except ValueError as exc:
        raise invalid("after", "not a cursor returned by this list") from exc
    if (
        not isinstance(payload, dict)
        or payload.get("v") != _CURSOR_VERSION
        or not isinstance(payload.get("k"), list)
        or not isinstance(payload.get("s"), str)
    ):
        raise invalid("after", "not a cursor returned by this list")
    if payload["s"] != sort_text:
        raise invalid("after", "the cursor was made for another sort order; start again"
                               " without `after`")
    key: list[Any] = payload["k"]
    return key


def paging(
    allowed: Sequence[str], default: str, key: Sequence[str]
) -> Callable[..., Paging]:
    """Return the dependency that reads ``limit``, ``after`` and ``sort`` for one list.

    ``allowed`` are the sortable fields, ``default`` the order when ``sort`` is absent, and
    ``key`` the fields that identify an item (the last tie-breaker).
    """
    parse_sort(default, allowed, default)  # a wrong default is a programming error: fail early
    described = ", ".join(allowed)

    # Built here, not inside the annotation: FastAPI reads the signature at run time.
    sort_query = Query(
        max_length=200,
        description=f"comma-separated fields, `-` for descending; one or more of: {described}"
                    f" (default `{default}`)",
    )

    def dependency(
        limit: LimitQuery = DEFAULT_LIMIT,
        after: AfterQuery = None,
        sort: Annotated[str | None, sort_query] = None,
    ) -> Paging:
        order = parse_sort(sort, allowed, default).then(key)
        after_key = decode_cursor(after, order.text) if after else None
        if after_key is not None and len(after_key) != len(order.fields):
            raise invalid("after", "not a cursor returned by this list")
        return Paging(limit=limit, sort=order, after_key=after_key)

    return dependency


# -- in-memory paging -------------------------------------------------------------------------


def sort_value(value: Any) -> Any:
    """Return a JSON-safe value that orders like ``value`` (cursors carry these)."""
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _compare(a: Sequence[Any], b: Sequence[Any], descending: Sequence[bool]) -> int:
    for x, y, desc in zip(a, b, descending, strict=True):
        if x == y:
            continue
        if x is None:  # nulls last ascending, first descending
            return -1 if desc else 1
        if y is None:
            return 1 if desc else -1
        try:
            order = -1 if x < y else 1
        except TypeError:  # mixed types in one column: order by their text
            order = -1 if str(x) < str(y) else 1
        return -order if desc else order
    return 0


@dataclass(frozen=True)
class Page:
    """One page of a list and the cursor of the next (None on the last page)."""

    items: list[Any]
    next: str | None


def _item_value(item: Any, name: str) -> Any:
    return item[name]


def paginate(
    items: Sequence[Any], paging: Paging, value: Callable[[Any, str], Any] = _item_value,
) -> Page:
    """Sort items by the request's order and return the page after its cursor.

    ``value(item, field)`` reads a sort field (by default ``item[field]``).
    """
    names = [name for name, _ in paging.sort.fields]
    descending = [desc for _, desc in paging.sort.fields]
    keyed: list[tuple[list[Any], Any]] = [
        ([sort_value(value(item, n)) for n in names], item) for item in items
    ]

    def order(a: tuple[list[Any], Any], b: tuple[list[Any], Any]) -> int:
        return _compare(a[0], b[0], descending)

    keyed.sort(key=functools.cmp_to_key(order))
    start = 0
    if paging.after_key is not None:
        after = paging.after_key
        start = next(
            (i for i, (k, _) in enumerate(keyed) if _compare(k, after, descending) > 0),
            len(keyed),
        )
    chunk = keyed[start : start + paging.limit]
    more = start + paging.limit < len(keyed)
    return Page(items=[item for _, item in chunk],
                next=paging.cursor(chunk[-1][0]) if more and chunk else None)


def matches(value: Any, wanted: Any) -> bool:
    """Tell whether a filter (None: no filter) admits a value."""
    return wanted is None or value == wanted


# -- the answer -------------------------------------------------------------------------------


def next_link(request: Request, cursor: str) -> str:
    """Return the ``Link`` header value of the next page."""
    return f'<{request.url.include_query_params(after=cursor)}>; rel="next"'


def link(response: Response, request: Request, cursor: str | None, *, csv: bool = False
         ) -> Response:
    """Add the next page's ``Link`` (and, for CSV, ``X-Next-Cursor``) to a response."""
    if cursor:
        response.headers["Link"] = next_link(request, cursor)
        if csv:
            response.headers["X-Next-Cursor"] = cursor
    return response

"""CSV for the lists a BI tool loads: `Accept: text/csv` on the same endpoints as JSON."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

#: Cells a spreadsheet would run as a formula start with one of these (plus tab and CR).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: The OpenAPI answers of a route that also answers `Accept: text/csv`.
CSV_ANSWER: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}


def wants_csv(request: Request) -> bool:
    """Tell whether the client asked for CSV rather than JSON."""
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept.split(",")[0]


def cell(value: Any) -> str:
    """Render one value; text that a spreadsheet would evaluate is neutralised with a quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, date):  # datetimes too: ISO 8601, as in JSON
        return value.isoformat()
    if isinstance(value, list | tuple):
        return cell(",".join(str(v) for v in value))
    text = value if isinstance(value, str) else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def _lines(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180: CRLF, quotes doubled
    writer.writerow(columns)
    for index, row in enumerate(rows, 1):
        writer.writerow([cell(row.get(c)) for c in columns])
        if index % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_response(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], filename: str
) -> StreamingResponse:
    """Stream rows as CSV with a header row."""
    return StreamingResponse(
        _lines(rows, columns),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )

"""Tables for the lists a BI tool or HR loads: CSV or Excel on the same endpoints as JSON.

One negotiation (``table_format``) and one answer (``table_response``) for every list: a route
asks ``wants_table(request)`` and answers ``table_response(request, rows, columns, name)``;
the ``Accept`` header picks CSV (``text/csv``) or Excel (the OOXML spreadsheet type).

Excel cells are typed: numbers stay numbers, instants are Excel date-times **in UTC** (the
same instant the JSON and CSV give, shown with a "UTC" suffix; a list can span teams in
several time zones, and Excel cells carry no zone), calendar days are dates, and the columns a
route names as money use the row's currency format (``€#,##0.00``, ``₩#,##0``). A list that
spans teams (sanctions, payroll) gets one sheet per team. The workbook is written by
XlsxWriter in ``constant_memory`` mode into a temporary file (each row goes to disk as it is
written; ``RowSheet`` writes each row's XML in one pass) and streamed from there, so a large
list is never held whole as Python objects. The temporary files go to ``/dev/shm`` where the
machine has it (memory, not the disk: a workbook's dozen small part files cost a fixed 10-20 ms
to create, write and remove on a disk).
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal

import xlsxwriter  # type: ignore[import-untyped]
from babel import Locale, UnknownLocaleError
from babel.numbers import get_currency_precision, get_currency_symbol
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from service.api.xlsx_sheet import RowSheet

#: Cells a spreadsheet would run as a formula start with one of these (plus tab and CR).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TableFormat = Literal["csv", "xlsx"]
_MEDIA: dict[str, TableFormat] = {"text/csv": "csv", XLSX: "xlsx"}
#: The media type of each table format (what a client puts in ``Accept``).
TABLE_MEDIA: dict[TableFormat, str] = {name: media for media, name in _MEDIA.items()}

#: The OpenAPI answers of a route that also answers as a table (CSV or Excel).
CSV_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, XLSX: {}}}}

#: Text in these columns that reads as ISO 8601 is an instant or a day (JSON-shaped rows
#: carry times as strings); elsewhere text stays text, however it looks.
_TIME_COLUMN = re.compile(r"(_at|^since|^date|^day)$")
_CHUNK = 64 * 1024
#: Characters Excel refuses in a sheet name.
_SHEET_UNSAFE = re.compile(r"[\[\]:*?/\\]")
_MAX_WIDTH = 60
#: Where a workbook's temporary files go: a tmpfs when there is one (None: the system's). Shared
#: like /tmp, and as safe: the files are made by mkstemp (O_EXCL, mode 0600), never by name.
_SHM = "/dev/shm"  # noqa: S108
TMPDIR = _SHM if os.access(_SHM, os.W_OK | os.X_OK) else None
#: A finished workbook up to this size may be handed to ``keep`` (a cache) whole.
KEEP_BYTES = 1024 * 1024


def table_format(request: Request) -> TableFormat | None:
    """Return the table format the client asked for (CSV or Excel), or None for JSON."""
    accept = request.headers.get("accept", "")
    if not accept:  # most API clients send none: JSON, without splitting anything
        return None
    first = accept.split(",")[0]
    if "application/json" in first:
        return None
    for media, name in _MEDIA.items():
        if media in first:
            return name
    for media, name in _MEDIA.items():
        if media in accept:
            return name
    return None


def wants_table(request: Request) -> bool:
    """Tell whether the client asked for a table (CSV or Excel) rather than JSON."""
    return table_format(request) is not None


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
        headers=_attachment(filename, "csv"),
    )


#: The symbols an Excel money cell shows (Excel applies its own separators on the reader's side).
CURRENCY_SYMBOLS: dict[str, str] = {
    "CNY": "¥", "JPY": "¥", "KRW": "₩", "EUR": "€", "USD": "$", "GBP": "£",
}
#: Currencies written without minor units.
WHOLE_CURRENCIES = frozenset({"KRW", "JPY"})


def money_format(currency: str | None, locale: str | None = None) -> str:
    """Return the Excel number format of an amount in ``currency`` (symbol, minor units).

    With the team's ``locale`` (a CLDR name such as ``de_DE``), the team's own currency format
    by Babel: where the symbol goes (``1.234,50 €`` in German, ``¥1,234.50`` in Chinese), the
    symbol its readers use and the currency's minor units. Excel itself then draws the
    separators of the reader's machine, as it does for every number.
    """
    code = currency or ""
    if locale and code:
        try:
            loc = Locale.parse(locale)
        except (UnknownLocaleError, ValueError):
            loc = None
        if loc is not None:
            digits = get_currency_precision(code)
            body = "#,##0" + ("." + "0" * digits if digits else "")
            pattern = str(loc.currency_formats["standard"].pattern).split(";")[0]
            pattern = re.sub(r"[#0,.]+", body, pattern, count=1).replace("\u00a0", " ")
            symbol = get_currency_symbol(code, loc).replace('"', "")
            shown = pattern.replace("¤", f'"{symbol}"')
            return f"{shown};-{shown}"
    decimals = "" if code in WHOLE_CURRENCIES else ".00"
    symbol = CURRENCY_SYMBOLS.get(code, code + " " if code else "")
    quoted = '"' + symbol.replace('"', "") + '"' if symbol else ""
    return f"{quoted}#,##0{decimals};-{quoted}#,##0{decimals}"


def _instant(value: Any, column: str) -> datetime | date | None:
    """Return the instant or day a cell holds, or None when it holds something else."""
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str) and value[:1].isdigit() and _TIME_COLUMN.search(column):
        try:
            return (date.fromisoformat(value) if len(value) == 10
                    else datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


class _Sheet:
    """One worksheet being written row by row, remembering how wide each column ran."""

    def __init__(self, book: Any, name: str, columns: Sequence[str], bold: Any) -> None:
        self.sheet = book.add_worksheet(name, RowSheet)
        self.widths = [len(c) for c in columns]
        self.row = 0
        self.sheet.write_row(0, 0, list(columns), bold)
        self.sheet.freeze_panes(1, 0)

    def finish(self) -> None:
        for index, width in enumerate(self.widths):
            self.sheet.set_column(index, index, min(width, _MAX_WIDTH) + 2)


class _Workbook:
    """An Excel workbook written straight to a temporary file, one row at a time."""

    def __init__(self, path: str, columns: Sequence[str], money: Sequence[str]) -> None:
        self.book = xlsxwriter.Workbook(path, {
            "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
            "strings_to_numbers": False, "nan_inf_to_errors": True, "tmpdir": TMPDIR,
        })
        self.columns = list(columns)
        self.money = set(money)
        #: Per column: its name, whether it holds money, whether its text may be a time.
        self.plan = [(c, c in self.money, bool(_TIME_COLUMN.search(c))) for c in columns]
        self.bold = self.book.add_format({"bold": True})
        self.instant = self.book.add_format({"num_format": 'yyyy-mm-dd hh:mm:ss "UTC"'})
        self.day = self.book.add_format({"num_format": "yyyy-mm-dd"})
        self.currencies: dict[tuple[str, str | None], Any] = {}
        #: The team (the ``sheets_by`` column's value) a row's money is formatted for.
        self.sheets_by: str | None = None
        self.locales: Mapping[str, str | None] = {}
        self.sheets: dict[str, _Sheet] = {}
        self.names: set[str] = set()

    def sheet(self, key: str) -> _Sheet:
        """Return the sheet of ``key`` (a team), adding it the first time it is met."""
        found = self.sheets.get(key)
        if found is None:
            name = _SHEET_UNSAFE.sub("_", key).strip("'")[:31] or "Sheet"
            base, n = name, 1
            while name.lower() in self.names:  # Excel compares sheet names without case
                n += 1
                name = f"{base[:28]}~{n}"
            self.names.add(name.lower())
            found = self.sheets[key] = _Sheet(self.book, name, self.columns, self.bold)
        return found

    def write(self, target: _Sheet, row: Mapping[str, Any]) -> None:
        """Append one row, each cell with its type (and its format, for money and times)."""
        target.row += 1
        widths = target.widths
        values: list[Any] = []
        formats: list[Any] = []
        # The common cells (plain numbers and text) take the short way: a 1,000-row list is
        # tens of thousands of cells.
        for c, (column, money, timely) in enumerate(self.plan):
            value = row.get(column)
            kind = type(value)
            style = None
            if value is None:
                width = 0
            elif (kind is float or kind is int) and not money:
                width = 10
            elif kind is str and not timely:
                width = len(value)
            else:
                value, style, width = self._cell(column, value, row)
            values.append(value)
            formats.append(style)
            if width > widths[c]:
                widths[c] = width
        target.sheet.write_cells(target.row, values, formats)

    def _cell(self, column: str, value: Any, row: Mapping[str, Any]) -> tuple[Any, Any, int]:
        """Return a cell's typed value, its format (or None) and its width."""
        if isinstance(value, bool):
            return value, None, 5
        if isinstance(value, int | float):
            if column in self.money:
                currency = str(row.get("currency") or "")
                locale = self.locales.get(str(row.get(self.sheets_by))) if self.sheets_by \
                    else None
                style = self.currencies.get((currency, locale))
                if style is None:
                    style = self.currencies[(currency, locale)] = self.book.add_format(
                        {"num_format": money_format(currency, locale)})
                return value, style, len(f"{value:,.2f}") + 2
            return value, None, 10
        moment = _instant(value, column)
        if isinstance(moment, datetime):
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC).replace(tzinfo=None)
            return moment, self.instant, 23
        if isinstance(moment, date):
            return moment, self.day, 10
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        # Always a string cell: text that looks like a formula stays text (no CSV-style quote
        # needed: a string cell is never evaluated).
        text = str(value)
        return text, None, len(text)

    def close(self) -> None:
        if not self.sheets:
            self.sheet("Sheet1")
        for target in self.sheets.values():
            target.finish()
        self.book.close()


def _xlsx_chunks(rows: Iterable[Mapping[str, Any]], columns: Sequence[str],
                 money: Sequence[str], sheets_by: str | None,
                 locales: Mapping[str, str | None] | None = None,
                 keep: Callable[[bytes], None] | None = None) -> Iterator[bytes]:
    # A sync generator: Starlette runs it in a worker thread, so writing and zipping the
    # workbook never blocks the event loop.
    with tempfile.NamedTemporaryFile(suffix=".xlsx", dir=TMPDIR) as out:
        book = _Workbook(out.name, columns, money)
        book.sheets_by, book.locales = sheets_by, locales or {}
        for row in rows:
            book.write(book.sheet(str(row.get(sheets_by) or "-") if sheets_by else "Sheet1"),
                       row)
        book.close()
        with open(out.name, "rb") as written:
            if keep is not None and os.fstat(written.fileno()).st_size <= KEEP_BYTES:
                body = written.read()
                keep(body)
                yield body
                return
            while chunk := written.read(_CHUNK):
                yield chunk


def _attachment(filename: str, suffix: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}.{suffix}"'}


def xlsx_response(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], filename: str, *,
    money: Sequence[str] = (), sheets_by: str | None = None,
    locales: Mapping[str, str | None] | None = None,
    keep: Callable[[bytes], None] | None = None,
) -> StreamingResponse:
    """Stream rows as an Excel workbook: typed cells, a frozen header, a sheet per key.

    ``keep``: given the finished workbook (when it is at most ``KEEP_BYTES``), for a caller
    that answers the same list again from a cache (``held_xlsx``).
    """
    return StreamingResponse(
        _xlsx_chunks(rows, columns, money, sheets_by, locales, keep), media_type=XLSX,
        headers=_attachment(filename, "xlsx"),
    )


def held_xlsx(body: bytes, filename: str) -> Response:
    """Answer a workbook written earlier (``xlsx_response``'s ``keep``) as the download."""
    return Response(body, media_type=XLSX, headers=_attachment(filename, "xlsx"))


def table_response(
    request: Request, rows: Iterable[Mapping[str, Any]], columns: Sequence[str],
    filename: str, *, money: Sequence[str] = (), sheets_by: str | None = None,
    locales: Mapping[str, str | None] | None = None,
) -> StreamingResponse:
    """Answer rows in the table format the request asked for (CSV unless it asked Excel).

    ``money``: the columns holding amounts in the row's ``currency``; ``sheets_by``: the
    column whose values (teams) each get a sheet of their own in Excel; ``locales``: each of
    those teams' locale, whose currency format its money cells take.
    """
    return table_answer(table_format(request) or "csv", rows, columns, filename, money=money,
                        sheets_by=sheets_by, locales=locales)


def table_answer(
    kind: TableFormat, rows: Iterable[Mapping[str, Any]], columns: Sequence[str],
    filename: str, *, money: Sequence[str] = (), sheets_by: str | None = None,
    locales: Mapping[str, str | None] | None = None,
    keep: Callable[[bytes], None] | None = None,
) -> StreamingResponse:
    """Answer rows as a CSV or Excel download (the pages' links name the format themselves).

    ``keep``: handed a finished workbook to hold (``xlsx_response``); CSV is not held.
    """
    if kind == "xlsx":
        return xlsx_response(rows, columns, filename, money=money, sheets_by=sheets_by,
                             locales=locales, keep=keep)
    return csv_response(rows, columns, filename)

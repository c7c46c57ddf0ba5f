"""RowSheet.write_cells writes what XlsxWriter writes for the same cells, byte for byte."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter  # type: ignore[import-untyped]
from openpyxl import load_workbook
from xlsxwriter.worksheet import Worksheet  # type: ignore[import-untyped]

from service.api.xlsx_sheet import RowSheet

TEXTS = [
    "plain", " leading", "trailing ", "tab\tinside", "line\nbreak", "a & <b> \"q\" 'q'",
    "_x0041_ looks escaped", "control \x01\x1f", "مريم الحسن", "Ana 🌸 Lima 👩🏽‍💻",
    '=HYPERLINK("http://evil.example","y")', "\ufffe", "",
]
NUMBERS: list[Any] = [0, 1, -1, 2**53, 0.1, -2.5e-10, 1e20, 99.95, 1 / 3, 7, 8.5, -0.0, 3]


def _rows(money: Any, day: Any, bold: Any) -> list[tuple[list[Any], list[Any]]]:
    """(values, formats) rows: every kind of cell, and rows XlsxWriter must write itself."""
    rows = []
    for i, (number, text) in enumerate(zip(NUMBERS, TEXTS, strict=True)):
        rows.append((
            [number, text, i % 2 == 0, number * 10 if i % 3 else None, date(2026, 11, i + 1),
             datetime(2026, 11, 4, 9, i) if i == 4 else None, None, 1],
            [None, None, None, money, day, None, None, bold if i == 2 else None]))
    rows.append(([None, "gap before", None], [None, None, None]))  # no cell in column A
    rows.append(([float("nan"), "nan: an error cell", float("inf")], [None, None, None]))
    rows.append(([1, "x" * 40_000], [None, None]))  # longer than a cell keeps: truncated
    rows.append(([Decimal("2.5"), "a decimal", date(2026, 1, 1)], [None, None, None]))
    rows.append(([2, "a row format", None], [None, None, None]))
    rows.append(([None, None], [None, None]))  # nothing to write
    rows.append(([3, "<r>rich-looking</r>"], [None, None]))
    return rows


def _write(path: Path, ours: bool) -> None:
    book = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False, "nan_inf_to_errors": True, "tmpdir": str(path.parent),
        "default_date_format": "dd/mm/yy"})
    book.set_properties({"created": datetime(2026, 11, 1, tzinfo=UTC)})
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": '"€"#,##0.00'})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    for name in ("first", "second"):
        ws = book.add_worksheet(name, RowSheet if ours else Worksheet)
        ws.set_column(7, 7, 12, money)  # a column format, taken by unformatted cells
        ws.write_row(0, 0, ["n", "text", "flag", "money", "day", "at", "none", "one"], bold)
        ws.freeze_panes(1, 0)
        rows = _rows(money, day, bold)
        ws.set_row(len(rows) - 2, None, bold)  # a row format: XlsxWriter writes that row
        for r, (values, formats) in enumerate(rows, 1):
            if ours:
                ws.write_cells(r, values, formats)
                continue
            for c, (value, style) in enumerate(zip(values, formats, strict=True)):
                if value is None:
                    continue
                if isinstance(value, str):
                    ws.write_string(r, c, value, style)
                elif isinstance(value, bool):
                    ws.write_boolean(r, c, value, style)
                elif isinstance(value, date):
                    ws.write_datetime(r, c, value, style)
                else:
                    ws.write_number(r, c, value, style)
    book.close()


def test_write_cells_writes_every_part_as_xlsxwriter_does(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.xlsx", tmp_path / "theirs.xlsx"
    _write(ours, ours=True)
    _write(theirs, ours=False)
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(theirs) as b:
        assert a.namelist() == b.namelist()
        for name in b.namelist():  # the same, but for the rich-looking text, escaped here
            mine = a.read(name).replace(b"<t>&lt;r&gt;rich-looking&lt;/r&gt;</t>",
                                        b"<r>rich-looking</r>")
            assert mine == b.read(name), name
    sheet = load_workbook(ours)["first"]
    assert [sheet.cell(row=2 + i, column=2).value for i in range(3)] == TEXTS[:3]
    assert sheet.cell(row=2, column=4).value is None  # None: no cell


def test_text_that_looks_like_rich_text_stays_text(tmp_path: Path) -> None:
    """XlsxWriter's own constant-memory writer copies such text into the XML unescaped."""
    path = tmp_path / "names.xlsx"
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = book.add_worksheet(None, RowSheet)
    names = ["<r>Kim</r>", "<r><t>=1+1</t></r>", "Lee"]
    for r, name in enumerate(names):
        ws.write_cells(r, [name], [None])
    # A row written is out of XlsxWriter's hands: a later cell in it is refused, as XlsxWriter
    # refuses one in any row it has written (a second <row> of the same number would be a
    # broken file).
    assert ws.write_number(2, 1, 5) == -1
    book.close()
    sheet = load_workbook(path).active
    assert sheet is not None
    assert [sheet.cell(row=r + 1, column=1).value for r in range(3)] == names

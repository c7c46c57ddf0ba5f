"""RowSheet writes the XML XlsxWriter itself writes, byte for byte, for every kind of cell."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import xlsxwriter  # type: ignore[import-untyped]
from openpyxl import load_workbook
from xlsxwriter.worksheet import Worksheet  # type: ignore[import-untyped]

from service.api.xlsx_sheet import RowSheet

TEXTS = [
    "plain", " leading", "trailing ", "tab\tinside", "line\nbreak", "a & <b> \"q\" 'q'",
    "_x0041_ looks escaped", "control \x01\x1f", "مريم الحسن", "Ana 🌸 Lima 👩🏽‍💻",
    '=HYPERLINK("http://evil.example","y")', "\ufffe",
]
NUMBERS = [0, 1, -1, 2**53, 0.1, -2.5e-10, 1e20, 99.95, 1 / 3]


def _write(path: Path, sheet_class: Any) -> None:
    book = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False, "nan_inf_to_errors": True, "tmpdir": str(path.parent)})
    book.set_properties({"created": datetime(2026, 11, 1, tzinfo=UTC)})
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": '"€"#,##0.00'})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    for name in ("first", "second"):
        ws = book.add_worksheet(name, sheet_class)
        ws.set_column(4, 4, 12, day)  # a column format, taken by the column's unformatted cells
        ws.write_row(0, 0, ["n", "text", "flag", "money", "day"], bold)
        ws.freeze_panes(1, 0)
        for r, (number, text) in enumerate(zip(NUMBERS * 2, TEXTS + TEXTS, strict=False), 1):
            ws.write_number(r, 0, number)
            ws.write_string(r, 1, text)
            ws.write_boolean(r, 2, r % 2 == 0)
            if r % 3:
                ws.write_number(r, 3, number * 10, money)
            else:
                ws.write_blank(r, 3, None, money)
            ws.write_datetime(r, 4, date(2026, 11, r))
            if r == 4:
                ws.write_datetime(r, 5, datetime(2026, 11, 4, 9, 30), day)
        # Rows XlsxWriter writes itself: a formula, rich text, a row format, a comment.
        ws.write_formula(30, 0, "=1+1", None, 2)
        ws.write_rich_string(31, 1, "a ", bold, "bold", " word")
        ws.set_row(32, None, bold)
        ws.write_number(32, 0, 7)
        ws.write_comment(33, 0, "a note")
        ws.write_string(33, 1, "with a comment")
        ws.write_number(40, 0, float("nan"))  # an error formula (nan_inf_to_errors)
        ws.write_string(41, 1, "after a gap")
    book.close()


def test_rowsheet_writes_every_part_as_xlsxwriter_does(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.xlsx", tmp_path / "theirs.xlsx"
    _write(ours, RowSheet)
    _write(theirs, Worksheet)
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(theirs) as b:
        assert a.namelist() == b.namelist()
        for name in b.namelist():
            assert a.read(name) == b.read(name), name
    sheet = load_workbook(ours)["first"]
    assert [sheet.cell(row=2 + i, column=2).value for i in range(3)] == TEXTS[:3]


def test_text_that_looks_like_rich_text_stays_text(tmp_path: Path) -> None:
    """XlsxWriter's own constant-memory writer copies such text into the XML unescaped."""
    path = tmp_path / "names.xlsx"
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = book.add_worksheet(None, RowSheet)
    names = ["<r>Kim</r>", "<r><t>=1+1</t></r>", "Lee"]
    for r, name in enumerate(names):
        ws.write_string(r, 0, name)
    book.close()
    sheet = load_workbook(path).active
    assert sheet is not None
    assert [sheet.cell(row=r + 1, column=1).value for r in range(3)] == names

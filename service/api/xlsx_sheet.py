"""An XlsxWriter worksheet that serialises each streamed row in one pass (``RowSheet``).

In ``constant_memory`` mode XlsxWriter keeps one row of cells and writes it out as XML when the
next row starts (``Worksheet._write_single_row``). Its writer makes several calls per cell (the
cell reference, a list of attributes, escaping each attribute, a file write per cell), the
largest part of a large download's time. ``RowSheet`` writes the same XML for the common cells
(numbers and dates, text, booleans, blanks, with or without a format) with one string per cell
and one file write per row: a 1,000-agent ranking's workbook takes about 30 % less time.
Everything else (formulas, rich text, errors, rows with a row format or a comment) goes to
XlsxWriter's own writer, whole row by whole row, as do all the public ``write_*`` methods that
check, type and store the cells: only the serialisation is replaced, and it uses XlsxWriter's
own escaping. ``tests/unit/test_xlsx_sheet.py`` checks that a workbook's parts are byte for
byte XlsxWriter's own, so a new XlsxWriter that moves these internals fails there, not in
production.

One deliberate difference: XlsxWriter's constant-memory writer copies a text cell that starts
with ``<r>`` and ends with ``</r>`` into the XML unescaped (it takes it for rich text), so an
agent named ``<r>Kim</r>`` reads back empty, and markup in a name lands in the file. Here text is
always escaped as text (rich text, written with ``write_rich_string``, still goes its own way).
"""

from __future__ import annotations

from typing import Any

from xlsxwriter import worksheet  # type: ignore[import-untyped]
from xlsxwriter.utility import _preserve_whitespace, xl_col_to_name  # type: ignore[import-untyped]

#: XlsxWriter's records of a stored cell, one named tuple per kind.
_NUMBER, _DATETIME = worksheet.CellNumberTuple, worksheet.CellDatetimeTuple
_STRING, _BOOLEAN, _BLANK = (worksheet.CellStringTuple, worksheet.CellBooleanTuple,
                             worksheet.CellBlankTuple)

class RowSheet(worksheet.Worksheet):  # type: ignore[misc]
    """A worksheet whose constant-memory rows are written as XML one row at a time."""

    #: The row XlsxWriter holds (its cells are in ``table``) until the next row starts.
    previous_row: int

    def __init__(self) -> None:
        super().__init__()
        #: Column letters by index, grown as the rows need them (a sheet is one thread's).
        self.letters: list[str] = []

    def _letters(self, last: int) -> list[str]:
        """Return the column letters, by index, up to column ``last`` at least."""
        letters = self.letters
        while last >= len(letters):
            letters.append(xl_col_to_name(len(letters)))
        return letters

    def _write_single_row(self, current_row_num: int = 0) -> None:
        row_num = self.previous_row
        cells: dict[int, Any] | None = self.table.get(row_num)
        if not cells or row_num in self.row_info or row_num in self.comments:
            super()._write_single_row(current_row_num)
            return
        r = row_num + 1
        col_info = self.col_info
        letters = self._letters(max(cells))
        parts: list[str] = []
        for col in sorted(cells):
            cell = cells[col]
            kind = type(cell)
            style = cell.format
            if style is None and col in col_info:
                style = col_info[col].column_format
            s = "" if style is None else f' s="{style._get_xf_index()}"'
            if kind is _NUMBER or kind is _DATETIME:
                parts.append(f'<c r="{letters[col]}{r}"{s}><v>{cell.number:.16G}</v></c>')
            elif kind is _STRING:
                text = self._escape_control_characters(cell.string)
                keep = ' xml:space="preserve"' if _preserve_whitespace(text) else ""
                parts.append(f'<c r="{letters[col]}{r}"{s} t="inlineStr"><is><t{keep}>'
                             f'{self._escape_data(text)}</t></is></c>')
            elif kind is _BOOLEAN:
                parts.append(f'<c r="{letters[col]}{r}"{s} t="b"><v>{cell.boolean}</v></c>')
            elif kind is _BLANK:
                parts.append(f'<c r="{letters[col]}{r}"{s}/>')
            else:  # formulas, rich text, errors: XlsxWriter's own writer, for the whole row
                super()._write_single_row(current_row_num)
                return
        self.previous_row = current_row_num
        self._write_row(row_num, None)
        parts.append("</row>")
        self.fh.write("".join(parts))
        self.table.clear()

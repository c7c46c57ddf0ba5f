"""An XlsxWriter worksheet that writes a streamed row's cells as XML in one call (``RowSheet``).

In ``constant_memory`` mode XlsxWriter stores each cell a ``write_*`` call is given (after
its checks, as a record in a table that holds one row) and writes the row out as XML when the
next row starts. Per cell that is a dozen Python calls (the A1-notation wrapper, the checks,
the record, the cell reference, a list of attributes, escaping each attribute, a file write),
most of the time of a large download. ``RowSheet.write_cells`` takes a whole row of values and
their formats and writes the XML XlsxWriter would write for the same ``write_string``,
``write_number``, ``write_boolean`` and ``write_datetime`` calls, one string per cell and one
file write per row: a 1,000-agent ranking's workbook takes 0.42 of the time. The workbook
around the rows (sheets, formats, frozen panes, column widths, the package and its zip) is
XlsxWriter's, and so is any row with something unusual in it (an infinite number, text
longer than Excel keeps, a row format): it goes to those ``write_*`` methods, cell by cell.
``tests/unit/test_xlsx_sheet.py`` holds every part of a workbook, byte for byte, to what
XlsxWriter writes for the same calls, so a new XlsxWriter that moves the internals used here
(``previous_row``, ``table``, ``row_info``, ``col_info``, ``fh``, ``_check_dimensions``,
``_write_single_row``, ``_write_row``, ``_convert_date_time``, its escaping, a format's
``_get_xf_index``) fails there, not in production.

One deliberate difference: XlsxWriter's constant-memory writer copies a text cell that starts
with ``<r>`` and ends with ``</r>`` into the XML unescaped (it takes it for rich text), so an
agent named ``<r>Kim</r>`` reads back empty, and markup in a name lands in the file. Here text is
always escaped as text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

from xlsxwriter import worksheet  # type: ignore[import-untyped]
from xlsxwriter.utility import _preserve_whitespace, xl_col_to_name  # type: ignore[import-untyped]


class RowSheet(worksheet.Worksheet):  # type: ignore[misc]
    """A constant-memory worksheet that also writes a whole row of typed cells at once."""

    #: The row XlsxWriter holds in ``table`` until a later row starts (constant memory).
    previous_row: int

    def __init__(self) -> None:
        super().__init__()
        #: Column letters by index, grown as the rows need them (a sheet is one thread's).
        self.letters: list[str] = []

    def write_cells(self, row: int, values: Sequence[Any], formats: Sequence[Any]) -> None:
        """Write a row below every row written so far: a value (str, int, float, bool, date,
        datetime, or None for no cell) and a format (or None) per column, from column A.

        The cells are those of ``write_string``, ``write_number``, ``write_boolean`` and
        ``write_datetime`` (by the value's type) with the same formats.
        """
        used = [col for col, value in enumerate(values) if value is not None]
        if not used:
            return
        if row > self.previous_row:  # the row XlsxWriter holds (the header) goes out first
            self._write_single_row(row)
        if (row in self.row_info or row in self.table or self._check_dimensions(row, used[0])
                or self._check_dimensions(row, used[-1]) or not self._plain(values)):
            self._store(row, values, formats)
            return
        self.previous_row = row + 1  # written: later writes to this row are refused, as rows
        letters = self.letters      # XlsxWriter has written are
        while used[-1] >= len(letters):
            letters.append(xl_col_to_name(len(letters)))
        r, col_info = row + 1, self.col_info
        parts: list[str] = []
        for col in used:
            value, style = values[col], formats[col]
            kind = type(value)
            if style is None and col in col_info:  # as XlsxWriter: the column's format
                style = col_info[col].column_format
            if kind is str:
                # Only text with a control character, a non-character or "_x" has anything
                # for XlsxWriter's control escapes to do (isprintable is false for the first
                # two): most names and ids skip its two regex passes.
                text = value if value.isprintable() and "_x" not in value else \
                    self._escape_control_characters(value)
                keep = ' xml:space="preserve"' if _preserve_whitespace(text) else ""
                cell = (f' t="inlineStr"><is><t{keep}>{self._escape_data(text)}</t></is></c>')
            elif kind is bool:
                cell = f' t="b"><v>{int(value)}</v></c>'
            else:
                if kind is not int and kind is not float:  # a date or a date-time
                    value = self._convert_date_time(value)
                    style = formats[col] if formats[col] is not None else \
                        self.default_date_format
                cell = f"><v>{value:.16G}</v></c>"
            s = "" if style is None else f' s="{style._get_xf_index()}"'
            parts.append(f'<c r="{letters[col]}{r}"{s}{cell}')
        self._write_row(row, None)
        parts.append("</row>")
        self.fh.write("".join(parts))

    def _plain(self, values: Sequence[Any]) -> bool:
        """Tell whether every value is one ``write_cells`` writes itself (else XlsxWriter's)."""
        limit = self.xls_strmax // 2  # longer text may need XlsxWriter's truncation
        for value in values:
            kind = type(value)
            if kind is str:
                if len(value) > limit:
                    return False
            elif kind is float:
                if not math.isfinite(value):  # XlsxWriter writes these as error formulas
                    return False
            elif not (value is None or kind is int or kind is bool or isinstance(value, date)):
                return False
        return True

    def _store(self, row: int, values: Sequence[Any], formats: Sequence[Any]) -> None:
        """Write the row through XlsxWriter's own ``write_*`` methods, cell by cell."""
        for col, value in enumerate(values):
            if value is None:
                continue
            style = formats[col]
            if isinstance(value, str):
                self.write_string(row, col, value, style)
            elif isinstance(value, bool):
                self.write_boolean(row, col, value, style)
            elif isinstance(value, date):
                self.write_datetime(row, col, value, style)
            else:
                self.write_number(row, col, value, style)

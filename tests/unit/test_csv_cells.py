"""A CSV cell a spreadsheet could read as a formula is written as text (domain/csv_cells.py), read
back as written by `cell_text`; numbers and plain text are written as they are."""

from __future__ import annotations

import csv
import io

import pytest

from include.stocksync.domain.csv_cells import cell_text, csv_writer, safe_cell

FORMULAS = [
    '=HYPERLINK("https://evil","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1",
    # after leading blanks an import may trim, or in fullwidth forms it may fold to ASCII
    ' =HYPERLINK("https://evil","x")', "  +cmd|' /C calc'!A0", "\n=1+1", "\xa0=1+1", "\u3000=1+1",
    "\uff1d1+1", "\uff0bcmd", "\uff0d1", "\uff20SUM(A1)", "'already quoted",
]
PLAIN = ["SKU-1", "a = b", " SKU-2", "\u3000SKU-3", "1-2", "x@y"]


@pytest.mark.parametrize("text", FORMULAS)
def test_text_a_spreadsheet_may_read_as_a_formula_is_marked_and_read_back(text: str) -> None:
    assert safe_cell(text) == "'" + text
    out = io.StringIO()
    csv_writer(out).writerow([text, -5, 7])
    (row,) = list(csv.reader(io.StringIO(out.getvalue())))
    assert row[0].startswith("'") and cell_text(row[0]) == text and row[1:] == ["-5", "7"]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_text_and_numbers_are_written_as_they_are(text: str) -> None:
    assert safe_cell(text) == text
    assert safe_cell(-5) == -5 and safe_cell(None) is None and safe_cell("") == ""

"""Every CSV stocksync writes goes through `csv_writer`: a text cell a spreadsheet would take as a
formula is written as text.

Spreadsheets (Excel, LibreOffice, Google Sheets) evaluate a cell that starts with `=`, `+`, `-` or
`@` as a formula, and a tab or carriage return in front of one of those is skipped when a file is
imported; an import that trims leading spaces (a no-break or ideographic space among them) or folds
fullwidth forms reads ` =1+1` and `＝1+1` the same way. SKUs come from the WMS, so a deployment
whose `sku_pattern` allows those characters would put a WMS-supplied formula (`=HYPERLINK(...)`,
`=cmd|...`) into the plan that ops open. Such a text cell gets a leading apostrophe, which
spreadsheets take as "this is text" and do not show; a text cell that itself starts with an
apostrophe gets one too, so `cell_text` gives back exactly what was written. Numbers (a negative
delta) are written as numbers.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterable
from typing import Any

# what a formula may begin with once an import has trimmed the cell's leading blanks (spaces, a
# no-break or ideographic space, a line break) or folded fullwidth forms (＝ ＋ － ＠) to ASCII
FORMULA_SIGNS = frozenset("=+-@")
# a cell's first character that makes it a formula as it stands: a sign, or a tab or carriage
# return that an import skips in front of one
FORMULA_STARTS = FORMULA_SIGNS | {"\t", "\r"}
TEXT_MARK = "'"


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet may read `text` as a formula: its first character, or its first after
    leading whitespace, is a formula sign (in ASCII or fullwidth), or it starts with a tab or CR."""
    if text[0] in FORMULA_STARTS:
        return True
    first = text.lstrip()[:1]
    return bool(first) and unicodedata.normalize("NFKC", first)[:1] in FORMULA_SIGNS


def safe_cell(value: Any) -> Any:
    """`value` as a CSV cell no spreadsheet evaluates: text that may be read as a formula (or that
    starts with the mark itself) gets the text mark in front; anything else is unchanged."""
    if isinstance(value, str) and value and (value[0] == TEXT_MARK or looks_like_formula(value)):
        return TEXT_MARK + value
    return value


def cell_text(cell: str) -> str:
    """The text `safe_cell` was given, from the cell it wrote (for our own readers of the CSV)."""
    return cell[1:] if cell.startswith(TEXT_MARK) else cell


class SafeWriter:
    """`csv.writer` whose every cell goes through `safe_cell`."""

    def __init__(self, fh: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(fh, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(fh: Any, **kwargs: Any) -> SafeWriter:
    """The one way stocksync writes a CSV file (arguments as for `csv.writer`)."""
    return SafeWriter(fh, **kwargs)

"""CSV export of a dashboard table: the rendered page's table, read back cell by cell.

Reading the page's own HTML (rather than re-querying) is what makes the export safe by
construction: the page was built for the signed-in key, so a viewer's CSV holds the
aggregates their page shows and nothing else, and an export can never drift from the
table it came from. A table is exportable when it carries `data-export="<name>"`.

Cells are plain text with whitespace collapsed. A cell that a spreadsheet would run as a
formula (starting with =, +, -, @, tab or CR and not a number) is prefixed with a quote
(OWASP's CSV-injection advice): conversation text and agent names come from customers.
"""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser

__all__ = ["filename", "table_csv"]

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?\d[\d,]*(\.\d+)?\s*%?$")


class _TableReader(HTMLParser):
    """The rows (header first) of the table whose data-export is `name`."""

    def __init__(self, name: str) -> None:
        super().__init__(convert_charrefs=True)
        self.name = name
        self.depth = 0  # nesting of <table> inside the one read (0: not in it)
        self.found = False
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None
        self.skip = 0  # inside <script>/<style>/<template>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "template"):
            self.skip += 1
        if tag == "table":
            if self.depth:
                self.depth += 1
            elif dict(attrs).get("data-export") == self.name and not self.found:
                self.depth, self.found = 1, True
            return
        if self.depth != 1:
            return
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th") and self.rows:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template") and self.skip:
            self.skip -= 1
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth == 1 and tag in ("td", "th") and self.cell is not None and self.rows:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, text: str) -> None:
        if self.depth and self.cell is not None and not self.skip:
            self.cell.append(text)


def _safe(cell: str) -> str:
    if cell.startswith(_FORMULA) and not _NUMBER.match(cell.replace("−", "-")):
        return "'" + cell
    return cell


def table_csv(page_html: str, name: str) -> str | None:
    """The table `name` of the page as CSV text, or None when the page has no such table."""
    reader = _TableReader(name)
    reader.feed(page_html)
    reader.close()
    if not reader.found:
        return None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in reader.rows:
        if row:
            writer.writerow([_safe(cell) for cell in row])
    return out.getvalue()


def filename(page: str, table: str, since: str, until: str) -> str:
    """convolens-agents-scorecards-2026-10-01-2026-10-31.csv (only safe characters)."""
    parts = ["convolens", page, table, since, until]
    return "-".join(re.sub(r"[^A-Za-z0-9_.-]", "", p) for p in parts if p)[:150] + ".csv"

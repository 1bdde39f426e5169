"""The date range every dashboard page is read over: `since`/`until` in the URL.

Both are days (YYYY-MM-DD, inclusive), the names the conversation list and the API's
filters already use, so a link copied from any page opens the same range elsewhere. The
presets (7, 30, 90 days) end on the latest day with a conversation rather than today: an
imported corpus is often weeks old, and "the last 7 days" of nothing helps nobody. A
preset link carries explicit dates, so the URL always says which days a page shows.
Anything unreadable (a bad date, one outside DuckDB's range) is ignored, as the list's
filters ignore it, rather than answered with an error page.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel

from convolens.service.auth import Principal
from convolens.service.params import EARLIEST, LATEST
from convolens.store.reader import ConversationFilter
from convolens.store.warehouse import Warehouse

__all__ = ["PRESETS", "DateRange", "Preset", "latest_day", "parse_day"]

PRESETS = (7, 30, 90)


def parse_day(value: str) -> date | None:
    """A YYYY-MM-DD day, or None when empty or unreadable."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        return None
    # 9999-12-31 + 1 day would overflow where `until` becomes an exclusive instant.
    return day if EARLIEST <= day < LATEST else None


class Preset(BaseModel):
    days: int
    since: date
    until: date
    active: bool

    def query(self, **keep: Any) -> str:
        """The query string of this preset's range with the page's other choices."""
        return DateRange(since=self.since.isoformat(), until=self.until.isoformat()).query(**keep)


class DateRange(BaseModel):
    """The page's range, as the query string gives it (empty strings = unbounded)."""

    since: str = ""
    until: str = ""

    @property
    def start(self) -> date | None:
        return parse_day(self.since)

    @property
    def end(self) -> date | None:
        return parse_day(self.until)

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """[since, until) as instants: `until` takes in its whole day."""
        start, end = self.start, self.end
        return (
            datetime.combine(start, time.min, tzinfo=UTC) if start else None,
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC) if end else None,
        )

    def conversation_filter(self) -> ConversationFilter:
        since, until = self.bounds()
        return ConversationFilter(since=since, until=until)

    def active(self) -> bool:
        return self.start is not None or self.end is not None

    def query(self, **extra: Any) -> str:
        """This range (only its readable ends) plus `extra`, as a query string."""
        values: dict[str, Any] = {
            "since": self.start.isoformat() if self.start else "",
            "until": self.end.isoformat() if self.end else "",
            **extra,
        }
        return urlencode({k: v for k, v in values.items() if v not in ("", None, False)})

    def cleared(self, **keep: Any) -> str:
        """The query string without a range (all dates), keeping the page's choices."""
        return DateRange().query(**keep)

    def label(self) -> str:
        start, end = self.start, self.end
        if start and end:
            return f"{start:%d %b %Y} – {end:%d %b %Y}"
        if start:
            return f"from {start:%d %b %Y}"
        if end:
            return f"until {end:%d %b %Y}"
        return "all dates"

    def presets(self, latest: date | None) -> list[Preset]:
        anchor = latest or datetime.now(UTC).date()
        out = []
        for days in PRESETS:
            since = anchor - timedelta(days=days - 1)
            out.append(
                Preset(
                    days=days,
                    since=since,
                    until=anchor,
                    active=self.start == since and self.end == anchor,
                )
            )
        return out


def latest_day(db: Warehouse, principal: Principal) -> date | None:
    """The latest day with a conversation this key may count (the presets' anchor)."""
    from convolens.service.results import conversation_filter_sql

    where, params = conversation_filter_sql(principal)
    row = db.query(
        f"SELECT CAST(max(c.started_at) AS DATE) AS day FROM conversations_current c{where}",
        params,
    )
    day = row[0]["day"] if row else None
    return day if isinstance(day, date) else None

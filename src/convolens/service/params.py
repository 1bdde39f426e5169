"""Bounded query parameter types: a value past the bounds is a 422 that says so, never a
500 from date arithmetic (a week before 0001-01-01) or a timezone shift past year 9999."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["EARLIEST", "LATEST", "Day", "Moment"]

# Conversations happen in these years; the margin leaves room for periods and windows.
EARLIEST = date(1900, 1, 1)
LATEST = date(2199, 12, 31)


def _day(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must be between {EARLIEST} and {LATEST}")
    return value


def _moment(value: datetime) -> datetime:
    _day(value.date())
    return value


Day = Annotated[date, AfterValidator(_day)]
Moment = Annotated[datetime, AfterValidator(_moment)]

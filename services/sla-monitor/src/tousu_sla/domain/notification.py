"""When a notice to a person may go out: immediate pages at once, others wait for working time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from .calendar import BusinessCalendar, BusinessInstant, to_utc

PAGE_AT_ONCE_URGENCIES = frozenset({"immediate"})


def next_notification_time(
    at: dt.datetime,
    urgency: str | None,
    calendar: BusinessCalendar,
    *,
    page_at_once: Collection[str] = PAGE_AT_ONCE_URGENCIES,
) -> BusinessInstant:
    """`at` for urgencies that page at once; otherwise the next working moment (no 3 a.m. pings)."""
    if urgency in page_at_once:
        return BusinessInstant(to_utc(at))
    return calendar.next_working_moment(at)

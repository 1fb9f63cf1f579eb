"""Calendar months as periods."""

from __future__ import annotations

from datetime import date


def shift_month(month: date, by: int) -> date:
    """The first day of the month ``by`` months after ``month``'s."""
    index = month.year * 12 + month.month - 1 + by
    return date(index // 12, index % 12 + 1, 1)


def months_between(start: date, end: date) -> list[date]:
    """The first days of the months that [start, end) touches."""
    months, month = [], start.replace(day=1)
    while month < end:
        months.append(month)
        month = shift_month(month, 1)
    return months

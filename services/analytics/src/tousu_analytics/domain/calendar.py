"""Chinese public holidays and 调休 (make-up working days), from ``chinese-calendar``.

Outside the years the package knows, days fall back to the weekend rule (and are reported
as unknown to nobody: the detector's holiday terms are then simply zero).
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache

import chinese_calendar


class DayKind(StrEnum):
    WORKDAY = "workday"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"  # a statutory day off that would otherwise be a workday or weekend
    MAKEUP_WORKDAY = "makeup_workday"  # 调休: a weekend day worked in exchange for a holiday


@lru_cache(maxsize=8192)
def day_kind(day: date) -> DayKind:
    weekend = day.weekday() >= 5
    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        workday = chinese_calendar.is_workday(day)
    except NotImplementedError:
        return DayKind.WEEKEND if weekend else DayKind.WORKDAY
    if on_holiday and name is not None:
        return DayKind.HOLIDAY
    if weekend and workday:
        return DayKind.MAKEUP_WORKDAY
    return DayKind.WEEKEND if weekend else DayKind.WORKDAY


def holiday_name(day: date) -> str | None:
    """The holiday a day belongs to (for a 调休 day: the holiday it is worked for)."""
    try:
        _, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    return None if name is None else str(name)


def marked_days(start: date, end: date) -> list[dict[str, str]]:
    """The holidays and 调休 days in [start, end), for trend charts and tables to mark."""
    marks = []
    day = start
    while day < end:
        kind = day_kind(day)
        if kind in (DayKind.HOLIDAY, DayKind.MAKEUP_WORKDAY):
            mark = {"date": day.isoformat(), "kind": kind.value}
            name = holiday_name(day)
            if name:
                mark["name"] = name
            marks.append(mark)
        day += timedelta(days=1)
    return marks


def is_workday(day: date) -> bool:
    return day_kind(day) in (DayKind.WORKDAY, DayKind.MAKEUP_WORKDAY)

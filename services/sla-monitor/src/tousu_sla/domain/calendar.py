"""Business calendars and exact business-time arithmetic (UTC in, UTC out).

Decisions:
- "N working days" is N × the calendar's working-day length of business time counted
  from the start (Mon 10:00 + 3 working days = Thu 10:00). A start outside working hours
  counts from the next working period, so 23:59 before a holiday ends at 18:00 on the
  third working day after it. A deadline used up exactly at a period's end is that end.
- Precedence per local date: operator override > 24x7 > make-up workday (调休) >
  holiday > weekend rule. A date in a year outside `data_years` that no explicit entry
  covers is counted by the weekend rule AND returned in `missing_dates`, never silently.
- Arithmetic walks day by day over working intervals (weeks cost a few dozen steps) and
  raises CalendarHasNoWorkingTime instead of searching forever.
"""

from __future__ import annotations

import datetime as dt
import re
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_serializer, field_validator, model_validator

UTC = dt.UTC
ONE_DAY = dt.timedelta(days=1)
FULL_DAY_SECONDS = 24 * 3600

# A real calendar never has a year without working time; past this many idle days in a
# row the calendar is broken (e.g. no working hours), so we stop instead of looping.
MAX_CONSECUTIVE_IDLE_DAYS = 366
# Ten years of days bounds any single deadline search; longer targets are a data error.
MAX_DAYS_SEARCHED = 3660

_CLOCK_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")


class CalendarHasNoWorkingTime(Exception):
    """Raised when a search for working time exceeds its cap instead of looping forever."""


def to_utc(instant: dt.datetime) -> dt.datetime:
    """Return the instant in UTC; naive datetimes are refused because they are ambiguous."""
    if instant.tzinfo is None or instant.tzinfo.utcoffset(instant) is None:
        raise ValueError(f"datetime must be timezone-aware: {instant!r}")
    return instant.astimezone(UTC)


# Parsed on every working period of every day counted: a handful of distinct texts. A text
# that is not a time raises each time (lru_cache keeps only results).
@lru_cache(maxsize=256)
def _seconds_of_day(text: str) -> int:
    match = _CLOCK_TIME.match(text)
    if not match:
        raise ValueError(f"expected HH:MM or HH:MM:SS, got {text!r}")
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
    if minutes > 59 or seconds > 59 or hours > 24:
        raise ValueError(f"not a time of day: {text!r}")
    total = hours * 3600 + minutes * 60 + seconds
    if total > FULL_DAY_SECONDS:
        raise ValueError(f"not a time of day: {text!r}")
    return total


class _CountedByWeekendRule:
    """A computed result plus the dates the calendar had to count by the weekend rule."""

    missing_dates: frozenset[dt.date]

    @property
    def missing_years(self) -> frozenset[int]:
        """Years for which holiday data was missing."""
        return frozenset(d.year for d in self.missing_dates)


@dataclass(frozen=True)
class BusinessInstant(_CountedByWeekendRule):
    """A computed instant (and the dates counted by the weekend rule)."""

    at: dt.datetime
    missing_dates: frozenset[dt.date] = frozenset()


@dataclass(frozen=True)
class BusinessSpan(_CountedByWeekendRule):
    """A computed duration (and the dates counted by the weekend rule)."""

    duration: dt.timedelta
    missing_dates: frozenset[dt.date] = frozenset()


class DayReason(StrEnum):
    """Why a date is (not) a working day, in order of precedence."""

    OVERRIDE_WORKING = "override_working"
    OVERRIDE_OFF = "override_off"
    ALWAYS_OPEN = "always_open"
    MAKEUP_WORKDAY = "makeup_workday"
    HOLIDAY = "holiday"
    WEEKEND = "weekend"
    WEEKDAY = "weekday"


@dataclass(frozen=True)
class DayStatus:
    """The calendar's verdict on one local date."""

    date: dt.date
    is_working: bool
    reason: DayReason
    data_missing: bool


@dataclass(frozen=True)
class _Day:
    """What a calendar says of one local date: its status and its UTC working intervals."""

    status: DayStatus
    intervals: tuple[tuple[dt.datetime, dt.datetime], ...]  # empty on a day off
    has_time: bool  # a working day with working time (the idle-day guard counts the rest)


# Days memoised per calendar object, at most this many (22 years) before starting afresh.
_MAX_DAYS_MEMOISED = 8192


class _DayMemo:
    """One calendar object's days, computed once each: every deadline of every case walks
    the same few weeks of dates, and a day's intervals cost two zone conversions each."""

    __slots__ = ("days", "owner", "zone")

    def __init__(self, calendar: BusinessCalendar, owner: weakref.ref[BusinessCalendar]) -> None:
        self.owner = owner
        self.zone = ZoneInfo(calendar.timezone)
        self.days: dict[dt.date, _Day] = {}


# By id() of the calendar, each checked against a weak reference to it: an id reused by
# a later object (or a model_copy, which is another object) never finds another's days.
# A calendar is immutable once built (frozen; an edit builds a new one, see the catalog),
# so its days stay right for as long as it lives; its memo goes with it.
_MEMOS: dict[int, _DayMemo] = {}


def _memo_of(calendar: BusinessCalendar) -> _DayMemo:
    key = id(calendar)
    memo = _MEMOS.get(key)
    if memo is not None and memo.owner() is calendar:
        return memo

    def forget(ref: weakref.ref[BusinessCalendar], key: int = key) -> None:
        held = _MEMOS.get(key)
        if held is not None and held.owner is ref:
            del _MEMOS[key]

    memo = _DayMemo(calendar, weakref.ref(calendar, forget))
    _MEMOS[key] = memo
    return memo


class TimeKeeper(Protocol):
    """What a milestone clock needs: move forward by, and measure, counted time."""

    @property
    def name(self) -> str: ...

    @property
    def working_day_length(self) -> dt.timedelta: ...

    def add_business_time(self, start: dt.datetime, duration: dt.timedelta) -> BusinessInstant: ...

    def business_time_between(self, start: dt.datetime, end: dt.datetime) -> BusinessSpan: ...


class WallClock:
    """Calendar-time mode: every second counts, nights and holidays included."""

    name = "wall-clock"
    working_day_length = ONE_DAY

    def add_business_time(self, start: dt.datetime, duration: dt.timedelta) -> BusinessInstant:
        """Plain wall-time addition."""
        if duration < dt.timedelta(0):
            raise ValueError("duration must not be negative")
        return BusinessInstant(to_utc(start) + duration)

    def business_time_between(self, start: dt.datetime, end: dt.datetime) -> BusinessSpan:
        """Plain wall-time difference, never negative."""
        return BusinessSpan(max(to_utc(end) - to_utc(start), dt.timedelta(0)))

    def next_working_moment(self, at: dt.datetime) -> BusinessInstant:
        """Every moment is working time."""
        return BusinessInstant(to_utc(at))


WALL_CLOCK = WallClock()


class WorkingPeriod(BaseModel):
    """One daily working interval in local time, e.g. 09:00–12:00; end may be 24:00."""

    model_config = ConfigDict(frozen=True)

    start: str
    end: str

    @model_validator(mode="after")
    def _start_before_end(self) -> WorkingPeriod:
        if _seconds_of_day(self.start) >= _seconds_of_day(self.end):
            raise ValueError(f"working period must end after it starts: {self.start}–{self.end}")
        return self

    @property
    def start_offset(self) -> dt.timedelta:
        """Offset of the start from local midnight."""
        return dt.timedelta(seconds=_seconds_of_day(self.start))

    @property
    def end_offset(self) -> dt.timedelta:
        """Offset of the end from local midnight."""
        return dt.timedelta(seconds=_seconds_of_day(self.end))


class BusinessCalendar(BaseModel):
    """A named working-time calendar, built from data so operators can edit it via the API."""

    model_config = ConfigDict(frozen=True)

    name: str
    timezone: str = "Asia/Shanghai"
    working_periods: tuple[WorkingPeriod, ...] = (WorkingPeriod(start="09:00", end="18:00"),)
    weekend_days: frozenset[int] = frozenset({5, 6})  # Monday is 0, as in date.weekday()
    holidays: frozenset[dt.date] = frozenset()
    makeup_workdays: frozenset[dt.date] = frozenset()  # 调休: weekend dates that are worked
    overrides: dict[dt.date, bool] = {}  # operator's word: True working, False off; wins always
    always_open: bool = False  # 24x7: every day, all day (overrides still apply)
    # Years whose holiday/调休 data is complete. None means the weekend rule is the whole
    # truth (a plain custom calendar); otherwise other years are reported as missing data.
    data_years: frozenset[int] | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @field_validator("weekend_days")
    @classmethod
    def _weekday_numbers(cls, value: frozenset[int]) -> frozenset[int]:
        if any(day not in range(7) for day in value):
            raise ValueError("weekend days are 0 (Monday) … 6 (Sunday)")
        return value

    @field_validator("working_periods")
    @classmethod
    def _ordered_periods(cls, value: tuple[WorkingPeriod, ...]) -> tuple[WorkingPeriod, ...]:
        ordered = tuple(sorted(value, key=lambda period: period.start_offset))
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            if later.start_offset < earlier.end_offset:
                raise ValueError(
                    f"working periods overlap: {earlier.start}–{earlier.end}, "
                    f"{later.start}–{later.end}"
                )
        return ordered

    @model_validator(mode="after")
    def _holiday_is_not_workday(self) -> BusinessCalendar:
        clash = self.holidays & self.makeup_workdays
        if clash:
            raise ValueError(f"dates both holiday and make-up workday: {sorted(clash)}")
        return self

    @field_serializer("weekend_days", "holidays", "makeup_workdays", "data_years")
    def _sorted_for_stable_json(self, value: frozenset | None) -> list | None:
        # Sorted lists keep stored and diffed calendars stable between runs.
        return None if value is None else sorted(value)

    @field_serializer("overrides")
    def _sorted_overrides(self, value: dict[dt.date, bool]) -> dict[dt.date, bool]:
        return dict(sorted(value.items()))

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone."""
        return _memo_of(self).zone

    @property
    def working_day_length(self) -> dt.timedelta:
        """Nominal business time in one working day (24 h in 24x7 mode)."""
        if self.always_open:
            return ONE_DAY
        return sum((p.end_offset - p.start_offset for p in self.working_periods), dt.timedelta(0))

    def day_status(self, day: dt.date) -> DayStatus:
        """Classify a local date; explicit data first, then the weekend rule."""
        return self._day(_memo_of(self), day).status

    def working_intervals(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The UTC working intervals of a local date, in order (empty on a day off)."""
        return list(self._day(_memo_of(self), day).intervals)

    def _day(self, memo: _DayMemo, day: dt.date) -> _Day:
        known = memo.days.get(day)
        if known is None:
            if len(memo.days) >= _MAX_DAYS_MEMOISED:
                memo.days.clear()
            status = self._status_of(day)
            intervals = self._intervals_of_working_day(day, memo.zone) if status.is_working else ()
            has_time = status.is_working and (self.always_open or bool(self.working_periods))
            known = memo.days[day] = _Day(status, intervals, has_time)
        return known

    def _status_of(self, day: dt.date) -> DayStatus:
        override = self.overrides.get(day)
        if override is not None:
            reason = DayReason.OVERRIDE_WORKING if override else DayReason.OVERRIDE_OFF
            return DayStatus(day, override, reason, data_missing=False)
        if self.always_open:
            return DayStatus(day, True, DayReason.ALWAYS_OPEN, data_missing=False)
        if day in self.makeup_workdays:
            return DayStatus(day, True, DayReason.MAKEUP_WORKDAY, data_missing=False)
        if day in self.holidays:
            return DayStatus(day, False, DayReason.HOLIDAY, data_missing=False)
        missing = self.data_years is not None and day.year not in self.data_years
        if day.weekday() in self.weekend_days:
            return DayStatus(day, False, DayReason.WEEKEND, data_missing=missing)
        return DayStatus(day, True, DayReason.WEEKDAY, data_missing=missing)

    def _intervals_of_working_day(
        self, day: dt.date, zone: ZoneInfo
    ) -> tuple[tuple[dt.datetime, dt.datetime], ...]:
        # Aware + timedelta is wall-clock arithmetic in zoneinfo, so "24:00" is next midnight.
        midnight = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
        if self.always_open:
            return ((midnight.astimezone(UTC), (midnight + ONE_DAY).astimezone(UTC)),)
        return tuple(
            ((midnight + p.start_offset).astimezone(UTC), (midnight + p.end_offset).astimezone(UTC))
            for p in self.working_periods
        )

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The calendar-local date of an instant."""
        return to_utc(instant).astimezone(_memo_of(self).zone).date()

    def _periods_from(
        self, at: dt.datetime, max_days: int, missing: set[dt.date]
    ) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """The working periods of the days from ``at``'s local date on, in order.

        Each date passed whose holiday data is missing is added to ``missing`` before that
        day's periods come, so a caller that stops at a period knows the dates counted by
        the weekend rule up to it.
        """
        for known in self._days_from(self.local_date(at), max_days):
            if known.status.data_missing:
                missing.add(known.status.date)
            yield from known.intervals

    def _days_from(self, first: dt.date, max_days: int) -> Iterable[_Day]:
        memo = _memo_of(self)
        idle_in_a_row = 0
        day = first
        for _ in range(max_days):
            known = self._day(memo, day)
            idle_in_a_row = 0 if known.has_time else idle_in_a_row + 1
            if idle_in_a_row > MAX_CONSECUTIVE_IDLE_DAYS:
                raise CalendarHasNoWorkingTime(
                    f"calendar {self.name!r} has no working time "
                    f"for {idle_in_a_row} days from {first}"
                )
            yield known
            day += ONE_DAY
        raise CalendarHasNoWorkingTime(
            f"calendar {self.name!r}: search from {first} exceeded {max_days} days"
        )

    def add_business_time(
        self, start: dt.datetime, duration: dt.timedelta, *, max_days: int = MAX_DAYS_SEARCHED
    ) -> BusinessInstant:
        """The instant when `duration` of working time has passed since `start`.

        Time outside working periods does not count, so a start outside working hours
        begins counting at the next working period. A deadline that is used up exactly
        at the end of a period is that end (18:00), not the next morning.
        """
        start = to_utc(start)
        if duration < dt.timedelta(0):
            raise ValueError("duration must not be negative")
        if duration == dt.timedelta(0):
            return BusinessInstant(start)
        remaining = duration
        missing: set[dt.date] = set()
        for period_start, period_end in self._periods_from(start, max_days, missing):
            if period_end <= start:
                continue
            counted_from = max(period_start, start)
            available = period_end - counted_from
            if remaining <= available:
                return BusinessInstant(counted_from + remaining, frozenset(missing))
            remaining -= available
        raise AssertionError("unreachable: _days_from raises when exhausted")

    def add_working_days(self, start: dt.datetime, days: int | float) -> BusinessInstant:
        """N working days = N × the working-day length of business time, counted from `start`."""
        if self.working_day_length <= dt.timedelta(0):
            raise CalendarHasNoWorkingTime(f"calendar {self.name!r} has no working hours")
        return self.add_business_time(start, self.working_day_length * days)

    def business_time_between(self, start: dt.datetime, end: dt.datetime) -> BusinessSpan:
        """Working time between two instants, exact to the second (zero if end ≤ start)."""
        start, end = to_utc(start), to_utc(end)
        if end <= start:
            return BusinessSpan(dt.timedelta(0))
        total = dt.timedelta(0)
        missing: set[dt.date] = set()
        memo = _memo_of(self)
        day, last_day = self.local_date(start), self.local_date(end)
        while day <= last_day:  # bounded by the inputs, so no cap is needed
            known = self._day(memo, day)
            if known.status.data_missing:
                missing.add(day)
            for period_start, period_end in known.intervals:
                overlap = min(period_end, end) - max(period_start, start)
                if overlap > dt.timedelta(0):
                    total += overlap
            day += ONE_DAY
        return BusinessSpan(total, frozenset(missing))

    def next_working_moment(
        self, at: dt.datetime, *, max_days: int = MAX_DAYS_SEARCHED
    ) -> BusinessInstant:
        """`at` itself if it is working time, otherwise the start of the next working period."""
        at = to_utc(at)
        missing: set[dt.date] = set()
        for period_start, period_end in self._periods_from(at, max_days, missing):
            if period_end > at:
                return BusinessInstant(max(period_start, at), frozenset(missing))
        raise AssertionError("unreachable: _days_from raises when exhausted")

    def is_working_moment(self, at: dt.datetime) -> bool:
        """Whether `at` falls inside a working period (ignores missing-data reporting)."""
        at = to_utc(at)
        return any(start <= at < end for start, end in self.working_intervals(self.local_date(at)))


def chinese_calendar_covered_years() -> frozenset[int]:
    """Years for which the installed `chinese_calendar` library publishes holiday data."""
    import chinese_calendar

    return frozenset(day.year for day in chinese_calendar.holidays)


def chinese_statutory_calendar(
    name: str = "cn-statutory",
    *,
    timezone: str = "Asia/Shanghai",
    working_periods: Iterable[WorkingPeriod] = (WorkingPeriod(start="09:00", end="18:00"),),
    overrides: dict[dt.date, bool] | None = None,
) -> BusinessCalendar:
    """Chinese statutory calendar: holidays and 调休 workdays for every year the library covers."""
    import chinese_calendar

    covered = chinese_calendar_covered_years()
    return BusinessCalendar(
        name=name,
        timezone=timezone,
        working_periods=tuple(working_periods),
        weekend_days=frozenset({5, 6}),
        holidays=frozenset(day for day in chinese_calendar.holidays if day.year in covered),
        makeup_workdays=frozenset(day for day in chinese_calendar.workdays if day.year in covered),
        overrides=dict(overrides or {}),
        data_years=covered,
    )


def always_open_calendar(
    name: str = "24x7", *, timezone: str = "Asia/Shanghai"
) -> BusinessCalendar:
    """A 24x7 calendar: every second is business time."""
    return BusinessCalendar(name=name, timezone=timezone, always_open=True, working_periods=())

"""Business calendar arithmetic on the Chinese statutory calendar and friends."""

import datetime as dt
import gc
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from sla_factories import SHANGHAI, sh
from tousu_sla.domain import (
    BusinessCalendar,
    CalendarHasNoWorkingTime,
    DayReason,
    WorkingPeriod,
    always_open_calendar,
    chinese_calendar_covered_years,
    chinese_statutory_calendar,
    next_notification_time,
)

UTC = dt.UTC


@pytest.fixture(scope="module")
def cn():
    return chinese_statutory_calendar()


# -- library data -------------------------------------------------------------------


def test_covered_years_come_from_the_library_data():
    covered = chinese_calendar_covered_years()
    assert {2025, 2026} <= covered
    assert min(covered) == min(chinese_calendar.holidays).year
    assert max(covered) == max(chinese_calendar.holidays).year
    assert 2031 not in covered


def test_statutory_calendar_knows_the_2025_and_2026_schedules(cn):
    assert cn.data_years == chinese_calendar_covered_years()
    assert cn.day_status(dt.date(2025, 1, 28)).reason is DayReason.HOLIDAY  # Spring Festival eve
    assert cn.day_status(dt.date(2025, 2, 8)).reason is DayReason.MAKEUP_WORKDAY  # 调休 Saturday
    assert cn.day_status(dt.date(2025, 10, 8)).reason is DayReason.HOLIDAY  # National Day week
    assert cn.day_status(dt.date(2026, 2, 14)).reason is DayReason.MAKEUP_WORKDAY
    assert cn.day_status(dt.date(2026, 2, 23)).reason is DayReason.HOLIDAY


# -- hard cases ---------------------------------------------------------------------


def test_three_working_days_cross_spring_festival_2025(cn):
    # Mon 27 Jan 10:00: 8 h that day, then the holiday 28 Jan–4 Feb, then 5, 6 Feb and 1 h on 7 Feb.
    due = cn.add_working_days(sh(2025, 1, 27, 10), 3)
    assert due.at == sh(2025, 2, 7, 10).astimezone(UTC)
    assert due.at.tzinfo is UTC
    assert due.missing_dates == frozenset()


def test_three_working_days_cross_spring_festival_2026_with_makeup_saturday_before(cn):
    # Fri 13 Feb 10:00: 8 h, Sat 14 Feb (调休) 9 h, holiday 15–23 Feb,
    # Tue 24 Feb 9 h, Wed 25 Feb 1 h.
    due = cn.add_working_days(sh(2026, 2, 13, 10), 3)
    assert due.at == sh(2026, 2, 25, 10)


def test_three_working_days_cross_national_day_2025(cn):
    # Tue 30 Sep 16:00: 2 h, holiday 1–8 Oct, Thu 9 and Fri 10 Oct, then 7 h on Sat 11 Oct (调休).
    due = cn.add_working_days(sh(2025, 9, 30, 16), 3)
    assert due.at == sh(2025, 10, 11, 16)


def test_seven_working_days_cross_national_day_2026(cn):
    # Wed 30 Sep 09:00: 30 Sep, 8, 9, 10 (调休 Saturday), 12, 13, 14 Oct.
    due = cn.add_working_days(sh(2026, 9, 30, 9), 7)
    assert due.at == sh(2026, 10, 14, 18)


def test_makeup_saturday_counts_as_a_working_day(cn):
    # Thu 6 Feb 2025 14:00: 4 h + Fri 9 h + Sat 8 Feb (调休) 9 h + Mon 10 Feb 5 h.
    assert cn.add_working_days(sh(2025, 2, 6, 14), 3).at == sh(2025, 2, 10, 14)
    without_makeup = cn.model_copy(
        update={"makeup_workdays": cn.makeup_workdays - {dt.date(2025, 2, 8)}}
    )
    assert without_makeup.add_working_days(sh(2025, 2, 6, 14), 3).at == sh(2025, 2, 11, 14)
    assert cn.business_time_between(sh(2025, 2, 8, 0), sh(2025, 2, 9, 0)).duration == dt.timedelta(
        hours=9
    )


def test_complaint_at_2359_on_last_working_day_before_holiday(cn):
    # Counting starts at the next working period, 5 Feb 09:00, and ends after three full days.
    due = cn.add_working_days(sh(2025, 1, 27, 23, 59), 3)
    assert due.at == sh(2025, 2, 7, 18)
    assert cn.next_working_moment(sh(2025, 1, 27, 23, 59)).at == sh(2025, 2, 5, 9)
    one_second = cn.add_business_time(sh(2025, 9, 30, 23, 59), dt.timedelta(seconds=1))
    assert one_second.at == sh(2025, 10, 9, 9, 0, 1)


def test_24x7_calendar_counts_every_second():
    always = always_open_calendar()
    start = sh(2025, 1, 27, 23, 59)
    assert always.add_working_days(start, 3).at == sh(2025, 1, 30, 23, 59)
    assert always.business_time_between(start, sh(2025, 2, 5, 23, 59)).duration == dt.timedelta(
        days=9
    )
    assert always.working_day_length == dt.timedelta(hours=24)


def test_date_outside_coverage_counts_by_weekend_rule_and_is_reported(cn):
    # Fri 3 Jan 2031 10:00 + 1 working day: weekend rule skips Sat/Sun, due Mon 10:00.
    due = cn.add_working_days(sh(2031, 1, 3, 10), 1)
    assert due.at == sh(2031, 1, 6, 10)
    assert due.missing_dates == {
        dt.date(2031, 1, 3),
        dt.date(2031, 1, 4),
        dt.date(2031, 1, 5),
        dt.date(2031, 1, 6),
    }
    assert due.missing_years == {2031}
    span = cn.business_time_between(sh(2031, 1, 3, 9), sh(2031, 1, 6, 18))
    assert span.duration == dt.timedelta(hours=18)
    assert span.missing_years == {2031}
    assert cn.day_status(dt.date(2031, 1, 4)).data_missing


def test_operator_override_wins_over_everything(cn):
    overridden = cn.model_copy(
        update={
            "overrides": {
                dt.date(2025, 10, 8): True,  # a statutory holiday made a working day
                dt.date(2025, 10, 9): False,  # a weekday closed
                dt.date(2031, 1, 3): False,  # known by the operator, so not missing
            }
        }
    )
    # Tue 30 Sep 16:00: 2 h, Wed 8 Oct (override) 9 h, Thu 9 Oct closed,
    # Fri 10 Oct 9 h, Sat 11 Oct 7 h.
    assert overridden.add_working_days(sh(2025, 9, 30, 16), 3).at == sh(2025, 10, 11, 16)
    assert overridden.add_working_days(sh(2025, 9, 30, 16), 2).at == sh(2025, 10, 10, 16)
    assert overridden.day_status(dt.date(2025, 10, 8)).reason is DayReason.OVERRIDE_WORKING
    status = overridden.day_status(dt.date(2031, 1, 3))
    assert (status.is_working, status.data_missing) == (False, False)
    always = always_open_calendar().model_copy(update={"overrides": {dt.date(2025, 1, 1): False}})
    assert always.business_time_between(sh(2025, 1, 1), sh(2025, 1, 3)).duration == dt.timedelta(
        hours=24
    )


def test_working_hours_with_a_lunch_break():
    lunch = BusinessCalendar(
        name="lunch",
        working_periods=(
            WorkingPeriod(start="13:30", end="18:00"),
            WorkingPeriod(start="09:00", end="12:00"),
        ),
    )
    assert lunch.working_day_length == dt.timedelta(hours=7, minutes=30)
    monday = dt.date(2025, 3, 3)
    assert lunch.add_business_time(sh(2025, 3, 3, 11), dt.timedelta(hours=2)).at == sh(
        2025, 3, 3, 14, 30
    )
    assert lunch.add_business_time(sh(2025, 3, 3, 12, 15), dt.timedelta(minutes=1)).at == sh(
        2025, 3, 3, 13, 31
    )
    assert lunch.business_time_between(
        sh(2025, 3, 3, 11), sh(2025, 3, 3, 14, 30)
    ).duration == dt.timedelta(hours=2)
    assert lunch.add_working_days(sh(2025, 3, 3, 9), 1).at == sh(2025, 3, 3, 18)
    assert not lunch.is_working_moment(sh(2025, 3, 3, 12, 30))
    assert [start.astimezone(SHANGHAI).hour for start, _ in lunch.working_intervals(monday)] == [
        9,
        13,
    ]


# -- exactness, safety, data ----------------------------------------------------------


def test_exact_to_the_second_and_period_end_is_inclusive(cn):
    assert cn.add_business_time(sh(2025, 3, 3, 17, 59, 59), dt.timedelta(seconds=1)).at == sh(
        2025, 3, 3, 18
    )
    assert cn.add_business_time(sh(2025, 3, 3, 17, 59, 59), dt.timedelta(seconds=2)).at == sh(
        2025, 3, 4, 9, 0, 1
    )
    assert cn.add_working_days(sh(2025, 3, 3, 9), 1).at == sh(2025, 3, 3, 18)
    assert cn.add_business_time(sh(2025, 3, 3, 20), dt.timedelta(0)).at == sh(2025, 3, 3, 20)


def test_long_durations_jump_day_by_day(cn):
    # 100 working days from 2 Jan 2025 in one call: exact and quick.
    due = cn.add_working_days(sh(2025, 1, 2, 9), 100)
    assert cn.business_time_between(sh(2025, 1, 2, 9), due.at).duration == dt.timedelta(hours=900)
    assert due.at.astimezone(SHANGHAI).time() == dt.time(18)


def test_calendar_without_working_time_raises_instead_of_looping():
    no_hours = BusinessCalendar(name="empty", working_periods=())
    with pytest.raises(CalendarHasNoWorkingTime):
        no_hours.add_business_time(sh(2025, 3, 3), dt.timedelta(hours=1))
    with pytest.raises(CalendarHasNoWorkingTime):
        no_hours.add_working_days(sh(2025, 3, 3), 1)
    no_days = BusinessCalendar(name="weekend-only", weekend_days=frozenset(range(7)))
    with pytest.raises(CalendarHasNoWorkingTime):
        no_days.next_working_moment(sh(2025, 3, 3))


def test_inputs_must_be_aware_and_durations_non_negative(cn):
    with pytest.raises(ValueError):
        cn.add_business_time(dt.datetime(2025, 3, 3, 10), dt.timedelta(hours=1))
    with pytest.raises(ValueError):
        cn.add_business_time(sh(2025, 3, 3, 10), dt.timedelta(hours=-1))
    assert cn.business_time_between(sh(2025, 3, 4), sh(2025, 3, 3)).duration == dt.timedelta(0)


def test_invalid_calendar_data_is_refused():
    with pytest.raises(ValueError):
        BusinessCalendar(name="x", timezone="Mars/Olympus")
    with pytest.raises(ValueError):
        BusinessCalendar(
            name="x",
            working_periods=(
                WorkingPeriod(start="09:00", end="12:00"),
                WorkingPeriod(start="11:00", end="13:00"),
            ),
        )
    with pytest.raises(ValueError):
        WorkingPeriod(start="18:00", end="09:00")
    with pytest.raises(ValueError):
        BusinessCalendar(
            name="x",
            holidays=frozenset({dt.date(2025, 1, 1)}),
            makeup_workdays=frozenset({dt.date(2025, 1, 1)}),
        )


def test_day_boundaries_follow_the_calendar_zone_across_dst():
    berlin = always_open_calendar("berlin", timezone="Europe/Berlin")
    zone = ZoneInfo("Europe/Berlin")
    spring_day = berlin.business_time_between(
        dt.datetime(2025, 3, 30, tzinfo=zone), dt.datetime(2025, 3, 31, tzinfo=zone)
    )
    assert spring_day.duration == dt.timedelta(hours=23)
    office = BusinessCalendar(name="berlin-office", timezone="Europe/Berlin")
    # Fri 28 Mar 17:00 CET + 2 h: 1 h Friday, then Mon 31 Mar 09:00 CEST + 1 h.
    due = office.add_business_time(dt.datetime(2025, 3, 28, 17, tzinfo=zone), dt.timedelta(hours=2))
    assert due.at == dt.datetime(2025, 3, 31, 8, tzinfo=UTC)


def test_a_calendar_counts_its_own_days_after_another_counted_the_same_dates(cn):
    # Each calendar object keeps the days it has counted; an edited copy is another calendar.
    national_day = dt.date(2025, 10, 8)
    before = cn.add_working_days(sh(2025, 9, 30, 16), 3).at
    assert cn.day_status(national_day).reason is DayReason.HOLIDAY
    edited = cn.model_copy(update={"overrides": {national_day: True}})
    assert edited.day_status(national_day).reason is DayReason.OVERRIDE_WORKING
    assert edited.working_intervals(national_day) == [(sh(2025, 10, 8, 9), sh(2025, 10, 8, 18))]
    assert edited.add_working_days(sh(2025, 9, 30, 16), 3).at == sh(2025, 10, 10, 16)
    assert cn.day_status(national_day).reason is DayReason.HOLIDAY
    assert cn.working_intervals(national_day) == []
    assert cn.add_working_days(sh(2025, 9, 30, 16), 3).at == before == sh(2025, 10, 11, 16)
    restored = BusinessCalendar.model_validate(cn.model_dump())
    assert restored == cn  # what a calendar remembers is not part of its value


def test_days_counted_again_give_the_same_answers_across_dst():
    office = BusinessCalendar(name="berlin-office", timezone="Europe/Berlin")
    zone = ZoneInfo("Europe/Berlin")
    start = dt.datetime(2025, 3, 28, 17, tzinfo=zone)
    for _ in range(2):
        assert office.add_business_time(start, dt.timedelta(hours=2)).at == dt.datetime(
            2025, 3, 31, 8, tzinfo=UTC
        )
        monday_ten = dt.datetime(2025, 3, 31, 10, tzinfo=zone)
        assert office.business_time_between(start, monday_ten).duration == dt.timedelta(hours=2)
        assert office.working_intervals(dt.date(2025, 3, 31)) == [
            (dt.datetime(2025, 3, 31, 7, tzinfo=UTC), dt.datetime(2025, 3, 31, 16, tzinfo=UTC))
        ]
        assert office.zone == zone


def test_what_a_calendar_remembers_goes_with_it():
    from tousu_sla.domain import calendar as calendar_module

    transient = BusinessCalendar(name="transient")
    transient.add_working_days(sh(2025, 3, 3, 9), 5)
    key = id(transient)
    assert key in calendar_module._MEMOS
    del transient
    gc.collect()
    assert key not in calendar_module._MEMOS


def test_calendar_round_trips_through_json(cn):
    edited = cn.model_copy(update={"overrides": {dt.date(2027, 1, 4): True}})
    restored = BusinessCalendar.model_validate_json(edited.model_dump_json())
    assert restored == edited
    assert restored.add_working_days(sh(2025, 1, 27, 23, 59), 3).at == sh(2025, 2, 7, 18)


# -- notices to people ------------------------------------------------------------------


def test_routine_notices_wait_for_working_time_but_immediate_pages_at_once(cn):
    three_am_saturday = sh(2025, 3, 8, 3)
    assert next_notification_time(three_am_saturday, "routine", cn).at == sh(2025, 3, 10, 9)
    assert next_notification_time(three_am_saturday, "immediate", cn).at == three_am_saturday
    assert next_notification_time(sh(2025, 3, 10, 11), "priority", cn).at == sh(2025, 3, 10, 11)
    assert next_notification_time(sh(2025, 1, 27, 23, 59), None, cn).at == sh(2025, 2, 5, 9)

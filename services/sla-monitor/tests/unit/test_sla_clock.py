"""The milestone clock: due times, pauses, warnings, breach, retargeting."""

import datetime as dt

import pytest
from sla_factories import H, sh
from tousu_shared.contracts.vocabulary import HandlerLevel
from tousu_sla.domain import (
    WALL_CLOCK,
    ClockKind,
    FiringKind,
    MilestoneClock,
    MilestoneFinished,
    MilestoneSpec,
    MilestoneState,
    chinese_statutory_calendar,
)

UTC = dt.UTC


def spec(target=10 * H, **changes):
    """A wall-clock milestone spec with overridable fields."""
    fields = {
        "key": "resolve",
        "name": "Resolved",
        "start_event": "ComplaintReceived",
        "stop_events": ("CaseResolved",),
        "target": target,
        "escalation_interval": 4 * H,
    } | changes
    return MilestoneSpec(**fields)


START = sh(2025, 3, 3, 0)


def wall_clock(target=10 * H, **changes):
    return MilestoneClock(spec(target, **changes), WALL_CLOCK, START)


def test_due_and_warning_times_on_the_wall_clock():
    clock = wall_clock()
    assert clock.due_at == START + 10 * H
    assert clock.warning_times() == {0.5: START + 5 * H, 0.75: START + 7.5 * H, 0.9: START + 9 * H}
    assert clock.next_fire_at() == START + 5 * H
    assert clock.due_at.tzinfo is UTC


def test_pause_and_resume_extend_the_due_time_and_are_recorded():
    clock = wall_clock(24 * H)
    assert clock.pause(START + 2 * H, by="agent-7", why="waiting for photos from customer")
    assert not clock.pause(START + 3 * H, by="agent-7", why="again")  # already paused
    assert clock.due_at is None and clock.next_fire_at() is None  # unknown while stopped short
    assert clock.state is MilestoneState.PAUSED
    assert clock.resume(START + 5 * H, by="agent-7")
    assert not clock.resume(START + 6 * H)
    assert clock.due_at == START + 27 * H
    assert clock.elapsed(START + 6 * H) == 3 * H
    assert clock.paused_time(START + 6 * H) == 3 * H
    (pause,) = clock.pauses
    assert (pause.paused_by, pause.reason, pause.ended_at) == (
        "agent-7",
        "waiting for photos from customer",
        START + 5 * H,
    )
    with pytest.raises(ValueError):
        clock.pause(START + 4 * H, by="x", why="before the last change")


def test_pause_on_business_clock_only_removes_business_time():
    cn = chinese_statutory_calendar()
    business = MilestoneClock(
        spec(target=None, target_working_days=3, clock=ClockKind.BUSINESS), cn, sh(2025, 3, 3, 10)
    )
    assert business.due_at == sh(2025, 3, 6, 10)
    business.pause(sh(2025, 3, 3, 20), by="agent", why="night")  # outside working hours
    business.resume(sh(2025, 3, 4, 8))
    assert business.due_at == sh(2025, 3, 6, 10)
    business.pause(sh(2025, 3, 4, 9), by="agent", why="customer away")
    business.resume(sh(2025, 3, 4, 12))
    assert business.due_at == sh(2025, 3, 6, 13)
    assert business.paused_time(sh(2025, 3, 5)) == 3 * H


def test_meet_returns_elapsed_and_ends_the_clock():
    clock = wall_clock()
    clock.pause(START + 1 * H, by="agent", why="customer")
    assert clock.meet(START + 4 * H) == 1 * H  # met while paused: the open pause is closed
    assert clock.meet(START + 9 * H) == 1 * H  # idempotent
    assert clock.within_target and clock.state is MilestoneState.MET
    assert clock.fire(START + 30 * H) == [] and clock.next_fire_at() is None
    with pytest.raises(MilestoneFinished):
        clock.pause(START + 5 * H, by="x", why="y")
    late = wall_clock()
    assert late.meet(START + 11 * H) == 11 * H
    assert late.within_target is False


def test_fires_on_time_are_not_late_and_fire_once():
    clock = wall_clock()
    (warning,) = clock.fire(START + 5 * H + dt.timedelta(seconds=1))
    assert (warning.kind, warning.warn_fraction, warning.late) == (FiringKind.WARNING, 0.5, False)
    assert clock.fire(START + 5 * H + dt.timedelta(seconds=2)) == []
    assert clock.state is MilestoneState.RUNNING  # 50 % is a warning, at-risk starts at 75 %
    clock.fire(START + 7.5 * H)
    assert clock.state is MilestoneState.AT_RISK
    assert clock.next_fire_at() == START + 9 * H


def test_catch_up_after_downtime_fires_each_once_in_order_then_breach():
    clock = wall_clock()
    firings = clock.fire(START + 12 * H)  # the monitor was down from before 05:00 until 12:00
    assert [(f.kind, f.warn_fraction) for f in firings] == [
        (FiringKind.WARNING, 0.5),
        (FiringKind.WARNING, 0.75),
        (FiringKind.WARNING, 0.9),
        (FiringKind.BREACH, None),
    ]
    assert [f.scheduled_for for f in firings] == [
        START + 5 * H,
        START + 7.5 * H,
        START + 9 * H,
        START + 10 * H,
    ]
    assert all(f.late and f.fired_at == START + 12 * H for f in firings)
    assert clock.state is MilestoneState.BREACHED
    assert clock.is_overdue and clock.breached_at == START + 10 * H
    assert clock.fire(START + 12 * H) == []
    assert clock.next_fire_at() is None  # re-escalating the case is the case's rule


def test_retarget_counts_from_original_start_and_keeps_fired_thresholds():
    clock = wall_clock(24 * H)
    assert [f.warn_fraction for f in clock.fire(START + 13 * H)] == [0.5]
    clock.retarget(spec(6 * H))  # urgency raised at 13:00
    assert clock.started_at == START
    assert clock.due_at == START + 6 * H
    caught_up = clock.fire(START + 13 * H)
    assert [(f.kind, f.warn_fraction, f.scheduled_for) for f in caught_up] == [
        (FiringKind.WARNING, 0.75, START + 4.5 * H),
        (FiringKind.WARNING, 0.9, START + 5.4 * H),
        (FiringKind.BREACH, None, START + 6 * H),
    ]
    assert clock.next_fire_at() is None


def test_retarget_keeps_met_milestones_met():
    clock = wall_clock(24 * H)
    elapsed = clock.meet(START + 8 * H)
    clock.retarget(spec(6 * H))
    assert clock.is_met and clock.state is MilestoneState.MET
    assert clock.elapsed_when_met == elapsed == 8 * H
    assert clock.fire(START + 40 * H) == []
    with pytest.raises(ValueError):
        clock.retarget(spec(key="other"))


def test_state_at_is_a_pure_function_of_time():
    clock = wall_clock()
    assert clock.state_at(START + 1 * H) is MilestoneState.RUNNING
    assert clock.state_at(START + 8 * H) is MilestoneState.AT_RISK
    assert clock.state_at(START + 10 * H) is MilestoneState.BREACHED
    view = clock.view(START + 8 * H, HandlerLevel.AGENT)
    assert (view.state, view.elapsed, view.due_at, view.next_fire_at) == (
        MilestoneState.AT_RISK,
        8 * H,
        START + 10 * H,
        START + 5 * H,
    )


def test_clock_reports_calendar_gaps_for_uncovered_years():
    cn = chinese_statutory_calendar()
    clock = MilestoneClock(
        spec(target=None, target_working_days=1, clock=ClockKind.BUSINESS), cn, sh(2031, 1, 3, 10)
    )
    assert clock.due_at == sh(2031, 1, 6, 10)
    assert {day.year for day in clock.calendar_gaps} == {2031}


def test_a_due_time_asked_again_is_the_same_and_notes_the_same_calendar_gaps():
    # Instants are remembered per clock (the arithmetic is pure); asking again, after the
    # case took the gaps it had noted, notes them again as a recomputation does.
    cn = chinese_statutory_calendar()
    clock = MilestoneClock(
        spec(target=None, target_working_days=1, clock=ClockKind.BUSINESS), cn, sh(2031, 1, 3, 10)
    )
    noted = set(clock.calendar_gaps)
    assert noted
    clock.calendar_gaps.clear()
    assert clock.due_at == sh(2031, 1, 6, 10)
    assert clock.calendar_gaps == noted
    # A pause and a resume change the key: the due time moves by the paused working time.
    assert clock.pause(sh(2031, 1, 3, 11), by="agent", why="waiting")
    assert clock.due_at is None
    assert clock.resume(sh(2031, 1, 3, 12), by="agent")
    assert clock.due_at == sh(2031, 1, 6, 11)

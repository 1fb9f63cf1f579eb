"""The case SLA aggregate driven by events through the default policies."""

import datetime as dt

from sla_factories import H, sh
from tousu_shared.contracts.vocabulary import HandlerLevel
from tousu_sla.domain import (
    CalendarDataMissing,
    CaseEvent,
    CaseSla,
    Escalated,
    Firing,
    FiringKind,
    MilestoneCancelled,
    MilestoneMet,
    MilestonePaused,
    MilestoneResumed,
    MilestoneRetargeted,
    MilestoneStarted,
    MilestoneState,
    PolicySet,
    default_policy_set,
)


def new_case(calendars, policies=None):
    return CaseSla("case-1", policies or default_policy_set(), calendars)


def of(kind, outcomes):
    return [outcome for outcome in outcomes if isinstance(outcome, kind)]


RECEIVED = sh(2025, 3, 3, 10)  # Monday


def received(at=RECEIVED, **payload):
    return CaseEvent("ComplaintReceived", at, payload)


def test_received_starts_every_milestone_and_records_from_contact_time(calendars):
    case = new_case(calendars)
    outcomes = case.apply(received(contact_at="2025-03-03T09:00:00+08:00", channel="phone"))
    due = {started.milestone_key: started.due_at for started in of(MilestoneStarted, outcomes)}
    assert due == {
        "record": sh(2025, 3, 3, 11),
        "first_response": sh(2025, 3, 4, 10),
        "confirm": sh(2025, 3, 4, 10),
        "root_cause": sh(2025, 3, 5, 10),
        "initial_solution": sh(2025, 3, 6, 10),
        "resolve": sh(2025, 3, 12, 10),  # 7 working days later, same time of day
    }
    (recorded,) = of(MilestoneMet, outcomes)
    assert (recorded.milestone_key, recorded.elapsed, recorded.within_target) == (
        "record",
        1 * H,
        True,
    )
    assert case.clocks["record"].started_at == sh(2025, 3, 3, 9)
    assert case.attributes.channel == "phone"


def test_late_recording_breaches_the_record_milestone_before_meeting_it(calendars):
    case = new_case(calendars)
    outcomes = case.apply(received(contact_at=sh(2025, 3, 3, 7)))
    record = [o for o in outcomes if getattr(o, "milestone_key", None) == "record"]
    assert [type(o).__name__ for o in record] == [
        "MilestoneStarted",
        "Firing",
        "Firing",
        "Firing",
        "Firing",
        "Escalated",  # the case became overdue for two hours: one level up
        "MilestoneMet",
    ]
    breach = record[4]
    assert (
        breach.kind is FiringKind.BREACH
        and breach.scheduled_for == sh(2025, 3, 3, 9)
        and breach.late
    )
    assert record[-1].within_target is False and record[-1].elapsed == 3 * H


def test_stop_events_meet_and_timers_fire_in_order(calendars):
    case = new_case(calendars)
    case.apply(received())
    (met,) = of(MilestoneMet, case.apply(CaseEvent("FirstResponseSent", sh(2025, 3, 3, 15))))
    assert (met.milestone_key, met.elapsed) == ("first_response", 5 * H)
    fired = case.fire(sh(2025, 3, 3, 22))
    assert [(f.milestone_key, f.warn_fraction) for f in fired] == [("confirm", 0.5)]
    assert case.next_fire_at() == sh(2025, 3, 4, 4)  # confirm at 75 %
    views = {view.key: view for view in case.views(sh(2025, 3, 4, 5))}
    assert views["first_response"].state is MilestoneState.MET
    assert views["confirm"].state is MilestoneState.AT_RISK
    assert views["resolve"].due_at == sh(2025, 3, 12, 10)


def test_a_later_stage_also_meets_skipped_earlier_milestones(calendars):
    case = new_case(calendars)
    case.apply(received())
    met = of(MilestoneMet, case.apply(CaseEvent("SolutionProposed", sh(2025, 3, 4, 11))))
    assert {m.milestone_key for m in met} == {"confirm", "root_cause", "initial_solution"}


def test_meeting_exactly_at_the_due_time_is_not_a_breach(calendars):
    case = new_case(calendars)
    case.apply(received())
    outcomes = case.apply(CaseEvent("FirstResponseSent", sh(2025, 3, 4, 10)))
    assert not [f for f in of(Firing, outcomes) if f.kind is FiringKind.BREACH]
    assert of(MilestoneMet, outcomes)[0].within_target


def test_customer_wait_pauses_the_policy_milestones_and_extends_due(calendars):
    case = new_case(calendars)
    case.apply(received())
    paused = case.apply(
        CaseEvent("CustomerWaitStarted", sh(2025, 3, 4, 10), {"reason": "photos"}, actor="agent-7")
    )
    assert {p.milestone_key for p in of(MilestonePaused, paused)} == {
        "root_cause",
        "initial_solution",
        "resolve",
    }
    assert of(MilestonePaused, paused)[0].paused_by == "agent-7"
    resumed = case.apply(CaseEvent("CustomerWaitEnded", sh(2025, 3, 5, 10)))
    due = {r.milestone_key: r.due_at for r in of(MilestoneResumed, resumed)}
    assert due["resolve"] == sh(2025, 3, 13, 10)  # 9 business hours later than before
    assert case.clocks["first_response"].due_at == sh(2025, 3, 4, 10)  # no pause in its spec
    view = next(v for v in case.views(sh(2025, 3, 6)) if v.key == "resolve")
    assert view.paused_time == 9 * H and view.pauses[0].reason == "photos"


def test_reclassification_to_complex_retargets_from_the_original_start(calendars):
    case = new_case(calendars)
    case.apply(received(contact_at=sh(2025, 3, 3, 9)))
    outcomes = case.apply(
        CaseEvent("ComplaintClassified", sh(2025, 3, 3, 11), {"severity": "serious"})
    )
    due = {r.milestone_key: r.due_at for r in of(MilestoneRetargeted, outcomes)}
    assert due["initial_solution"] == sh(2025, 3, 10, 10)  # 5 working days from receipt
    assert "record" not in due and case.clocks["record"].is_met
    assert case.policy.name == "complex"


def test_raising_to_immediate_does_not_reset_the_clock(calendars):
    case = new_case(calendars)
    case.apply(received())
    case.apply(CaseEvent("ComplaintReclassified", sh(2025, 3, 3, 12, 30), {"urgency": "immediate"}))
    assert case.policy.name == "immediate"
    assert case.clocks["first_response"].due_at == sh(2025, 3, 3, 11)  # counted from 10:00
    fired = case.fire(sh(2025, 3, 3, 12, 30))
    first_response = [
        (type(o).__name__, getattr(o, "kind", None), getattr(o, "level", None))
        for o in fired
        if o.milestone_key == "first_response"
    ]
    assert first_response == [
        ("Firing", FiringKind.WARNING, None),
        ("Firing", FiringKind.WARNING, None),
        ("Firing", FiringKind.WARNING, None),
        ("Firing", FiringKind.BREACH, None),
        ("Escalated", None, HandlerLevel.DEPARTMENT_MANAGER),
        ("Escalated", None, HandlerLevel.DIRECTOR),  # hourly while overdue, at 12:00
    ]
    assert [e.repeat for e in of(Escalated, fired)] == [0, 1]
    assert case.escalation_level is HandlerLevel.DIRECTOR
    assert case.clocks["resolve"].due_at == sh(2025, 3, 4, 4)


def test_worked_immediate_case_meets_every_milestone_on_its_hour(calendars):
    case = new_case(calendars)
    t0 = sh(2025, 3, 8, 22)  # Saturday night: calendar-clock targets ignore working hours
    case.apply(received(at=t0, urgency="immediate"))
    timeline = [
        (1, "FirstResponseSent"),
        (6, "InvestigationStarted"),
        (12, "SolutionProposed"),
        (18, "CaseResolved"),
    ]
    breaches = []
    for hours, event_type in timeline:
        case.apply(CaseEvent(event_type, t0 + hours * H))
        breaches += [f for f in case.fire(t0 + hours * H) if f.kind is not FiringKind.WARNING]
    assert breaches == []
    met = {key: clock.elapsed_when_met for key, clock in case.clocks.items() if clock.is_met}
    assert met == {
        "record": dt.timedelta(0),
        "first_response": 1 * H,
        "confirm": 6 * H,
        "root_cause": 12 * H,
        "initial_solution": 12 * H,
        "resolve": 18 * H,
    }
    assert all(clock.within_target for clock in case.clocks.values() if clock.is_met)
    assert case.clocks["follow_up"].due_at == t0 + 42 * H


def test_follow_up_restarts_after_reopen_and_close_cancels_the_rest(calendars):
    case = new_case(calendars)
    case.apply(received())
    case.apply(CaseEvent("FirstResponseSent", sh(2025, 3, 3, 11)))
    case.apply(CaseEvent("CaseResolved", sh(2025, 3, 5, 10)))
    case.apply(CaseEvent("CustomerInformed", sh(2025, 3, 5, 12)))
    assert case.clocks["follow_up"].is_met
    case.apply(CaseEvent("CaseReopened", sh(2025, 3, 6, 10)))
    (restarted,) = of(MilestoneStarted, case.apply(CaseEvent("CaseResolved", sh(2025, 3, 7, 10))))
    assert (restarted.milestone_key, restarted.due_at) == ("follow_up", sh(2025, 3, 8, 10))
    assert case.cycles == {"follow_up": 1}
    # Reopened before the follow-up was due: that cycle is moot, the next resolution restarts it.
    case.apply(CaseEvent("CaseReopened", sh(2025, 3, 7, 10, 30)))
    assert case.clocks["follow_up"].is_cancelled
    case.apply(CaseEvent("CaseResolved", sh(2025, 3, 7, 10, 45)))
    assert case.cycles == {"follow_up": 2}
    cancelled = of(MilestoneCancelled, case.apply(CaseEvent("CaseClosed", sh(2025, 3, 7, 11))))
    assert {c.milestone_key for c in cancelled} == {"follow_up"}
    assert case.next_fire_at() is None


def test_stop_event_seen_before_its_start_event(calendars):
    case = new_case(calendars)
    case.apply(CaseEvent("FirstResponseSent", sh(2025, 3, 3, 11)))  # arrived first, other topic
    outcomes = case.apply(received())
    (met,) = [m for m in of(MilestoneMet, outcomes) if m.milestone_key == "first_response"]
    assert met.elapsed == 1 * H


def test_missing_calendar_year_is_reported_once_and_refilled_by_operator(calendars):
    case = new_case(calendars)
    outcomes = case.apply(received(at=sh(2026, 12, 28, 10)))
    (missing,) = of(CalendarDataMissing, outcomes)
    assert missing.calendar_name == "cn-statutory" and missing.years == {2027}
    assert case.clocks["resolve"].due_at == sh(2027, 1, 6, 10)  # 1 Jan counted as a weekday
    assert (
        of(CalendarDataMissing, case.apply(CaseEvent("FirstResponseSent", sh(2026, 12, 28, 11))))
        == []
    )
    cn = calendars["cn-statutory"]
    filled = cn.model_copy(
        update={
            "holidays": cn.holidays | {dt.date(2027, 1, 1)},
            "data_years": cn.data_years | {2027},
        }
    )
    outcomes = case.use_calendars({"cn-statutory": filled})
    assert of(CalendarDataMissing, outcomes) == []
    assert case.clocks["resolve"].due_at == sh(2027, 1, 7, 10)


def test_operator_added_milestone_applies_without_code(calendars):
    as_json = default_policy_set().model_dump(mode="json")
    as_json["policies"][-1]["milestones"].append(
        {
            "key": "root_cause_2d",
            "name": "Root cause within 2 days",
            "start_event": "InvestigationStarted",
            "stop_events": ["RootCauseRecorded"],
            "target": "P2D",
        }
    )
    case = new_case(calendars, PolicySet.model_validate(as_json))
    case.apply(received())
    (started,) = of(
        MilestoneStarted, case.apply(CaseEvent("InvestigationStarted", sh(2025, 3, 3, 14)))
    )
    assert (started.milestone_key, started.due_at) == ("root_cause_2d", sh(2025, 3, 5, 14))


def test_close_announces_a_missed_breach_before_cancelling(calendars):
    case = new_case(calendars)
    case.apply(received())
    outcomes = case.apply(CaseEvent("CaseClosed", sh(2025, 3, 4, 11)), now=sh(2025, 3, 4, 11))
    first_response = [o for o in outcomes if getattr(o, "milestone_key", None) == "first_response"]
    assert [type(o).__name__ for o in first_response][-3:] == [
        "Firing",
        "Escalated",
        "MilestoneCancelled",
    ]
    assert [f.kind for f in first_response if isinstance(f, Firing)][-1] is FiringKind.BREACH
    # first_response and confirm fell due together at 10:00: one level, not two.
    assert [e.level for e in of(Escalated, outcomes)] == [HandlerLevel.DEPARTMENT_MANAGER]
    assert case.next_fire_at() is None

"""The one escalation rule: one level when a case becomes overdue, one per interval after."""

import datetime as dt

import orjson
from sla_factories import SHANGHAI, H, milestone
from tousu_shared.contracts.vocabulary import HandlerLevel
from tousu_sla.domain import (
    CaseEvent,
    CaseSla,
    ClockKind,
    Escalated,
    PolicySet,
    SlaPolicy,
    default_policy_set,
)

RECEIVED = dt.datetime(2025, 3, 3, 10, tzinfo=SHANGHAI)  # Monday


def escalations(outcomes) -> list[Escalated]:
    return [outcome for outcome in outcomes if isinstance(outcome, Escalated)]


def received_case(calendars, policies=None) -> CaseSla:
    case = CaseSla("case-1", policies or default_policy_set(), calendars)
    case.apply(CaseEvent("ComplaintReceived", RECEIVED, {"contact_at": RECEIVED.isoformat()}))
    return case


def test_two_milestones_breached_together_escalate_the_case_one_level(calendars):
    case = received_case(calendars)
    # First response and confirmation are both 24 h: both fall due at the same instant.
    assert case.clocks["first_response"].due_at == case.clocks["confirm"].due_at
    outcomes = case.fire(RECEIVED + 25 * H)
    (escalated,) = escalations(outcomes)
    assert (escalated.from_level, escalated.level) == (
        HandlerLevel.AGENT,
        HandlerLevel.DEPARTMENT_MANAGER,
    )
    assert escalated.repeat == 0 and escalated.scheduled_for == RECEIVED + 24 * H
    assert set(escalated.overdue) == {"first_response", "confirm"}
    assert case.escalation_level is HandlerLevel.DEPARTMENT_MANAGER


def test_a_later_breach_while_overdue_does_not_add_a_level(calendars):
    a, b = (
        milestone(key, hours * H, "CaseResolved", escalation_interval=None)
        for key, hours in (("a", 2), ("b", 3))
    )
    policies = PolicySet(policies=(SlaPolicy(name="two", milestones=(a, b)),))
    case = CaseSla("case-3", policies, calendars)
    case.apply(CaseEvent("ComplaintReceived", RECEIVED))
    outcomes = case.fire(RECEIVED + 4 * H)
    breached = [o.milestone_key for o in outcomes if getattr(o, "kind", None) == "breach"]
    assert breached == ["a", "b"]  # SlaBreached stays per milestone
    assert [(e.milestone_key, e.level) for e in escalations(outcomes)] == [
        ("a", HandlerLevel.DEPARTMENT_MANAGER)
    ]
    assert case.next_fire_at() is None  # no interval configured: no further step


def test_the_case_rises_once_more_per_interval_while_overdue_and_stops_at_the_top(calendars):
    case = received_case(calendars)
    case.fire(RECEIVED + 24 * H)
    assert case.next_fire_at() == RECEIVED + 28 * H  # the standard policy's 4 h interval
    assert escalations(case.fire(RECEIVED + 27 * H)) == []
    (second,) = escalations(case.fire(RECEIVED + 28 * H))
    assert (second.level, second.repeat) == (HandlerLevel.DIRECTOR, 1)
    (third,) = escalations(case.fire(RECEIVED + 33 * H))
    assert (third.level, third.repeat, third.scheduled_for) == (
        HandlerLevel.EXECUTIVE,
        2,
        RECEIVED + 32 * H,
    )
    assert escalations(case.fire(RECEIVED + 100 * H)) == []
    assert case.escalation_level is HandlerLevel.EXECUTIVE


def test_a_case_routed_at_department_manager_escalates_to_director(calendars):
    case = received_case(calendars)
    case.apply(CaseEvent("CaseRouted", RECEIVED + 1 * H, {"handler_level": "department_manager"}))
    (escalated,) = escalations(case.fire(RECEIVED + 25 * H))
    assert (escalated.from_level, escalated.level) == (
        HandlerLevel.DEPARTMENT_MANAGER,
        HandlerLevel.DIRECTOR,
    )


def test_the_level_follows_assignments_and_manual_escalations(calendars):
    case = received_case(calendars)
    case.apply(CaseEvent("CaseAssigned", RECEIVED + 1 * H, {"handler_level": "director"}))
    assert case.escalation_level is HandlerLevel.DIRECTOR
    case.apply(
        CaseEvent(
            "CaseEscalated",
            RECEIVED + 2 * H,
            {"from_level": "director", "to_level": "executive"},
        )
    )
    # Already at the top: the breach cannot raise the case any further.
    assert escalations(case.fire(RECEIVED + 40 * H)) == []
    assert case.escalation_level is HandlerLevel.EXECUTIVE


def test_meeting_every_overdue_milestone_ends_the_spell_and_a_new_breach_starts_one(calendars):
    case = received_case(calendars)
    case.fire(RECEIVED + 25 * H)
    case.apply(CaseEvent("InvestigationStarted", RECEIVED + 26 * H))  # meets confirm
    assert case.overdue() and case.escalation.overdue_since is not None  # first response
    case.apply(CaseEvent("FirstResponseSent", RECEIVED + 26 * H))
    assert case.overdue() == [] and case.escalation.overdue_since is None
    assert escalations(case.fire(RECEIVED + 30 * H)) == []  # no interval step without overdue
    # Root cause is due after 2 working days: the case becomes overdue again, one level more.
    (again,) = escalations(case.fire(RECEIVED + 48 * H + 1 * H))
    assert (again.milestone_key, again.level, again.repeat) == (
        "root_cause",
        HandlerLevel.DIRECTOR,
        0,
    )


def test_interval_steps_count_on_the_overdue_milestones_business_clock(calendars):
    spec = milestone(
        "answer", 2 * H, "FirstResponseSent", clock=ClockKind.BUSINESS, escalation_interval=4 * H
    )
    policies = PolicySet(policies=(SlaPolicy(name="business", milestones=(spec,)),))
    case = CaseSla("case-2", policies, calendars)
    friday = dt.datetime(2025, 3, 7, 15, tzinfo=SHANGHAI)
    case.apply(CaseEvent("ComplaintReceived", friday))
    raised = escalations(case.fire(dt.datetime(2025, 3, 10, 18, tzinfo=SHANGHAI)))
    assert [e.scheduled_for for e in raised] == [
        dt.datetime(2025, 3, 7, 17, tzinfo=SHANGHAI),  # breach, Friday 17:00
        dt.datetime(2025, 3, 10, 12, tzinfo=SHANGHAI),  # Fri 17–18, Mon 09–12: no weekend
        dt.datetime(2025, 3, 10, 16, tzinfo=SHANGHAI),
    ]


def test_a_restored_case_continues_its_spell_without_repeating_a_step(calendars):
    policies = default_policy_set()
    case = received_case(calendars, policies)
    case.fire(RECEIVED + 28 * H)
    stored = orjson.loads(orjson.dumps(case.to_memento()))
    restored = CaseSla.from_memento(stored, policies, calendars)
    assert escalations(restored.fire(RECEIVED + 28 * H)) == []
    (next_step,) = escalations(restored.fire(RECEIVED + 32 * H))
    assert (next_step.level, next_step.repeat) == (HandlerLevel.EXECUTIVE, 2)

"""The case SLA aggregate survives a save and restore exactly (what the repository relies on)."""

import datetime as dt

import orjson
from sla_factories import milestone, sh
from tousu_sla.domain import (
    CaseEvent,
    CaseSla,
    Firing,
    PolicySet,
    SlaPolicy,
    default_policy_set,
)


def round_trip(case: CaseSla, policies: PolicySet, calendars) -> CaseSla:
    stored = orjson.loads(orjson.dumps(case.to_memento()))
    return CaseSla.from_memento(stored, policies, calendars)


def test_restored_case_has_the_same_views_and_next_timer(calendars):
    policies = default_policy_set()
    case = CaseSla("case-1", policies, calendars)
    case.apply(
        CaseEvent(
            "ComplaintReceived",
            sh(2025, 3, 3, 10),
            {"contact_at": "2025-03-03T09:30:00+08:00", "urgency": "routine"},
        )
    )
    case.apply(
        CaseEvent("CustomerWaitStarted", sh(2025, 3, 3, 11), {"reason": "photos"}, actor="agent:li")
    )
    case.fire(sh(2025, 3, 3, 23))
    restored = round_trip(case, policies, calendars)
    now = sh(2025, 3, 4, 9)
    assert restored.views(now) == case.views(now)
    assert restored.next_fire_at() == case.next_fire_at()
    assert restored.escalation_level == case.escalation_level
    assert restored.to_memento() == case.to_memento()


def test_restored_case_never_fires_a_threshold_twice(calendars):
    policies = default_policy_set()
    case = CaseSla("case-2", policies, calendars)
    case.apply(CaseEvent("ComplaintReceived", sh(2025, 3, 3, 10), {"urgency": "immediate"}))
    first = [o for o in case.fire(sh(2025, 3, 3, 12)) if isinstance(o, Firing)]
    assert first
    restored = round_trip(case, policies, calendars)
    assert [o for o in restored.fire(sh(2025, 3, 3, 12)) if isinstance(o, Firing)] == []
    later = [o for o in restored.fire(sh(2025, 3, 3, 17)) if isinstance(o, Firing)]
    assert later and all(f.fired_at == sh(2025, 3, 3, 17) for f in later)


def test_a_spec_the_policy_no_longer_holds_is_stored_with_the_clock(calendars):
    policies = default_policy_set()
    case = CaseSla("case-3", policies, calendars)
    case.apply(CaseEvent("ComplaintReceived", sh(2025, 3, 3, 10), {}))
    extra = milestone("callback", dt.timedelta(hours=3), "SurveyAnswered")
    standard = policies.policy("standard")
    changed = PolicySet(
        version=2,
        policies=(
            *policies.policies[:-1],
            SlaPolicy(name="standard", milestones=(*standard.milestones, extra)),
        ),
    )
    case.use_policy_set(changed, sh(2025, 3, 3, 11))
    restored = round_trip(case, changed, calendars)
    assert restored.clocks["callback"].spec == extra
    assert list(restored.clocks) == list(case.clocks)


def test_earlier_cycles_of_a_repeatable_milestone_are_counted(calendars):
    policies = default_policy_set()
    case = CaseSla("case-4", policies, calendars)
    case.apply(CaseEvent("ComplaintReceived", sh(2025, 3, 3, 10), {}))
    case.apply(CaseEvent("CaseResolved", sh(2025, 3, 4, 10), {}))
    case.apply(CaseEvent("CustomerInformed", sh(2025, 3, 4, 11), {}))
    case.apply(CaseEvent("CaseReopened", sh(2025, 3, 5, 10), {}))
    case.apply(CaseEvent("CaseResolved", sh(2025, 3, 6, 10), {}))
    restored = round_trip(case, policies, calendars)
    assert restored.cycles == {"follow_up": 1}
    assert restored.clocks["follow_up"].started_at == sh(2025, 3, 6, 10)
    assert restored.to_memento() == case.to_memento()


def test_the_stored_state_does_not_grow_with_every_event(calendars):
    policies = default_policy_set()
    case = CaseSla("case-5", policies, calendars)
    case.apply(CaseEvent("ComplaintReceived", sh(2025, 3, 3, 10), {"urgency": "routine"}))

    def notes(count: int, from_minute: int) -> None:
        for minute in range(from_minute, from_minute + count):
            at = sh(2025, 3, 3, 11) + dt.timedelta(minutes=minute)
            case.apply(CaseEvent("CaseNoteAdded", at, {"note_id": f"n-{minute:05d}"}))

    notes(3, 0)
    size = len(orjson.dumps(case.to_memento()))
    notes(500, 3)
    memento = case.to_memento()
    assert len(orjson.dumps(memento)) == size  # the first and the latest note are kept
    assert [event["type"] for event in memento["history"]] == [
        "ComplaintReceived",
        "CaseNoteAdded",
        "CaseNoteAdded",
    ]
    assert memento["history"][-1]["payload"] == {"note_id": "n-00502"}


def test_a_memento_written_before_the_bounded_history_still_restores(calendars):
    policies = default_policy_set()
    case = CaseSla("case-6", policies, calendars)
    case.apply(CaseEvent("ComplaintReceived", sh(2025, 3, 3, 10), {}))
    current = orjson.loads(orjson.dumps(case.to_memento()))
    old = {
        key: value
        for key, value in current.items()
        if key not in {"version", "escalation", "history", "cycles"}
    }
    old |= {
        "starting_level": "agent",
        "events": current["history"],
        "finished_cycles": [],
        "clocks": [
            {**clock, "starting_level": "agent", "escalation_level": "director"}
            for clock in current["clocks"]
        ],
    }
    restored = CaseSla.from_memento(old, policies, calendars)
    assert restored.escalation_level == "director"  # the highest any milestone had reached
    later = sh(2025, 3, 3, 12)
    assert [(v.key, v.due_at, v.state) for v in restored.views(later)] == [
        (v.key, v.due_at, v.state) for v in case.views(later)
    ]
    assert restored.next_fire_at() == case.next_fire_at()

"""The case SLA aggregate survives a save and restore exactly (what the repository relies on)."""

import datetime as dt
from zoneinfo import ZoneInfo

import orjson
import pytest
from tousu_sla.domain import (
    CaseEvent,
    CaseSla,
    Firing,
    MilestoneSpec,
    PolicySet,
    SlaPolicy,
    chinese_statutory_calendar,
    default_policy_set,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def sh(year, month, day, hour=0, minute=0):
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def calendars():
    return {"cn-statutory": chinese_statutory_calendar()}


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
    extra = MilestoneSpec(
        key="callback",
        name="Callback",
        start_event="ComplaintReceived",
        stop_events=("SurveyAnswered",),
        target=dt.timedelta(hours=3),
    )
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


def test_earlier_cycles_of_a_repeatable_milestone_are_kept(calendars):
    policies = default_policy_set()
    case = CaseSla("case-4", policies, calendars)
    case.apply(CaseEvent("ComplaintReceived", sh(2025, 3, 3, 10), {}))
    case.apply(CaseEvent("CaseResolved", sh(2025, 3, 4, 10), {}))
    case.apply(CaseEvent("SurveyScheduled", sh(2025, 3, 4, 11), {}))
    case.apply(CaseEvent("CaseReopened", sh(2025, 3, 5, 10), {}))
    case.apply(CaseEvent("CaseResolved", sh(2025, 3, 6, 10), {}))
    restored = round_trip(case, policies, calendars)
    assert [clock.started_at for clock in restored.finished_cycles] == [sh(2025, 3, 4, 10)]
    assert restored.clocks["follow_up"].started_at == sh(2025, 3, 6, 10)
    assert restored.to_memento() == case.to_memento()

"""Contract events in (flattened for the aggregate) and SLA contract events out."""

import uuid

from sla_factories import sh
from tousu_shared.contracts import Envelope
from tousu_shared.contracts.complaint import ClassificationData, ComplaintClassified
from tousu_shared.contracts.feedback import SurveyScheduled
from tousu_shared.contracts.sla import SlaAtRisk, SlaBreached, SlaEscalated
from tousu_sla.domain import (
    CaseEvent,
    CaseSla,
    MilestoneRetargeted,
    default_policy_set,
)
from tousu_sla.service_layer.sla_events import contract_events, due_times
from tousu_sla.service_layer.translation import to_case_event


def envelope_for(event, at=None) -> Envelope:
    return Envelope(
        source="test",
        type=event.event_type,
        subject=str(event.complaint_id),
        schema_version=1,
        correlation_id="c",
        data={},
        **({"time": at} if at else {}),
    )


def test_classification_is_flattened_for_the_aggregate_and_timed_by_its_envelope():
    event = ComplaintClassified(
        complaint_id=uuid.uuid4(),
        classification=ClassificationData(
            category="price_dispute", severity="serious", urgency="priority", customer_tier="vip"
        ),
        explanation={"long": "text"},
        ruleset_version="7",
    )
    published = sh(2025, 3, 3, 10)
    case_event = to_case_event(event, envelope_for(event, published))
    assert case_event.type == "ComplaintClassified"
    assert case_event.occurred_at == published
    assert {
        key: case_event.payload[key] for key in ("urgency", "severity", "customer_tier", "category")
    } == {
        "urgency": "priority",
        "severity": "serious",
        "customer_tier": "vip",
        "category": "price_dispute",
    }
    assert "classification" not in case_event.payload
    assert "explanation" not in case_event.payload


def test_feedback_events_without_a_time_of_their_own_use_the_publication_time():
    event = SurveyScheduled(complaint_id=uuid.uuid4(), survey_id="s", due_at=sh(2025, 3, 4, 10))
    published = sh(2025, 3, 3, 12)
    assert to_case_event(event, envelope_for(event, published)).occurred_at == published


def test_a_breach_is_published_with_its_escalation_and_unique_firing_keys(calendars):
    case = CaseSla(str(uuid.uuid4()), default_policy_set(), calendars)
    # Received Friday 23:00 before a routine weekend: warnings fall in the night.
    case.apply(CaseEvent("ComplaintReceived", sh(2025, 3, 7, 23), {"urgency": "routine"}))
    outcomes = case.fire(sh(2025, 3, 9, 2))
    events = contract_events(case, outcomes, previous_due=due_times(case))
    first_response = [item for item in events if item.event.milestone == "first_response"]
    kinds = [type(item.event) for item in first_response]
    assert kinds == [SlaAtRisk, SlaAtRisk, SlaAtRisk, SlaBreached, SlaEscalated]
    keys = [item.firing_key for item in events]
    assert all(keys) and len(keys) == len(set(keys))
    escalated = first_response[-1].event
    assert escalated.level == "department_manager" and escalated.repeat == 0
    assert escalated.late is True  # fired hours after it fell due
    # A routine case's people are told on the next working morning, not at 2 a.m. Sunday.
    assert escalated.notify_at == sh(2025, 3, 10, 9)


def test_an_immediate_case_pages_at_once(calendars):
    case = CaseSla(str(uuid.uuid4()), default_policy_set(), calendars)
    case.apply(CaseEvent("ComplaintReceived", sh(2025, 3, 8, 2), {"urgency": "immediate"}))
    fired_at = sh(2025, 3, 8, 3)
    events = contract_events(case, case.fire(fired_at), previous_due=due_times(case))
    breach = next(item.event for item in events if isinstance(item.event, SlaBreached))
    assert breach.notify_at == fired_at


def test_a_retarget_that_moves_nothing_is_not_published(calendars):
    case = CaseSla(str(uuid.uuid4()), default_policy_set(), calendars)
    case.apply(CaseEvent("ComplaintReceived", sh(2025, 3, 3, 10), {}))
    unchanged = MilestoneRetargeted(
        "first_response", "standard", case.clocks["first_response"].due_at
    )
    assert contract_events(case, [unchanged], previous_due=due_times(case)) == []
    moved = contract_events(case, [unchanged], previous_due={"first_response": None})
    assert moved[0].event.previous_due_at is None

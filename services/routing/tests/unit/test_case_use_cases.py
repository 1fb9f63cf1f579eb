"""The case use cases on a fake unit of work: what they store, publish and audit, and refuse."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from contract_events import complaint_received
from tousu_routing.domain import CaseState, IllegalTransition
from tousu_routing.domain import commands as c
from tousu_routing.entrypoints.api import _service_error
from tousu_routing.service_layer import cases
from tousu_routing.service_layer.handlers import event_handlers
from tousu_routing.settings import RoutingSettings
from tousu_shared.auth import ROLE_SCOPES, Principal
from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts.case import (
    CaseAcknowledged,
    CaseEscalated,
    CaseRouted,
    CaseTransferred,
)
from tousu_shared.contracts.complaint import (
    ClassificationData,
    ComplaintClassified,
)
from tousu_shared.contracts.sla import SlaBreached, SlaEscalated
from tousu_shared.errors import NotFound
from tousu_shared.outbox import Outbox

PRODUCER = Outbox(RoutingSettings(service_name="test"))
DUE = datetime(2024, 5, 6, 8, 30, tzinfo=UTC)
AGENT = Principal("k-1", "wang", "agent", "quality", ROLE_SCOPES["agent"])
OTHER_AGENT = Principal("k-2", "zhao", "agent", "logistics", ROLE_SCOPES["agent"])


def envelope_of(event: Event) -> Envelope:
    """The event as the producing service's outbox wraps it."""
    return PRODUCER.envelope(event)


async def consume(routing, event: Event) -> None:
    """What the inbox consumer does: the event's handler in a unit of work, committed once."""
    handler = event_handlers(routing.ctx)[event.event_type]
    async with routing.uow as uow:
        await handler(uow, event, envelope_of(event))
        await uow.commit()


async def act(routing, command: c.CaseCommand, principal: Principal = AGENT):
    """What an endpoint does: the use case in a unit of work, committed once."""
    async with routing.uow as uow:
        record = await cases.perform_action(routing.ctx, uow, command, principal)
        await uow.commit()
    return record


async def open_case(routing, severity: str = "general", **received) -> dict:
    """A complaint received and classified as a product-quality one; its stored case."""
    complaint_id = uuid.uuid4()
    contact_at = routing.clock() - timedelta(hours=1)
    await consume(
        routing,
        complaint_received(complaint_id, contact_at, **received),
    )
    classification = ClassificationData(
        category="product_quality", severity=severity, urgency="routine", customer_tier="regular"
    )
    await consume(
        routing,
        ComplaintClassified(
            complaint_id=complaint_id,
            classification=classification,
            explanation={"category": "keyword"},
            ruleset_version="test",
        ),
    )
    record = await routing.uow.cases.get_by_complaint(complaint_id)
    assert record is not None
    return {"id": record.case.case_id, "complaint_id": complaint_id, "record": record}


def escalation(
    complaint_id: uuid.UUID,
    level: str,
    repeat: int = 0,
    overdue: tuple[str, ...] = ("first_response",),
) -> SlaEscalated:
    return SlaEscalated(
        complaint_id=complaint_id,
        milestone=overdue[0],
        policy="default",
        due_at=DUE,
        level=level,
        repeat=repeat,
        overdue_milestones=list(overdue),
    )


# ---- opening --------------------------------------------------------------------------------


async def test_a_classified_complaint_opens_a_routed_case_published_to_its_department(routing):
    case = await open_case(routing)

    record = case["record"]
    assert (record.case.department, record.case.state, record.case.assignee_id) == (
        "quality",
        CaseState.ROUTED,
        "qa-1",
    )
    routed = [m for m in routing.uow.published if isinstance(m.event, CaseRouted)]
    assert [m.topic for m in routed] == ["case.events", "case.routed.quality"]
    assert routed[0].event.rule_id == "quality-products"
    assert [(e.action, e.resource_id) for e in routing.uow.audited] == [("case.route", case["id"])]
    assert routing.uow.complaint_facts.rows == {}  # the case holds what routing needs now


async def test_routing_reads_only_the_target_department_and_its_people(routing):
    await open_case(routing)

    departments = routing.uow.departments
    assert departments.locked == [["quality"]]
    assert departments.member_reads == [["ceo", "qa-1", "qa-2", "qa-dir", "qa-mgr"]]


async def test_the_least_loaded_agent_gets_the_next_case(routing):
    first = await open_case(routing)
    second = await open_case(routing)

    assert (first["record"].case.assignee_id, second["record"].case.assignee_id) == ("qa-1", "qa-2")


async def test_a_complaint_about_an_agent_goes_to_their_manager_level(routing):
    case = await open_case(routing, subject_staff_ref="qa-1")

    record = case["record"]
    assert (record.case.handler_level, record.case.assignee_id) == ("department_manager", "qa-mgr")
    assert "qa-1" in record.case.excluded_member_ids


async def test_a_second_classification_opens_no_second_case(routing):
    case = await open_case(routing)
    published = len(routing.uow.published)

    classification = ClassificationData(
        category="product_quality", severity="major", urgency="routine", customer_tier="regular"
    )
    await consume(
        routing,
        ComplaintClassified(
            complaint_id=case["complaint_id"],
            classification=classification,
            explanation={},
            ruleset_version="test",
        ),
    )

    assert len(routing.uow.cases.rows) == 1
    assert len(routing.uow.published) == published


# ---- acting -----------------------------------------------------------------------------------


async def test_acknowledging_stores_the_case_publishes_and_audits_once(routing):
    case = await open_case(routing)
    commits = routing.uow.commits

    record = await act(
        routing, c.AcknowledgeCase(case_id=case["id"], actor=AGENT.actor, expected_version=1)
    )

    assert record.case.state is CaseState.ACKNOWLEDGED
    stored = await routing.uow.cases.get(uuid.UUID(case["id"]))
    assert (stored.case.state, stored.case.version) == (CaseState.ACKNOWLEDGED, 2)
    acknowledged = [m for m in routing.uow.published if isinstance(m.event, CaseAcknowledged)]
    assert [m.topic for m in acknowledged] == ["case.events", "case.routed.quality"]
    assert routing.uow.audited[-1].action == "case.acknowledge"
    assert routing.uow.audited[-1].actor == "agent:wang"
    assert routing.uow.commits == commits + 1


async def test_an_illegal_transition_is_refused_with_the_allowed_actions(routing):
    case = await open_case(routing)
    published = len(routing.uow.published)

    with pytest.raises(IllegalTransition) as refused:
        await act(
            routing, c.ResolveCase(case_id=case["id"], actor=AGENT.actor, resolution="refunded")
        )

    assert refused.value.allowed_actions == (
        "acknowledge",
        "transfer",
        "escalate",
        "add_note",
        "assign",
    )
    error = _service_error(refused.value)
    assert error.status_code == 409
    assert error.body()["allowed_actions"] == [
        "acknowledge",
        "transfer",
        "escalate",
        "add-note",
        "assign",
    ]
    stored = await routing.uow.cases.get(uuid.UUID(case["id"]))
    assert (stored.case.state, stored.case.version) == (CaseState.ROUTED, 1)
    assert len(routing.uow.published) == published


async def test_another_departments_case_answers_like_a_missing_one(routing):
    case = await open_case(routing)

    with pytest.raises(NotFound):
        await act(
            routing, c.AcknowledgeCase(case_id=case["id"], actor=OTHER_AGENT.actor), OTHER_AGENT
        )


async def test_a_transfer_is_published_to_both_departments(routing):
    case = await open_case(routing)

    record = await act(
        routing,
        c.TransferCase(
            case_id=case["id"],
            actor=AGENT.actor,
            to_department="logistics",
            reason="a courier problem",
        ),
    )

    assert (record.case.department, record.case.assignee_id) == ("logistics", "lg-1")
    moved = routing.uow.published[-3:]
    assert [(type(m.event), m.topic) for m in moved] == [
        (CaseTransferred, "case.events"),
        (CaseTransferred, "case.routed.quality"),
        (CaseRouted, "case.routed.logistics"),
    ]
    assert moved[2].event.rule_reason == "transferred from quality: a courier problem"


# ---- SLA escalation -------------------------------------------------------------------------


def escalations(routing) -> list[tuple[str, str]]:
    """The escalations on the case stream (each also goes to the department's topic)."""
    return [
        (m.event.from_level, m.event.to_level)
        for m in routing.uow.published
        if isinstance(m.event, CaseEscalated) and m.topic == "case.events"
    ]


async def test_two_milestones_breached_together_raise_the_case_exactly_one_level(routing):
    case = await open_case(routing)
    complaint_id = case["complaint_id"]

    # First response and confirmation both 24 h, both breached together: the SLA monitor
    # reports two breaches and sends one escalation naming both.
    for milestone in ("first_response", "confirm"):
        breached = SlaBreached(
            complaint_id=complaint_id, milestone=milestone, policy="default", due_at=DUE
        )
        assert breached.event_type not in event_handlers(routing.ctx)  # breaches escalate nothing
    await consume(
        routing,
        escalation(complaint_id, "department_manager", overdue=("first_response", "confirm")),
    )

    assert escalations(routing) == [("agent", "department_manager")]
    stored = await routing.uow.cases.get(uuid.UUID(case["id"]))
    assert (stored.case.handler_level, stored.case.assignee_id) == ("department_manager", "qa-mgr")
    transition = stored.case.history[-1]
    assert transition.details["reason"] == "sla_breach"
    assert "milestone first_response" in transition.note
    assert "became overdue" in transition.note
    assert "also overdue: confirm" in transition.note
    assert routing.uow.audited[-1].actor == "system:sla-monitor"


async def test_an_escalation_to_a_level_the_case_has_changes_nothing(routing):
    case = await open_case(routing, severity="serious")  # already at department_manager
    published = len(routing.uow.published)

    await consume(routing, escalation(case["complaint_id"], "department_manager"))
    await consume(routing, escalation(case["complaint_id"], "agent"))

    stored = await routing.uow.cases.get(uuid.UUID(case["id"]))
    assert (stored.case.handler_level, stored.case.version) == ("department_manager", 1)
    assert len(routing.uow.published) == published


async def test_an_escalation_rises_straight_to_its_level_in_one_step(routing):
    case = await open_case(routing)

    await consume(routing, escalation(case["complaint_id"], "director", repeat=1))
    await consume(routing, escalation(case["complaint_id"], "director", repeat=1))

    assert escalations(routing) == [("agent", "director")]
    stored = await routing.uow.cases.get(uuid.UUID(case["id"]))
    assert (stored.case.escalation_level, stored.case.assignee_id) == (1, "qa-dir")
    assert "still overdue (repeat 1)" in stored.case.history[-1].note


async def test_a_closed_case_is_not_escalated(routing):
    case = await open_case(routing)
    steps = [
        c.AcknowledgeCase(case_id=case["id"], actor=AGENT.actor),
        c.StartInvestigation(case_id=case["id"], actor=AGENT.actor),
        c.ProposeSolution(case_id=case["id"], actor=AGENT.actor, solution="refund"),
        c.ResolveCase(
            case_id=case["id"],
            actor=AGENT.actor,
            resolution="refunded",
            root_cause="pricing bug",
            responsible_person="billing",
        ),
        c.CloseCase(case_id=case["id"], actor=AGENT.actor),
    ]
    for step in steps:
        routing.clock.advance(timedelta(minutes=5))
        await act(routing, step)

    await consume(routing, escalation(case["complaint_id"], "department_manager"))

    assert escalations(routing) == []

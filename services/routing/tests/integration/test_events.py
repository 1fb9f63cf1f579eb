"""Routing on the event streams: department topics, exactly-once effects, SLA and feedback."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from tousu_shared.contracts.complaint import ComplaintReclassified
from tousu_shared.contracts.feedback import CustomerConfirmed, CustomerDissatisfied, SurveyExpired
from tousu_shared.contracts.sla import SlaBreached, SlaEscalated
from tousu_shared.testing import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def quality(kit):
    await kit.quality()
    await kit.department("logistics", [("lg-1", "agent")])
    await kit.rule("quality-products", "quality", category=["product_quality"])
    await kit.rule("deliveries", "logistics", category=["delivery_delay"])


def breach(complaint_id: str, milestone: str = "first_response") -> SlaBreached:
    return SlaBreached(
        complaint_id=uuid.UUID(complaint_id),
        milestone=milestone,
        policy="default",
        due_at=datetime.now(UTC),
    )


def escalation(
    complaint_id: str,
    level: str,
    repeat: int = 0,
    overdue: tuple[str, ...] = ("first_response",),
) -> SlaEscalated:
    """What the SLA monitor sends when a case becomes (or stays) overdue."""
    return SlaEscalated(
        complaint_id=uuid.UUID(complaint_id),
        milestone=overdue[0],
        policy="default",
        due_at=datetime.now(UTC),
        level=level,
        repeat=repeat,
        overdue_milestones=list(overdue),
    )


async def test_a_department_consumer_receives_only_its_own_cases(kit, quality):
    mine = await kit.open_cases(3, category="product_quality")
    theirs = await kit.open_cases(2, category="delivery_delay")
    await kit.act(mine[0], "acknowledge")

    quality_topic = await kit.published("case.routed.quality")
    logistics_topic = await kit.published("case.routed.logistics")

    assert {e.subject for e in quality_topic} == {c["complaint_id"] for c in mine}
    assert {e.subject for e in logistics_topic} == {c["complaint_id"] for c in theirs}
    assert {e.data["department"] for e in quality_topic} == {"quality"}
    routed = [e for e in quality_topic if e.type == "CaseRouted"]
    assert len(routed) == 3
    assert {
        "category",
        "severity",
        "urgency",
        "handler_level",
        "assignee",
        "contact_details_url",
        "rule_id",
    } <= set(routed[0].data)
    assert [e.type for e in quality_topic if e.subject == mine[0]["complaint_id"]] == [
        "CaseRouted",
        "CaseAcknowledged",
    ]


async def test_each_event_is_published_once_and_redelivery_has_no_second_effect(kit, quality):
    case = await kit.open_case()
    records = [
        r
        for r in await kit.read_all(kit.topic("complaint.events"))
        if r.key == case["complaint_id"].encode()
    ]
    assert len(records) == 2  # ComplaintReceived, ComplaintClassified

    redelivery = kit.service.consumer()  # same consumer group: the same inbox
    outcomes = [await redelivery.process(record) for record in records]

    assert outcomes == ["duplicate", "duplicate"]
    # Intake sending the classification again (a new event id) still opens no second case.
    await kit.publish(kit.classified(uuid.UUID(case["complaint_id"]), severity="general"))
    await kit.act(case, "acknowledge")
    events = await kit.published("case.events", case["complaint_id"])
    assert [e.type for e in events] == ["CaseRouted", "CaseAcknowledged"]
    assert len({e.id for e in events}) == 2
    on_department = await kit.published("case.routed.quality", case["complaint_id"])
    assert [e.type for e in on_department] == ["CaseRouted", "CaseAcknowledged"]
    page = await kit.http.get("/v1/cases", params={"complaint_id": case["complaint_id"]})
    assert len(page.json()["items"]) == 1

    await kit.publish(escalation(case["complaint_id"], "department_manager"))
    escalated = await kit.case_when(case["id"], lambda c: c["escalation_level"] == 1)
    sla_record = next(
        r
        for r in await kit.read_all(kit.topic("sla.events"))
        if r.key == case["complaint_id"].encode()
    )
    assert await redelivery.process(sla_record) == "duplicate"
    assert (await kit.case(case["id"]))["version"] == escalated["version"]


async def test_a_classification_without_its_received_complaint_is_dead_lettered(kit, quality):
    complaint_id = uuid.uuid4()

    await kit.publish(kit.classified(complaint_id))

    async def dead_lettered():
        records = await kit.read_all(kit.topic("complaint.events.dlq"))
        return [r for r in records if r.key == str(complaint_id).encode()]

    (record,) = await wait_for(dead_lettered)
    headers = dict(record.headers)
    assert b"ComplaintReceived never arrived" in headers["dlq.reason"]
    assert headers["dlq.attempts"] == b"1"  # permanent: not retried
    page = await kit.http.get("/v1/cases", params={"complaint_id": str(complaint_id)})
    assert page.json()["items"] == []


async def test_sla_escalations_raise_the_case_to_their_level_and_stop_at_the_top(kit, quality):
    case = await kit.open_case()
    assert (case["handler_level"], case["assignee_id"]) == ("agent", "qa-1")

    levels = ["department_manager", "director", "executive"]
    for repeat, level in enumerate(levels):
        await kit.publish(escalation(case["complaint_id"], level, repeat=repeat))
        case = await kit.case_when(case["id"], lambda c, n=repeat + 1: c["escalation_level"] == n)
    # Still overdue at the top: the monitor names executive again, and nothing changes.
    (top,) = await kit.publish(escalation(case["complaint_id"], "executive", repeat=3))

    async def consumed() -> bool:
        async with kit.service.runtime.engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT count(*) FROM routing.inbox WHERE event_id = :id"), {"id": top.id}
            )
        return found == 1

    await wait_for(consumed)
    assert (await kit.case(case["id"]))["version"] == case["version"]
    assert (case["handler_level"], case["assignee_id"]) == ("executive", None)
    escalations = [h for h in case["history"] if h["action"] == "escalate"]
    assert [
        (h["details"]["from_level"], h["details"]["to_level"], h["details"]["capped"])
        for h in escalations
    ] == [
        ("agent", "department_manager", "false"),
        ("department_manager", "director", "false"),
        ("director", "executive", "false"),
    ]
    assert {h["actor"] for h in escalations} == {"system:sla-monitor"}
    assert "milestone first_response" in escalations[0]["note"]
    assert "became overdue" in escalations[0]["note"]
    assert "still overdue (repeat 2)" in escalations[2]["note"]
    events = [
        e
        for e in await kit.published("case.events", case["complaint_id"])
        if e.type == "CaseEscalated"
    ]
    assert [(e.data["from_level"], e.data["to_level"], e.data["reason"]) for e in events] == [
        ("agent", "department_manager", "sla_breach"),
        ("department_manager", "director", "sla_breach"),
        ("director", "executive", "sla_breach"),
    ]


async def test_a_dissatisfied_customer_reopens_the_case_in_the_same_department(kit, quality):
    case = await kit.resolve(
        await kit.open_case(),
        solution="replace the screen",
        resolution="screen replaced",
        root_cause="transport damage",
        responsible_person="carrier",
    )
    # The handler is away by the time the customer answers.
    away = await kit.http.patch(
        f"/v1/departments/quality/members/{case['assignee_id']}", json={"availability": "absent"}
    )
    assert away.status_code == 200, away.text

    await kit.publish(
        CustomerDissatisfied(
            complaint_id=uuid.UUID(case["complaint_id"]),
            survey_id="s-1",
            comment="it still blue-screens",
            satisfaction=2,
        )
    )
    case = await kit.case_when(case["id"], lambda c: c["state"] == "investigating")

    assert (case["department"], case["reopen_count"], case["resolution"]) == ("quality", 1, None)
    reopen = next(h for h in case["history"] if h["action"] == "reopen")
    assert (reopen["from_state"], reopen["to_state"]) == ("resolved", "investigating")
    assert reopen["note"] == "it still blue-screens (satisfaction 2/5)"
    assert case["history"][-1]["action"] == "assign"
    assert case["assignee_id"] == "qa-2"
    reopened = [
        e
        for e in await kit.published("case.events", case["complaint_id"])
        if e.type == "CaseReopened"
    ]
    assert reopened[0].data["reason"] == "it still blue-screens (satisfaction 2/5)"
    assert reopened[0].data["department"] == "quality"

    # Resolved again, then confirmed: closed for good.
    case = await kit.act(case, "propose-solution", {"solution": "a new laptop"})
    case = await kit.act(case, "resolve", {"resolution": "laptop replaced"})
    await kit.publish(
        CustomerConfirmed(
            complaint_id=uuid.UUID(case["complaint_id"]),
            survey_id="s-2",
            confirmed_at=datetime.now(UTC),
        )
    )
    case = await kit.case_when(case["id"], lambda c: c["state"] == "closed")
    assert case["close_reason"] == "customer_confirmed"


async def test_an_unanswered_survey_closes_the_case_and_early_feedback_changes_nothing(
    kit,
    quality,
):
    resolved, routed = await kit.open_cases(2)
    resolved = await kit.resolve(
        resolved,
        solution="refund",
        resolution="refunded",
        root_cause="pricing bug",
        responsible_person="billing",
    )

    await kit.publish(
        CustomerConfirmed(
            complaint_id=uuid.UUID(routed["complaint_id"]),
            survey_id="s-0",
            confirmed_at=datetime.now(UTC),
        ),
        SurveyExpired(
            complaint_id=uuid.UUID(resolved["complaint_id"]), survey_id="s-1", attempts=3
        ),
    )
    closed = await kit.case_when(resolved["id"], lambda c: c["state"] == "closed")

    assert (closed["close_reason"], closed["history"][-1]["actor"]) == (
        "no_response",
        "system:feedback",
    )
    assert (await kit.case(routed["id"]))["version"] == routed["version"]


async def test_a_reclassification_raises_the_handler_level_but_never_lowers_it(kit, quality):
    case = await kit.open_case(severity="general")
    complaint_id = uuid.UUID(case["complaint_id"])
    previous = kit.classification(severity="general")

    await kit.publish(
        ComplaintReclassified(
            complaint_id=complaint_id,
            classification=kit.classification(severity="major"),
            previous=previous,
            reason="a safety hazard",
            corrected_by="manager:li",
        )
    )
    case = await kit.case_when(case["id"], lambda c: c["handler_level"] == "director")

    assert (case["severity"], case["assignee_id"], case["notify_management"]) == (
        "major",
        "qa-dir",
        True,
    )
    escalations = [h for h in case["history"] if h["action"] == "escalate"]
    assert [h["details"]["reason"] for h in escalations] == ["reclassification"] * 2
    assert "reclassified by manager:li (a safety hazard)" in escalations[0]["note"]

    await kit.publish(
        ComplaintReclassified(
            complaint_id=complaint_id,
            classification=kit.classification(severity="minor"),
            previous=kit.classification(severity="major"),
            reason="overstated",
            corrected_by="manager:li",
        )
    )
    case = await kit.case_when(case["id"], lambda c: c["severity"] == "minor")
    assert case["handler_level"] == "director"
    assert case["history"][-1]["action"] == "add-note"
    assert "handler level stays director" in case["history"][-1]["note"]


async def test_two_milestones_breached_together_raise_the_case_exactly_one_level(kit, quality):
    case = await kit.open_case()
    complaint_id = case["complaint_id"]

    # First response and confirmation both fell due at the same moment: the monitor reports
    # two breaches and one escalation naming both.
    await kit.publish(
        breach(complaint_id, "first_response"),
        breach(complaint_id, "confirm"),
        escalation(complaint_id, "department_manager", overdue=("first_response", "confirm")),
    )
    case = await kit.case_when(case["id"], lambda c: c["escalation_level"] == 1)
    # A repeat naming the level the case already has changes nothing; the next interval's
    # escalation (one complaint's events are consumed in order) shows all before it applied.
    await kit.publish(
        escalation(complaint_id, "department_manager", overdue=("first_response", "confirm")),
        escalation(complaint_id, "director", repeat=1, overdue=("first_response", "confirm")),
    )
    case = await kit.case_when(case["id"], lambda c: c["handler_level"] == "director")

    escalations = [h for h in case["history"] if h["action"] == "escalate"]
    assert [(h["details"]["from_level"], h["details"]["to_level"]) for h in escalations] == [
        ("agent", "department_manager"),
        ("department_manager", "director"),
    ]
    assert "also overdue: confirm" in escalations[0]["note"]
    assert case["assignee_id"] == "qa-dir"


async def test_cases_routed_together_are_spread_over_the_least_loaded_agents(kit, quality):
    # One batch over every partition: the consumer applies partitions concurrently, and each
    # routing locks its department's assignments before it reads the loads.
    cases = await kit.open_cases(6)

    assert sorted(case["assignee_id"] for case in cases) == ["qa-1"] * 3 + ["qa-2"] * 3

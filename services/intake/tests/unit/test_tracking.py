"""The tracking page follows the SLA clocks: started, retargeted, paused, resumed, met,
cancelled (domain.md §4; issue 8, item 8)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contract_events import milestone_paused, milestone_retargeted, milestone_started, sla_event
from intake_fakes import deliver, fake_context, principal
from tousu_intake.domain.commands import SubmitComplaint
from tousu_intake.domain.complaint import ComplaintDetails, Customer
from tousu_intake.service_layer.services import submit_complaint, track
from tousu_shared.clock import FixedClock
from tousu_shared.contracts import Event
from tousu_shared.contracts.sla import SlaMet, SlaMilestoneCancelled, SlaMilestoneResumed
from tousu_shared.contracts.vocabulary import Channel

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
URGENT = SubmitComplaint(
    details=ComplaintDetails(
        channel=Channel.PHONE,
        description="热水器漏电，我被电了一下，手现在还麻，太危险了！",
    ),
    customer=Customer(phone="13900001111"),
)
FIRST_RESPONSE = "first_response"


async def submitted() -> tuple[Any, Any, uuid.UUID, str]:
    """The urgent complaint submitted on a fake unit of work at NOW: the context, the unit of
    work, the complaint's id and its tracking code."""
    context, uow = fake_context(FixedClock(NOW))
    answer = (await submit_complaint(URGENT, principal=principal(), context=context)).answer
    return context, uow, uuid.UUID(answer["id"]), answer["tracking_code"]


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def started(complaint_id: uuid.UUID, milestone: str, hours: float) -> Event:
    return milestone_started(complaint_id, milestone, NOW, at(hours))


def retargeted(complaint_id: uuid.UUID, milestone: str, hours: float) -> Event:
    return milestone_retargeted(complaint_id, milestone, at(hours))


def due(hours: float) -> str:
    return at(hours).isoformat()


async def test_an_urgent_complaints_first_response_follows_the_retarget_to_one_hour():
    context, uow, complaint_id, code = await submitted()
    assert uow.complaints.rows[complaint_id].urgency == "immediate"
    await deliver(
        uow,
        started(complaint_id, FIRST_RESPONSE, 24),
        started(complaint_id, "resolved", 24 * 7),
        retargeted(complaint_id, FIRST_RESPONSE, 1),
        retargeted(complaint_id, "resolved", 18),
    )
    tracked = await track(code, context=context)
    assert tracked.deadlines.due == {FIRST_RESPONSE: due(1), "resolved": due(18)}
    assert tracked.deadlines.paused == []


async def test_a_paused_milestone_shows_no_due_date_until_it_resumes():
    context, uow, complaint_id, code = await submitted()
    await deliver(
        uow,
        started(complaint_id, FIRST_RESPONSE, 1),
        milestone_paused(complaint_id, FIRST_RESPONSE, NOW, "waiting for the customer's photos"),
    )
    paused = (await track(code, context=context)).deadlines
    assert (paused.due, paused.paused) == ({}, [FIRST_RESPONSE])
    await deliver(
        uow,
        sla_event(
            SlaMilestoneResumed, complaint_id, FIRST_RESPONSE, due_at=at(3), resumed_at=at(2)
        ),
    )
    resumed = (await track(code, context=context)).deadlines
    assert (resumed.due, resumed.paused) == ({FIRST_RESPONSE: due(3)}, [])


async def test_met_and_cancelled_milestones_are_dropped_and_stay_dropped():
    context, uow, complaint_id, code = await submitted()
    await deliver(
        uow,
        started(complaint_id, FIRST_RESPONSE, 1),
        started(complaint_id, "resolved", 18),
        sla_event(
            SlaMet,
            complaint_id,
            FIRST_RESPONSE,
            due_at=at(1),
            met_at=NOW + timedelta(minutes=40),
            elapsed_seconds=2400,
        ),
        sla_event(SlaMilestoneCancelled, complaint_id, "resolved", cancelled_at=at(2)),
        # A late retarget of a milestone that no longer runs does not bring it back.
        retargeted(complaint_id, FIRST_RESPONSE, 2),
    )
    tracked = (await track(code, context=context)).deadlines
    assert (tracked.due, tracked.paused) == ({}, [])

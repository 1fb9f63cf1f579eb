"""Intake's complaint repository on the real Postgres: one aggregate per locked row in a
transaction, and saved changes written once, before anything that could read them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from contract_events import milestone_started
from intake_factories import complaint_body, one_row
from tousu_intake.service_layer.handlers import follow_deadline
from tousu_shared.contracts.sla import SlaMilestoneStarted
from tousu_shared.testing import envelope_of

pytestmark = pytest.mark.integration


def started(complaint_id: uuid.UUID, milestone: str, hours: int) -> SlaMilestoneStarted:
    now = datetime.now(UTC)
    return milestone_started(complaint_id, milestone, now, now + timedelta(hours=hours))


async def stored_due_dates(intake, complaint_id: uuid.UUID) -> dict:
    return (
        await one_row(
            intake, "SELECT due_dates FROM intake.complaint WHERE id = :id", id=complaint_id
        )
    )[0]


async def test_deadline_events_of_one_complaint_in_one_transaction_all_land(http, intake):
    created = await http.post("/v1/complaints", json=complaint_body())
    complaint_id = uuid.UUID(created.json()["id"])
    events = [started(complaint_id, "first_response", 24), started(complaint_id, "resolution", 72)]
    context = intake.app.state.intake
    async with context.uow() as uow:
        first = await uow.complaints.get(complaint_id, for_update=True)
        assert await uow.complaints.get(complaint_id, for_update=True) is first
        for event in events:
            await follow_deadline(uow, event, envelope_of(event))
        # A read in the same transaction sees what was saved (written before it runs).
        seen = await uow.complaints.get(complaint_id)
        assert seen is not None and seen is not first
        assert set(seen.due_dates) >= {"first_response", "resolution"}
        await uow.commit()
    assert set(await stored_due_dates(intake, complaint_id)) >= {"first_response", "resolution"}


async def test_saved_changes_are_gone_when_the_transaction_is_left_without_commit(http, intake):
    created = await http.post("/v1/complaints", json=complaint_body())
    complaint_id = uuid.UUID(created.json()["id"])
    before = await stored_due_dates(intake, complaint_id)
    event = started(complaint_id, "first_response", 1)
    async with intake.app.state.intake.uow() as uow:
        await follow_deadline(uow, event, envelope_of(event))
    assert await stored_due_dates(intake, complaint_id) == before

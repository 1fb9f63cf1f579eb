"""The policy set in force and the calendars are read once per transaction (a consumer's
batch shares one), and read again once the transaction changes them."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from tousu_sla.domain.calendar import always_open_calendar
from tousu_sla.service_layer import catalog

pytestmark = pytest.mark.integration


async def test_one_transaction_reads_the_catalog_once_and_again_after_changing_it(sla):
    async with sla.ctx.uow() as uow:
        repo = uow.sla
        before = await repo.current_policy_set()
        assert before is not None
        assert await repo.current_policy_set() is before
        published = await catalog.publish_policy_set(
            uow,
            before.policy_set.policies,
            based_on_version=before.version,
            comment="again",
            actor="t",
        )
        now_in_force = await repo.current_policy_set()
        assert now_in_force is not None
        assert now_in_force.version == published.version == before.version + 1

        calendars = await repo.calendars()
        extra = always_open_calendar("repository-test")
        await repo.save_calendar(extra, version=1, updated_by="t")
        assert "repository-test" not in calendars
        assert "repository-test" in await repo.calendars()
        await uow.commit()


async def test_a_case_and_its_stored_due_times_come_in_one_read(sla, new_complaint):
    complaint = new_complaint()
    await sla.apply(complaint.received(), complaint.classified("routine"))
    async with sla.ctx.uow() as uow:
        repo = uow.sla
        found = await repo.case_with_due_times(complaint.complaint_id, for_update=True)
        assert found is not None
        row, due = found
        alone = await repo.case_state(complaint.complaint_id, for_update=False)
        assert alone is not None
        assert {key: row[key] for key in alone} == dict(alone)
        milestones = await uow.session.execute(
            sa.text("SELECT milestone_key, due_at FROM sla_milestone WHERE case_id = :id"),
            {"id": complaint.complaint_id},
        )
        assert due == {key: at for key, at in milestones.all()}
        assert due and all(at is None or at.tzinfo is not None for at in due.values())
        assert await repo.case_with_due_times(uuid.uuid4(), for_update=False) is None

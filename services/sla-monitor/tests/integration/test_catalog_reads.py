"""The policy set in force and the calendars are read once per transaction (a consumer's
batch shares one), and read again once the transaction changes them."""

from __future__ import annotations

import pytest
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

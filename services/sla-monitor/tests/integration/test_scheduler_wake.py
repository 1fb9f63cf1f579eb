"""An idle scheduler sleeps on the schema's commit signal instead of polling: a timer the
consumer adds while it sleeps still fires on time (real Postgres LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from tousu_shared.outbox import CommitListener
from tousu_shared.testing import wait_for
from tousu_sla.entrypoints.scheduler import SlaScheduler

pytestmark = pytest.mark.integration


async def fired(sla, complaint_id, event_type: str) -> bool:
    async with sla.runtime.engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT 1 FROM sla_monitor.sla_event_log "
                "WHERE complaint_id = :id AND event_type = :type"
            ),
            {"id": complaint_id, "type": event_type},
        )
        return found.first() is not None


async def test_a_timer_added_while_the_scheduler_sleeps_wakes_it(sla, new_complaint):
    # A fallback poll of ten minutes: only the commit signal can wake it within the test.
    settings = sla.settings.model_copy(update={"scheduler_fallback_poll_ms": 600_000})
    commits = CommitListener(settings, sla.runtime.engine)
    scheduler = SlaScheduler(settings, sla.ctx, commits)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        await wait_for(lambda: commits.listening)
        await asyncio.sleep(0.3)  # past its first round: asleep with nothing due
        complaint = new_complaint()
        # The urgent test policy: first response due in 2 s, at risk at 1 s.
        await sla.apply(complaint.received(), complaint.classified("immediate"))
        await wait_for(lambda: fired(sla, complaint.complaint_id, "SlaAtRisk"), timeout=15)
        await wait_for(lambda: fired(sla, complaint.complaint_id, "SlaBreached"), timeout=15)
    finally:
        stop.set()
        await task
    assert not commits.listening  # the scheduler closed its LISTEN connection

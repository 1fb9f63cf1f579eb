"""An idle scheduler sleeps on the schema's commit signal instead of polling: a timer the
consumer adds, or a calendar edit moves, while it sleeps is still seen at once (real
Postgres LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from tousu_shared.outbox import CommitListener
from tousu_shared.testing import wait_for
from tousu_sla.entrypoints.scheduler import SlaScheduler
from tousu_sla.settings import SlaSettings

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


@contextlib.asynccontextmanager
async def sleeping_scheduler(sla) -> AsyncIterator[CommitListener]:
    """A scheduler running with a fallback poll of ten minutes, asleep with nothing due:
    only the commit signal can wake it within a test."""
    settings: SlaSettings = sla.settings.model_copy(update={"scheduler_fallback_poll_ms": 600_000})
    commits = CommitListener(settings, sla.runtime.engine)
    scheduler = SlaScheduler(settings, sla.ctx, commits)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        await wait_for(lambda: commits.listening)
        await asyncio.sleep(0.3)  # past its first round: asleep with nothing due
        yield commits
    finally:
        stop.set()
        await task
    assert not commits.listening  # the scheduler closed its LISTEN connection


async def test_a_timer_added_while_the_scheduler_sleeps_wakes_it(sla, new_complaint):
    async with sleeping_scheduler(sla):
        complaint = new_complaint()
        # The urgent test policy: first response due in 2 s, at risk at 1 s.
        await sla.apply(complaint.received(), complaint.classified("immediate"))
        await wait_for(lambda: fired(sla, complaint.complaint_id, "SlaAtRisk"), timeout=15)
        await wait_for(lambda: fired(sla, complaint.complaint_id, "SlaBreached"), timeout=15)


async def test_a_calendar_edit_while_the_scheduler_sleeps_wakes_it(sla, new_complaint):
    # A calendar edit publishes no event: it makes the cases counted on the calendar due
    # now, and its commit must wake the scheduler to recompute them.
    shanghai = dt.timezone(dt.timedelta(hours=8))
    policies = [policy.model_dump(mode="json") for policy in sla.policies()]
    policies[-1]["milestones"].append(
        {
            "key": "plan",
            "name": "Initial solution",
            "start_event": "ComplaintReceived",
            "stop_events": ["SolutionProposed"],
            "target_working_days": 1,
            "clock": "business",
            "calendar": "weekdays",
        }
    )
    complaint = new_complaint()
    async with sla.http() as http:
        weekdays = {
            "timezone": "Asia/Shanghai",
            "working_periods": [{"start": "09:00", "end": "18:00"}],
        }
        assert (await http.put("/v1/calendars/weekdays", json=weekdays)).status_code == 200
        assert (await http.put("/v1/sla-policies", json={"policies": policies})).status_code == 200
        # Monday 10:00 + 1 working day: due Tuesday 10:00, years away.
        await sla.apply(complaint.received(dt.datetime(2031, 3, 3, 10, tzinfo=shanghai)))
        async with sleeping_scheduler(sla):
            day_off = await http.put(
                "/v1/calendars/weekdays/dates/2031-03-04", json={"working": False}
            )
            assert day_off.status_code == 200, day_off.text
            await wait_for(
                lambda: fired(sla, complaint.complaint_id, "SlaMilestoneRetargeted"), timeout=15
            )
    (due_at,) = await sla.scalars(
        "SELECT due_at FROM sla_monitor.sla_milestone "
        "WHERE case_id = :id AND milestone_key = 'plan'",
        id=complaint.complaint_id,
    )
    assert due_at == dt.datetime(2031, 3, 5, 10, tzinfo=shanghai)

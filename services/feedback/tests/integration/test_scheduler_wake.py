"""An idle survey scheduler sleeps on feedback's commit signal instead of polling: a survey
the consumer schedules while it sleeps is offered at once (real Postgres LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio

import pytest
from tousu_feedback.entrypoints.scheduler import SurveyScheduler
from tousu_shared.outbox import CommitListener
from tousu_shared.testing import wait_for

pytestmark = pytest.mark.integration


async def test_a_survey_scheduled_while_the_scheduler_sleeps_wakes_it(system):
    # A fallback poll of ten minutes: only the commit signal can wake it within the test.
    settings = system.feedback.runtime.settings.model_copy(
        update={"scheduler_fallback_poll_ms": 600_000}
    )
    commits = CommitListener(settings, system.feedback.runtime.engine)
    scheduler = SurveyScheduler(settings, system.feedback.app.state.feedback, commits)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        await wait_for(lambda: commits.listening)
        await asyncio.sleep(0.3)  # past its first round: asleep with nothing due
        complaint, _ = await system.resolved_case()
        survey = await system.survey_when(complaint["id"], "offered")
        assert [m["kind"] for m in survey["messages"]] == ["result_and_survey"]
    finally:
        stop.set()
        await task
    assert not commits.listening  # the scheduler closed its LISTEN connection

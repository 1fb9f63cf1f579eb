"""A relay in the writer's own process is woken by the commit directly, without the NOTIFY."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from contract_events import customer_message_added as message
from tousu_analytics.settings import AnalyticsSettings
from tousu_shared.outbox import OutboxRelay
from tousu_shared.runtime import Runtime
from tousu_shared.testing import read_topic, test_settings, wait_for

pytestmark = pytest.mark.integration


async def test_a_commit_wakes_the_relay_of_its_process_without_a_notify(kafka_topics):
    # Fallback and idle polls of ten minutes, and a NOTIFY sent ten minutes after the
    # commit: within the test, only the in-process wake-up can get the event out.
    settings = test_settings(
        AnalyticsSettings,
        relay_fallback_poll_ms=600_000,
        relay_idle_poll_ms=600_000,
        relay_notify_window_ms=600_000,
    )
    runtime = Runtime.build(settings)
    relay = OutboxRelay(settings, runtime.engine, runtime.producer)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    complaint = uuid.uuid4()
    try:
        await wait_for(lambda: relay.commits.listening, timeout=30)
        await asyncio.sleep(0.2)  # its first reads are over: it sleeps until woken
        async with runtime.uow() as uow:
            uow.publish(message(complaint, 1))
            await uow.commit()
        await read_topic(
            settings.topic("complaint.events"),
            until=lambda rs: any(r.key == str(complaint).encode() for r in rs),
            timeout=15,
        )
    finally:
        stop.set()
        await running
        signal = runtime.outbox.signal
        if signal is not None and signal._pending is not None:
            signal._pending.cancel()  # the NOTIFY still ten minutes away
        await runtime.close()

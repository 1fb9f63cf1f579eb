"""An interrupted test run's topics are removed by the next run, a live run's are not."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

from aiokafka.admin import AIOKafkaAdminClient
from tousu_shared import testing
from tousu_shared.testing import KAFKA_ADMIN, RUNS_DIR, create_topics, delete_topics, wait_for


async def topic_names() -> set[str]:
    admin = AIOKafkaAdminClient(**KAFKA_ADMIN)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_only_namespaces_of_runs_without_a_live_session_are_deleted(kafka_topics):
    dead, live = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    # The dead run's session is a process that has exited; the live one's is this process.
    exited = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await exited.wait()
    RUNS_DIR.mkdir(exist_ok=True)
    (RUNS_DIR / dead).write_text(str(exited.pid))
    (RUNS_DIR / live).write_text(str(os.getpid()))
    await create_topics(f"test-{dead}.")
    await create_topics(f"test-{live}.")
    try:

        async def created() -> bool:  # the admin client's metadata may lag the creation
            names = await topic_names()
            return all(any(n.startswith(f"test-{run}.") for n in names) for run in (dead, live))

        await wait_for(created, interval=0.2)
        removed = await testing.delete_abandoned_namespaces()
        assert f"test-{dead}." in removed
        assert not (RUNS_DIR / dead).exists() and (RUNS_DIR / live).exists()
        assert f"test-{live}." not in removed and kafka_topics not in removed
        names = await topic_names()
        assert any(name.startswith(f"test-{live}.") for name in names)
        assert any(name.startswith(kafka_topics) for name in names)  # this run's own

        async def dead_gone() -> bool:  # Kafka deletes topics asynchronously
            return not any(name.startswith(f"test-{dead}.") for name in await topic_names())

        await wait_for(dead_gone, interval=0.5)
    finally:
        await delete_topics(f"test-{live}.")
        (RUNS_DIR / live).unlink(missing_ok=True)
        (RUNS_DIR / dead).unlink(missing_ok=True)

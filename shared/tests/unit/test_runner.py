"""The runner's relay apart: its work runs on an event loop of its own, in a thread of its own,
stops when the process stops, and a failure of it ends the process's other roles too."""

from __future__ import annotations

import asyncio
import threading

import pytest
from tousu_shared.runner import _on_own_loop


async def test_the_work_runs_on_a_loop_and_thread_of_its_own_until_stopped() -> None:
    stop = asyncio.Event()
    seen: dict[str, object] = {}
    started = threading.Event()

    async def work(own_stop: asyncio.Event) -> None:
        seen["loop"] = asyncio.get_running_loop()
        seen["thread"] = threading.current_thread()
        started.set()
        await own_stop.wait()
        seen["stopped"] = True

    running = asyncio.create_task(_on_own_loop(work, stop, name="test-apart"))
    assert await asyncio.to_thread(started.wait, 10)
    assert seen["loop"] is not asyncio.get_running_loop()
    assert seen["thread"] is not threading.current_thread()
    assert not running.done()
    stop.set()
    await asyncio.wait_for(running, timeout=10)
    assert seen["stopped"] is True


async def test_a_failure_of_the_work_is_raised_in_the_caller() -> None:
    async def work(own_stop: asyncio.Event) -> None:
        raise RuntimeError("relay broke")

    with pytest.raises(RuntimeError, match="relay broke"):
        await asyncio.wait_for(_on_own_loop(work, asyncio.Event(), name="test-apart"), 10)


async def test_cancelling_the_caller_stops_the_work_and_waits_for_it() -> None:
    ended = threading.Event()
    started = threading.Event()

    async def work(own_stop: asyncio.Event) -> None:
        started.set()
        try:
            await own_stop.wait()
        finally:
            ended.set()

    running = asyncio.create_task(_on_own_loop(work, asyncio.Event(), name="test-apart"))
    assert await asyncio.to_thread(started.wait, 10)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert ended.is_set()

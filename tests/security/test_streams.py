"""Live streams (issue #13, hole 6): many streams cost the database what one does, one key
cannot hold more than its cap, and every stream shows only its caller's departments.

The SLA monitor's ``/v1/sla-events/stream`` on the real stack (conftest.py): entries are
appended to ``sla_event_log`` as the publishers do, and every read of the log the process
makes is recorded (with the task that made it) through ``services.stream_after``. The
console's ``/console/board/stream`` likewise through its ``board`` read.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from tousu_analytics.console import pages
from tousu_shared.auth import split_api_key
from tousu_shared.runtime import Service
from tousu_shared.testing import api_client, declare_departments, issue_credential, wait_for
from tousu_sla.adapters import orm
from tousu_sla.entrypoints.stream import event_log_poller, stream_slots
from tousu_sla.service_layer import services

pytestmark = [pytest.mark.integration, pytest.mark.security]

STREAM = "/v1/sla-events/stream"


@pytest.fixture(scope="module")
async def sla(stack: dict[str, Service], admin_key: str) -> AsyncIterator[Service]:
    """The SLA monitor, its app started (lifespan) for the module."""
    service = stack["sla-monitor"]
    async with api_client(service.app, admin_key):
        yield service


async def issued_keys(service: Service, admin_key: str, prefix: str, *ops: str) -> dict[str, str]:
    """A manager key for quality and one for after-sales (their departments declared at the
    service), and an ``ops`` key, seeing every department, per name in ``ops``."""
    departments = ("quality", "after_sales")
    await declare_departments(service.runtime, *departments)
    async with api_client(service.app, admin_key, lifespan=False) as admin:
        managers = {
            department: await issue_credential(
                admin, "manager", f"{prefix}-{department}", department=department
            )
            for department in departments
        }
        return managers | {
            name: await issue_credential(admin, "ops", f"{prefix}-{name}") for name in ops
        }


@pytest.fixture(scope="module")
async def keys(sla: Service, admin_key: str) -> dict[str, str]:
    """A manager key per department, and a supervisor key that sees every department."""
    return await issued_keys(sla, admin_key, "stream", "all")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[asyncio.Task[Any] | None]:
    """The task of every read of the event log the process makes during the test."""
    readers: list[asyncio.Task[Any] | None] = []
    original = services.stream_after

    async def counted(*args: Any, **kwargs: Any) -> Any:
        readers.append(asyncio.current_task())
        return await original(*args, **kwargs)

    monkeypatch.setattr(services, "stream_after", counted)
    return readers


async def append(sla: Service, department: str) -> str:
    """An SLA event in the log, as a publisher appends it; returns its complaint id."""
    complaint_id = uuid.uuid4()
    envelope = {
        "type": "SlaAtRisk",
        "subject": str(complaint_id),
        "data": {"department": department},
    }
    async with sla.runtime.engine.begin() as conn:
        await conn.execute(
            sa.insert(orm.event_log).values(
                event_id=uuid.uuid4(),
                event_type="SlaAtRisk",
                complaint_id=complaint_id,
                milestone="resolve",
                department=department,
                urgency="routine",
                envelope=envelope,
            )
        )
    return str(complaint_id)


def sent_subjects(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [
        orjson.loads(line.removeprefix("data:").strip())["subject"]
        for line in response.text.splitlines()
        if line.startswith("data:")
    ]


@contextlib.asynccontextmanager
async def streams(
    sla: Service, key: str, count: int, **params: Any
) -> AsyncIterator[list[asyncio.Task[httpx.Response]]]:
    """``count`` streams open on one key, each ending after ``params``' max_events; the block
    starts once all of them listen to the shared poller."""
    poller = event_log_poller_of(sla)
    before = poller.listeners(None)
    async with api_client(sla.app, key, lifespan=False) as http:
        tasks = [asyncio.create_task(http.get(STREAM, params=params)) for _ in range(count)]
        try:
            await wait_for(
                lambda: poller.listeners(None) >= before + count or any(t.done() for t in tasks)
            )
            yield tasks
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def event_log_poller_of(sla: Service) -> Any:
    return event_log_poller(_request_of(sla))


def _request_of(sla: Service) -> Any:
    """Enough of a request for the per-process objects kept on the app's state."""

    class _Request:
        app = sla.app

    return _Request()


async def until_done(tasks: list[asyncio.Task[httpx.Response]], publish: Callable[[], Any]):
    """Publish until every stream has ended (each got what it waits for)."""
    while not all(task.done() for task in tasks):
        await publish()
        await asyncio.wait(tasks, timeout=0.5)
    return [task.result() for task in tasks]


async def test_database_reads_do_not_grow_with_the_number_of_streams(sla, keys, reads):
    cap = sla.runtime.settings.stream_max_per_credential
    async with streams(sla, keys["all"], cap, max_events=2) as tasks:
        before = len(reads)
        responses = await until_done(tasks, lambda: append(sla, "quality"))
        during = reads[before:]
    assert all(len(sent_subjects(response)) == 2 for response in responses)
    # Every read of the log while `cap` streams followed it came from one task, the
    # process's poller, at its own interval; per-client polling would show `cap` readers.
    assert during, "the poller read the log"
    assert len(set(map(id, during))) == 1, (len(during), len(set(map(id, during))), cap)


async def test_one_stream_past_the_cap_on_one_key_is_refused(sla, keys):
    cap = sla.runtime.settings.stream_max_per_credential
    slots = stream_slots(_request_of(sla))
    key_id, _ = split_api_key(keys["quality"]) or ("", "")
    async with streams(sla, keys["quality"], cap) as tasks:
        assert not any(task.done() for task in tasks)
        async with api_client(sla.app, keys["quality"], lifespan=False) as http:
            over = await http.get(STREAM)
        async with api_client(sla.app, keys["after_sales"], lifespan=False) as other:
            # Another credential still gets a stream (it ends after one event).
            elsewhere = asyncio.create_task(other.get(STREAM, params={"max_events": 1}))
            (fine,) = await until_done([elsewhere], lambda: append(sla, "after_sales"))
    assert over.status_code == 429, over.text
    body = over.json()
    assert body["error"] == "too_many_requests" and body["limit"] == cap
    assert over.headers["retry-after"]
    assert len(sent_subjects(fine)) == 1
    # Closed streams give their slots back.
    await wait_for(lambda: slots.held(key_id) == 0)


async def test_each_department_sees_only_its_own_events(sla, keys):
    published: dict[str, list[str]] = {"quality": [], "after_sales": []}

    async def publish_both() -> None:
        for department in published:
            published[department].append(await append(sla, department))

    async with (
        api_client(sla.app, keys["quality"], lifespan=False) as quality,
        api_client(sla.app, keys["after_sales"], lifespan=False) as after_sales,
    ):
        tasks = [
            asyncio.create_task(quality.get(STREAM, params={"max_events": 3})),
            asyncio.create_task(after_sales.get(STREAM, params={"max_events": 3})),
        ]
        seen_quality, seen_after_sales = await until_done(tasks, publish_both)
        # Naming another department is refused, not widened.
        foreign = await quality.get(STREAM, params={"department": "after_sales"})
    assert set(sent_subjects(seen_quality)) <= set(published["quality"])
    assert set(sent_subjects(seen_after_sales)) <= set(published["after_sales"])
    assert foreign.status_code == 403, foreign.text


async def test_a_resumed_stream_misses_nothing_while_another_follows_live(sla, keys):
    async with api_client(sla.app, keys["all"], lifespan=False) as http:
        live = asyncio.create_task(http.get(STREAM, params={"max_events": 1}))
        (seen,) = await until_done([live], lambda: append(sla, "quality"))
        last_event_id = next(
            line.removeprefix("id:").strip()
            for line in seen.text.splitlines()
            if line.startswith("id:")
        )
        missed = [await append(sla, "quality"), await append(sla, "after_sales")]
        async with streams(sla, keys["all"], 1) as followers:
            # The poller runs for the follower; the resumed stream reads what it missed from
            # the log, then joins the shared poll without a gap or a repeat.
            resumed = asyncio.create_task(
                http.get(STREAM, params={"max_events": 3}, headers={"Last-Event-ID": last_event_id})
            )
            later: list[str] = []

            async def publish() -> None:
                later.append(await append(sla, "quality"))

            (caught_up,) = await until_done([resumed], publish)
            assert not any(task.done() for task in followers)
    assert sent_subjects(caught_up) == [*missed, later[0]]


# -- the console's live board ---------------------------------------------------------------


@pytest.fixture(scope="module")
async def analytics(stack: dict[str, Service], admin_key: str) -> AsyncIterator[Service]:
    """The analytics service (console), its app started (lifespan) for the module."""
    service = stack["analytics"]
    async with api_client(service.app, admin_key):
        yield service


@pytest.fixture(scope="module")
async def console_keys(analytics: Service, admin_key: str) -> dict[str, str]:
    """A manager key per department for the console."""
    return await issued_keys(analytics, admin_key, "board")


@contextlib.asynccontextmanager
async def console(analytics: Service, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client signed in to the console with ``key`` (session cookie)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=analytics.app), base_url="http://test"
    ) as http:
        form = await http.get("/console/login")
        token = form.cookies["tousu_console_login"]
        signed = await http.post("/console/login", data={"api_key": key, "csrf_token": token})
        assert signed.status_code == 303, signed.text
        yield http


@pytest.fixture
def board_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[asyncio.Task[Any] | None, Any]]:
    """(task, department scope) of every board read the console makes during the test."""
    readers: list[tuple[asyncio.Task[Any] | None, Any]] = []
    original = pages.board

    async def counted(ctx: Any, department: Any) -> Any:
        readers.append((asyncio.current_task(), department))
        return await original(ctx, department)

    monkeypatch.setattr(pages, "board", counted)
    return readers


async def test_board_streams_share_one_reader_per_department(analytics, console_keys, board_reads):
    poller = pages.board_poller(_request_of(analytics))
    cap = analytics.runtime.settings.stream_max_per_credential
    async with contextlib.AsyncExitStack() as open_streams:
        quality = await open_streams.enter_async_context(
            console(analytics, console_keys["quality"])
        )
        after_sales = await open_streams.enter_async_context(
            console(analytics, console_keys["after_sales"])
        )
        tasks = [asyncio.create_task(quality.get("/console/board/stream")) for _ in range(cap)]
        tasks.append(asyncio.create_task(after_sales.get("/console/board/stream")))
        try:
            await wait_for(
                lambda: (
                    (poller.listeners("quality"), poller.listeners("after_sales")) == (cap, 1)
                    or any(t.done() for t in tasks)
                )
            )
            over = await quality.get("/console/board/stream")
            # A department-bound viewer naming another department is refused, not widened.
            foreign = await quality.get(
                "/console/board/stream", params={"department": "after_sales"}
            )
            before = len(board_reads)
            await wait_for(lambda: len(board_reads) >= before + 6)
            during = board_reads[before:]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert over.status_code == 429, over.text
    assert over.json()["error"] == "too_many_requests"
    assert foreign.status_code == 403
    # `cap + 1` streams, two departments: one reader per department, each reading only it.
    readers_by_scope: dict[Any, set[int]] = {}
    for task, scope in during:
        readers_by_scope.setdefault(scope, set()).add(id(task))
    assert set(readers_by_scope) == {"quality", "after_sales"}
    assert all(len(readers) == 1 for readers in readers_by_scope.values()), readers_by_scope
    await wait_for(lambda: poller.listeners("quality") == 0)

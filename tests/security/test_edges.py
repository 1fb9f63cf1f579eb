"""The request edge of every service (issue #13, holes 5 and 9), attacked on the real stack
(conftest.py): oversized chunked bodies, key guessing, what a 401 gives away, response
headers, unknown body fields, database errors in the log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from contract_events import case_routed, complaint_received
from sqlalchemy.exc import DBAPIError
from tousu_shared.auth import FailureThrottle, split_api_key
from tousu_shared.logging import configure_logging
from tousu_shared.runtime import Service
from tousu_shared.testing import issue_credential, wait_for
from tousu_sla.entrypoints import api as sla_api

pytestmark = [pytest.mark.integration, pytest.mark.security]

SERVICES = ["intake", "routing", "sla-monitor", "feedback", "analytics"]
MIB = 1024 * 1024


def client_at(service: Service, address: str, key: str | None = None) -> httpx.AsyncClient:
    """A client of an app from an address of its own (failure throttles count per client)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app, client=(address, 40000)),
        base_url="http://test",
        headers=headers,
    )


# -- hole 5: a chunked body past the limit is refused while it streams in ------------------


@pytest.mark.parametrize("name", SERVICES)
async def test_a_chunked_body_past_the_limit_is_refused_before_it_is_read(http, stack, name):
    sent = 0
    total = 100  # MiB, 100 times the default limit

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(total):
            sent += 1
            yield b"[" + b"1," * (MIB // 2 - 1) + b"1]"

    response = await http[name].post(
        "/v1/admin/credentials", content=body(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "payload_too_large"
    limit = stack[name].runtime.settings.http_max_body_bytes
    # The service stopped reading just past its limit: the rest never left the client.
    assert sent <= limit // MIB + 2 < total, sent


# -- hole 9: authentication ----------------------------------------------------------------


@pytest.fixture
def small_throttle(monkeypatch: pytest.MonkeyPatch) -> Callable[[Service], int]:
    """Gives a service a throttle of few failures in a long window, for this test only.

    The stack allows 10,000 failures (other tests try bad keys on purpose); running up that
    many on a slow machine could outlast the window, and failures that age out let the
    guesser through (settings reach the throttle: shared/tests test_service_platform)."""

    def install(service: Service) -> int:
        allowed = 5
        monkeypatch.setattr(service.runtime, "auth_throttle", FailureThrottle(allowed, 600.0))
        return allowed

    return install


@pytest.mark.parametrize("name", SERVICES)
async def test_failed_authentication_is_throttled_per_client(stack, small_throttle, name):
    service = stack[name]
    allowed = small_throttle(service)
    async with client_at(service, "10.13.9.1", "tsk_000000000000_guess") as guesser:
        answers = [(await guesser.get("/v1/admin/credentials")).status_code for _ in range(allowed)]
        refused = await guesser.get("/v1/admin/credentials")
    async with client_at(service, "10.13.9.2", "tsk_000000000000_guess") as other:
        elsewhere = await other.get("/v1/admin/credentials")
    assert answers == [401] * allowed
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "too_many_requests"
    assert int(refused.headers["retry-after"]) >= 1
    assert elsewhere.status_code == 401  # the throttle is the guesser's, not everyone's


@pytest.mark.parametrize("name", SERVICES)
async def test_a_401_does_not_tell_a_known_key_id_from_an_unknown_one(http, stack, name):
    key = await issue_credential(http[name], "analyst", f"edge-{name}")
    key_id, _ = split_api_key(key) or ("", "")
    service = stack[name]
    async with client_at(service, "10.13.9.3", f"tsk_{key_id}_wrong-secret") as known:
        wrong_secret = await known.get("/v1/admin/credentials")
    async with client_at(service, "10.13.9.4", "tsk_ffffffffffff_wrong-secret") as unknown:
        unknown_id = await unknown.get("/v1/admin/credentials")
    assert wrong_secret.status_code == unknown_id.status_code == 401
    assert wrong_secret.json() == unknown_id.json()
    for response in (wrong_secret, unknown_id):
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_guessing_console_session_cookies_is_throttled_like_keys(stack, small_throttle):
    service = stack["analytics"]
    allowed = small_throttle(service)
    async with client_at(service, "10.13.9.5") as guesser:
        answers = []
        for _ in range(allowed):
            guesser.cookies.set("tousu_console", uuid.uuid4().hex, path="/console")
            answers.append((await guesser.get("/console/board")).status_code)
        guesser.cookies.set("tousu_console", uuid.uuid4().hex, path="/console")
        refused = await guesser.get("/console/board")
        # The same allowance covers API keys: the guesser cannot switch to guessing those.
        by_key = await guesser.get("/v1/kpis", headers={"Authorization": "Bearer tsk_0_guess"})
    async with client_at(service, "10.13.9.6") as other:
        other.cookies.set("tousu_console", uuid.uuid4().hex, path="/console")
        elsewhere = await other.get("/console/board")
    assert answers == [303] * allowed  # to the sign-in form, as for any unknown session
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert by_key.status_code == 429
    assert elsewhere.status_code == 303


# -- hole 9: headers on personal-data responses ---------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
async def test_every_api_response_forbids_sniffing_and_caching(http, name):
    for response in (
        await http[name].get("/v1/admin/credentials"),  # 200
        await http[name].delete("/v1/admin/credentials/nope"),  # a 4xx
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"


# -- hole 9: database errors in the log ----------------------------------------------------

PHONE = "13812345678"


@pytest.fixture
def json_log() -> Iterator[Callable[[], str]]:
    """The services' JSON log configuration for the test; returns what it printed."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("edge-test")
    printed = io.StringIO()
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(printed)
    yield printed.getvalue
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("name", SERVICES)
async def test_a_database_error_is_logged_without_the_values_it_carried(stack, name, json_log):
    engine = stack[name].runtime.engine
    log = logging.getLogger("tousu.edge-test")
    with pytest.raises(DBAPIError) as failure:
        async with engine.connect() as conn:
            # The server quotes the value it refused in its message.
            await conn.execute(
                sa.text("SELECT CAST(CAST(:v AS text) AS integer)"), {"v": f"call {PHONE}"}
            )
    try:
        raise RuntimeError("the request failed") from failure.value
    except RuntimeError as exc:
        log.exception("request failed")
        log.warning("store refused: %s", exc.__cause__)
    printed = json_log()
    # The engine never puts bound values into an exception (hide_parameters) ...
    assert "parameters hidden" in str(failure.value)
    # ... and the log names the error without the server's text, which quoted the value.
    assert PHONE not in printed, printed
    assert "sqlstate=22P02" in printed and "the request failed" in printed


# -- hole 9: unknown body fields -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "method", "path", "body"),
    [
        ("routing", "POST", "/v1/departments", {"code": "edge_x", "name": "X", "is_admin": 1}),
        ("routing", "POST", "/v1/routing-rules:reorder", {"rule_ids": ["a"], "force": True}),
        ("sla-monitor", "PUT", "/v1/calendars/edge-x", {"always_open": True, "owner": "me"}),
        (
            "sla-monitor",
            "POST",
            f"/v1/cases/{uuid.uuid4()}/sla/customer-wait",
            {"reason": "r", "x": 1},
        ),
    ],
)
async def test_an_unknown_body_field_is_refused_naming_it(http, name, method, path, body):
    response = await http[name].request(method, path, json=body)
    assert response.status_code == 422, response.text
    fields = [error["field"] for error in response.json()["errors"]]
    unknown = list(body)[-1]
    assert f"body.{unknown}" in fields, fields


# -- hole 9: a customer-wait pause checks the department on the locked row ------------------


async def test_a_pause_checks_the_department_only_once_the_case_is_locked(http, stack, monkeypatch):
    sla = stack["sla-monitor"]
    case_id = uuid.uuid4()
    at = dt.datetime.now(dt.UTC)
    for event in (
        complaint_received(case_id, at, tracking_code="TS-EDGE"),
        case_routed(case_id, at),
    ):
        async with sla.uow() as uow:
            await sla.handlers[event.event_type](uow, event, sla.runtime.outbox.envelope(event))
            await uow.commit()
    checked: list[str] = []
    original = sla_api._visible_case

    async def spied(*args: Any, **kwargs: Any) -> Any:
        checked.append("department")
        return await original(*args, **kwargs)

    monkeypatch.setattr(sla_api, "_visible_case", spied)
    path = f"/v1/cases/{case_id}/sla/customer-wait"
    async with sla.runtime.engine.connect() as holder:
        transaction = await holder.begin()
        await holder.execute(
            sa.text("SELECT 1 FROM sla_case WHERE case_id = :id FOR UPDATE"), {"id": case_id}
        )
        pause = asyncio.create_task(http["sla-monitor"].post(path, json={"reason": "waiting"}))
        await wait_for(lambda: pause.done() or blocked_on_a_lock(sla))
        assert not pause.done(), pause.result().text
        # While another transaction holds the case (a transfer, say), the pause waits for it
        # before it looks at the department: what it checks is what it changes.
        assert checked == []
        await transaction.rollback()
    response = await pause
    assert response.status_code != 404, response.text
    assert checked == ["department"]


async def blocked_on_a_lock(service: Service) -> bool:
    """Whether a session of the service waits for a row lock on a case."""
    async with service.runtime.engine.connect() as conn:
        waiting = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND query LIKE '%sla_case%'"
            )
        )
    return bool(waiting)

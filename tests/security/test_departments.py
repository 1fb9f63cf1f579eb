"""Credentials for departments that do not exist (issue #13, hole 9).

Every service issues credentials, and a department-bound one (agent, manager) must name a
department of routing's directory: routing checks its own table, the others their replica
of it, which routing's events on ``platform.departments`` keep current. The probe issues a
credential for a department nobody created at each service, then has routing create and
delete the department, and watches every service follow.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from tousu_shared.runtime import Service
from tousu_shared.testing import running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.security]


@pytest.fixture(scope="module")
async def live(stack: dict[str, Service]) -> AsyncIterator[None]:
    """Routing's relay with its companions (the start-up announcement of its directory) and
    every other service's consumer, for the module."""
    others = [service for name, service in stack.items() if name != "routing"]
    async with contextlib.AsyncExitStack() as workers:
        await workers.enter_async_context(running(stack["routing"], roles=True))
        await workers.enter_async_context(running(*others))
        yield


async def issue(http: httpx.AsyncClient, department: str, role: str = "agent") -> httpx.Response:
    return await http.post(
        "/v1/admin/credentials",
        json={"name": f"{role}-{uuid.uuid4().hex[:6]}", "role": role, "department": department},
    )


def refused_for(response: httpx.Response, department: str) -> bool:
    """A 422 naming the field ``department``, listing known departments without this one."""
    if response.status_code != 422:
        return False
    body = response.json()
    assert body["error"] == "validation_failed" and body["field"] == "department", body
    assert department in body["message"] and department not in body["allowed"], body
    return True


async def test_a_credential_needs_a_department_routing_knows_at_every_service(
    http: dict[str, httpx.AsyncClient], live: None
):
    code = f"ghost-{uuid.uuid4().hex[:6]}"
    for name, client in http.items():
        for role in ("agent", "manager"):
            assert refused_for(await issue(client, code, role), code), name

    # The seeded default department reached every replica without any change at routing:
    # routing announced its directory when it started.
    async def general_known_everywhere() -> bool:
        for client in http.values():
            refusal = (await issue(client, code)).json()
            if "general" not in refusal.get("allowed", []):
                return False
        return True

    await wait_for(general_known_everywhere)
    for client in http.values():
        assert (await issue(client, "general")).status_code == 201

    created = await http["routing"].post("/v1/departments", json={"code": code, "name": "Ghost"})
    assert created.status_code == 201, created.text
    assert (await issue(http["routing"], code)).status_code == 201  # its own table, at once
    for client in http.values():

        async def accepted(client: httpx.AsyncClient = client) -> bool:
            response = await issue(client, code, "manager")
            if response.status_code == 201:
                assert response.json()["department"] == code
                return True
            assert refused_for(response, code), response.text
            return False

        await wait_for(accepted)

    deleted = await http["routing"].delete(f"/v1/departments/{code}")
    assert deleted.status_code == 204, deleted.text
    assert refused_for(await issue(http["routing"], code), code)
    for client in http.values():

        async def refused_again(client: httpx.AsyncClient = client) -> bool:
            response = await issue(client, code)
            if response.status_code == 201:
                return False
            return refused_for(response, code)

        await wait_for(refused_again)

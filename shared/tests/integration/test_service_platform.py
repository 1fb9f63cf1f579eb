"""Every service's skeleton: health, readiness, metrics, auth, schema isolation, migrations."""

from __future__ import annotations

import asyncio
import contextlib
import importlib

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from tousu_routing.service_layer.defaults import ensure_defaults
from tousu_shared.auth import new_api_key
from tousu_shared.migrations import downgrade, upgrade
from tousu_shared.runtime import Service
from tousu_shared.testing import test_settings, truncate_schema, wait_for

pytestmark = pytest.mark.integration

SERVICES = {
    "intake": ("tousu_intake", "IntakeSettings"),
    "routing": ("tousu_routing", "RoutingSettings"),
    "sla_monitor": ("tousu_sla", "SlaSettings"),
    "feedback": ("tousu_feedback", "FeedbackSettings"),
    "analytics": ("tousu_analytics", "AnalyticsSettings"),
}
ADMIN_KEY = new_api_key()[1]


def build(schema: str, **overrides) -> Service:
    package, settings_class = SERVICES[schema]
    settings_cls = getattr(importlib.import_module(f"{package}.settings"), settings_class)
    bootstrap = importlib.import_module(f"{package}.bootstrap").bootstrap
    return bootstrap(test_settings(settings_cls, bootstrap_admin_key=ADMIN_KEY, **overrides))


@contextlib.asynccontextmanager
async def client(service: Service):
    async with LifespanManager(service.app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("schema", list(SERVICES))
async def test_service_is_healthy_ready_and_measured(schema, kafka_topics):
    async with client(build(schema)) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "kafka": "ok"}
        metrics = (await http.get("/metrics")).text
        assert "tousu_http_request_seconds" in metrics


@pytest.mark.parametrize("schema", list(SERVICES))
async def test_endpoints_need_a_credential(schema, kafka_topics):
    async with client(build(schema)) as http:
        missing = await http.get("/v1/admin/credentials")
        assert missing.status_code == 401
        assert missing.json()["error"] == "unauthorized"
        forged = await http.get("/v1/admin/credentials", headers=bearer(new_api_key()[1]))
        assert forged.status_code == 401


async def test_readiness_reports_an_unreachable_broker(kafka_topics):
    service = build("analytics", kafka_bootstrap="127.0.0.1:1")
    async with client(service) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["kafka"].startswith("error")


async def test_bad_credential_request_names_the_field(kafka_topics):
    async with client(build("intake")) as http:
        response = await http.post(
            "/v1/admin/credentials",
            json={"name": "desk", "role": "agent"},
            headers=bearer(ADMIN_KEY),
        )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_failed"
    assert "department" in body["errors"][0]["message"]


async def test_credential_issued_on_one_service_works_on_another_and_revokes_everywhere(
    kafka_topics,
):
    intake, routing = build("intake"), build("routing")
    # Start from empty outboxes: rows left by other runs would be published here too.
    await truncate_schema(intake.runtime.engine, "intake")
    await truncate_schema(routing.runtime.engine, "routing")
    async with routing.runtime.session_factory() as session, session.begin():
        await ensure_defaults(db_session=session)
    stop = asyncio.Event()
    workers = [
        intake.relay().run(stop),
        intake.consumer().run(stop),
        routing.relay().run(stop),
        routing.consumer().run(stop),
    ]
    tasks = [asyncio.create_task(w) for w in workers]
    try:
        async with client(intake) as intake_http, client(routing) as routing_http:
            issued = await intake_http.post(
                "/v1/admin/credentials",
                json={"name": "desk-7", "role": "agent", "department": "quality"},
                headers=bearer(ADMIN_KEY),
            )
            assert issued.status_code == 201, issued.text
            key = issued.json()["api_key"]
            assert issued.json()["scopes"] and "credentials:admin" not in issued.json()["scopes"]

            async def listed_on_routing():
                response = await routing_http.get(
                    "/v1/admin/credentials", headers=bearer(ADMIN_KEY)
                )
                return any(c["key_id"] == issued.json()["key_id"] for c in response.json())

            await wait_for(listed_on_routing)
            # An agent may not administer credentials anywhere.
            denied = await routing_http.get("/v1/admin/credentials", headers=bearer(key))
            assert denied.status_code == 403
            assert denied.json()["required_scope"] == "credentials:admin"

            key_id = issued.json()["key_id"]
            revoked = await routing_http.delete(
                f"/v1/admin/credentials/{key_id}", headers=bearer(ADMIN_KEY)
            )
            assert revoked.status_code == 204

            async def rejected_on_intake():
                response = await intake_http.get("/v1/admin/credentials", headers=bearer(key))
                return response.status_code == 401

            await wait_for(rejected_on_intake)
            audit = await routing_http.get("/v1/admin/audit", headers=bearer(ADMIN_KEY))
            assert "credential.revoke" in [entry["action"] for entry in audit.json()]
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_audit_log_is_append_only(kafka_topics):
    service = build("feedback")
    async with service.runtime.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO feedback.audit_log (actor, actor_role, action, resource_type) "
                "VALUES ('t', 'admin', 'test', 'test')"
            )
        )
    with pytest.raises(Exception, match="append-only"):
        async with service.runtime.engine.begin() as conn:
            await conn.execute(text("UPDATE feedback.audit_log SET actor = 'x'"))
    with pytest.raises(Exception, match="append-only"):
        async with service.runtime.engine.begin() as conn:
            await conn.execute(text("DELETE FROM feedback.audit_log"))
    await service.runtime.close()


@pytest.mark.parametrize("reader", list(SERVICES))
async def test_a_service_role_cannot_touch_another_services_schema(reader):
    service = build(reader)
    try:
        for other in SERVICES:
            if other == reader:
                continue
            for statement in (
                f"SELECT count(*) FROM {other}.outbox",
                f"CREATE TABLE {other}.intruder (id int)",
            ):
                with pytest.raises(ProgrammingError, match="permission denied"):
                    async with service.runtime.engine.connect() as conn:
                        await conn.execute(text(statement))
        async with service.runtime.engine.connect() as conn:
            assert (await conn.execute(text(f"SELECT count(*) FROM {reader}.outbox"))).scalar() >= 0
    finally:
        await service.runtime.close()


@pytest.mark.parametrize("schema", list(SERVICES))
def test_migrations_go_down_to_empty_and_up_again(schema):
    service = build(schema)
    settings = service.runtime.settings

    async def tables() -> set[str]:
        async with service.runtime.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                {"s": schema},
            )
            names = set(rows.scalars())
        await service.runtime.engine.dispose()
        return names

    try:
        downgrade(service.migrations_dir, settings, "base")
        assert asyncio.run(tables()) <= {"alembic_version"}
    finally:
        upgrade(service.migrations_dir, settings, "head")
    assert {"outbox", "inbox", "audit_log", "credential"} <= asyncio.run(tables())

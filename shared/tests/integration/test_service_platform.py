"""Every service's skeleton: health, readiness, metrics, auth, schema isolation, migrations."""

from __future__ import annotations

import asyncio
import contextlib
import importlib

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from tousu_routing.service_layer.defaults import ensure_defaults
from tousu_shared.auth import new_api_key
from tousu_shared.migrations import downgrade, upgrade
from tousu_shared.runtime import Service
from tousu_shared.schemas import ApiModel, Int64
from tousu_shared.testing import (
    SERVICES,
    declare_departments,
    settings_class,
    test_settings,
    truncate_schema,
    wait_for,
)

pytestmark = pytest.mark.integration

ADMIN_KEY = new_api_key()[1]


def build(schema: str, **overrides) -> Service:
    package, _ = SERVICES[schema]
    bootstrap = importlib.import_module(f"{package}.bootstrap").bootstrap
    settings = test_settings(settings_class(schema), bootstrap_admin_key=ADMIN_KEY, **overrides)
    return bootstrap(settings)


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
        metrics = (await http.get("/metrics", headers=bearer(ADMIN_KEY))).text
        assert "tousu_http_request_seconds" in metrics


def _request_count(exposition: str, service: str, route: str, status: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "tousu_http_request_seconds_count" and (
                labels.get("service"),
                labels.get("route"),
                labels.get("status"),
            ) == (service, route, status):
                return sample.value
    return 0.0


async def test_requests_are_counted_by_their_route_template(kafka_topics):
    """The route label is the template, prefix included; a path no route matches is one label."""
    service = build("routing")
    async with client(service) as http:

        async def counts() -> tuple[float, float]:
            text_ = (await http.get("/metrics", headers=bearer(ADMIN_KEY))).text
            name = service.runtime.settings.service_name
            return (
                _request_count(text_, name, "/v1/admin/credentials", "200"),
                _request_count(text_, name, "unmatched", "404"),
            )

        listed, unmatched = await counts()
        assert (
            await http.get("/v1/admin/credentials", headers=bearer(ADMIN_KEY))
        ).status_code == 200
        assert (await http.get("/no/such/path/4711")).status_code == 404
        assert (await http.get("/no/such/path/4712")).status_code == 404
        assert await counts() == (listed + 1, unmatched + 2)


@pytest.mark.parametrize("schema", list(SERVICES))
async def test_metrics_need_a_metrics_credential_and_docs_a_setting(schema, kafka_topics):
    async with client(build(schema)) as http:
        assert (await http.get("/metrics")).status_code == 401
        scraper = await http.post(
            "/v1/admin/credentials",
            headers=bearer(ADMIN_KEY),
            json={"name": "prometheus", "role": "monitoring"},
        )
        assert scraper.status_code == 201, scraper.text
        key = scraper.json()["api_key"]
        assert (await http.get("/metrics", headers=bearer(key))).status_code == 200
        # A scraper's key opens nothing else.
        assert (await http.get("/v1/admin/credentials", headers=bearer(key))).status_code == 403
        analyst = await http.post(
            "/v1/admin/credentials",
            headers=bearer(ADMIN_KEY),
            json={"name": "bi", "role": "analyst"},
        )
        forbidden = await http.get("/metrics", headers=bearer(analyst.json()["api_key"]))
        assert forbidden.status_code == 403
        assert forbidden.json()["required_scope"] == "metrics:read"
        # Outside development the API's map is not served to anyone.
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await http.get(path)).status_code == 404, path
    async with client(build(schema, api_docs=True)) as http:
        document = await http.get("/openapi.json")
        assert document.status_code == 200 and "/v1/admin/credentials" in document.json()["paths"]
        assert (await http.get("/docs")).status_code == 200
    async with client(build(schema, environment="development")) as http:
        assert (await http.get("/openapi.json")).status_code == 200


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
    await declare_departments(intake.runtime, "quality")
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
    # Refused by privilege once deploy/infra.sh harden ran (make migrate), by trigger before.
    with pytest.raises(Exception, match="permission denied|append-only"):
        async with service.runtime.engine.begin() as conn:
            await conn.execute(text("UPDATE feedback.audit_log SET actor = 'x'"))
    with pytest.raises(Exception, match="permission denied|append-only"):
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
        # The audit log outlives a downgrade (tousu_shared.migrations.drop_platform_tables).
        assert asyncio.run(tables()) <= {"alembic_version", "audit_log"}
    finally:
        upgrade(service.migrations_dir, settings, "head")
    assert {"outbox", "inbox", "audit_log", "credential"} <= asyncio.run(tables())


# -- the request edge and authentication, on every service -------------------------------


@pytest.mark.parametrize("schema", list(SERVICES))
async def test_a_non_ascii_correlation_id_is_a_400_naming_the_header_even_on_healthz(
    schema,
    kafka_topics,
):
    async with client(build(schema)) as http:
        response = await http.get("/healthz", headers={"X-Correlation-ID": b"\xff\xfe\x00"})
        assert response.status_code == 400
        assert response.json()["field"] == "header.X-Correlation-ID"
        long = await http.get("/healthz", headers={"X-Correlation-ID": "a" * 500})
        assert long.status_code == 400
        fine = await http.get("/healthz", headers={"X-Correlation-ID": "req-42"})
        assert fine.headers["x-correlation-id"] == "req-42"
        assert fine.headers["x-content-type-options"] == "nosniff"
        assert fine.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("schema", list(SERVICES))
async def test_nul_or_broken_utf8_in_the_query_is_a_422_naming_the_parameter(schema, kafka_topics):
    async with client(build(schema)) as http:
        nul = await http.get("/v1/admin/audit?after=%00", headers=bearer(ADMIN_KEY))
        assert nul.status_code == 422 and nul.json()["field"] == "query.after"
        broken = await http.get("/v1/admin/audit?x=%ff", headers=bearer(ADMIN_KEY))
        assert broken.status_code == 422 and broken.json()["field"] == "query"


@pytest.mark.parametrize("schema", list(SERVICES))
async def test_a_body_over_the_limit_is_refused_while_it_streams(schema, kafka_topics):
    service = build(schema, http_max_body_bytes=64 * 1024)
    chunks_sent = 0

    async def endless_chunks():
        nonlocal chunks_sent
        for _ in range(10_000):  # 640 MiB if it were read to the end
            chunks_sent += 1
            yield b"x" * 65536

    async with client(service) as http:
        declared = await http.post(
            "/v1/admin/credentials",
            headers={**bearer(ADMIN_KEY), "Content-Length": "99999999"},
            content=b"{}",
        )
        assert declared.status_code == 413 and declared.json()["field"] == "body"
        chunked = await http.post(
            "/v1/admin/credentials",
            headers=bearer(ADMIN_KEY),
            content=endless_chunks(),
        )
        assert chunked.status_code == 413
    assert chunks_sent < 100


@pytest.mark.parametrize("schema", list(SERVICES))
async def test_every_401_reads_the_same_and_names_the_scheme(schema, kafka_topics):
    async with client(build(schema)) as http:
        bodies = set()
        for key in ("tsk_nosuchid_secret", f"{ADMIN_KEY[:-2]}xx", "garbage"):
            response = await http.get("/v1/admin/audit", headers=bearer(key))
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
            bodies.add(response.json()["message"])
        assert len(bodies) == 1


async def test_failed_authentications_are_throttled_per_client(kafka_topics):
    async with client(build("routing", auth_failures_allowed=3)) as http:
        codes = [
            (await http.get("/v1/admin/audit", headers=bearer("tsk_a_b"))).status_code
            for _ in range(5)
        ]
        assert codes == [401, 401, 401, 429, 429]
        refused = await http.get("/v1/admin/audit", headers=bearer(ADMIN_KEY))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


@pytest.mark.parametrize("schema", list(SERVICES))
async def test_openapi_documents_the_error_responses(schema, kafka_topics):
    async with client(build(schema, api_docs=True)) as http:
        document = (await http.get("/openapi.json")).json()
    operation = document["paths"]["/v1/admin/credentials"]["post"]
    assert {"401", "403", "409", "413", "422"} <= set(operation["responses"])
    assert "ErrorBody" in document["components"]["schemas"]


def test_api_models_refuse_nul_unknown_fields_and_integers_beyond_64_bits():
    class Thing(ApiModel):
        name: str
        tags: list[str] = []
        order: Int64 = 0

    for bad, field in (
        ({"name": "a\x00b"}, "name"),
        ({"name": "a", "tags": ["ok", "b\x00"]}, "tags"),
        ({"name": "a", "extra": 1}, "extra"),
        ({"name": "a", "order": 10**20}, "order"),
    ):
        with pytest.raises(ValueError) as error:
            Thing.model_validate(bad)
        assert field in str(error.value)

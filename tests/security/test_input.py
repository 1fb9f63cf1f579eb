"""Hostile input (issue #13, hole 7): every one is a 4xx naming the field, never a 500.

NUL characters in bodies and queries, integers past 64 bits, forged cursors, a null where a
PATCH needs a value, a correlation id that is not UTF-8 and an oversized Last-Event-ID, each
sent to the service that takes it, on the real stack (conftest.py).
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import httpx
import orjson
import pytest
from intake_factories import complaint_body

pytestmark = [pytest.mark.integration, pytest.mark.security]

HUGE = str(2**64 + 1)  # past every integer column, signed or not


def refused(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    """The response is the given 4xx and its body names ``field`` (alone or among errors)."""
    assert response.status_code == status, response.text
    body = response.json()
    named = [body.get("field"), *(error.get("field") for error in body.get("errors") or [])]
    assert any(name and name.startswith(field) for name in named), body
    return body


def forged(*values: Any) -> str:
    """A cursor in the API's encoding whose values are not the ones it writes."""
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


# -- NUL characters ----------------------------------------------------------------------


async def test_a_nul_in_a_complaint_is_refused_naming_the_field(http):
    response = await http["intake"].post(
        "/v1/complaints", json=complaint_body(description="屏幕\x00划痕")
    )
    refused(response, 422, "body.description")


async def test_a_nul_in_one_batch_item_rejects_that_item_alone(http):
    items = [
        complaint_body(description="第一件：屏幕有划痕"),
        complaint_body(description="第二件\x00"),
        complaint_body(description="第三件：开机蓝屏"),
        {**complaint_body(description="第四件：键盘失灵"), "idempotency_key": "k\x00"},
    ]
    response = await http["intake"].post("/v1/complaints:batch", json=items)
    assert response.status_code == 200, response.text
    result = response.json()
    statuses = [item["status"] for item in result["results"]]
    assert statuses == ["created", "rejected", "created", "rejected"], result
    fields = [[error["field"] for error in item.get("errors") or []] for item in result["results"]]
    assert any(field.startswith("body.1.description") for field in fields[1]), result
    assert any(field.startswith("body.3.idempotency_key") for field in fields[3]), result
    assert (result["created"], result["rejected"]) == (2, 2)


@pytest.mark.parametrize(
    ("service", "method", "path", "body", "field"),
    [
        ("routing", "POST", "/v1/departments", {"code": "nul", "name": "a\x00b"}, "body.name"),
        (
            "sla-monitor",
            "POST",
            "/v1/admin/credentials",
            {"name": "ops", "role": "agent", "department": "gen\x00eral"},
            "body.department",
        ),
        (
            "analytics",
            "POST",
            "/v1/improvement-actions",
            {
                "title": "a\x00b",
                "target": {"category": "product_quality"},
                "plan": "p",
                "owner": "o",
                "starts_on": "2026-12-01",
            },
            "body.title",
        ),
        (
            "feedback",
            "POST",
            "/v1/admin/credentials",
            {"name": "a\x00b", "role": "admin"},
            "body.name",
        ),
    ],
)
async def test_a_nul_in_a_body_is_refused_naming_the_field(
    http, service, method, path, body, field
):
    response = await http[service].request(method, path, json=body)
    refused(response, 422, field)


@pytest.mark.parametrize(
    ("service", "path", "field"),
    [
        ("intake", "/v1/complaints?status=open%00", "query.status"),
        ("routing", "/v1/cases?department=general%00", "query.department"),
        ("analytics", "/v1/alerts?cursor=%00", "query.cursor"),
    ],
)
async def test_a_nul_in_the_query_is_refused_naming_the_parameter(http, service, path, field):
    refused(await http[service].get(path), 422, field)


# -- integers past 64 bits ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "path", "field"),
    [
        ("intake", f"/v1/admin/audit?after={HUGE}", "query.after"),
        ("routing", f"/v1/admin/audit?after={HUGE}", "query.after"),
        ("sla-monitor", f"/v1/sla-policies/versions/{HUGE}", "path.version"),
        ("sla-monitor", f"/v1/calendars/cn-statutory/years/{HUGE}", "path.year"),
    ],
)
async def test_an_integer_past_64_bits_is_refused_naming_it(http, service, path, field):
    method = "PUT" if "/years/" in path else "GET"
    response = await http[service].request(method, path, json={"holidays": []})
    refused(response, 422, field)


async def test_a_rule_order_past_64_bits_is_refused(http):
    created = await http["routing"].post(
        "/v1/routing-rules",
        json={"name": "huge", "order": 2**64 + 1, "target_department": "general"},
    )
    refused(created, 422, "body.order")
    changed = await http["routing"].patch("/v1/routing-rules/default", json={"order": 2**64 + 1})
    refused(changed, 422, "body.order")


# -- forged cursors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cursor",
    [
        forged(1, 2),  # numbers where strings were written
        forged({"a": 1}, ["b"]),  # containers
        forged("2026-12-01T00:00:00", str(uuid.uuid4())),  # a time without its offset
        forged("not a time", "not a uuid"),
        forged("2026-12-01T00:00:00+08:00", str(uuid.uuid4()), "x\x00"),  # wrong length
        "!!!not base64",
    ],
)
@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("intake", "/v1/complaints"),
        ("routing", "/v1/cases"),
        ("sla-monitor", "/v1/breaches"),
        ("sla-monitor", "/v1/at-risk"),
        ("feedback", "/v1/surveys"),
        ("analytics", "/v1/alerts"),
    ],
)
async def test_a_forged_cursor_is_refused_naming_it(http, service, path, cursor):
    refused(await http[service].get(path, params={"cursor": cursor}), 422, "cursor")


async def test_a_forged_milestone_cursor_with_a_nul_is_refused(http):
    cursor = forged("2026-12-01T00:00:00+08:00", str(uuid.uuid4()), "first\x00response")
    refused(await http["sla-monitor"].get("/v1/breaches", params={"cursor": cursor}), 422, "cursor")


async def test_a_forged_drill_cursor_is_refused_naming_it(http):
    response = await http["analytics"].get(
        "/v1/kpis/drill",
        params={"metric": "complaints", "cursor": forged("not a uuid")},
    )
    assert response.status_code == 422, response.text


# -- nulls, headers ----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["enabled", "name", "order", "target_department"])
async def test_a_null_in_a_patch_is_refused_naming_the_field(http, field):
    response = await http["routing"].patch("/v1/routing-rules/default", json={field: None})
    refused(response, 422, f"body.{field}")
    rule = await http["routing"].get("/v1/routing-rules/default")
    assert rule.status_code == 200 and rule.json()[field] is not None, rule.text


@pytest.mark.parametrize("service", ["intake", "routing", "sla-monitor", "feedback", "analytics"])
@pytest.mark.parametrize("value", [b"\xff\xfe", "caf\u00e9".encode("latin-1"), b"a" * 129])
async def test_a_bad_correlation_id_is_refused_even_on_healthz(http, service, value):
    response = await http[service].get("/healthz", headers={"X-Correlation-ID": value})
    refused(response, 400, "header.X-Correlation-ID")
    assert response.headers["x-correlation-id"] != value.decode("latin-1")


@pytest.mark.parametrize(
    "last_event_id",
    [f"{HUGE}-1", f"1-{HUGE}", "9" * 5000 + "-1", "-1-2", "x-y", "1-2" + "\x7f"],
)
async def test_a_bad_last_event_id_is_refused_before_the_stream_starts(http, last_event_id):
    async with asyncio.timeout(30):  # an accepted id would start a stream that never ends
        response = await http["sla-monitor"].get(
            "/v1/sla-events/stream", headers={"Last-Event-ID": last_event_id}
        )
    refused(response, 422, "Last-Event-ID")


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("0001-01-01", "0001-01-02", "from"),
        ("9999-12-30", "9999-12-31", "to"),
        ("0001-01-01", "9999-12-31", "from"),
    ],
)
async def test_dates_at_the_ends_of_the_calendar_are_refused_naming_them(http, start, end, field):
    response = await http["analytics"].get("/v1/kpis", params={"from": start, "to": end})
    refused(response, 422, field)

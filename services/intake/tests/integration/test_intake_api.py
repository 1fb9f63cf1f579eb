"""The intake API against the real Postgres and Kafka."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from contract_events import milestone_paused, milestone_retargeted, milestone_started
from intake_factories import as_role, case_routed, complaint_body, one_row
from sqlalchemy import text
from tousu_shared.testing import declare_departments, envelopes, read_topic

pytestmark = pytest.mark.integration

CHANNELS = [
    "phone",
    "email",
    "web_form",
    "online_chat",
    "social_media",
    "letter",
    "on_site",
    "survey",
    "app",
]


async def count(intake, table: str) -> int:
    return (await one_row(intake, f"SELECT count(*) FROM intake.{table}"))[0]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_every_channel_is_accepted_and_classified(http, channel):
    response = await http.post("/v1/complaints", json=complaint_body(channel=channel))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["tracking_code"].startswith("TS-")
    assert body["classification"]["category"] == "product_quality"
    assert set(body["explanation"]) >= {"category", "severity", "urgency"}
    assert response.headers["location"] == f"/v1/complaints/{body['id']}"


async def test_idempotency_key_replays_and_refuses_a_different_body(http, intake):
    headers = {"Idempotency-Key": "frontend-42"}
    first = await http.post("/v1/complaints", json=complaint_body(), headers=headers)
    again = await http.post("/v1/complaints", json=complaint_body(), headers=headers)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = await http.post(
        "/v1/complaints", json=complaint_body(description="另一件事：快递晚了五天"), headers=headers
    )
    assert other.status_code == 409
    assert other.json()["field"] == "Idempotency-Key"
    assert await count(intake, "complaint") == 1


async def test_double_click_without_key_creates_one_record(http, intake):
    results = await asyncio.gather(
        *(http.post("/v1/complaints", json=complaint_body()) for _ in range(3))
    )
    assert len({r.json()["id"] for r in results}) == 1
    assert await count(intake, "complaint") == 1


BAD_INPUTS = [
    (
        "missing description",
        {k: v for k, v in complaint_body().items() if k != "description"},
        "body.description",
    ),
    ("unknown channel", complaint_body(channel="pigeon"), "body.channel"),
    ("empty description", complaint_body(description="   "), "body.description"),
    ("100 KB description", complaint_body(description="屏" * 100_000), "body"),
    ("invalid phone", complaint_body(customer={"phone": "call me maybe"}), "body.customer.phone"),
    ("invalid email", complaint_body(customer={"email": "wang@"}), "body.customer.email"),
    ("no way to reach", complaint_body(customer={"name": "王先生"}), "body.customer"),
    (
        "future contact",
        complaint_body(contact_at=(datetime.now(UTC) + timedelta(hours=3)).isoformat()),
        "body.contact_at",
    ),
    ("negative amount", complaint_body(amount="-5"), "body.amount"),
    ("wrong type", complaint_body(requested_remedies="refund"), "body.requested_remedies"),
    ("unknown field", complaint_body(colour="red"), "body.colour"),
    (
        "bad evidence checksum",
        complaint_body(
            evidence=[
                {"type": "image", "uri": "s3://x/1.png", "size_bytes": 10, "checksum": "md5:abc"}
            ]
        ),
        "body.evidence.0.checksum",
    ),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
async def test_bad_input_is_refused_naming_the_field_and_writes_nothing(
    http, intake, case, body, field
):
    response = await http.post("/v1/complaints", json=body)
    assert 400 <= response.status_code < 500, response.text
    payload = response.json()
    fields = [payload.get("field")] + [e["field"] for e in payload.get("errors", [])]
    assert any(f and f.startswith(field) for f in fields), payload
    assert await count(intake, "complaint") == 0
    assert await count(intake, "outbox") == 0


async def test_wrong_content_type_and_broken_json_are_refused(http, intake):
    as_text = await http.post(
        "/v1/complaints", content=b"hello", headers={"Content-Type": "text/plain"}
    )
    assert as_text.status_code == 415
    assert as_text.json()["field"] == "Content-Type"
    broken = await http.post(
        "/v1/complaints",
        content=b'{"channel": "phone",',
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    assert broken.json()["field"] == "body"
    assert await count(intake, "complaint") == 0


async def test_events_published_once_without_personal_data(http, intake):
    created = (await http.post("/v1/complaints", json=complaint_body())).json()
    relay = intake.relay()
    while await relay.relay_once():
        pass
    await relay.close()
    key = created["id"].encode()
    records = await read_topic(
        intake.runtime.settings.topic("complaint.events"),
        until=lambda rs: sum(r.key == key for r in rs) >= 2,
    )
    mine = [r for r in records if r.key == key]
    assert [e.type for e in envelopes(mine)] == ["ComplaintReceived", "ComplaintClassified"]
    for record in mine:
        for secret in (b"13800138000", b"wang.xiansheng", "王先生".encode()):
            assert secret not in record.value
    assert await count(intake, "outbox") == 2


async def test_personal_data_is_encrypted_in_the_table_and_absent_from_logs(http, intake, caplog):
    with caplog.at_level(logging.DEBUG):
        created = (await http.post("/v1/complaints", json=complaint_body())).json()
    row = await one_row(
        intake,
        "SELECT name_ct, phone_ct, email_ct, key_id FROM intake.complaint_contact "
        "WHERE complaint_id = :id",
        id=created["id"],
    )
    assert row.key_id == intake.app.state.intake.cipher.active_key_id
    stored = b"".join(bytes(v) for v in row[:3])
    for secret in (b"13800138000", b"wang.xiansheng", "王先生".encode()):
        assert secret not in stored
        assert secret.decode() not in caplog.text


async def test_contact_details_are_masked_without_pii_scope_and_audited_with_it(http, intake):
    created = (await http.post("/v1/complaints", json=complaint_body())).json()
    async with as_role(http, "analyst") as analyst:
        masked = (await analyst.get(f"/v1/complaints/{created['id']}?include=contact")).json()
    assert masked["contact"] == {
        "masked": True,
        "name": "王**",
        "phone": "*******8000",
        "email": "***@example.com",
        "address": None,
        "preferred_contact": "phone",
    }
    clear = (await http.get(f"/v1/complaints/{created['id']}?include=contact")).json()
    assert clear["contact"]["phone"] == "13800138000"
    audit = (await http.get("/v1/admin/audit", params={"complaint_id": created["id"]})).json()
    assert [entry["action"] for entry in audit] == ["pii.read"]


async def test_department_bound_callers_see_only_their_departments_complaints(http, intake):
    created = (await http.post("/v1/complaints", json=complaint_body())).json()
    routed = case_routed(uuid.UUID(created["id"]), "quality")
    await deliver(intake, routed)
    await declare_departments(intake.runtime, "quality", "billing")
    async with (
        as_role(http, "agent", "quality") as quality,
        as_role(http, "agent", "billing") as billing,
    ):
        assert (await quality.get(f"/v1/complaints/{created['id']}")).status_code == 200
        assert (await billing.get(f"/v1/complaints/{created['id']}")).status_code == 404
        listed = (await billing.get("/v1/complaints")).json()
        assert listed["items"] == []
    tracked = (await http.get(f"/v1/track/{created['tracking_code']}")).json()
    assert tracked["status"] == "routed"
    assert "department" in tracked["next_step"]


async def test_a_late_record_counts_from_first_contact(http):
    contact_at = datetime.now(UTC) - timedelta(hours=5)
    created = (
        await http.post(
            "/v1/complaints",
            json=complaint_body(channel="letter", contact_at=contact_at.isoformat()),
        )
    ).json()
    assert created["recorded_late"] is True
    assert datetime.fromisoformat(created["contact_at"]) == contact_at


async def test_resolved_on_first_contact_is_still_recorded(http):
    created = await http.post(
        "/v1/complaints",
        json=complaint_body(
            resolved_on_first_contact=True, first_contact_resolution="当场道歉并换货"
        ),
    )
    assert created.status_code == 201
    assert created.json()["status"] == "resolved_on_first_contact"
    missing = await http.post(
        "/v1/complaints", json=complaint_body(description="另一件", resolved_on_first_contact=True)
    )
    assert missing.status_code == 422


async def test_repeat_complaints_by_the_same_customer_are_linked(http):
    first = (await http.post("/v1/complaints", json=complaint_body())).json()
    second = (
        await http.post(
            "/v1/complaints",
            json=complaint_body(
                channel="email",
                description="上次的笔记本问题还没解决，客服也不回复。",
                customer={"email": "Wang.Xiansheng@example.com"},
            ),
        )
    ).json()
    assert second["related_complaint_ids"] == [first["id"]]


async def test_manual_correction_is_kept_beside_the_automatic_result(http, intake):
    created = (await http.post("/v1/complaints", json=complaint_body())).json()
    corrected = await http.put(
        f"/v1/complaints/{created['id']}/classification",
        json={"category": "delivery_delay", "reason": "the scratch came from the courier"},
    )
    assert corrected.status_code == 200, corrected.text
    body = corrected.json()
    assert body["classification"]["category"] == "delivery_delay"
    assert body["automatic_classification"]["category"] == "product_quality"
    assert body["manual_classification"] == {"category": "delivery_delay"}
    nothing = await http.put(
        f"/v1/complaints/{created['id']}/classification", json={"reason": "no change"}
    )
    assert nothing.status_code == 422


async def test_messages_with_evidence(http):
    created = (await http.post("/v1/complaints", json=complaint_body())).json()
    added = await http.post(
        f"/v1/complaints/{created['id']}/messages",
        json={
            "channel": "online_chat",
            "body": "补充照片",
            "evidence": [
                {
                    "type": "image",
                    "uri": "s3://evidence/1.jpg",
                    "size_bytes": 20480,
                    "checksum": "sha256:" + "a" * 64,
                }
            ],
        },
    )
    assert added.status_code == 201, added.text
    listed = (await http.get(f"/v1/complaints/{created['id']}/messages")).json()
    assert listed[0]["evidence"][0]["uri"] == "s3://evidence/1.jpg"
    missing = await http.post(
        f"/v1/complaints/{uuid.uuid4()}/messages", json={"channel": "email", "body": "x"}
    )
    assert missing.status_code == 404


async def test_batch_accepts_and_rejects_items_independently(http, intake):
    response = await http.post(
        "/v1/complaints:batch",
        json=[
            complaint_body(channel="letter"),
            complaint_body(channel="pigeon"),
            complaint_body(
                channel="survey", description="满意度调查：客服态度很差", idempotency_key="s-1"
            ),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["rejected"]) == (2, 1)
    assert body["results"][1]["errors"][0]["field"] == "body.1.channel"
    assert await count(intake, "complaint") == 2


async def test_csv_import(http, intake):
    csv_body = (
        "channel,customer_name,customer_phone,description,requested_remedies,amount\n"
        "letter,李女士,13900001111,快递晚到一周，要求赔偿,compensation,\n"
        "letter,张先生,not-a-phone,价格比宣传的高,refund;explanation,20\n"
    ).encode()
    response = await http.post(
        "/v1/complaints:batch", content=csv_body, headers={"Content-Type": "text/csv"}
    )
    body = response.json()
    assert (body["created"], body["rejected"]) == (1, 1), body
    assert body["results"][1]["errors"][0]["field"].startswith("body.1.customer")


async def test_oversize_batch_is_refused(http, intake):
    response = await http.post(
        "/v1/complaints:batch",
        json=[complaint_body()] * (intake.runtime.settings.max_batch_items + 1),
    )
    assert response.status_code == 413
    assert response.json()["field"] == "body"
    assert await count(intake, "complaint") == 0


async def test_list_filters_and_cursor_pagination(http):
    for index in range(5):
        await http.post(
            "/v1/complaints", json=complaint_body(description=f"快递延迟第{index}次，包裹还没到")
        )
    await http.post("/v1/complaints", json=complaint_body(channel="email"))
    page = (await http.get("/v1/complaints", params={"limit": 2, "channel": "phone"})).json()
    seen = [item["id"] for item in page["items"]]
    while page["next_cursor"]:
        page = (
            await http.get(
                "/v1/complaints",
                params={"limit": 2, "channel": "phone", "cursor": page["next_cursor"]},
            )
        ).json()
        seen += [item["id"] for item in page["items"]]
    assert len(seen) == len(set(seen)) == 5
    by_phone = (await http.get("/v1/complaints", params={"customer_phone": "13800138000"})).json()
    assert len(by_phone["items"]) == 6
    forged = await http.get("/v1/complaints", params={"cursor": "nope"})
    assert forged.status_code == 422 and forged.json()["field"] == "cursor"


async def test_anonymisation_erases_personal_data_and_keeps_the_record(http, intake):
    created = (await http.post("/v1/complaints", json=complaint_body())).json()
    response = await http.post(
        "/v1/customers:anonymize", json={"phone": "13800138000", "reason": "PIPL deletion request"}
    )
    assert response.json() == {"anonymized_complaints": [created["id"]], "anonymized_count": 1}
    after = (await http.get(f"/v1/complaints/{created['id']}?include=contact")).json()
    assert after["anonymized"] is True
    assert after["contact"]["phone"] is None and after["contact"]["name"] is None
    assert after["classification"]["category"] == "product_quality"


async def test_classifier_rules_change_without_a_deploy(http):
    current = (await http.get("/v1/classifier/rules")).json()
    rules = current["rules"]
    saved = await http.put("/v1/classifier/rules", json=rules, params={"note": "same rules"})
    assert saved.status_code == 200, saved.text
    assert (await http.get("/v1/classifier/rules")).json()["version"] == saved.json()["version"]
    broken = await http.put("/v1/classifier/rules", json={"nonsense": True})
    assert broken.status_code == 422


async def test_channel_frontend_cannot_correct_or_read_contacts(http):
    created = (await http.post("/v1/complaints", json=complaint_body())).json()
    async with as_role(http, "channel_frontend") as frontend:
        denied = await frontend.put(
            f"/v1/complaints/{created['id']}/classification",
            json={"category": "other", "reason": "because"},
        )
        assert denied.status_code == 403
        masked = (await frontend.get(f"/v1/complaints/{created['id']}?include=contact")).json()
        assert masked["contact"]["masked"] is True


async def test_same_text_with_other_details_is_a_new_complaint(http, intake):
    first = (await http.post("/v1/complaints", json=complaint_body())).json()
    other = await http.post("/v1/complaints", json=complaint_body(amount="10.00"))
    assert other.status_code == 201
    assert other.json()["id"] != first["id"]
    assert await count(intake, "complaint") == 2


async def deliver(intake, event) -> None:
    """Apply an event through the consumer's handler, in the service's unit of work."""
    async with intake.uow() as uow:
        await intake.handlers[event.event_type](uow, event, intake.runtime.outbox.envelope(event))
        await uow.commit()


async def test_tracking_follows_the_sla_clocks_after_classification(http, intake):
    created = (await http.post("/v1/complaints", json=complaint_body())).json()
    complaint_id, now = uuid.UUID(created["id"]), datetime.now(UTC)
    # Started on the default policy, then retargeted once the urgent classification is known.
    await deliver(
        intake, milestone_started(complaint_id, "first_response", now, now + timedelta(hours=24))
    )
    await deliver(
        intake,
        milestone_retargeted(
            complaint_id,
            "first_response",
            now + timedelta(hours=1),
            previous_due_at=now + timedelta(hours=24),
        ),
    )
    tracked = (await http.get(f"/v1/track/{created['tracking_code']}")).json()
    shown = datetime.fromisoformat(tracked["due_dates"]["first_response"])
    assert shown == now + timedelta(hours=1)
    await deliver(
        intake, milestone_paused(complaint_id, "first_response", now, "waiting for the customer")
    )
    paused = (await http.get(f"/v1/track/{created['tracking_code']}")).json()
    assert (paused["due_dates"], paused["paused_milestones"]) == ({}, ["first_response"])
    staff_view = (await http.get(f"/v1/complaints/{created['id']}")).json()
    assert staff_view["paused_milestones"] == ["first_response"]


async def test_the_review_queue_lists_only_complaints_that_need_review(http, intake):
    unsure = (await http.post("/v1/complaints", json=complaint_body())).json()
    sure = (
        await http.post("/v1/complaints", json=complaint_body(description="快递晚了三天才到"))
    ).json()
    assert {"needs_review", "model_version"} <= set(unsure)
    # Whether the classifier is unsure depends on its model; the queue is what is tested here.
    async with intake.runtime.engine.begin() as conn:
        await conn.execute(
            text("UPDATE intake.complaint SET needs_review = (id = :id)"), {"id": unsure["id"]}
        )
    queue = (await http.get("/v1/complaints", params={"needs_review": "true"})).json()
    assert [item["id"] for item in queue["items"]] == [unsure["id"]]
    assert queue["items"][0]["needs_review"] is True
    rest = (await http.get("/v1/complaints", params={"needs_review": "false"})).json()
    assert [item["id"] for item in rest["items"]] == [sure["id"]]
    read = (await http.get(f"/v1/complaints/{sure['id']}")).json()
    assert read["needs_review"] is False
    assert read["model_version"] == sure["model_version"]


async def test_a_department_bound_caller_asking_for_another_department_is_refused(http, intake):
    await declare_departments(intake.runtime, "billing")
    async with as_role(http, "agent", "billing") as billing:
        refused = await billing.get("/v1/complaints", params={"department": "quality"})
    assert refused.status_code == 403
    assert refused.json()["field"] == "department"

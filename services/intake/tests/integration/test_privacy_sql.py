"""Erasure and retention against the real Postgres: the SQL that erases contacts and the
messages' free text, and the batches of the retention worker."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from intake_factories import complaint_body, one_row
from sqlalchemy import text
from tousu_intake.domain.complaint import RETENTION_DESCRIPTION
from tousu_intake.service_layer import privacy

pytestmark = pytest.mark.integration

EVIDENCE = {
    "type": "image",
    "uri": "s3://evidence/invoice.png",
    "size_bytes": 2048,
    "checksum": "sha256:" + "ab" * 32,
    "description": "王先生的发票照片",
}


async def created_with_message(http, phone: str) -> str:
    body = complaint_body(
        customer={"name": "王先生", "phone": phone},
        description=f"屏幕有划痕。{uuid.uuid4()}",
        evidence=[EVIDENCE],
    )
    complaint_id: str = (await http.post("/v1/complaints", json=body)).json()["id"]
    added = await http.post(
        f"/v1/complaints/{complaint_id}/messages",
        json={"channel": "app", "body": "我家住在北京市朝阳区某某路1号", "evidence": [EVIDENCE]},
    )
    assert added.status_code == 201, added.text
    return complaint_id


async def backdate(intake, complaint_id: str, years: int) -> None:
    async with intake.runtime.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE intake.complaint SET received_at = received_at - make_interval(years => :y)"
                " WHERE id = :id"
            ),
            {"y": years, "id": complaint_id},
        )


async def stored_text(intake, complaint_id: str) -> dict:
    row = await one_row(
        intake,
        "SELECT c.description, c.category, c.channel, c.customer_ref, c.anonymized_at,"
        " k.phone_ct, k.phone_index, k.name_ct,"
        " array_agg(m.body) AS bodies, jsonb_agg(m.evidence) AS evidence"
        " FROM intake.complaint c JOIN intake.complaint_contact k"
        " ON k.complaint_id = c.id"
        " JOIN intake.complaint_message m ON m.complaint_id = c.id"
        " WHERE c.id = :id GROUP BY c.id, k.complaint_id",
        id=complaint_id,
    )
    return dict(row._mapping)


async def test_retention_anonymises_only_old_complaints_in_batches_and_once(http, intake):
    # Batches of two: three old complaints take two rounds.
    shared = intake.app.state.intake
    context = dataclasses.replace(
        shared, settings=shared.settings.model_copy(update={"retention_batch_size": 2})
    )
    old = [await created_with_message(http, f"1380000000{n}") for n in range(3)]
    young = await created_with_message(http, "13911112222")
    for complaint_id in old:
        await backdate(intake, complaint_id, context.settings.retention_years + 1)
    before = {cid: await stored_text(intake, cid) for cid in old}

    assert await privacy.retention_batch(context) == 2
    assert await privacy.apply_retention(context) == 1
    for complaint_id in old:
        after = await stored_text(intake, complaint_id)
        assert after["description"] == RETENTION_DESCRIPTION
        assert after["anonymized_at"] is not None
        assert (after["phone_ct"], after["phone_index"], after["name_ct"]) == (None,) * 3
        assert after["bodies"] == [None, None]
        evidence = [item for items in after["evidence"] for item in items]
        assert evidence and all("description" not in item for item in evidence)
        assert {item["checksum"] for item in evidence} == {EVIDENCE["checksum"]}
        was = before[complaint_id]
        assert (after["category"], after["channel"]) == (was["category"], was["channel"])
    kept = await stored_text(intake, young)
    assert kept["anonymized_at"] is None and kept["phone_ct"] is not None
    assert "我家住在北京市朝阳区某某路1号" in kept["bodies"]

    entries = (await http.get("/v1/admin/audit", params={"limit": 1000})).json()
    retention = [e for e in entries if e["action"] == "retention.anonymize"]
    assert sorted(e["complaint_id"] for e in retention) == sorted(old)
    assert {e["actor"] for e in retention} == {"system:retention"}
    # Idempotent: nothing is left, so a second run changes and audits nothing.
    assert await privacy.apply_retention(context) == 0
    again = (await http.get("/v1/admin/audit", params={"limit": 1000})).json()
    assert len([e for e in again if e["action"] == "retention.anonymize"]) == 3


async def test_a_customer_erasure_clears_the_messages_text_too(http, intake):
    complaint_id = await created_with_message(http, "13722223333")
    erased = await http.post(
        "/v1/customers:anonymize", json={"phone": "13722223333", "reason": "PIPL request"}
    )
    assert erased.status_code == 200, erased.text
    after = await stored_text(intake, complaint_id)
    assert after["bodies"] == [None, None] and after["customer_ref"] == "anonymised"
    messages = (await http.get(f"/v1/complaints/{complaint_id}/messages")).json()
    assert all(m["body"] is None for m in messages)
    assert all(e["description"] is None for m in messages for e in m["evidence"])

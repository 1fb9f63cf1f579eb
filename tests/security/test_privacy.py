"""Intake privacy (issue #13, holes 2, 4 and 10) on the real stack (conftest.py).

- Erasure by any agent: ``POST /v1/customers:anonymize`` needed only pii:read, which every
  agent holds, and erased a customer's data in another department.
- Repeat-complaint links: the create answer listed the customer's other complaints in every
  department, even to a frontend without pii:read, and the phone mask showed 7 of 8 digits:
  ten posts of guessed numbers found the one that linked, and so the whole number.
- The PIPL rights beyond erasure: the data export is a privacy officer's, with a reason.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from intake_factories import case_routed, complaint_body
from tousu_shared.runtime import Service
from tousu_shared.testing import api_client, declare_departments, issue_credential

pytestmark = [pytest.mark.integration, pytest.mark.security]

VICTIM_PHONE = "13512340000"
VICTIM_EMAIL = "li.victim@example.com"


@pytest.fixture(scope="module")
def intake(stack: dict[str, Service]) -> Service:
    return stack["intake"]


@pytest.fixture(scope="module")
async def admin(intake: Service, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(intake.app, admin_key) as client:
        yield client


@contextlib.asynccontextmanager
async def holder(
    intake: Service, admin: httpx.AsyncClient, role: str, department: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client holding a fresh credential of a role (and department)."""
    fields = {"department": department} if department else {}
    if department:
        await declare_departments(intake.runtime, department)
    key = await issue_credential(admin, role, f"{role}-{uuid.uuid4().hex[:6]}", **fields)
    async with api_client(intake.app, key, lifespan=False) as client:
        yield client


async def route(intake: Service, complaint_id: str, department: str) -> None:
    """Routing's CaseRouted, applied through intake's own handler (intake follows it)."""
    event = case_routed(uuid.UUID(complaint_id), department)
    async with intake.uow() as uow:
        await intake.handlers[event.event_type](uow, event, intake.runtime.outbox.envelope(event))
        await uow.commit()


def customer(phone: str, email: str | None = None) -> dict[str, str]:
    fields = {"name": "李女士", "phone": phone, "preferred_contact": "phone"}
    return fields | ({"email": email} if email else {})


async def victim_complaint(
    admin: httpx.AsyncClient, intake: Service, department: str, phone: str = VICTIM_PHONE
) -> str:
    """A complaint of the victim's, routed to a department; its id."""
    response = await admin.post(
        "/v1/complaints",
        json=complaint_body(
            customer=customer(phone, VICTIM_EMAIL),
            description=f"{department}: 退款一直没有到账，已经等了两周。{uuid.uuid4().hex}",
        ),
    )
    assert response.status_code == 201, response.text
    complaint_id: str = response.json()["id"]
    await route(intake, complaint_id, department)
    return complaint_id


async def audit_of(client: httpx.AsyncClient, complaint_id: str) -> list[dict]:
    response = await client.get("/v1/admin/audit", params={"complaint_id": complaint_id})
    assert response.status_code == 200, response.text
    entries: list[dict] = response.json()
    return entries


def digits(mask: str) -> str:
    return re.sub(r"[^0-9]", "", mask)


# -- hole 2: erasure -------------------------------------------------------------------------


async def test_an_agent_cannot_erase_a_customer_of_any_department(intake, admin):
    billing_case = await victim_complaint(admin, intake, "billing")
    request = {"phone": VICTIM_PHONE, "reason": "the customer asked by phone"}
    for role, department in [("agent", "quality"), ("agent", "billing"), ("manager", "billing")]:
        async with holder(intake, admin, role, department) as staff:
            refused = await staff.post("/v1/customers:anonymize", json=request)
        assert refused.status_code == 403, refused.text
        assert refused.json()["required_scope"] == "pii:erase"
    still = (await admin.get(f"/v1/complaints/{billing_case}?include=contact")).json()
    assert still["anonymized"] is False and still["contact"]["phone"] == VICTIM_PHONE
    # Nor can a department-bound credential be given the scope.
    bound = await admin.post(
        "/v1/admin/credentials",
        json={"name": "x", "role": "agent", "department": "quality", "scopes": ["pii:erase"]},
    )
    assert bound.status_code == 422


async def test_a_privacy_officer_erases_with_a_reason_audited_and_sees_what_was_touched(
    intake, admin
):
    phone = "13912345678"
    ids = []
    for department in ("quality", "billing"):
        created = await admin.post(
            "/v1/complaints",
            json=complaint_body(
                customer=customer(phone), description=f"{department}: 屏幕坏了。{uuid.uuid4()}"
            ),
        )
        ids.append(created.json()["id"])
        await route(intake, ids[-1], department)
    async with holder(intake, admin, "privacy_officer") as officer:
        unreasoned = await officer.post("/v1/customers:anonymize", json={"phone": phone})
        assert unreasoned.status_code == 422, unreasoned.text
        assert [e["field"] for e in unreasoned.json()["errors"]] == ["body.reason"]
        assert (await admin.get(f"/v1/complaints/{ids[0]}")).json()["anonymized"] is False

        reason = "PIPL deletion request #2026-118 (letter of 20 Nov)"
        erased = await officer.post(
            "/v1/customers:anonymize", json={"phone": phone, "reason": reason}
        )
        assert erased.status_code == 200, erased.text
        # The officer sees every department, so every touched complaint is named.
        assert sorted(erased.json()["anonymized_complaints"]) == sorted(ids)
        assert erased.json()["anonymized_count"] == 2
        for complaint_id in ids:
            entries = await audit_of(officer, complaint_id)
            [entry] = [e for e in entries if e["action"] == "customer.anonymize"]
            assert entry["details"]["reason"] == reason
            assert entry["actor"].startswith("privacy_officer:")
    after = (await admin.get(f"/v1/complaints/{ids[1]}?include=contact")).json()
    assert after["anonymized"] is True and after["contact"]["phone"] is None
    assert after["department"] == "billing" and after["classification"]["category"]


# -- hole 4: links and masks -------------------------------------------------------------------


async def test_a_create_answer_links_only_complaints_the_caller_may_see(intake, admin):
    billing_case = await victim_complaint(admin, intake, "billing")
    again = {"customer": customer(VICTIM_PHONE), "description": "还是没有退款，第二次投诉。"}
    async with (
        holder(intake, admin, "channel_frontend") as frontend,
        holder(intake, admin, "agent", "quality") as quality,
        holder(intake, admin, "agent", "billing") as billing,
    ):
        for client, expected in [(frontend, []), (quality, []), (billing, [billing_case])]:
            body = complaint_body(**again, tags=[uuid.uuid4().hex[:8]])
            created = await client.post("/v1/complaints", json=body)
            assert created.status_code == 201, created.text
            if expected:
                assert billing_case in created.json()["related_complaint_ids"]
            else:
                assert created.json()["related_complaint_ids"] == []
        # Reading a complaint back links no further than creating it did.
        listed = (await frontend.get("/v1/complaints", params={"limit": 200})).json()
        assert all(item["related_complaint_ids"] == [] for item in listed["items"])


async def test_how_often_a_customer_complained_is_shown_only_with_pii_read(intake, admin):
    # The victim complained twice before: a third complaint is a repeat complainer's. The
    # explanation's count of those complaints is the victim's history, not the frontend's.
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    for department in ("billing", "quality"):
        await victim_complaint(admin, intake, department, phone=phone)
    body = {"customer": customer(phone), "description": "退款一直没有到账，已经等了两周。"}
    async with (
        holder(intake, admin, "channel_frontend") as frontend,
        holder(intake, admin, "agent", "billing") as agent,
    ):
        created = await frontend.post("/v1/complaints", json=complaint_body(**body))
        assert created.status_code == 201, created.text
        urgency = created.json()["explanation"]["urgency"]
        assert "customer_history" not in urgency
        assert not any(char.isdigit() for step in urgency["steps"] for char in step)
        complaint_id = created.json()["id"]
        read = (await frontend.get(f"/v1/complaints/{complaint_id}")).json()
        assert "customer_history" not in read["classification_explanation"]["urgency"]
        listed = (await frontend.get("/v1/complaints", params={"limit": 200})).json()
        [item] = [item for item in listed["items"] if item["id"] == complaint_id]
        assert "customer_history" not in item["classification_explanation"]["urgency"]
        # Staff who may read personal data see the count that raised the urgency.
        await route(intake, complaint_id, "billing")
        staff = (await agent.get(f"/v1/complaints/{complaint_id}")).json()
        history = staff["classification_explanation"]["urgency"]["customer_history"]
        assert history["recent_complaints"] == 2


async def test_ten_guessed_numbers_cannot_rebuild_the_victims_number(intake, admin):
    # The report's case: the frontend knows 876?4321 (the old 7-of-8 mask) and the victim
    # complained once before, in another department.
    await victim_complaint(admin, intake, "billing", phone="87654321")
    guesses = [f"876{digit}4321" for digit in "0123456789"]  # one of them is the victim's
    async with holder(intake, admin, "channel_frontend") as frontend:
        answers, masks = [], []
        for phone in guesses:
            created = await frontend.post(
                "/v1/complaints",
                json=complaint_body(
                    customer=customer(phone, f"guess.{phone}@example.com"),
                    description="退款一直没有到账，已经等了两周。",
                ),
            )
            assert created.status_code == 201, created.text
            answers.append(created.json())
            read = await frontend.get(f"/v1/complaints/{created.json()['id']}?include=contact")
            masks.append(read.json()["contact"])
    # No answer tells the victim's number from the other nine.
    assert all(answer["related_complaint_ids"] == [] for answer in answers)
    assert len({str(answer["classification"]) for answer in answers}) == 1
    assert {mask["phone"] for mask in masks} == {"*******4321"}
    assert all(mask["masked"] for mask in masks)
    # Together the masks show the last four digits, nothing more, and no email's local part.
    assert {digits(mask["phone"]) for mask in masks} == {"4321"}
    assert {mask["email"] for mask in masks} == {"***@example.com"}


async def test_every_mask_shows_at_most_four_digits_and_no_local_part(intake, admin):
    phones = ["13800138000", "+4915123456789", "0105551234", "123456"]
    async with holder(intake, admin, "analyst") as analyst:
        for phone in phones:
            created = await admin.post(
                "/v1/complaints",
                json=complaint_body(
                    customer=customer(phone, "zhang.san.1990@example.com"),
                    description=f"发票金额错误。{uuid.uuid4()}",
                ),
            )
            read = await analyst.get(f"/v1/complaints/{created.json()['id']}?include=contact")
            contact = read.json()["contact"]
            assert contact["masked"] is True
            assert len(digits(contact["phone"])) <= 4
            assert "zhang" not in contact["email"] and contact["email"] == "***@example.com"


# -- hole 10a: export --------------------------------------------------------------------------


async def test_only_a_privacy_officer_exports_a_customer_with_a_reason_audited(intake, admin):
    phone = "13700001111"
    created = await admin.post(
        "/v1/complaints",
        json=complaint_body(customer=customer(phone, "wu@example.com"), description="屏幕坏了。"),
    )
    complaint_id = created.json()["id"]
    await route(intake, complaint_id, "quality")
    request = {"phone": phone, "reason": "PIPL access request #77"}
    async with holder(intake, admin, "agent", "quality") as agent:
        refused = await agent.post("/v1/customers:export", json=request)
        assert refused.status_code == 403 and refused.json()["required_scope"] == "pii:export"
    async with holder(intake, admin, "privacy_officer") as officer:
        unreasoned = await officer.post("/v1/customers:export", json={"phone": phone})
        assert unreasoned.status_code == 422
        assert [e["field"] for e in unreasoned.json()["errors"]] == ["body.reason"]
        exported = await officer.post("/v1/customers:export", json=request)
        assert exported.status_code == 200, exported.text
        [item] = exported.json()["complaints"]
        assert item["complaint"]["id"] == complaint_id
        assert item["complaint"]["contact"]["phone"] == phone
        assert item["complaint"]["contact"]["masked"] is False
        assert item["complaint"]["description"] == "屏幕坏了。"
        assert item["complaint"]["department"] == "quality"
        assert {part["service"] for part in item["held_elsewhere"]} >= {"routing", "feedback"}
        [entry] = [
            e for e in await audit_of(officer, complaint_id) if e["action"] == "customer.export"
        ]
        assert entry["details"]["reason"] == "PIPL access request #77"
        unknown = await officer.post(
            "/v1/customers:export", json={"email": "nobody@example.com", "reason": "request"}
        )
        assert unknown.status_code == 404 and unknown.json()["field"] == "email"

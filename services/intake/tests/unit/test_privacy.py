"""The customer's PIPL rights on the fake unit of work: masks, links to other complaints,
erasure, export and the retention period."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from intake_factories import WANG, case_routed
from intake_fakes import deliver, fake_context, principal
from tousu_intake.domain import model
from tousu_intake.domain.commands import (
    AddMessage,
    AnonymizeCustomer,
    ExportCustomer,
    SubmitComplaint,
)
from tousu_intake.domain.complaint import (
    ANONYMISED_CUSTOMER_REF,
    RETENTION_DESCRIPTION,
    Evidence,
)
from tousu_intake.service_layer import privacy
from tousu_intake.service_layer.services import add_message, submit_complaint
from tousu_shared.clock import FixedClock
from tousu_shared.contracts.complaint import ComplaintAnonymized
from tousu_shared.contracts.vocabulary import Channel
from tousu_shared.errors import NotFound

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
PHONE = "13800138000"
ADMIN = principal()
OFFICER = principal(
    "privacy_officer", scopes={"complaints:read", "pii:read", "pii:erase", "pii:export"}
)
FRONTEND = principal("channel_frontend", scopes={"complaints:write", "complaints:read"})


def wang(description: str = "", **customer: str) -> SubmitComplaint:
    details = WANG.details
    if description:
        details = dataclasses.replace(details, description=description)
    return dataclasses.replace(
        WANG, details=details, customer=dataclasses.replace(WANG.customer, **customer)
    )


async def submitted(context, command: SubmitComplaint = WANG, by=ADMIN) -> uuid.UUID:
    return uuid.UUID((await submit_complaint(command, principal=by, context=context)).answer["id"])


# -- masks -------------------------------------------------------------------------------------


def digits_shown(mask: str) -> str:
    return re.sub(r"[^0-9]", "", mask)


@pytest.mark.parametrize(
    ("phone", "mask"),
    [
        ("13800138000", "*******8000"),
        ("87654321", "*******4321"),
        ("+4915123456789", "*******6789"),
        ("123456", "*******456"),
    ],
)
def test_a_phone_mask_shows_at_most_its_last_four_digits(phone, mask):
    assert model.mask_phone(phone) == mask
    assert len(digits_shown(mask)) <= min(4, len(phone.lstrip("+")) // 2)


def test_numbers_that_differ_outside_the_last_four_digits_mask_alike():
    # The attack: guesses of one unknown digit, each posted and read back masked.
    masks = {model.mask_phone(f"876{digit}4321") for digit in "0123456789"}
    assert masks == {"*******4321"}
    # Neither the length nor the leading digits show.
    assert model.mask_phone("13800138000") == model.mask_phone("99900008000")
    assert model.mask_phone("13800138000") == model.mask_phone("12348000")


def test_an_email_mask_never_shows_the_local_part():
    assert model.mask_email("wang.xiansheng@example.com") == "***@example.com"
    assert model.mask_email("w@example.com") == model.mask_email("zz.top@example.com")


def test_the_customers_mask_applies_every_field_mask():
    masked = WANG.customer.masked()
    assert (masked.name, masked.phone, masked.email) == ("王**", "*******8000", "***@example.com")
    assert masked.tier == WANG.customer.tier


# -- links to the customer's other complaints -----------------------------------------------


async def test_a_caller_without_pii_read_sees_no_links_to_other_complaints():
    context, _ = fake_context(FixedClock(NOW))
    earlier = await submitted(context)
    as_frontend = await submit_complaint(
        wang("又一次投诉：还是没有退款。"), principal=FRONTEND, context=context
    )
    as_admin = await submit_complaint(
        wang("第三次投诉：还是没有退款。"), principal=ADMIN, context=context
    )
    assert as_frontend.answer["related_complaint_ids"] == []
    assert str(earlier) in as_admin.answer["related_complaint_ids"]


async def test_links_reach_only_complaints_of_departments_the_caller_may_see():
    context, uow = fake_context(FixedClock(NOW))
    billing_case = await submitted(context)
    await deliver(uow, case_routed(billing_case, "billing"))
    quality = principal("agent", "quality", scopes={"complaints:write", "pii:read"})
    billing = principal("agent", "billing", scopes={"complaints:write", "pii:read"})
    by_quality = await submit_complaint(
        wang("第二次：退款呢？"), principal=quality, context=context
    )
    by_billing = await submit_complaint(
        wang("第三次：退款呢？"), principal=billing, context=context
    )
    assert by_quality.answer["related_complaint_ids"] == []
    assert by_billing.answer["related_complaint_ids"] == [str(billing_case)]
    # The classifier still counts every earlier complaint; only the answer is narrowed.
    stored = uow.complaints.rows[uuid.UUID(by_quality.answer["id"])]
    assert stored.related_complaint_ids == [billing_case]


# -- erasure -----------------------------------------------------------------------------------


async def test_erasure_names_only_the_complaints_the_caller_may_see_and_counts_all():
    context, uow = fake_context(FixedClock(NOW))
    quality_case = await submitted(context)
    billing_case = await submitted(context, wang("第二次投诉：还是没退款。"))
    await deliver(uow, case_routed(quality_case, "quality"), case_routed(billing_case, "billing"))
    # No role binds pii:erase to a department today; the rule holds if one ever does.
    bound = principal("agent", "quality", scopes={"pii:erase"})
    erasure = await privacy.anonymize_customer(
        AnonymizeCustomer(reason="PIPL request 42", phone=PHONE), principal=bound, context=context
    )
    assert (erasure.complaint_ids, erasure.total) == ([quality_case], 2)
    assert all(uow.complaints.rows[c].anonymized_at == NOW for c in (quality_case, billing_case))
    reasons = {(e.action, e.complaint_id, e.details["reason"]) for e in uow.audited}
    assert reasons == {
        ("customer.anonymize", quality_case, "PIPL request 42"),
        ("customer.anonymize", billing_case, "PIPL request 42"),
    }


async def test_erasure_takes_the_free_text_of_messages_and_the_links_too():
    context, uow = fake_context(FixedClock(NOW))
    first = await submitted(context)
    second = await submitted(context, wang("第二次投诉：还是没退款。"))
    evidence = Evidence("image", "s3://evidence/1.png", 10, "sha256:" + "0" * 64, "王先生的发票")
    await add_message(
        AddMessage(second, Channel.APP, body="我的地址是北京市朝阳区…", evidence=(evidence,)),
        principal=ADMIN,
        context=context,
    )
    category = uow.complaints.rows[second].category
    await privacy.anonymize_customer(
        AnonymizeCustomer(reason="PIPL request", email="wang.xiansheng@example.com"),
        principal=OFFICER,
        context=context,
    )
    stored = uow.complaints.rows[second]
    assert stored.related_complaint_ids == [] and stored.customer_ref == ANONYMISED_CUSTOMER_REF
    assert stored.details.order_ref is None
    assert stored.details.product_ref == "LAPTOP-X1" and stored.category == category
    [message] = [m for m in uow.complaints.stored_messages if m.body is None and m.evidence]
    assert message.evidence[0].description is None
    assert message.evidence[0].checksum == evidence.checksum
    assert uow.complaints.rows[first].anonymized_at == NOW


# -- export ------------------------------------------------------------------------------------


async def test_the_export_holds_everything_intake_knows_of_the_customer_and_is_audited():
    context, uow = fake_context(FixedClock(NOW))
    first = await submitted(context)
    second = await submitted(context, wang("第二次投诉：还是没退款。"))
    await deliver(uow, case_routed(first, "quality"))
    await add_message(
        AddMessage(first, Channel.APP, body="补充：发票已上传"), principal=ADMIN, context=context
    )
    other = await submitted(context, wang(phone="13900000000", email="li@example.com"))
    export = await privacy.export_customer(
        ExportCustomer(reason="PIPL access request 7", phone=PHONE),
        principal=OFFICER,
        context=context,
    )
    by_id = {item.view.complaint.id: item for item in export.complaints}
    assert set(by_id) == {first, second} and other not in by_id
    item = by_id[first]
    assert item.view.contact_masked is False
    assert item.view.contact == dataclasses.replace(WANG.customer, address=None)
    assert item.view.complaint.details.description == WANG.details.description
    assert item.view.complaint.classification["category"] == "product_quality"
    assert item.view.complaint.details.requested_remedies == WANG.details.requested_remedies
    assert (item.view.complaint.status, item.view.complaint.department) == ("routed", "quality")
    assert [m.body for m in item.messages] == ["补充：发票已上传"]
    assert {part.service for part in item.elsewhere} == {
        "routing",
        "sla-monitor",
        "feedback",
        "analytics",
    }
    assert f"/v1/cases?complaint_id={first}" in [part.href for part in item.elsewhere]
    assert list(by_id[second].view.related) == [first]
    audited = [(e.action, e.complaint_id, e.details["reason"]) for e in uow.audited]
    assert sorted(audited, key=str) == sorted(
        [("customer.export", c, "PIPL access request 7") for c in (first, second)], key=str
    )


async def test_an_export_of_an_unknown_customer_is_a_404_naming_the_field():
    context, _ = fake_context(FixedClock(NOW))
    with pytest.raises(NotFound) as missing:
        await privacy.export_customer(
            ExportCustomer(reason="request", email="nobody@example.com"),
            principal=OFFICER,
            context=context,
        )
    assert missing.value.field == "email"


# -- retention ---------------------------------------------------------------------------------


def test_the_retention_cutoff_is_the_same_calendar_day_years_before():
    assert model.retention_cutoff(NOW, 3) == datetime(2023, 11, 22, 2, 0, tzinfo=UTC)
    leap = datetime(2028, 2, 29, tzinfo=UTC)
    assert model.retention_cutoff(leap, 3) == datetime(2025, 2, 28, tzinfo=UTC)


async def test_retention_anonymises_old_complaints_keeps_statistics_and_runs_once():
    clock = FixedClock(NOW - timedelta(days=4 * 365))
    context, uow = fake_context(clock, retention_batch_size=2)
    old = [
        await submitted(context, wang(f"旧投诉 {n}：屏幕有划痕。", phone=f"1380000000{n}"))
        for n in range(5)
    ]
    await deliver(uow, case_routed(old[0], "quality"))
    clock.advance(timedelta(days=4 * 365 - 30))
    young = await submitted(context, wang("新投诉：还是蓝屏。", phone="13911112222"))
    clock.advance(timedelta(days=30))
    before = {c: dataclasses.replace(uow.complaints.rows[c]) for c in old}
    events_before = len(uow.events())

    assert await privacy.apply_retention(context) == 5
    for complaint_id in old:
        stored, was = uow.complaints.rows[complaint_id], before[complaint_id]
        assert stored.anonymized_at == clock()
        assert stored.details.description == RETENTION_DESCRIPTION
        assert uow.complaints.contacts[complaint_id][0].phone is None
        kept = ("category", "severity", "received_at", "department", "status", "channel")
        assert [getattr(stored, k, None) or getattr(stored.details, k, None) for k in kept] == [
            getattr(was, k, None) or getattr(was.details, k, None) for k in kept
        ]
    assert uow.complaints.rows[old[0]].department == "quality"
    assert uow.complaints.rows[young].anonymized_at is None
    assert uow.complaints.contacts[young][0].phone == "13911112222"
    erased = uow.events(ComplaintAnonymized)
    assert sorted(e.complaint_id for e in erased) == sorted(old)
    assert {(e.actor, e.action) for e in uow.audited} == {
        ("system:retention", "retention.anonymize")
    }
    assert len(uow.audited) == 5

    # A second run finds nothing: no change, no event, no audit entry.
    assert await privacy.apply_retention(context) == 0
    assert len(uow.events()) == events_before + 5
    assert len(uow.audited) == 5

"""Intake's use cases on the fake unit of work: no Kafka, no Postgres, the real domain."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from intake_factories import WANG, case_routed
from intake_fakes import deliver, fake_context, principal
from tousu_intake.domain.commands import (
    AnonymizeCustomer,
    CorrectClassification,
    GetComplaint,
    ListComplaints,
    SubmitComplaint,
)
from tousu_intake.domain.complaint import ANONYMISED_DESCRIPTION
from tousu_intake.service_layer.privacy import anonymize_customer
from tousu_intake.service_layer.services import (
    correct_classification,
    get_complaint,
    list_complaints,
    submit_complaint,
)
from tousu_shared.clock import FixedClock
from tousu_shared.contracts.complaint import (
    ComplaintAnonymized,
    ComplaintClassified,
    ComplaintReceived,
    ComplaintReclassified,
)
from tousu_shared.contracts.vocabulary import Category, Channel
from tousu_shared.errors import Conflict, Forbidden, NotFound

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
SECRETS = ("13800138000", "王先生", "wang.xiansheng")
ADMIN = principal()


def other_details(command: SubmitComplaint, **changes: object) -> SubmitComplaint:
    return dataclasses.replace(command, details=dataclasses.replace(command.details, **changes))


async def test_submit_records_the_classified_complaint_and_its_events_without_personal_data():
    context, uow = fake_context(FixedClock(NOW))
    submission = await submit_complaint(WANG, principal=ADMIN, context=context)
    assert submission.replayed is False
    stored = uow.complaints.rows[uuid.UUID(submission.answer["id"])]
    assert (stored.received_at, stored.contact_at, stored.status) == (NOW, NOW, "received")
    assert stored.classification["category"] == "product_quality"
    assert submission.answer["classification"] == stored.classification
    # The model version and review flag are recorded with every complaint.
    assert submission.answer["model_version"] == stored.model_version
    assert submission.answer["needs_review"] is stored.needs_review
    assert [type(e) for e in uow.events()] == [ComplaintReceived, ComplaintClassified]
    for event in uow.events():
        for secret in SECRETS:
            assert secret not in event.model_dump_json()
    assert uow.commits == 1


async def test_the_same_idempotency_key_replays_the_first_answer():
    context, uow = fake_context(FixedClock(NOW))
    keyed = dataclasses.replace(WANG, idempotency_key="frontend-42")
    first = await submit_complaint(keyed, principal=ADMIN, context=context)
    again = await submit_complaint(keyed, principal=ADMIN, context=context)
    assert again.replayed is True
    assert again.answer == first.answer
    assert len(uow.complaints.rows) == 1
    assert len(uow.events(ComplaintReceived)) == 1


async def test_the_same_key_with_another_body_is_refused_and_stores_nothing():
    context, uow = fake_context(FixedClock(NOW))
    keyed = dataclasses.replace(WANG, idempotency_key="frontend-42")
    await submit_complaint(keyed, principal=ADMIN, context=context)
    with pytest.raises(Conflict) as refused:
        await submit_complaint(
            other_details(keyed, description="另一件事：快递晚了五天"),
            principal=ADMIN,
            context=context,
        )
    assert refused.value.field == "Idempotency-Key"
    assert len(uow.complaints.rows) == 1
    # Keys belong to the credential that sent them.
    elsewhere = principal(key_id="another-frontend")
    other = await submit_complaint(keyed, principal=elsewhere, context=context)
    assert other.replayed is False
    assert len(uow.complaints.rows) == 2


async def test_a_double_click_without_a_key_replays_within_the_duplicate_window_only():
    clock = FixedClock(NOW)
    context, uow = fake_context(clock, duplicate_window_minutes=10)
    first = await submit_complaint(WANG, principal=ADMIN, context=context)
    double = await submit_complaint(WANG, principal=ADMIN, context=context)
    assert double.replayed is True
    assert double.answer["id"] == first.answer["id"]
    # The same text with other details is a new complaint.
    other_amount = await submit_complaint(
        other_details(WANG, amount=Decimal("10.00")), principal=ADMIN, context=context
    )
    assert other_amount.replayed is False
    clock.advance(timedelta(minutes=11))
    later = await submit_complaint(WANG, principal=ADMIN, context=context)
    assert later.replayed is False
    assert len(uow.complaints.rows) == 3
    assert first.answer["id"] in later.answer["related_complaint_ids"]


async def test_without_a_duplicate_window_every_submission_is_a_complaint():
    context, uow = fake_context(FixedClock(NOW), duplicate_window_minutes=0)
    await submit_complaint(WANG, principal=ADMIN, context=context)
    again = await submit_complaint(WANG, principal=ADMIN, context=context)
    assert again.replayed is False
    assert len(uow.complaints.rows) == 2


async def test_a_correction_is_kept_beside_the_automatic_result():
    clock = FixedClock(NOW)
    context, uow = fake_context(clock)
    complaint_id = uuid.UUID(
        (await submit_complaint(WANG, principal=ADMIN, context=context)).answer["id"]
    )
    clock.advance(timedelta(hours=1))
    correction = CorrectClassification(
        complaint_id, reason="the scratch came from the courier", category=Category.DELIVERY_DELAY
    )
    corrector = principal("supervisor", scopes={"classification:write"})
    await correct_classification(correction, principal=corrector, context=context)
    stored = uow.complaints.rows[complaint_id]
    assert stored.auto_classification["category"] == "product_quality"
    assert stored.manual_classification == {"category": "delivery_delay"}
    assert (stored.classification["category"], stored.category) == ("delivery_delay",) * 2
    assert (stored.manual_classified_by, stored.manual_classified_at) == (corrector.actor, clock())
    assert stored.needs_review is False
    event = uow.events(ComplaintReclassified)[-1]
    assert (event.previous.category, event.classification.category) == (
        "product_quality",
        "delivery_delay",
    )
    assert [entry.action for entry in uow.audited] == ["classification.correct"]
    with pytest.raises(Conflict) as nothing:
        await correct_classification(correction, principal=corrector, context=context)
    assert nothing.value.details["allowed_actions"]
    assert len(uow.events(ComplaintReclassified)) == 1


async def test_department_bound_callers_see_and_list_only_their_department():
    context, uow = fake_context(FixedClock(NOW))
    complaint_id = uuid.UUID(
        (await submit_complaint(WANG, principal=ADMIN, context=context)).answer["id"]
    )
    await deliver(
        uow,
        case_routed(complaint_id, "quality"),
    )
    quality, billing = principal("agent", "quality"), principal("agent", "billing")
    seen = await get_complaint(GetComplaint(complaint_id), principal=quality, context=context)
    assert seen.complaint.status == "routed"
    with pytest.raises(NotFound):
        await get_complaint(GetComplaint(complaint_id), principal=billing, context=context)
    page = await list_complaints(ListComplaints(), principal=billing, context=context)
    assert page.items == []
    own = await list_complaints(ListComplaints(), principal=quality, context=context)
    assert [v.complaint.id for v in own.items] == [complaint_id]
    with pytest.raises(Forbidden) as refused:
        await list_complaints(
            ListComplaints(department="quality"), principal=billing, context=context
        )
    assert refused.value.field == "department"


async def test_anonymisation_erases_personal_data_and_keeps_the_statistics():
    clock = FixedClock(NOW)
    context, uow = fake_context(clock)
    first = await submit_complaint(WANG, principal=ADMIN, context=context)
    second = await submit_complaint(
        other_details(WANG, channel=Channel.EMAIL, description="上次的笔记本问题还没解决。"),
        principal=ADMIN,
        context=context,
    )
    categories = {cid: c.category for cid, c in uow.complaints.rows.items()}
    clock.advance(timedelta(days=3))
    request = AnonymizeCustomer(reason="PIPL deletion request", phone="13800138000")
    erasure = await anonymize_customer(request, principal=ADMIN, context=context)
    ids = erasure.complaint_ids
    assert {str(i) for i in ids} == {first.answer["id"], second.answer["id"]}
    assert erasure.total == 2
    for complaint_id in ids:
        stored = uow.complaints.rows[complaint_id]
        assert stored.anonymized_at == clock()
        assert stored.details.description == ANONYMISED_DESCRIPTION
        assert stored.category == categories[complaint_id]
        view = await get_complaint(
            GetComplaint(complaint_id, include_contact=True), principal=ADMIN, context=context
        )
        assert view.contact is not None
        assert (view.contact.name, view.contact.phone, view.contact.email) == (None,) * 3
    erased = uow.events(ComplaintAnonymized)
    assert sorted(e.complaint_id for e in erased) == sorted(ids)
    assert "customer.anonymize" in [entry.action for entry in uow.audited]
    # Nothing is left to find the customer by.
    with pytest.raises(NotFound):
        await anonymize_customer(request, principal=ADMIN, context=context)


async def test_contact_details_are_masked_without_the_pii_scope_and_audited_with_it():
    context, uow = fake_context(FixedClock(NOW))
    complaint_id = uuid.UUID(
        (await submit_complaint(WANG, principal=ADMIN, context=context)).answer["id"]
    )
    query = GetComplaint(complaint_id, include_contact=True)
    analyst = principal("analyst", scopes={"complaints:read"})
    masked = await get_complaint(query, principal=analyst, context=context)
    assert masked.contact_masked is True
    assert masked.contact is not None and masked.contact.phone == "*******8000"
    assert uow.audited == []
    clear = await get_complaint(query, principal=ADMIN, context=context)
    assert clear.contact is not None and clear.contact.phone == "13800138000"
    assert [entry.action for entry in uow.audited] == ["pii.read"]

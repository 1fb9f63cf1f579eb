"""Intake use cases: record, correct, read and track complaints (the customer's PIPL rights,
erasure, export and retention, are in ``privacy``).

Each takes a command (never an HTTP schema), the caller and the service's context, opens one
unit of work and commits it once: the complaint, its events and its audit entries together.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tousu_shared.auth import Principal
from tousu_shared.errors import InvalidInput, NotFound
from tousu_shared.faults import strike
from tousu_shared.pagination import decode_cursor, encode_cursor

from tousu_intake.adapters.repository import ComplaintFilter
from tousu_intake.domain import idempotency, tracking
from tousu_intake.domain.commands import (
    AddMessage,
    CorrectClassification,
    GetComplaint,
    ListComplaints,
    SaveClassifierRules,
    SubmitComplaint,
)
from tousu_intake.domain.complaint import (
    PII_FIELDS,
    Complaint,
    Customer,
    Message,
    classifier_facts,
)
from tousu_intake.service_layer.context import IntakeContext
from tousu_intake.service_layer.unit_of_work import IntakeWork


@dataclass(frozen=True)
class Submission:
    """The answer to a submission (JSON form) and whether it replays an earlier one."""

    answer: dict[str, Any]
    replayed: bool


@dataclass(frozen=True)
class ComplaintView:
    """A complaint as one caller may see it: with, when asked for, its customer's contact
    (masked unless allowed), and the links to the customer's other complaints the caller may
    see (:func:`visible_related`)."""

    complaint: Complaint
    contact: Customer | None = None
    contact_masked: bool = True
    related: Sequence[uuid.UUID] = ()
    # Whether the explanation may say how often the customer complained (pii:read).
    with_history: bool = False


@dataclass(frozen=True)
class Page:
    """One page of complaints and the cursor of the next (None: the last page)."""

    items: list[ComplaintView]
    next_cursor: str | None


@dataclass(frozen=True)
class Tracking:
    """What the customer may see of their complaint: no personal data."""

    tracking_code: str
    status: str
    next_step: str
    received_at: datetime
    deadlines: tracking.Deadlines


async def visible_related(
    uow: IntakeWork, principal: Principal, complaints: Iterable[Complaint]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """For each complaint, the links to its customer's other complaints the caller may see.

    A link says that one person made both complaints, which is personal data: a caller
    without pii:read sees none (not even how many, so posting guessed numbers tells nothing),
    and any caller sees only complaints of departments the one visibility rule
    (``Principal.may_see_department``) lets them see.
    """
    wanted = {complaint.id: complaint.related_complaint_ids for complaint in complaints}
    if not principal.can("pii:read"):
        return {complaint_id: [] for complaint_id in wanted}
    departments = await uow.complaints.departments_of(
        sorted({related for ids in wanted.values() for related in ids})
    )
    return {
        complaint_id: [
            related
            for related in ids
            if related in departments and principal.may_see_department(departments[related])
        ]
        for complaint_id, ids in wanted.items()
    }


async def view_of(
    uow: IntakeWork,
    principal: Principal,
    complaint: Complaint,
    *,
    contact: Customer | None = None,
    contact_masked: bool = True,
) -> ComplaintView:
    """One complaint as this caller may see it."""
    related = (await visible_related(uow, principal, [complaint]))[complaint.id]
    return ComplaintView(
        complaint, contact, contact_masked, related, with_history=principal.can("pii:read")
    )


async def submit_complaint(
    command: SubmitComplaint, *, principal: Principal, context: IntakeContext
) -> Submission:
    """Record and classify a complaint, or replay the answer its idempotency key got."""
    settings, now = context.settings, context.clock()
    customer = command.customer
    keys = context.cipher.customer_keys(
        phone=customer.phone, email=customer.email, address=customer.address
    )
    key = idempotency.key_for(
        command,
        credential=principal.key_id,
        customer=keys,
        now=now,
        duplicate_window=timedelta(minutes=settings.duplicate_window_minutes),
    )
    rules_version, classifier = await context.classifiers.current()
    complaint_id = uuid.uuid4()
    async with context.uow() as uow:
        related = await uow.complaints.recent_of_customer(
            keys, since=now - timedelta(days=settings.repeat_window_days)
        )
        result = classifier.classify(classifier_facts(command.details, customer.tier, len(related)))
        complaint = Complaint.submit(
            complaint_id=complaint_id,
            details=command.details,
            customer=customer,
            keys=keys,
            evidence=command.evidence,
            contact_at=command.contact_at,
            received_at=now,
            classification=result,
            ruleset_version=f"{rules_version}:{result.ruleset_version}",
            related=related,
            created_by=principal.actor,
            late_after=timedelta(minutes=settings.late_record_after_minutes),
            contact_details_url=(
                f"{settings.public_base_url}/v1/complaints/{complaint_id}?include=contact"
            ),
        )
        shown = await visible_related(uow, principal, [complaint])
        answer = complaint.receipt(shown[complaint_id], with_history=principal.can("pii:read"))
        if key is not None:
            earlier = await uow.idempotency.claim(key, complaint_id, answer)
            if earlier is not None and key.replays(earlier.request_hash):
                return Submission(earlier.answer, replayed=True)
        await uow.complaints.add(complaint)
        uow.track(complaint)
        await uow.commit()
        strike(settings, "after-commit")
    return Submission(answer, replayed=False)


async def _visible(
    uow: IntakeWork, complaint_id: uuid.UUID, principal: Principal, *, for_update: bool = False
) -> Complaint:
    """A complaint the caller may see; others' are as absent as missing ones (404)."""
    complaint = await uow.complaints.get(complaint_id, for_update=for_update)
    if complaint is None or not principal.may_see_department(complaint.department):
        raise NotFound(f"no complaint {complaint_id}", field="complaint_id")
    return complaint


@asynccontextmanager
async def _changing(
    context: IntakeContext, principal: Principal, complaint_id: uuid.UUID
) -> AsyncIterator[tuple[IntakeWork, Complaint]]:
    """A visible complaint, locked, whose change is saved and published on leaving the block.

    The row lock also keeps the complaint's events in the order they happened.
    """
    async with context.uow() as uow:
        complaint = await _visible(uow, complaint_id, principal, for_update=True)
        yield uow, complaint
        await uow.complaints.save(complaint)
        uow.track(complaint)
        await uow.commit()


async def correct_classification(
    command: CorrectClassification, *, principal: Principal, context: IntakeContext
) -> ComplaintView:
    """Keep a person's correction beside the automatic result and announce it."""
    changes = command.changes()
    async with _changing(context, principal, command.complaint_id) as (uow, complaint):
        complaint.correct_classification(
            changes, reason=command.reason, by=principal.actor, at=context.clock()
        )
        uow.audit(
            principal,
            "classification.correct",
            "complaint",
            str(complaint.id),
            complaint_id=complaint.id,
            details={"changes": changes, "reason": command.reason},
        )
        view = await view_of(uow, principal, complaint)
    return view


async def add_message(
    command: AddMessage, *, principal: Principal, context: IntakeContext
) -> Message:
    """Store a further customer message and tell the other services."""
    async with _changing(context, principal, command.complaint_id) as (_, complaint):
        message = complaint.add_message(
            channel=command.channel,
            body=command.body,
            evidence=command.evidence,
            by=principal.actor,
            at=context.clock(),
        )
    return message


async def get_complaint(
    query: GetComplaint, *, principal: Principal, context: IntakeContext
) -> ComplaintView:
    """One complaint; contact details in clear only for callers with pii:read (audited)."""
    async with context.uow() as uow:
        complaint = await _visible(uow, query.complaint_id, principal)
        if not query.include_contact:
            return await view_of(uow, principal, complaint)
        contact = await uow.complaints.contact(complaint)
        reveal = principal.can("pii:read")
        if reveal:
            uow.audit(
                principal,
                "pii.read",
                "complaint",
                str(complaint.id),
                complaint_id=complaint.id,
                details={"fields": list(PII_FIELDS)},
            )
            await uow.commit()
        elif contact is not None:
            contact = contact.masked()
        return await view_of(uow, principal, complaint, contact=contact, contact_masked=not reveal)


async def list_complaints(
    query: ListComplaints, *, principal: Principal, context: IntakeContext
) -> Page:
    """Complaints newest first, filtered, one keyset page at a time."""
    department = principal.visible_department(query.department)
    search_by = "phone" if query.customer_phone else "email" if query.customer_email else None
    if search_by and not principal.can("pii:read"):
        raise InvalidInput(
            "searching by phone or email needs the pii:read scope", field=f"customer_{search_by}"
        )
    filters = ComplaintFilter.of(
        query,
        department=department,
        customer=(
            context.cipher.customer_keys(phone=query.customer_phone, email=query.customer_email)
            if search_by
            else None
        ),
    )
    after = decode_cursor(query.cursor, datetime, uuid.UUID) if query.cursor else None
    async with context.uow() as uow:
        found = await uow.complaints.find(filters, after=after, limit=query.limit + 1)
        items = found[: query.limit]
        related = await visible_related(uow, principal, items)
        if search_by:
            uow.audit(principal, "pii.search", "complaint", None, details={"by": search_by})
            await uow.commit()
    more = len(found) > query.limit
    return Page(
        [
            ComplaintView(c, related=related[c.id], with_history=principal.can("pii:read"))
            for c in items
        ],
        encode_cursor(items[-1].received_at, items[-1].id) if more else None,
    )


async def list_messages(
    complaint_id: uuid.UUID, *, principal: Principal, context: IntakeContext
) -> list[Message]:
    """A complaint's messages, oldest first."""
    async with context.uow() as uow:
        await _visible(uow, complaint_id, principal)
        return await uow.complaints.messages(complaint_id)


async def track(tracking_code: str, *, context: IntakeContext) -> Tracking:
    """What the customer may see of their complaint."""
    async with context.uow() as uow:
        complaint = await uow.complaints.by_tracking_code(tracking_code.strip().upper())
    if complaint is None:
        raise NotFound("no complaint with this tracking code", field="tracking_code")
    return Tracking(
        tracking_code=complaint.tracking_code,
        status=complaint.status,
        next_step=tracking.next_step(complaint.status),
        received_at=complaint.received_at,
        deadlines=complaint.deadlines,
    )


async def save_rules(
    command: SaveClassifierRules, *, principal: Principal, context: IntakeContext
) -> int:
    """Store a new classifier rule set version; every process picks it up within seconds."""
    async with context.uow() as uow:
        version = await uow.rulesets.add(command.rules, by=principal.actor, note=command.note)
        uow.audit(
            principal,
            "classifier_rules.save",
            "classifier_ruleset",
            str(version),
            details={"note": command.note},
        )
        await uow.commit()
    context.classifiers.invalidate()
    return version

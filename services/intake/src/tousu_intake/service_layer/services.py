"""Intake use cases: record, correct, read, track and anonymise complaints.

Every function takes the caller's session keyword-only and never commits: the entrypoint
owns the transaction, so the complaint, its outbox events and its audit entries commit
together.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tousu_shared.audit import AuditLog
from tousu_shared.auth import DEPARTMENT_ROLES, Principal
from tousu_shared.contracts.complaint import (
    ClassificationData,
    ComplaintAnonymized,
    ComplaintClassified,
    ComplaintReceived,
    ComplaintReclassified,
    CustomerMessageAdded,
)
from tousu_shared.errors import Conflict, NotFound
from tousu_shared.outbox import Outbox
from tousu_shared.pagination import decode_cursor, encode_cursor

from tousu_intake.adapters.crypto import FieldCipher
from tousu_intake.adapters.orm import (
    classifier_ruleset,
    complaint,
    complaint_contact,
    complaint_message,
    idempotency_key,
)
from tousu_intake.domain import model
from tousu_intake.domain.classification import (
    Classification,
    Classifier,
    ClassifierRules,
    ComplaintFacts,
    load_default_rules,
)
from tousu_intake.entrypoints.schemas import (
    AnonymizeRequest,
    ClassificationRead,
    ClassificationUpdate,
    ComplaintCreate,
    ComplaintCreated,
    ComplaintRead,
    ContactRead,
    MessageCreate,
    MessageRead,
    TrackingRead,
)
from tousu_intake.settings import IntakeSettings

PII_FIELDS = ("name", "phone", "email", "address")

# The write path's statements, compiled once: building them per request (forty columns of
# value coercion) cost more CPU than the database work itself.
INSERT_COMPLAINT = complaint.insert()
INSERT_CONTACT = complaint_contact.insert()
INSERT_MESSAGE = complaint_message.insert()
RECENT_COMPLAINTS = (
    sa.select(complaint.c.id)
    .join(complaint_contact, complaint_contact.c.complaint_id == complaint.c.id)
    .where(
        sa.or_(
            complaint_contact.c.phone_index == sa.bindparam("phone_index"),
            complaint_contact.c.email_index == sa.bindparam("email_index"),
        ),
        complaint.c.received_at >= sa.bindparam("since"),
    )
    .order_by(complaint.c.received_at.desc())
    .limit(50)
)
_CLAIM = pg_insert(idempotency_key)
CLAIM_KEY = _CLAIM.on_conflict_do_nothing().returning(idempotency_key.c.key)
# Automatic keys only guard a short window; an older one is free to reuse.
CLAIM_EXPIRED_OR_NEW_KEY = _CLAIM.on_conflict_do_update(
    index_elements=[idempotency_key.c.credential, idempotency_key.c.key],
    set_={
        name: _CLAIM.excluded[name]
        for name in ("request_hash", "complaint_id", "response", "created_at")
    },
    where=idempotency_key.c.created_at < sa.bindparam("reuse_before"),
).returning(idempotency_key.c.key)


@dataclass
class IntakeContext:
    """What the use cases need besides the session."""

    settings: IntakeSettings
    outbox: Outbox
    audit: AuditLog
    cipher: FieldCipher
    classifiers: ClassifierCache


class ClassifierCache:
    """The classifier of the newest rule set, rebuilt when an operator saves new rules."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], refresh_seconds: float):
        self._session_factory = session_factory
        self._refresh_seconds = refresh_seconds
        self._checked_at = float("-inf")
        self._version = 0
        self._classifier = Classifier(load_default_rules())

    async def current(self) -> tuple[int, Classifier]:
        """The newest rule set's version and classifier (version 0: the shipped defaults)."""
        now = time.monotonic()
        if now - self._checked_at >= self._refresh_seconds:
            self._checked_at = now
            async with self._session_factory() as session:
                row = (
                    await session.execute(
                        sa.select(classifier_ruleset.c.version, classifier_ruleset.c.rules)
                        .order_by(classifier_ruleset.c.version.desc())
                        .limit(1)
                    )
                ).first()
            if row is not None and row.version != self._version:
                self._classifier = Classifier(ClassifierRules.model_validate(row.rules))
                self._version = row.version
        return self._version, self._classifier

    def invalidate(self) -> None:
        """Check the database on the next call."""
        self._checked_at = float("-inf")


def _request_hash(body: ComplaintCreate) -> str:
    return hashlib.sha256(
        orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


def _classification_data(c: Classification | dict[str, Any]) -> ClassificationData:
    values = c if isinstance(c, dict) else _classification_dict(c)
    return ClassificationData.model_validate(values)


def _classification_dict(c: Classification) -> dict[str, Any]:
    return {
        "category": c.category,
        "severity": c.severity,
        "urgency": c.urgency,
        "risk_flags": sorted(c.risk_flags),
        "customer_tier": c.customer_tier,
        "impact": c.impact,
        "emotion": c.emotion,
    }


async def submit_complaint(
    body: ComplaintCreate,
    *,
    idempotency: str | None,
    principal: Principal,
    context: IntakeContext,
    db_session: AsyncSession,
) -> tuple[ComplaintCreated, bool]:
    """Record a complaint, classify it and enqueue its events; returns (result, replayed)."""
    settings, cipher = context.settings, context.cipher
    phone_index = cipher.blind_index("phone", body.customer.phone)
    email_index = cipher.blind_index("email", body.customer.email)
    request_hash = _request_hash(body)
    if idempotency is None and settings.duplicate_window_minutes:
        # A double click or a frontend retry without a key: same customer, channel and text.
        fingerprint = hashlib.sha256(
            b"|".join(
                [
                    phone_index or b"",
                    email_index or b"",
                    body.channel.encode(),
                    " ".join(body.description.split()).encode(),
                ]
            )
        ).hexdigest()
        idempotency = f"auto:{fingerprint}"
    complaint_id = uuid.uuid4()
    received_at = datetime.now(UTC)
    contact_at = body.contact_at or received_at
    customer_index = (
        phone_index or email_index or cipher.blind_index("address", body.customer.address)
    )
    customer_ref = base64.b32encode(customer_index[:15]).decode().lower()
    related = await _recent_complaints(
        phone_index,
        email_index,
        since=received_at - timedelta(days=settings.repeat_window_days),
        db_session=db_session,
    )
    version, classifier = await context.classifiers.current()
    result = classifier.classify(
        ComplaintFacts(
            description=body.description,
            channel=body.channel,
            customer_tier=body.customer.tier,
            emotion=body.emotion,
            requested_remedies=list(body.requested_remedies),
            amount=body.amount,
            product_ref=body.product_ref,
            subject_staff=body.subject_staff_ref,
            subject_unit=body.subject_unit,
            affected_customers=body.affected_customers,
            recent_complaints_by_customer=len(related),
        )
    )
    classification = _classification_dict(result)
    ruleset_version = f"{version}:{result.ruleset_version}"
    status = "resolved_on_first_contact" if body.resolved_on_first_contact else "received"
    late = model.recorded_late(
        contact_at,
        received_at,
        allowed=timedelta(minutes=settings.late_record_after_minutes),
    )
    tracking_code = model.new_tracking_code()
    created = ComplaintCreated(
        id=complaint_id,
        tracking_code=tracking_code,
        status=status,
        received_at=received_at,
        contact_at=contact_at,
        recorded_late=late,
        classification=ClassificationRead(**classification),
        explanation=result.explanation,
        related_complaint_ids=related,
    )
    if idempotency is not None:
        # Claimed with the full answer, so a replay never sees a half-made record.
        replay = await _claim_idempotency_key(
            principal,
            idempotency,
            request_hash,
            created,
            context=context,
            db_session=db_session,
        )
        if replay is not None:
            return replay, True
    await db_session.execute(
        INSERT_COMPLAINT,
        dict(
            id=complaint_id,
            tracking_code=tracking_code,
            channel=body.channel,
            contact_at=contact_at,
            received_at=received_at,
            recorded_late=late,
            customer_ref=customer_ref,
            customer_tier=body.customer.tier,
            description=body.description,
            requested_remedies=list(body.requested_remedies),
            product_ref=body.product_ref,
            product_line=body.product_line,
            region=body.region,
            order_ref=body.order_ref,
            amount=body.amount,
            currency=body.currency,
            subject_staff_ref=body.subject_staff_ref,
            subject_unit=body.subject_unit,
            reported_emotion=body.emotion,
            affected_customers=body.affected_customers,
            tags=list(body.tags),
            resolved_on_first_contact=body.resolved_on_first_contact,
            first_contact_resolution=body.first_contact_resolution,
            related_complaint_ids=related,
            auto_classification=classification,
            classification_explanation=result.explanation,
            ruleset_version=ruleset_version,
            category=result.category,
            severity=result.severity,
            urgency=result.urgency,
            status=status,
            status_changed_at=received_at,
            created_by=principal.actor,
        ),
    )
    row_id = str(complaint_id)
    customer = body.customer
    await db_session.execute(
        INSERT_CONTACT,
        dict(
            complaint_id=complaint_id,
            key_id=cipher.active_key_id,
            name_ct=cipher.encrypt(customer.name, row_id=row_id, field="name"),
            phone_ct=cipher.encrypt(customer.phone, row_id=row_id, field="phone"),
            email_ct=cipher.encrypt(customer.email, row_id=row_id, field="email"),
            address_ct=cipher.encrypt(customer.address, row_id=row_id, field="address"),
            phone_index=phone_index,
            email_index=email_index,
            preferred_contact=customer.preferred_contact,
        ),
    )
    if body.evidence:
        await db_session.execute(
            INSERT_MESSAGE,
            dict(
                id=uuid.uuid4(),
                complaint_id=complaint_id,
                channel=body.channel,
                body=None,
                evidence=[e.model_dump(mode="json") for e in body.evidence],
                added_at=received_at,
                added_by=principal.actor,
            ),
        )
    contact_url = f"{settings.public_base_url}/v1/complaints/{complaint_id}?include=contact"
    await context.outbox.enqueue_many(
        db_session,
        [
            (
                ComplaintReceived(
                    complaint_id=complaint_id,
                    tracking_code=tracking_code,
                    channel=body.channel,
                    contact_at=contact_at,
                    received_at=received_at,
                    customer_ref=customer_ref,
                    customer_tier=body.customer.tier,
                    product_ref=body.product_ref,
                    product_line=body.product_line,
                    region=body.region,
                    order_ref=body.order_ref,
                    amount=body.amount,
                    requested_remedies=list(body.requested_remedies),
                    subject_staff_ref=body.subject_staff_ref,
                    subject_unit=body.subject_unit,
                    resolved_on_first_contact=body.resolved_on_first_contact,
                    related_complaint_ids=[str(r) for r in related],
                    tags=list(body.tags),
                    contact_details_url=contact_url,
                ),
                None,
            ),
            (
                ComplaintClassified(
                    complaint_id=complaint_id,
                    classification=_classification_data(classification),
                    explanation=result.explanation,
                    ruleset_version=ruleset_version,
                ),
                None,
            ),
        ],
    )
    return created, False


async def _claim_idempotency_key(
    principal: Principal,
    key: str,
    request_hash: str,
    created: ComplaintCreated,
    *,
    context: IntakeContext,
    db_session: AsyncSession,
) -> ComplaintCreated | None:
    """Reserve the key with this request's answer, or return the answer of its first use."""
    row = {
        "credential": principal.key_id,
        "key": key,
        "request_hash": request_hash,
        "complaint_id": created.id,
        "response": created.model_dump(mode="json"),
    }
    if key.startswith("auto:"):
        window = timedelta(minutes=context.settings.duplicate_window_minutes)
        row["reuse_before"] = datetime.now(UTC) - window
        claimed = (await db_session.execute(CLAIM_EXPIRED_OR_NEW_KEY, row)).first()
    else:
        claimed = (await db_session.execute(CLAIM_KEY, row)).first()
    if claimed is not None:
        return None
    stored = (
        await db_session.execute(
            sa.select(idempotency_key.c.request_hash, idempotency_key.c.response).where(
                idempotency_key.c.credential == principal.key_id, idempotency_key.c.key == key
            )
        )
    ).one()
    if stored.request_hash != request_hash:
        if key.startswith("auto:"):
            return None  # same text, other details: a new complaint, unguarded
        raise Conflict(
            "this Idempotency-Key was already used with a different request body",
            field="Idempotency-Key",
        )
    return ComplaintCreated.model_validate(stored.response)


async def _recent_complaints(
    phone_index: bytes | None,
    email_index: bytes | None,
    *,
    since: datetime,
    db_session: AsyncSession,
) -> list[uuid.UUID]:
    """Complaints by the same customer (same phone or email) since a time."""
    if not (phone_index or email_index):
        return []
    rows = await db_session.execute(
        RECENT_COMPLAINTS,
        {"phone_index": phone_index, "email_index": email_index, "since": since},
    )
    return list(rows.scalars())


def _effective(row: Any) -> dict[str, Any]:
    return {**row.auto_classification, **(row.manual_classification or {})}


async def _load(
    complaint_id: uuid.UUID,
    principal: Principal,
    *,
    db_session: AsyncSession,
    for_update: bool = False,
) -> Any:
    query = sa.select(complaint).where(complaint.c.id == complaint_id)
    if for_update:
        query = query.with_for_update()
    row = (await db_session.execute(query)).first()
    # Department-bound callers see only complaints routed to their department.
    if row is None or not principal.may_see_department(row.department or ""):
        raise NotFound(f"no complaint {complaint_id}", field="complaint_id")
    return row


def _read_model(row: Any, contact: ContactRead | None) -> ComplaintRead:
    return ComplaintRead(
        id=row.id,
        tracking_code=row.tracking_code,
        channel=row.channel,
        status=row.status,
        department=row.department,
        contact_at=row.contact_at,
        received_at=row.received_at,
        recorded_late=row.recorded_late,
        customer_ref=row.customer_ref,
        customer_tier=row.customer_tier,
        description=row.description,
        requested_remedies=row.requested_remedies,
        product_ref=row.product_ref,
        product_line=row.product_line,
        region=row.region,
        order_ref=row.order_ref,
        amount=row.amount,
        currency=row.currency,
        subject_staff_ref=row.subject_staff_ref,
        subject_unit=row.subject_unit,
        affected_customers=row.affected_customers,
        tags=row.tags,
        resolved_on_first_contact=row.resolved_on_first_contact,
        first_contact_resolution=row.first_contact_resolution,
        related_complaint_ids=row.related_complaint_ids,
        classification=ClassificationRead(**_effective(row)),
        automatic_classification=ClassificationRead(**row.auto_classification),
        classification_explanation=row.classification_explanation,
        ruleset_version=row.ruleset_version,
        manual_classification=row.manual_classification,
        due_dates=row.due_dates,
        contact=contact,
        anonymized=row.anonymized_at is not None,
    )


async def _contact(
    complaint_id: uuid.UUID,
    *,
    reveal: bool,
    context: IntakeContext,
    db_session: AsyncSession,
) -> ContactRead | None:
    row = (
        await db_session.execute(
            sa.select(complaint_contact).where(complaint_contact.c.complaint_id == complaint_id)
        )
    ).first()
    if row is None:
        return None
    values = {
        name: context.cipher.decrypt(
            getattr(row, f"{name}_ct"),
            key_id=row.key_id,
            row_id=str(complaint_id),
            field=name,
        )
        for name in PII_FIELDS
    }
    if not reveal:
        values = {
            "name": model.mask_name(values["name"]),
            "phone": model.mask_phone(values["phone"]),
            "email": model.mask_email(values["email"]),
            "address": model.mask_address(values["address"]),
        }
    return ContactRead(masked=not reveal, preferred_contact=row.preferred_contact, **values)


async def get_complaint(
    complaint_id: uuid.UUID,
    *,
    include_contact: bool,
    principal: Principal,
    context: IntakeContext,
    db_session: AsyncSession,
) -> ComplaintRead:
    """One complaint; contact details in clear only for callers with pii:read (audited)."""
    row = await _load(complaint_id, principal, db_session=db_session)
    contact = None
    if include_contact:
        reveal = principal.can("pii:read")
        contact = await _contact(
            complaint_id, reveal=reveal, context=context, db_session=db_session
        )
        if reveal:
            await context.audit.record(
                db_session,
                principal,
                "pii.read",
                "complaint",
                str(complaint_id),
                complaint_id=complaint_id,
                details={"fields": list(PII_FIELDS)},
            )
    return _read_model(row, contact)


async def list_complaints(
    *,
    filters: dict[str, Any],
    customer_phone: str | None,
    customer_email: str | None,
    cursor: str | None,
    limit: int,
    principal: Principal,
    context: IntakeContext,
    db_session: AsyncSession,
) -> tuple[list[ComplaintRead], str | None]:
    """Complaints newest first, filtered, one keyset page at a time."""
    query = sa.select(complaint)
    for column in ("channel", "category", "severity", "urgency", "status", "department"):
        if filters.get(column):
            query = query.where(complaint.c[column] == filters[column])
    if filters.get("received_from"):
        query = query.where(complaint.c.received_at >= filters["received_from"])
    if filters.get("received_to"):
        query = query.where(complaint.c.received_at < filters["received_to"])
    if principal.role in DEPARTMENT_ROLES:
        query = query.where(complaint.c.department == principal.department)
    if customer_phone or customer_email:
        indexes = []
        if customer_phone:
            indexes.append(
                complaint_contact.c.phone_index
                == context.cipher.blind_index("phone", customer_phone)
            )
        if customer_email:
            indexes.append(
                complaint_contact.c.email_index
                == context.cipher.blind_index("email", customer_email)
            )
        query = query.join(complaint_contact, complaint_contact.c.complaint_id == complaint.c.id)
        query = query.where(sa.or_(*indexes))
    if cursor:
        received_at, last_id = decode_cursor(cursor, datetime, uuid.UUID)
        query = query.where(
            sa.tuple_(complaint.c.received_at, complaint.c.id) < sa.tuple_(received_at, last_id)
        )
    query = query.order_by(complaint.c.received_at.desc(), complaint.c.id.desc()).limit(limit + 1)
    rows = list(await db_session.execute(query))
    next_cursor = (
        encode_cursor(rows[limit - 1].received_at, rows[limit - 1].id)
        if len(rows) > limit
        else None
    )
    return [_read_model(row, None) for row in rows[:limit]], next_cursor


async def add_message(
    complaint_id: uuid.UUID,
    body: MessageCreate,
    *,
    principal: Principal,
    context: IntakeContext,
    db_session: AsyncSession,
) -> MessageRead:
    """Store a further customer message and tell the other services."""
    await _load(complaint_id, principal, db_session=db_session, for_update=True)
    message_id, added_at = uuid.uuid4(), datetime.now(UTC)
    evidence = [e.model_dump(mode="json") for e in body.evidence]
    await db_session.execute(
        INSERT_MESSAGE,
        dict(
            id=message_id,
            complaint_id=complaint_id,
            channel=body.channel,
            body=body.body,
            evidence=evidence,
            added_at=added_at,
            added_by=principal.actor,
        ),
    )
    await context.outbox.enqueue(
        db_session,
        CustomerMessageAdded(
            complaint_id=complaint_id,
            message_id=str(message_id),
            channel=body.channel,
            evidence_count=len(evidence),
            added_at=added_at,
        ),
    )
    return MessageRead(
        id=message_id,
        complaint_id=complaint_id,
        channel=body.channel,
        body=body.body,
        evidence=evidence,
        added_at=added_at,
    )


async def list_messages(
    complaint_id: uuid.UUID,
    *,
    principal: Principal,
    db_session: AsyncSession,
) -> list[MessageRead]:
    """A complaint's messages, oldest first."""
    await _load(complaint_id, principal, db_session=db_session)
    rows = await db_session.execute(
        sa.select(complaint_message)
        .where(complaint_message.c.complaint_id == complaint_id)
        .order_by(complaint_message.c.added_at)
    )
    return [
        MessageRead(
            id=r.id,
            complaint_id=r.complaint_id,
            channel=r.channel,
            body=r.body,
            evidence=r.evidence,
            added_at=r.added_at,
        )
        for r in rows
    ]


async def correct_classification(
    complaint_id: uuid.UUID,
    body: ClassificationUpdate,
    *,
    principal: Principal,
    context: IntakeContext,
    db_session: AsyncSession,
) -> ComplaintRead:
    """Store a person's correction beside the automatic result and announce it."""
    row = await _load(complaint_id, principal, db_session=db_session, for_update=True)
    previous = _effective(row)
    manual = dict(row.manual_classification or {})
    changes = body.model_dump(exclude={"reason"}, exclude_none=True)
    if "risk_flags" in changes:
        changes["risk_flags"] = sorted(set(changes["risk_flags"]))
    manual.update(changes)
    effective = {**row.auto_classification, **manual}
    if effective == previous:
        raise Conflict("the correction changes nothing", field="classification")
    now = datetime.now(UTC)
    await db_session.execute(
        complaint.update()
        .where(complaint.c.id == complaint_id)
        .values(
            manual_classification=manual,
            manual_classified_by=principal.actor,
            manual_classification_reason=body.reason,
            manual_classified_at=now,
            category=effective["category"],
            severity=effective["severity"],
            urgency=effective["urgency"],
        )
    )
    await context.outbox.enqueue(
        db_session,
        ComplaintReclassified(
            complaint_id=complaint_id,
            classification=_classification_data(effective),
            previous=_classification_data(previous),
            reason=body.reason,
            corrected_by=principal.actor,
        ),
    )
    await context.audit.record(
        db_session,
        principal,
        "classification.correct",
        "complaint",
        str(complaint_id),
        complaint_id=complaint_id,
        details={"changes": changes, "reason": body.reason},
    )
    row = await _load(complaint_id, principal, db_session=db_session)
    return _read_model(row, None)


async def track(tracking_code: str, *, db_session: AsyncSession) -> TrackingRead:
    """What the customer may see of their complaint."""
    row = (
        await db_session.execute(
            sa.select(
                complaint.c.tracking_code,
                complaint.c.status,
                complaint.c.received_at,
                complaint.c.due_dates,
            ).where(complaint.c.tracking_code == tracking_code.strip().upper())
        )
    ).first()
    if row is None:
        raise NotFound("no complaint with this tracking code", field="tracking_code")
    return TrackingRead(
        tracking_code=row.tracking_code,
        status=row.status,
        next_step=model.CUSTOMER_NEXT_STEP.get(row.status, "We are working on your complaint."),
        received_at=row.received_at,
        due_dates=row.due_dates,
    )


async def anonymize_customer(
    body: AnonymizeRequest,
    *,
    principal: Principal,
    context: IntakeContext,
    db_session: AsyncSession,
) -> list[uuid.UUID]:
    """Erase a customer's personal data from every complaint, keeping the statistics."""
    conditions = []
    if body.phone:
        conditions.append(
            complaint_contact.c.phone_index == context.cipher.blind_index("phone", body.phone)
        )
    if body.email:
        conditions.append(
            complaint_contact.c.email_index == context.cipher.blind_index("email", body.email)
        )
    ids = list(
        (
            await db_session.execute(
                sa.select(complaint_contact.c.complaint_id)
                .where(sa.or_(*conditions))
                .with_for_update()
            )
        ).scalars()
    )
    if not ids:
        raise NotFound("no complaint of this customer", field="phone" if body.phone else "email")
    now = datetime.now(UTC)
    await db_session.execute(
        complaint_contact.update()
        .where(complaint_contact.c.complaint_id.in_(ids))
        .values(
            name_ct=None,
            phone_ct=None,
            email_ct=None,
            address_ct=None,
            phone_index=None,
            email_index=None,
            preferred_contact=None,
        )
    )
    await db_session.execute(
        complaint.update()
        .where(complaint.c.id.in_(ids))
        .values(
            anonymized_at=now,
            description="[anonymised on the customer's request]",
            first_contact_resolution=None,
        )
    )
    await context.outbox.enqueue_many(
        db_session,
        [(ComplaintAnonymized(complaint_id=cid, anonymized_at=now), None) for cid in ids],
    )
    await context.audit.record(
        db_session,
        principal,
        "customer.anonymize",
        "customer",
        None,
        details={"complaints": [str(cid) for cid in ids], "reason": body.reason},
    )
    return ids


async def save_rules(
    rules: ClassifierRules,
    *,
    note: str | None,
    principal: Principal,
    context: IntakeContext,
    db_session: AsyncSession,
) -> int:
    """Store a new classifier rule set version; the classifiers pick it up on their next check."""
    latest = (
        await db_session.execute(
            sa.select(sa.func.coalesce(sa.func.max(classifier_ruleset.c.version), 0))
        )
    ).scalar_one()
    version = latest + 1
    try:
        await db_session.execute(
            classifier_ruleset.insert().values(
                version=version,
                rules=rules.model_dump(mode="json"),
                created_by=principal.actor,
                note=note,
            )
        )
    except IntegrityError as exc:
        raise Conflict("another rule set was saved at the same time; retry", field="rules") from exc
    await context.audit.record(
        db_session,
        principal,
        "classifier_rules.save",
        "classifier_ruleset",
        str(version),
        details={"note": note},
    )
    return version

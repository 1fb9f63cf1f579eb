"""The complaint aggregate: what was recorded, how it was classified and what happened since.

Every change goes through a method of :class:`Complaint`, which records the event the change
causes; the unit of work publishes them (``pull_messages``) with the transaction that stores
the complaint. Personal data (:class:`Customer`) lives on the aggregate only between
submission and storage, never in its events.
"""

from __future__ import annotations

import base64
import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from tousu_shared.contracts import Event
from tousu_shared.contracts.complaint import (
    ClassificationData,
    ComplaintAnonymized,
    ComplaintClassified,
    ComplaintReceived,
    ComplaintReclassified,
    CustomerMessageAdded,
)
from tousu_shared.contracts.vocabulary import Channel, CustomerTier, Emotion, Remedy
from tousu_shared.errors import Conflict
from tousu_shared.uow import OutgoingMessage

from tousu_intake.domain import model, tracking
from tousu_intake.domain.classification import (
    Classification,
    ComplaintFacts,
    without_customer_history,
)


@dataclass(frozen=True)
class ComplaintDetails:
    """What the submitter tells about the complaint: its own fields, listed once.

    The table's columns, the received event and the read model take these by name.
    """

    channel: Channel
    description: str
    requested_remedies: Sequence[Remedy] = ()
    product_ref: str | None = None
    product_line: str | None = None
    region: str | None = None
    order_ref: str | None = None
    amount: Decimal | None = None
    currency: str = "CNY"
    subject_staff_ref: str | None = None
    subject_unit: str | None = None
    emotion: Emotion | None = None
    affected_customers: int | None = None
    tags: Sequence[str] = ()
    resolved_on_first_contact: bool = False
    first_contact_resolution: str | None = None


DETAIL_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ComplaintDetails))
# The details other services may know: everything but the customer's own words.
_RECEIVED_DETAILS = tuple(name for name in DETAIL_FIELDS if name in ComplaintReceived.model_fields)
ANONYMISED_DESCRIPTION = "[anonymised on the customer's request]"
RETENTION_DESCRIPTION = "[anonymised: the retention period ended]"
# What an anonymised complaint names as its customer: the pseudonym goes with the person.
ANONYMISED_CUSTOMER_REF = "anonymised"


@dataclass(frozen=True)
class Customer:
    """Who complains. Every field but the tier is personal data: stored encrypted."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    preferred_contact: str | None = None
    tier: CustomerTier = CustomerTier.REGULAR

    def masked(self) -> Customer:
        """What a reader without the pii:read scope may see."""
        return dataclasses.replace(
            self,
            name=model.mask_name(self.name),
            phone=model.mask_phone(self.phone),
            email=model.mask_email(self.email),
            address=model.mask_address(self.address),
        )


PII_FIELDS = ("name", "phone", "email", "address")


@dataclass(frozen=True)
class CustomerKeys:
    """Blind indexes (keyed hashes) of the customer's contacts: they find, never reveal."""

    phone: bytes | None = None
    email: bytes | None = None
    address: bytes | None = None

    @property
    def findable(self) -> bool:
        """Whether other complaints of this customer can be found (by phone or email)."""
        return bool(self.phone or self.email)

    @property
    def customer_ref(self) -> str:
        """The pseudonymous customer id events carry instead of a phone or email."""
        index = self.phone or self.email or self.address
        if index is None:
            raise ValueError("a customer needs a phone, an email or an address")
        return base64.b32encode(index[:15]).decode().lower()


@dataclass(frozen=True)
class Evidence:
    """A reference to evidence stored elsewhere (chat log, email, image…)."""

    type: str
    uri: str
    size_bytes: int
    checksum: str
    description: str | None = None


@dataclass(frozen=True)
class Message:
    """A customer message (or the evidence sent with the complaint)."""

    id: uuid.UUID
    complaint_id: uuid.UUID
    channel: Channel
    body: str | None
    evidence: Sequence[Evidence]
    added_at: datetime
    added_by: str


# Every classification dimension, and the ones a person may correct.
DIMENSIONS = ("category", "severity", "urgency", "risk_flags", "customer_tier", "impact", "emotion")
CORRECTABLE = ("category", "severity", "urgency", "risk_flags")


def dimensions_of(result: Classification) -> dict[str, Any]:
    """A classifier result's dimensions as stored (plain JSON values)."""
    values = result.model_dump(mode="json", include=set(DIMENSIONS))
    values["risk_flags"] = sorted(values["risk_flags"])
    return values


def classifier_facts(details: ComplaintDetails, tier: CustomerTier, recent: int) -> ComplaintFacts:
    """What the classifier is told about a new complaint."""
    return ComplaintFacts(
        description=details.description,
        channel=details.channel,
        customer_tier=tier,
        emotion=details.emotion,
        requested_remedies=tuple(details.requested_remedies),
        amount=details.amount,
        product_ref=details.product_ref,
        subject_staff=details.subject_staff_ref,
        subject_unit=details.subject_unit,
        affected_customers=details.affected_customers,
        recent_complaints_by_customer=recent,
    )


@dataclass(eq=False)
class Complaint:
    """One complaint. Its stored fields are, by name, the columns of ``intake.complaint``."""

    id: uuid.UUID
    tracking_code: str
    details: ComplaintDetails
    contact_at: datetime
    received_at: datetime
    recorded_late: bool
    customer_ref: str
    customer_tier: CustomerTier
    related_complaint_ids: list[uuid.UUID]
    # The automatic result is never overwritten; a person's correction sits beside it.
    auto_classification: dict[str, Any]
    classification_explanation: dict[str, Any]
    ruleset_version: str
    model_version: str | None
    needs_review: bool
    status: str
    status_changed_at: datetime
    created_by: str
    department: str | None = None
    due_dates: dict[str, Any] = field(default_factory=dict)
    manual_classification: dict[str, Any] | None = None
    manual_classified_by: str | None = None
    manual_classification_reason: str | None = None
    manual_classified_at: datetime | None = None
    anonymized_at: datetime | None = None
    # Personal data and its blind indexes: present from submission until stored.
    customer: Customer | None = None
    customer_keys: CustomerKeys | None = None
    _events: list[OutgoingMessage] = field(default_factory=list, init=False, repr=False)
    _new_messages: list[Message] = field(default_factory=list, init=False, repr=False)
    _erase_contact: bool = field(default=False, init=False, repr=False)

    # -- creation ---------------------------------------------------------------------------

    @classmethod
    def submit(
        cls,
        *,
        complaint_id: uuid.UUID,
        details: ComplaintDetails,
        customer: Customer,
        keys: CustomerKeys,
        evidence: Sequence[Evidence],
        contact_at: datetime | None,
        received_at: datetime,
        classification: Classification,
        ruleset_version: str,
        related: list[uuid.UUID],
        created_by: str,
        late_after: timedelta,
        contact_details_url: str,
    ) -> Complaint:
        """A new complaint, classified; records ComplaintReceived and ComplaintClassified."""
        contact_at = contact_at or received_at
        complaint = cls(
            id=complaint_id,
            tracking_code=model.new_tracking_code(),
            details=details,
            contact_at=contact_at,
            received_at=received_at,
            recorded_late=model.recorded_late(contact_at, received_at, allowed=late_after),
            customer_ref=keys.customer_ref,
            customer_tier=customer.tier,
            related_complaint_ids=related,
            auto_classification=dimensions_of(classification),
            classification_explanation=classification.explanation,
            ruleset_version=ruleset_version,
            model_version=classification.model_version,
            needs_review=classification.needs_review,
            status="resolved_on_first_contact" if details.resolved_on_first_contact else "received",
            status_changed_at=received_at,
            created_by=created_by,
            customer=customer,
            customer_keys=keys,
        )
        if evidence:
            complaint._new_messages.append(
                Message(
                    id=uuid.uuid4(),
                    complaint_id=complaint_id,
                    channel=details.channel,
                    body=None,
                    evidence=tuple(evidence),
                    added_at=received_at,
                    added_by=created_by,
                )
            )
        complaint._record(
            ComplaintReceived(
                complaint_id=complaint_id,
                tracking_code=complaint.tracking_code,
                contact_at=contact_at,
                received_at=received_at,
                customer_ref=complaint.customer_ref,
                customer_tier=customer.tier,
                related_complaint_ids=[str(r) for r in related],
                contact_details_url=contact_details_url,
                **{name: getattr(details, name) for name in _RECEIVED_DETAILS},
            )
        )
        complaint._record(
            ComplaintClassified(
                complaint_id=complaint_id,
                classification=ClassificationData.model_validate(complaint.auto_classification),
                explanation=classification.explanation,
                ruleset_version=ruleset_version,
                model_version=classification.model_version,
                needs_review=classification.needs_review,
                confidence=classification.confidence,
            )
        )
        return complaint

    def receipt(
        self, related: Sequence[uuid.UUID], *, with_history: bool = False
    ) -> dict[str, Any]:
        """The answer to the submission, in JSON form (a replay answers with the stored one).

        ``related`` is what the submitter may see of the customer's other complaints (the
        service layer decides it), never more than ``related_complaint_ids``;
        ``with_history`` whether the explanation may say how often the customer complained.
        """
        answer = {
            "id": self.id,
            "tracking_code": self.tracking_code,
            "status": self.status,
            "received_at": self.received_at,
            "contact_at": self.contact_at,
            "recorded_late": self.recorded_late,
            "classification": self.classification,
            "explanation": self.explanation_for(with_history=with_history),
            "related_complaint_ids": list(related),
            "needs_review": self.needs_review,
            "model_version": self.model_version,
        }
        # default=str: the database driver's own UUID type, Decimals in explanations.
        loaded: dict[str, Any] = orjson.loads(orjson.dumps(answer, default=str))
        return loaded

    # -- classification -----------------------------------------------------------------------

    def explanation_for(self, *, with_history: bool) -> dict[str, Any]:
        """The classification's explanation, without the customer's history unless allowed."""
        if with_history:
            return self.classification_explanation
        return without_customer_history(self.classification_explanation)

    @property
    def classification(self) -> dict[str, Any]:
        """The effective classification: a person's correction over the automatic result."""
        return {**self.auto_classification, **(self.manual_classification or {})}

    @property
    def category(self) -> str:
        return str(self.classification["category"])

    @property
    def severity(self) -> str:
        return str(self.classification["severity"])

    @property
    def urgency(self) -> str:
        return str(self.classification["urgency"])

    def correct_classification(
        self, changes: Mapping[str, Any], *, reason: str, by: str, at: datetime
    ) -> None:
        """Keep a person's correction beside the automatic result; records the change.

        A correction is the review of a complaint the classifier was unsure about, so it
        leaves the review queue.
        """
        unknown = set(changes) - set(CORRECTABLE)
        if unknown:
            raise ValueError(f"not correctable: {sorted(unknown)}")
        normalised = {
            name: sorted({str(v) for v in value}) if name == "risk_flags" else str(value)
            for name, value in changes.items()
        }
        previous = self.classification
        manual = {**(self.manual_classification or {}), **normalised}
        if {**self.auto_classification, **manual} == previous:
            raise Conflict(
                "the correction changes nothing",
                field="classification",
                current={name: previous[name] for name in CORRECTABLE},
                allowed_actions=["change at least one of " + ", ".join(CORRECTABLE)],
            )
        self.manual_classification = manual
        self.manual_classified_by = by
        self.manual_classification_reason = reason
        self.manual_classified_at = at
        self.needs_review = False
        self._record(
            ComplaintReclassified(
                complaint_id=self.id,
                classification=ClassificationData.model_validate(self.classification),
                previous=ClassificationData.model_validate(previous),
                reason=reason,
                corrected_by=by,
            )
        )

    # -- messages ------------------------------------------------------------------------------

    def add_message(
        self,
        *,
        channel: Channel,
        body: str | None,
        evidence: Sequence[Evidence],
        by: str,
        at: datetime,
    ) -> Message:
        """A further customer message; records CustomerMessageAdded (without its text)."""
        message = Message(
            id=uuid.uuid4(),
            complaint_id=self.id,
            channel=channel,
            body=body,
            evidence=tuple(evidence),
            added_at=at,
            added_by=by,
        )
        self._new_messages.append(message)
        self._record(
            CustomerMessageAdded(
                complaint_id=self.id,
                message_id=str(message.id),
                channel=channel,
                evidence_count=len(message.evidence),
                added_at=at,
            )
        )
        return message

    def take_new_messages(self) -> list[Message]:
        """Messages added since the complaint was loaded (for the repository to store)."""
        messages, self._new_messages = self._new_messages, []
        return messages

    # -- the case and its deadlines, followed for the tracking page ---------------------------

    def follow_case(self, event: tracking.CaseStatusEvent) -> None:
        """Mirror the case's status and department (tracking, department-bound reads)."""
        self.status = tracking.STATUS_AFTER[type(event)]
        self.department = event.department
        self.status_changed_at = event.occurred_at

    def follow_deadline(self, event: tracking.DeadlineEvent) -> None:
        """Show a milestone's due date as the SLA monitor moves, pauses or ends it."""
        self.due_dates = tracking.due_dates_after(self.due_dates, event)

    @property
    def deadlines(self) -> tracking.Deadlines:
        """Running milestones with their due time, and paused ones."""
        return tracking.Deadlines.of(self.due_dates)

    # -- personal data ---------------------------------------------------------------------------

    def anonymize(self, *, at: datetime, description: str = ANONYMISED_DESCRIPTION) -> None:
        """Erase the customer's personal data, keeping the statistics; records the erasure.

        Goes: the contact (name, phone, email, address and their blind indexes), the free
        text (description, first-contact resolution, the messages' bodies and evidence
        descriptions, erased by the repository on save), the order reference and the links
        to the customer's other complaints, which would name them again. Stays: channel,
        dates, classification, product, region, amount, department, status, due dates.
        """
        self.details = dataclasses.replace(
            self.details,
            description=description,
            first_contact_resolution=None,
            order_ref=None,
        )
        self.customer_ref = ANONYMISED_CUSTOMER_REF
        self.related_complaint_ids = []
        self.anonymized_at = at
        self.customer = None
        self.customer_keys = None
        self._erase_contact = True
        self._record(ComplaintAnonymized(complaint_id=self.id, anonymized_at=at))

    @property
    def contact_erased(self) -> bool:
        """Whether the stored contact details and the messages' free text must be erased when
        the complaint is saved."""
        return self._erase_contact

    # -- events ----------------------------------------------------------------------------------

    def _record(self, event: Event) -> None:
        self._events.append(OutgoingMessage(event))

    def pull_messages(self) -> list[OutgoingMessage]:
        """Hand over the events recorded so far, oldest first."""
        events, self._events = self._events, []
        return events

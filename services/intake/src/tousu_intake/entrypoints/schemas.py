"""Request and response bodies of the intake API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from tousu_shared.contracts import vocabulary
from tousu_shared.schemas import ApiModel

from tousu_intake.domain.model import normalise_email, normalise_phone

EvidenceType = Literal["chat_log", "email", "image", "audio", "video", "document", "other"]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)
]
# Normalised on the way in, so equal contacts find each other (blind indexes).
Phone = Annotated[str, StringConstraints(max_length=32), AfterValidator(normalise_phone)]
Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(normalise_email)]
CLOCK_SKEW = timedelta(minutes=2)


class _Strict(ApiModel):
    """A request body: unknown fields and NUL characters refused (ApiModel), text trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerCreate(_Strict):
    """Who complains; every field here is personal data and is stored encrypted."""

    name: ShortText | None = None
    phone: Phone | None = None
    email: Email | None = None
    address: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    preferred_contact: Literal["phone", "email", "letter", "app"] | None = None
    tier: vocabulary.CustomerTier = vocabulary.CustomerTier.REGULAR

    @model_validator(mode="after")
    def _reachable(self) -> CustomerCreate:
        if not (self.phone or self.email or self.address):
            raise ValueError("give at least one of phone, email or address to reach the customer")
        if self.preferred_contact == "phone" and not self.phone:
            raise ValueError("preferred_contact is phone but no phone was given")
        if self.preferred_contact == "email" and not self.email:
            raise ValueError("preferred_contact is email but no email was given")
        return self


class EvidenceRef(_Strict):
    """A reference to evidence stored elsewhere (chat log, email, image…)."""

    type: EvidenceType
    uri: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    size_bytes: int = Field(gt=0, le=5 * 1024**3)
    checksum: Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
    description: ShortText | None = None


class ComplaintCreate(_Strict):
    """A complaint from any channel."""

    channel: vocabulary.Channel
    contact_at: datetime | None = Field(
        default=None,
        description="when the customer first made contact; defaults to now",
    )
    customer: CustomerCreate
    description: Description
    requested_remedies: list[vocabulary.Remedy] = Field(default_factory=list, max_length=7)
    product_ref: ShortText | None = None
    product_line: ShortText | None = None
    region: ShortText | None = None
    order_ref: ShortText | None = None
    amount: Decimal | None = Field(default=None, ge=0, le=Decimal("1e10"), decimal_places=2)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    subject_staff_ref: ShortText | None = None
    subject_unit: ShortText | None = None
    emotion: vocabulary.Emotion | None = None
    affected_customers: int | None = Field(default=None, ge=1, le=100_000_000)
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=50)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    resolved_on_first_contact: bool = False
    first_contact_resolution: (
        Annotated[str, StringConstraints(min_length=1, max_length=5000)] | None
    ) = None

    @field_validator("contact_at")
    @classmethod
    def _contact_at(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("contact_at needs a time zone, e.g. 2026-11-22T10:00:00+08:00")
        if value > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError("contact_at is in the future")
        if value < datetime.now(UTC) - timedelta(days=366):
            raise ValueError("contact_at is more than a year ago")
        return value

    @model_validator(mode="after")
    def _resolution(self) -> ComplaintCreate:
        if self.resolved_on_first_contact and not self.first_contact_resolution:
            raise ValueError("first_contact_resolution is required when resolved_on_first_contact")
        if self.first_contact_resolution and not self.resolved_on_first_contact:
            raise ValueError(
                "first_contact_resolution given but resolved_on_first_contact is false"
            )
        return self


class ClassificationRead(BaseModel):
    """Every classification dimension."""

    category: vocabulary.Category
    severity: vocabulary.Severity
    urgency: vocabulary.Urgency
    risk_flags: list[vocabulary.RiskFlag]
    customer_tier: vocabulary.CustomerTier
    impact: int
    emotion: vocabulary.Emotion | None


class ComplaintCreated(BaseModel):
    """The answer to a new complaint."""

    id: uuid.UUID
    tracking_code: str
    status: str
    received_at: datetime
    contact_at: datetime
    recorded_late: bool
    classification: ClassificationRead
    explanation: dict[str, Any]
    related_complaint_ids: list[uuid.UUID] = Field(
        description=(
            "the customer's other recent complaints, only with pii:read and only those of "
            "departments the caller may see; empty otherwise (not even a count)"
        )
    )
    # The trained model that contributed (None: rules only); whether a person should look.
    model_version: str | None = None
    needs_review: bool = False


class ContactRead(BaseModel):
    """Contact details, masked unless the caller may read personal data."""

    masked: bool
    name: str | None
    phone: str | None
    email: str | None
    address: str | None
    preferred_contact: str | None


class ComplaintRead(BaseModel):
    """A complaint as staff see it."""

    id: uuid.UUID
    tracking_code: str
    channel: str
    status: str
    department: str | None
    contact_at: datetime
    received_at: datetime
    recorded_late: bool
    customer_ref: str
    customer_tier: str
    description: str
    requested_remedies: list[str]
    product_ref: str | None
    product_line: str | None
    region: str | None
    order_ref: str | None
    amount: Decimal | None
    currency: str | None
    subject_staff_ref: str | None
    subject_unit: str | None
    affected_customers: int | None
    tags: list[str]
    resolved_on_first_contact: bool
    first_contact_resolution: str | None
    related_complaint_ids: list[uuid.UUID]
    classification: ClassificationRead
    automatic_classification: ClassificationRead
    classification_explanation: dict[str, Any]
    ruleset_version: str
    model_version: str | None
    needs_review: bool
    manual_classification: dict[str, Any] | None
    due_dates: dict[str, str]
    paused_milestones: list[str]
    contact: ContactRead | None = None
    anonymized: bool


class ComplaintPage(BaseModel):
    """One page of complaints; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[ComplaintRead]
    next_cursor: str | None


class MessageCreate(_Strict):
    """A further message from the customer, with evidence references."""

    channel: vocabulary.Channel
    body: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
        | None
    ) = None
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _something(self) -> MessageCreate:
        if not self.body and not self.evidence:
            raise ValueError("a message needs a body or evidence")
        return self


class MessageRead(BaseModel):
    """A stored customer message."""

    id: uuid.UUID
    complaint_id: uuid.UUID
    channel: str
    body: str | None
    evidence: list[dict[str, Any]]
    added_at: datetime


class ClassificationUpdate(_Strict):
    """A person's correction; unspecified dimensions keep their current value."""

    category: vocabulary.Category | None = None
    severity: vocabulary.Severity | None = None
    urgency: vocabulary.Urgency | None = None
    risk_flags: list[vocabulary.RiskFlag] | None = None
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000)]

    @model_validator(mode="after")
    def _changes_something(self) -> ClassificationUpdate:
        if all(v is None for v in (self.category, self.severity, self.urgency, self.risk_flags)):
            raise ValueError("give at least one of category, severity, urgency, risk_flags")
        return self


class TrackingRead(BaseModel):
    """What the customer may see: no personal data."""

    tracking_code: str
    status: str
    next_step: str
    received_at: datetime
    # Milestone → when it falls due; a paused milestone (e.g. while we wait for the
    # customer) has no due date and is listed in paused_milestones instead.
    due_dates: dict[str, str]
    paused_milestones: list[str]


class BatchItemResult(BaseModel):
    """The outcome of one item of a batch."""

    index: int
    status: Literal["created", "replayed", "rejected"]
    complaint_id: uuid.UUID | None = None
    tracking_code: str | None = None
    errors: list[dict[str, Any]] | None = None


class BatchResult(BaseModel):
    """Every item's outcome; items are accepted or rejected independently."""

    created: int
    replayed: int
    rejected: int
    results: list[BatchItemResult]


class _CustomerRequest(_Strict):
    """A customer's PIPL request: find them by phone or email; the reason is audited."""

    phone: Phone | None = None
    email: Email | None = None
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000)
    ] = Field(description="why (the customer's request, its reference): audited with the action")

    @model_validator(mode="after")
    def _one(self) -> _CustomerRequest:
        if not (self.phone or self.email):
            raise ValueError("give the customer's phone or email")
        return self


class AnonymizeRequest(_CustomerRequest):
    """A customer's deletion request (PIPL): find them by phone or email."""


class ExportRequest(_CustomerRequest):
    """A customer's request for a copy of their data (PIPL): find them by phone or email."""


class ErasureRead(BaseModel):
    """What an erasure touched."""

    anonymized_complaints: list[uuid.UUID] = Field(
        description="the anonymised complaints the caller may see (a privacy officer: all)"
    )
    anonymized_count: int = Field(description="every complaint anonymised, seen or not")


class RecordElsewhereRead(BaseModel):
    """A part of the complaint's record another service holds (by complaint id, no contact)."""

    service: str
    holds: str
    href: str | None = Field(description="path on that service; None: nothing per customer")


class ExportedComplaintRead(BaseModel):
    """One complaint of the customer: all its fields, the contact in clear, the messages,
    and where the rest of its record (case history, surveys) is held."""

    complaint: ComplaintRead
    status_changed_at: datetime = Field(description="when the case reached its current status")
    messages: list[MessageRead]
    held_elsewhere: list[RecordElsewhereRead]


class CustomerExportRead(BaseModel):
    """Everything intake holds about one customer (PIPL data export)."""

    exported_at: datetime
    complaints: list[ExportedComplaintRead]

"""Events intake publishes on the complaint stream."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from tousu_shared.contracts.base import Event
from tousu_shared.contracts.vocabulary import (
    Category,
    Channel,
    CustomerTier,
    Emotion,
    RiskFlag,
    Severity,
    Urgency,
)


class ClassificationData(BaseModel):
    """Every classification dimension, as carried in events."""

    model_config = ConfigDict(frozen=True)

    category: Category
    severity: Severity
    urgency: Urgency
    risk_flags: list[RiskFlag] = []
    customer_tier: CustomerTier
    impact: int = 1
    emotion: Emotion | None = None


class _ComplaintEvent(Event):
    topic: ClassVar[str] = "complaint.events"


class ComplaintReceived(_ComplaintEvent):
    """A complaint was recorded; deadlines count from ``contact_at``."""

    tracking_code: str
    channel: Channel
    contact_at: datetime
    received_at: datetime
    customer_ref: str  # pseudonymous: the blind index id, never a phone or email
    customer_tier: CustomerTier
    product_ref: str | None = None
    product_line: str | None = None
    region: str | None = None
    order_ref: str | None = None
    amount: Decimal | None = None
    requested_remedies: list[str] = []
    subject_staff_ref: str | None = None
    subject_unit: str | None = None
    resolved_on_first_contact: bool = False
    related_complaint_ids: list[str] = []
    tags: list[str] = []
    contact_details_url: str


class ComplaintClassified(_ComplaintEvent):
    """The automatic classifier's result with its explanation."""

    classification: ClassificationData
    explanation: dict[str, Any]
    ruleset_version: str
    # Appended, optional: the trained model that contributed, the confidence per dimension,
    # and whether a person should review the result.
    model_version: str | None = None
    confidence: dict[str, float] = {}
    needs_review: bool = False


class ComplaintReclassified(_ComplaintEvent):
    """A person corrected the classification; the automatic result is kept beside it."""

    classification: ClassificationData
    previous: ClassificationData
    reason: str
    corrected_by: str


class CustomerMessageAdded(_ComplaintEvent):
    """The customer sent more information or evidence."""

    message_id: str
    channel: Channel
    evidence_count: int = 0
    added_at: datetime


class ComplaintAnonymized(_ComplaintEvent):
    """The customer's personal data was erased on request; statistics are kept."""

    anonymized_at: datetime

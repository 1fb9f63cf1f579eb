"""Value types of the classifier: the facts it reads and the classification it returns."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Category(StrEnum):
    """What the complaint is about (按内容)."""

    PRODUCT_QUALITY = "product_quality"
    SERVICE_ATTITUDE = "service_attitude"
    PRICE_DISPUTE = "price_dispute"
    DELIVERY_DELAY = "delivery_delay"
    AFTER_SALES = "after_sales"
    HANDLING_TIMELINESS = "handling_timeliness"
    INFORMATION_ACCURACY = "information_accuracy"
    POLICY_EXECUTION = "policy_execution"
    OTHER = "other"


class Severity(StrEnum):
    """How grave the complaint is (严重程度); decides the handler level."""

    MINOR = "minor"
    GENERAL = "general"
    SERIOUS = "serious"
    MAJOR = "major"


class Urgency(StrEnum):
    """How fast it must be handled (紧急程度); decides the SLA targets."""

    DEFERRED = "deferred"
    ROUTINE = "routine"
    PRIORITY = "priority"
    IMMEDIATE = "immediate"


class RiskFlag(StrEnum):
    """Risks that force immediate handling."""

    SAFETY = "safety"
    FRAUD = "fraud"
    DATA_LEAK = "data_leak"
    LEGAL = "legal"
    MEDIA = "media"


class Emotion(StrEnum):
    """Customer emotion as recorded at intake."""

    ANGRY = "angry"
    DISAPPOINTED = "disappointed"
    ANXIOUS = "anxious"
    CALM = "calm"


class CustomerTier(StrEnum):
    """Customer tier; VIP raises urgency."""

    VIP = "vip"
    REGULAR = "regular"


class Channel(StrEnum):
    """Intake channel (渠道)."""

    PHONE = "phone"
    EMAIL = "email"
    WEB_FORM = "web_form"
    ONLINE_CHAT = "online_chat"
    SOCIAL_MEDIA = "social_media"
    LETTER = "letter"
    ON_SITE = "on_site"
    SURVEY = "survey"
    APP = "app"


class Remedy(StrEnum):
    """What the customer asks for."""

    REFUND = "refund"
    RETURN = "return"
    REPAIR = "repair"
    COMPENSATION = "compensation"
    APOLOGY = "apology"
    EXPLANATION = "explanation"


# Ordered scales: the index is the step used by "raise one step" rules.
SEVERITY_SCALE: tuple[Severity, ...] = (
    Severity.MINOR,
    Severity.GENERAL,
    Severity.SERIOUS,
    Severity.MAJOR,
)
URGENCY_SCALE: tuple[Urgency, ...] = (
    Urgency.DEFERRED,
    Urgency.ROUTINE,
    Urgency.PRIORITY,
    Urgency.IMMEDIATE,
)
RISK_FLAG_ORDER: tuple[RiskFlag, ...] = tuple(RiskFlag)


class ComplaintFacts(BaseModel):
    """What intake knows about a complaint when it asks for a classification."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str
    channel: Channel
    customer_tier: CustomerTier = CustomerTier.REGULAR
    emotion: Emotion | None = Field(default=None, description="None: infer from the description")
    requested_remedies: tuple[Remedy, ...] = ()
    amount: Decimal | None = Field(default=None, ge=0)
    product_ref: str | None = None
    subject_staff: str | None = None
    subject_unit: str | None = None
    affected_customers: int | None = Field(
        default=None, ge=0, description="estimate; None: infer from text"
    )
    recent_complaints_by_customer: int = Field(
        default=0, ge=0, description="same customer, last 30 days"
    )


class Classification(BaseModel):
    """The automatic classification of one complaint, with the reasons for each dimension."""

    model_config = ConfigDict(frozen=True)

    category: Category
    severity: Severity
    urgency: Urgency
    risk_flags: tuple[RiskFlag, ...]
    customer_tier: CustomerTier
    impact: int
    emotion: Emotion
    explanation: dict[str, Any]
    ruleset_version: str
    # Per dimension (category, severity, urgency, emotion, risk_flags), 0..1.
    confidence: dict[str, float] = Field(default_factory=dict)
    # Some dimension's confidence fell below the review threshold of the rules (policy data).
    needs_review: bool = False
    # The trained model that contributed, if any (the rules' version is ruleset_version).
    model_version: str | None = None

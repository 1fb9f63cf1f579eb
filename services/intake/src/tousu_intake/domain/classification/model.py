"""Value types of the classifier: the facts it reads and the classification it returns.

The vocabularies are the platform's (tousu_shared.contracts.vocabulary), re-exported here so
the classifier's callers keep one import; they are never defined a second time.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from tousu_shared.contracts.vocabulary import (
    SEVERITY_SCALE,
    URGENCY_SCALE,
    Category,
    Channel,
    CustomerTier,
    Emotion,
    Remedy,
    RiskFlag,
    Severity,
    Urgency,
)

__all__ = [
    "RISK_FLAG_ORDER",
    "SEVERITY_SCALE",
    "URGENCY_SCALE",
    "Category",
    "Channel",
    "Classification",
    "ComplaintFacts",
    "CustomerTier",
    "Emotion",
    "Remedy",
    "RiskFlag",
    "Severity",
    "Urgency",
]

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

"""What callers ask intake to do: the commands and queries the API translates its bodies into.

The service layer takes only these, never the HTTP schemas, so a use case reads the same
whether it is called by the API, a batch import or a test.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tousu_shared.contracts.vocabulary import (
    Category,
    Channel,
    RiskFlag,
    Severity,
    Urgency,
)

from tousu_intake.domain.complaint import ComplaintDetails, Customer, Evidence


@dataclass(frozen=True)
class SubmitComplaint:
    """Record a complaint from any channel (a repeat with the same key replays the first)."""

    details: ComplaintDetails
    customer: Customer
    evidence: Sequence[Evidence] = ()
    # When the customer first made contact; None: now.
    contact_at: datetime | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class CorrectClassification:
    """A person's correction; dimensions left None keep their current value."""

    complaint_id: uuid.UUID
    reason: str
    category: Category | None = None
    severity: Severity | None = None
    urgency: Urgency | None = None
    risk_flags: Sequence[RiskFlag] | None = None

    def changes(self) -> dict[str, Any]:
        """The dimensions this correction sets."""
        given = {
            "category": self.category,
            "severity": self.severity,
            "urgency": self.urgency,
            "risk_flags": self.risk_flags,
        }
        return {name: value for name, value in given.items() if value is not None}


@dataclass(frozen=True)
class AddMessage:
    """A further message or evidence from the customer."""

    complaint_id: uuid.UUID
    channel: Channel
    body: str | None = None
    evidence: Sequence[Evidence] = ()


@dataclass(frozen=True)
class AnonymizeCustomer:
    """A customer's deletion request (PIPL), finding them by normalised phone or email."""

    reason: str
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class ExportCustomer:
    """A customer's request for everything held about them (PIPL), by phone or email."""

    reason: str
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class SaveClassifierRules:
    """A new version of the classifier's rules (validated ``ClassifierRules`` as JSON)."""

    rules: dict[str, Any]
    note: str | None = None


@dataclass(frozen=True)
class GetComplaint:
    """One complaint, optionally with the customer's contact details."""

    complaint_id: uuid.UUID
    include_contact: bool = False


@dataclass(frozen=True)
class ComplaintCriteria:
    """What a complaint list is narrowed to (None: not narrowed by that).

    Written once: the list query carries them and the repository's filter applies them.
    """

    channel: Channel | None = None
    category: Category | None = None
    severity: Severity | None = None
    urgency: Urgency | None = None
    status: str | None = None
    department: str | None = None
    needs_review: bool | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None


@dataclass(frozen=True)
class ListComplaints(ComplaintCriteria):
    """Complaints newest first, filtered, one keyset page at a time."""

    # Normalised; searching by them needs the pii:read scope and is audited.
    customer_phone: str | None = None
    customer_email: str | None = None
    cursor: str | None = None
    limit: int = 50

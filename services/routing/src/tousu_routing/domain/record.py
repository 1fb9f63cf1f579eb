"""A case as routing stores it: the aggregate, its complaint's profile and what is unsaved.

The record is what a unit of work tracks: it hands over the case's domain events as the
wire events and topics they are published on (see ``messages``), and the history entries
recorded since it was loaded (for the audit log).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tousu_shared.contracts.complaint import ClassificationData
from tousu_shared.uow import OutgoingMessage

from tousu_routing.domain.case import Case
from tousu_routing.domain.messages import messages_of
from tousu_routing.domain.rules import ComplaintSubject, RoutingFacts
from tousu_routing.domain.workflow import Transition


def classified_fields(classification: ClassificationData) -> dict[str, Any]:
    """The profile fields a complaint's classification decides: set when the case opens,
    replaced together when a person corrects the classification."""
    return {
        "category": classification.category,
        "severity": classification.severity,
        "urgency": classification.urgency,
        "customer_tier": classification.customer_tier,
        "risk_flags": tuple(classification.risk_flags),
    }


@dataclass(frozen=True)
class CaseProfile:
    """What routing keeps about a case's complaint beside the workflow: classification, subject."""

    category: str
    severity: str
    urgency: str
    customer_tier: str
    channel: str
    product_line: str | None
    region: str | None
    risk_flags: tuple[str, ...]
    subject_staff_ref: str | None
    subject_unit: str | None
    contact_details_url: str
    rule_version: int | None = None

    @property
    def subject(self) -> ComplaintSubject:
        """The staff member and unit the complaint is about."""
        return ComplaintSubject(member_id=self.subject_staff_ref, department_code=self.subject_unit)

    def reclassified(self, classification: ClassificationData) -> CaseProfile:
        """The profile after a person corrected the complaint's classification."""
        return dataclasses.replace(self, **classified_fields(classification))

    def routing_facts(self) -> RoutingFacts:
        """What the routing rules look at."""
        return RoutingFacts.of(self)


@dataclass
class CaseRecord:
    """A case aggregate with its profile, as loaded from (or to be written to) the database."""

    case: Case
    profile: CaseProfile
    created_at: datetime
    # The version stored in the database: history entries above it are new.
    stored_version: int = 0
    updated_at: datetime | None = field(default=None)

    @property
    def id(self) -> uuid.UUID:
        """The case id."""
        return uuid.UUID(self.case.case_id)

    @property
    def unsaved_transitions(self) -> list[Transition]:
        """History entries recorded since the case was loaded (or all, for a new case)."""
        return [t for t in self.case.history if t.version > self.stored_version]

    def pull_messages(self) -> Sequence[OutgoingMessage]:
        """Hand over the case's collected events as wire events on their topics, oldest first."""
        messages = messages_of(self)
        self.case.events.clear()
        return messages

"""Small records the survey lifecycle keeps beside the aggregate."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import StrEnum


@dataclass
class CaseRef:
    """What feedback remembers of a case from routing's events (never personal data):
    where its contact details live at intake, its department and urgency."""

    complaint_id: uuid.UUID
    department: str
    urgency: str | None
    contact_details_url: str


class DeliveryStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"


class MessageKind(StrEnum):
    RESULT_AND_SURVEY = "result_and_survey"
    REMINDER = "reminder"


@dataclass(frozen=True)
class OutboundMessage:
    """What was sent to a customer, on which channel, when, and whether it was delivered.

    The body is kept with the answer link redacted (the token is never stored) and no
    address: the recipient is looked up at intake each time.
    """

    id: uuid.UUID
    survey_id: uuid.UUID
    complaint_id: uuid.UUID
    channel: str
    kind: MessageKind
    subject: str
    body: str
    status: DeliveryStatus
    created_at: dt.datetime
    sent_at: dt.datetime | None = None
    provider_ref: str | None = None
    error: str | None = None

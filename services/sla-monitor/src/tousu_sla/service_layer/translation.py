"""Contract events in, domain case events out: flat payloads with the time the fact happened."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts.complaint import ComplaintClassified, ComplaintReclassified

from tousu_sla.domain import CaseEvent

# Large or irrelevant payload parts the aggregate never reads (it keeps some events).
_DROPPED_FIELDS = frozenset({"complaint_id", "explanation", "contact_details_url"})
# Contract fields that say when the fact happened, by precedence. ComplaintReceived's
# `received_at` (not `contact_at`) is when it was recorded: the record milestone's stop.
_TIME_FIELDS = (
    "occurred_at",
    "received_at",
    "informed_at",
    "added_at",
    "answered_at",
    "confirmed_at",
    "anonymized_at",
)


def to_case_event(event: Event, envelope: Envelope) -> CaseEvent:
    """The domain view of a consumed event; classification facts are flattened to top level."""
    payload: dict[str, Any] = event.model_dump(mode="json", exclude=set(_DROPPED_FIELDS))
    if isinstance(event, ComplaintClassified | ComplaintReclassified):
        # The aggregate reads urgency, severity, … as flat keys (see domain/case_sla.py).
        payload.update(payload.pop("classification"))
    return CaseEvent(
        type=event.event_type,
        occurred_at=occurred_at(event, envelope),
        payload=payload,
        actor=actor_of(event),
    )


def occurred_at(event: Event, envelope: Envelope) -> dt.datetime:
    """When the fact happened: the event's own time field, else when it was published."""
    for name in _TIME_FIELDS:
        value = getattr(event, name, None)
        if isinstance(value, dt.datetime):
            return value
    return envelope.time


def actor_of(event: Event) -> str | None:
    """Who caused the event, when the contract says."""
    for name in ("actor", "corrected_by"):
        value = getattr(event, name, None)
        if isinstance(value, str):
            return value
    return None

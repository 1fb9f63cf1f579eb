"""What the ops console reads, projected from the same events as the KPIs: every event of a
complaint as one timeline row, the live state of each SLA clock, and the case's handler level.

Pure like :mod:`tousu_analytics.domain.projection`, whose :class:`Upsert` it returns. The
clock rows take the SLA monitor's word for every instant (due, breached, paused): the board
never recomputes a deadline, it only shows the one the monitor set.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tousu_shared.contracts import EVENT_TYPES, Event
from tousu_shared.contracts.case import CaseAssigned, CaseEscalated, CaseRouted
from tousu_shared.contracts.sla import (
    SlaAtRisk,
    SlaBreached,
    SlaMet,
    SlaMilestoneCancelled,
    SlaMilestonePaused,
    SlaMilestoneResumed,
    SlaMilestoneRetargeted,
    SlaMilestoneStarted,
)

from tousu_analytics.domain.projection import Merge, Upsert

# The streams whose events make up a complaint's timeline.
TIMELINE_TOPICS = frozenset({"complaint.events", "case.events", "sla.events", "feedback.events"})
TIMELINE_EVENTS: frozenset[type[Event]] = frozenset(
    cls for cls in EVENT_TYPES.values() if cls.topic in TIMELINE_TOPICS
)

# When the fact an event reports happened: the first of these fields the event has. An
# event without any (a classification, a retarget) happened when it was published.
_TIME_FIELDS = (
    "occurred_at",
    "contact_at",
    "started_at",
    "paused_at",
    "resumed_at",
    "met_at",
    "cancelled_at",
    "anonymized_at",
    "added_at",
    "informed_at",
    "offered_at",
    "reminded_at",
    "attempted_at",
    "answered_at",
    "confirmed_at",
    "scheduled_for",
)
# Who, for events that name a person or system under another field than ``actor``.
_ACTOR_FIELDS = ("actor", "corrected_by", "paused_by", "resumed_by")
# Payload fields the timeline leaves out: the pseudonymous customer link (it goes when the
# customer's data is anonymised), links to personal data, and the classifier's internals.
_LEFT_OUT = frozenset(
    {"complaint_id", "customer_ref", "contact_details_url", "explanation", "confidence"}
)


@functools.cache
def _fields_of(cls: type[Event], names: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``names`` that are fields of an event type, in order: asking an event for a
    field it does not have (pydantic's ``__getattr__`` raising) cost most of a timeline
    row's time when every event was asked for all sixteen instants."""
    return tuple(name for name in names if name in cls.model_fields)


def happened_at(event: Event, published_at: datetime) -> datetime:
    """The instant the event's fact happened (its publication time when it names none)."""
    for name in _fields_of(type(event), _TIME_FIELDS):
        value = getattr(event, name)
        if isinstance(value, datetime):
            return value
    if isinstance(event, SlaBreached):
        return event.due_at
    return published_at


def actor_of(event: Event) -> str:
    """Who did what the event reports (a system name for what no person did)."""
    for name in _fields_of(type(event), _ACTOR_FIELDS):
        value = getattr(event, name)
        if isinstance(value, str) and value:
            return value
    if event.topic == "sla.events":
        return "system:sla-monitor"
    channel = getattr(event, "channel", None)
    if event.event_type == "ComplaintReceived" and channel is not None:
        return f"channel:{channel}"
    return "system:intake"


def timeline_row(event: Event, event_id: uuid.UUID, published_at: datetime) -> Upsert:
    return Upsert(
        "timeline",
        {"event_id": event_id},
        {
            "complaint_id": event.complaint_id,
            "at": happened_at(event, published_at),
            "event_type": event.event_type,
            "actor": actor_of(event),
            "detail": event.model_dump(mode="json", exclude=set(_LEFT_OUT)),
        },
    )


def _clock(event: Any, at: datetime, **values: Any) -> Upsert:
    return Upsert(
        "clock",
        {"complaint_id": event.complaint_id, "milestone": event.milestone},
        {"policy": event.policy, "updated_at": at, **values},
    )


# SLA event → the clock columns it sets (a restarted milestone starts clean).
_CLOCK_CHANGES: dict[type[Event], Callable[[Any], dict[str, Any]]] = {
    SlaMilestoneStarted: lambda e: {
        "started_at": e.started_at,
        "target_seconds": e.target_seconds,
        "calendar": e.calendar,
        "due_at": e.due_at,
        "at_risk_at": None,
        "paused_at": None,
        "breached_at": None,
        "met_at": None,
        "cancelled_at": None,
    },
    SlaAtRisk: lambda e: {"due_at": e.due_at, "at_risk_at": e.scheduled_for or e.due_at},
    SlaBreached: lambda e: {"due_at": e.due_at, "breached_at": e.due_at},
    SlaMet: lambda e: {"due_at": e.due_at, "met_at": e.met_at, "paused_at": None},
    SlaMilestonePaused: lambda e: {"due_at": e.due_at, "paused_at": e.paused_at},
    SlaMilestoneResumed: lambda e: {"due_at": e.due_at, "paused_at": None},
    SlaMilestoneRetargeted: lambda e: {"due_at": e.due_at},
    SlaMilestoneCancelled: lambda e: {"cancelled_at": e.cancelled_at, "paused_at": None},
}


def _level(event: CaseRouted | CaseAssigned | CaseEscalated) -> Upsert:
    level = event.to_level if isinstance(event, CaseEscalated) else event.handler_level
    values: dict[str, Any] = {"handler_level": level.value, "level_version": event.case_version}
    merge = {"handler_level": Merge.NEWER_CASE, "level_version": Merge.GREATEST}
    if isinstance(event, CaseEscalated):
        values["escalated_at"] = event.occurred_at
        merge["escalated_at"] = Merge.GREATEST
    return Upsert("fact", {"complaint_id": event.complaint_id}, values, merge, "level_version")


def console_changes(event: Event, event_id: uuid.UUID, published_at: datetime) -> list[Upsert]:
    """The console's read-model changes of one event (none for events off its streams)."""
    if type(event) not in TIMELINE_EVENTS:
        return []
    changes = [timeline_row(event, event_id, published_at)]
    clock = _CLOCK_CHANGES.get(type(event))
    if clock is not None:
        changes.append(_clock(event, happened_at(event, published_at), **clock(event)))
    if isinstance(event, CaseRouted | CaseAssigned | CaseEscalated):
        changes.append(_level(event))
    return changes

"""How a case's domain events go on the wire: which shared contract, which topics.

Every domain event goes to the case stream and to the owning department's routed-case topic.
A transfer also tells the department the case left (``CaseTransferred`` on its topic) and
gives the receiving department a ``CaseRouted`` with everything it needs to act.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import TYPE_CHECKING, Any

from tousu_shared.contracts import case as contracts
from tousu_shared.contracts.base import Event
from tousu_shared.topics import department_topic
from tousu_shared.uow import OutgoingMessage

from tousu_routing.domain import events as domain_events

if TYPE_CHECKING:
    from tousu_routing.domain.record import CaseProfile, CaseRecord

CASE_TOPIC = contracts.CaseRouted.topic

# Domain event → the shared contract it is published as (same names, fewer fields).
CONTRACT_FOR: dict[type[domain_events.CaseEvent], type[Event]] = {
    domain_events.CaseRouted: contracts.CaseRouted,
    domain_events.CaseAcknowledged: contracts.CaseAcknowledged,
    domain_events.FirstResponseSent: contracts.FirstResponseSent,
    domain_events.CustomerResponseSent: contracts.CustomerResponseSent,
    domain_events.InvestigationStarted: contracts.InvestigationStarted,
    domain_events.RootCauseRecorded: contracts.RootCauseRecorded,
    domain_events.SolutionProposed: contracts.SolutionProposed,
    domain_events.CaseResolved: contracts.CaseResolved,
    domain_events.CaseClosed: contracts.CaseClosed,
    domain_events.CaseReopened: contracts.CaseReopened,
    domain_events.CaseTransferred: contracts.CaseTransferred,
    domain_events.CaseEscalated: contracts.CaseEscalated,
    domain_events.CaseNoteAdded: contracts.CaseNoteAdded,
    domain_events.CaseAssigned: contracts.CaseAssigned,
}


def to_contract(event: domain_events.CaseEvent, profile: CaseProfile) -> Event:
    """The wire event of a domain event; the profile fills in what a department needs to act."""
    contract = CONTRACT_FOR[type(event)]
    available: dict[str, Any] = {
        **dataclasses.asdict(event),
        "complaint_id": uuid.UUID(event.complaint_id),
        "case_version": event.version,
        "category": profile.category,
        "severity": profile.severity,
        "urgency": profile.urgency,
        "contact_details_url": profile.contact_details_url,
    }
    wanted = {name: available[name] for name in contract.model_fields if name in available}
    return contract(**wanted)


def routed_by_transfer(
    event: domain_events.CaseTransferred, record: CaseRecord
) -> contracts.CaseRouted:
    """What the receiving department's topic gets when a case is transferred to it."""
    case, profile = record.case, record.profile
    queued = None
    if event.assignee is None:
        queued = f"waiting in the {event.department} queue at {event.handler_level} level"
    return contracts.CaseRouted.model_validate(
        {
            "complaint_id": uuid.UUID(event.complaint_id),
            "department": event.department,
            "actor": event.actor,
            "occurred_at": event.occurred_at,
            "recorded_at": event.recorded_at,
            "case_version": event.version,
            "rule_id": case.rule_id or "",
            "rule_reason": f"transferred from {event.from_department}: {event.reason}",
            "handler_level": event.handler_level,
            "assignee": event.assignee,
            "queued_reason": queued,
            "notify_management": case.notify_management,
            "category": profile.category,
            "severity": profile.severity,
            "urgency": profile.urgency,
            "contact_details_url": profile.contact_details_url,
        }
    )


def messages_of(record: CaseRecord) -> list[OutgoingMessage]:
    """Each pending domain event of the case as wire events on their topics, in order."""
    messages: list[OutgoingMessage] = []
    for event in record.case.events:
        wire = to_contract(event, record.profile)
        messages.append(OutgoingMessage(wire, CASE_TOPIC))
        if isinstance(event, domain_events.CaseTransferred):
            messages.append(OutgoingMessage(wire, department_topic(event.from_department)))
            routed = routed_by_transfer(event, record)
            messages.append(OutgoingMessage(routed, department_topic(event.department)))
        else:
            messages.append(OutgoingMessage(wire, department_topic(event.department)))
    return messages

"""Stores a case's changes with its events and audit entries, all in the caller's transaction.

Every domain event goes to the case stream and to the owning department's routed-case topic.
A transfer also tells the department the case left (``CaseTransferred`` on its topic) and
gives the receiving department a ``CaseRouted`` with everything it needs to act.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.auth import Principal
from tousu_shared.contracts import case as contracts
from tousu_shared.contracts.base import Event
from tousu_shared.runtime import Runtime
from tousu_shared.topics import department_topic

from tousu_routing.adapters.repository import CaseProfile, CaseRecord, CaseRepository
from tousu_routing.domain import events as domain_events

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
        **{f.name: getattr(event, f.name) for f in dataclasses.fields(event)},
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
    event: domain_events.CaseTransferred, record: CaseRecord,
) -> contracts.CaseRouted:
    """What the receiving department's topic gets when a case is transferred to it."""
    case = record.case
    queued = None
    if event.assignee is None:
        queued = f"waiting in the {event.department} queue at {event.handler_level} level"
    return contracts.CaseRouted(
        complaint_id=uuid.UUID(event.complaint_id), department=event.department,
        actor=event.actor, occurred_at=event.occurred_at, recorded_at=event.recorded_at,
        case_version=event.version, rule_id=case.rule_id or "",
        rule_reason=f"transferred from {event.from_department}: {event.reason}",
        handler_level=event.handler_level, assignee=event.assignee, queued_reason=queued,
        notify_management=case.notify_management, category=record.profile.category,
        severity=record.profile.severity, urgency=record.profile.urgency,
        contact_details_url=record.profile.contact_details_url,
    )


def outgoing_messages(record: CaseRecord) -> list[tuple[Event, str]]:
    """Each pending domain event of the case as (wire event, logical topic), in order."""
    messages: list[tuple[Event, str]] = []
    for event in record.case.events:
        wire = to_contract(event, record.profile)
        messages.append((wire, CASE_TOPIC))
        if isinstance(event, domain_events.CaseTransferred):
            messages.append((wire, department_topic(event.from_department)))
            messages.append((routed_by_transfer(event, record), department_topic(event.department)))
        else:
            messages.append((wire, department_topic(event.department)))
    return messages


async def store_case_changes(
    runtime: Runtime,
    record: CaseRecord,
    *,
    db_session: AsyncSession,
    principal: Principal,
    now: datetime,
    is_new: bool = False,
) -> bool:
    """Write the case, enqueue its events and audit each new transition; the caller commits.

    Returns False (and writes nothing) when a new case lost the race to an existing one.
    The caller holds the case's row lock (or inserts it), so one complaint's outbox rows get
    their ids in commit order.
    """
    repository = CaseRepository(db_session)
    new_transitions = [t for t in record.case.history if t.version > record.stored_version]
    if is_new:
        if not await repository.add(record, now):
            return False
    else:
        await repository.save(record, now)
    await runtime.outbox.enqueue_many(db_session, outgoing_messages(record))
    record.case.events.clear()
    for transition in new_transitions:
        await runtime.audit.record(
            db_session, principal, f"case.{transition.action}", "case", record.case.case_id,
            complaint_id=uuid.UUID(record.case.complaint_id),
            details={
                "version": transition.version,
                "from_state": str(transition.from_state) if transition.from_state else None,
                "to_state": str(transition.to_state),
                "occurred_at": transition.occurred_at.isoformat(),
                "department": record.case.department,
                **transition.details,
            },
        )
    return True

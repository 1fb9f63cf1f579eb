"""How cases react to other services' events: reclassification, SLA escalation, feedback.

Each runs in the inbox consumer's unit of work and never commits. An event about a
complaint that has no case raises ``CaseNotOpened`` (the handlers dead-letter it).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from tousu_shared.auth import system_principal
from tousu_shared.contracts.complaint import ClassificationData
from tousu_shared.contracts.sla import SlaEscalated

from tousu_routing.domain import (
    CaseAction,
    CaseState,
    ClosureReason,
    EscalationReason,
    Stamp,
    handler_level_for,
)
from tousu_routing.domain.record import CaseRecord
from tousu_routing.service_layer.cases import ROUTING, hand_over_if_away, open_case
from tousu_routing.service_layer.context import RoutingContext
from tousu_routing.service_layer.roster import Roster
from tousu_routing.service_layer.unit_of_work import RoutingWork

log = logging.getLogger(__name__)

SLA_MONITOR = system_principal("sla-monitor")
FEEDBACK = system_principal("feedback")


class CaseNotOpened(LookupError):
    """An event refers to a complaint that has no case."""


async def _locked_case_of(uow: RoutingWork, complaint_id: uuid.UUID) -> CaseRecord:
    record = await uow.cases.get_by_complaint(complaint_id, for_update=True)
    if record is None:
        raise CaseNotOpened(f"complaint {complaint_id} has no case")
    return record


def _when(record: CaseRecord, happened_at: datetime | None, now: datetime) -> datetime:
    """An event's own time for the history, kept in order and never in the future."""
    if happened_at is None:
        return now
    earliest = record.case.complaint_received_at
    if record.case.history:
        earliest = max(earliest, record.case.history[-1].occurred_at)
    return min(max(happened_at, earliest), now)


async def apply_reclassification(
    ctx: RoutingContext,
    uow: RoutingWork,
    complaint_id: uuid.UUID,
    classification: ClassificationData,
    *,
    reason: str,
    corrected_by: str,
) -> CaseRecord | None:
    """Take a person's corrected classification: raise the handler level if it now needs more.

    Levels are never lowered automatically (an escalation or a conflict of interest may be
    why the case sits where it is); the history notes the correction either way. A
    complaint whose first classification never produced a case is routed now.
    """
    now = ctx.clock()
    record = await uow.cases.get_by_complaint(complaint_id, for_update=True)
    if record is None:
        return await open_case(ctx, uow, complaint_id, classification)
    previous = record.profile
    record.profile = previous.reclassified(classification)
    case = record.case
    by_severity = handler_level_for(classification.severity)
    case.notify_management = case.notify_management or by_severity.notify_management
    change = (
        f"reclassified by {corrected_by} ({reason}): severity {previous.severity} → "
        f"{classification.severity}, category {previous.category} → {classification.category}"
    )
    if case.state is CaseState.CLOSED:
        log.info("case %s is closed; reclassification stored without a transition", case.case_id)
        await uow.save_case(record, ROUTING, now)
        return record
    roster = await Roster.load(uow, [case.department], subjects=[record.profile.subject])
    needed = roster.conflict(record.profile.subject, case.department).apply_to(by_severity.level)
    if case.handler_level >= needed:
        case.add_note(
            Stamp(actor=ROUTING.actor, now=now),
            note=f"{change}; handler level stays {case.handler_level} ({by_severity.reason})",
        )
    while case.handler_level < needed:
        decision = roster.choose(
            case.department, case.handler_level.one_up(), case.excluded_member_ids
        )
        case.escalate(
            Stamp(actor=ROUTING.actor, now=now),
            reason=EscalationReason.RECLASSIFICATION,
            assignee_id=decision.assignee_id,
            note=f"{change}; {decision.reason}",
        )
    await uow.save_case(record, ROUTING, now)
    return record


def _overdue_note(event: SlaEscalated) -> str:
    """Why the SLA monitor escalated: which milestone, which repeat, what else is overdue."""
    when = "became overdue" if event.repeat == 0 else f"is still overdue (repeat {event.repeat})"
    note = (
        f"the case {when}: milestone {event.milestone} (policy {event.policy}) was due "
        f"{event.due_at.isoformat()}"
    )
    others = [m for m in event.overdue_milestones if m != event.milestone]
    if others:
        note += f"; also overdue: {', '.join(others)}"
    return note


async def escalate_for_sla(
    ctx: RoutingContext, uow: RoutingWork, event: SlaEscalated
) -> CaseRecord | None:
    """The one escalation rule on routing's side: the case must now be handled at ``level``.

    The SLA monitor decides the level (once when the case becomes overdue, once more per
    interval while it stays so). A case below that level rises straight to it in one
    escalation; a case already at or above it is left alone, so a redelivered or late event
    never raises a case twice. Closed cases are not escalated.
    """
    now = ctx.clock()
    record = await _locked_case_of(uow, event.complaint_id)
    case = record.case
    if not case.can(CaseAction.ESCALATE):
        log.info("case %s is %s; SLA escalation not applied", case.case_id, case.state)
        return None
    if case.handler_level >= event.level:
        log.info(
            "case %s is already at %s; SLA escalation to %s not applied",
            case.case_id,
            case.handler_level,
            event.level,
        )
        return None
    roster = await Roster.load(uow, [case.department])
    decision = roster.choose(case.department, event.level, case.excluded_member_ids)
    case.escalate(
        Stamp(actor=SLA_MONITOR.actor, now=now),
        reason=EscalationReason.SLA_BREACH,
        to_level=event.level,
        assignee_id=decision.assignee_id,
        note=f"{_overdue_note(event)}; {decision.reason}",
    )
    await uow.save_case(record, SLA_MONITOR, now)
    return record


async def reopen_for_dissatisfaction(
    ctx: RoutingContext,
    uow: RoutingWork,
    complaint_id: uuid.UUID,
    *,
    comment: str,
    satisfaction: int,
) -> CaseRecord | None:
    """The customer is not satisfied: back to investigating, same department, with the comment."""
    now = ctx.clock()
    record = await _locked_case_of(uow, complaint_id)
    if not record.case.can(CaseAction.REOPEN):
        log.info(
            "case %s is %s; dissatisfaction not applied", record.case.case_id, record.case.state
        )
        return None
    text = comment.strip() or "the customer is not satisfied"
    record.case.reopen(
        Stamp(actor=FEEDBACK.actor, now=now), comment=f"{text} (satisfaction {satisfaction}/5)"
    )
    await hand_over_if_away(uow, record, FEEDBACK, now)
    await uow.save_case(record, FEEDBACK, now)
    return record


async def close_after_feedback(
    ctx: RoutingContext,
    uow: RoutingWork,
    complaint_id: uuid.UUID,
    *,
    reason: ClosureReason,
    happened_at: datetime | None,
) -> CaseRecord | None:
    """The customer confirmed the result, or never answered the survey: close the case."""
    now = ctx.clock()
    record = await _locked_case_of(uow, complaint_id)
    if record.case.state is not CaseState.RESOLVED:
        log.info(
            "case %s is %s; %s closure not applied", record.case.case_id, record.case.state, reason
        )
        return None
    record.case.close(
        Stamp(actor=FEEDBACK.actor, now=now, occurred_at=_when(record, happened_at, now)),
        close_reason=reason,
    )
    await uow.save_case(record, FEEDBACK, now)
    return record

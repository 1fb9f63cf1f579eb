"""Use cases of the case workflow: open a case, act on it, and react to other services' events.

Every function works in the caller's transaction (``db_session``) and never commits. Functions
that change an existing case row-lock it first, so concurrent writers queue up and one
complaint's outbox rows stay in commit order.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.auth import Principal
from tousu_shared.contracts.complaint import ClassificationData, ComplaintReceived
from tousu_shared.errors import NotFound
from tousu_shared.runtime import Runtime

from tousu_routing.adapters.repository import (
    CaseProfile,
    CaseRecord,
    CaseRepository,
    ComplaintFactRepository,
    ComplaintFacts,
    RuleRepository,
)
from tousu_routing.domain import (
    Case,
    CaseAction,
    CaseState,
    ClosureReason,
    ComplaintSubject,
    EscalationReason,
    IllegalTransition,
    RoutingFacts,
    handler_level_for,
    plan_routing,
)
from tousu_routing.domain import commands as c
from tousu_routing.service_layer.publishing import store_case_changes
from tousu_routing.service_layer.roster import Roster

log = logging.getLogger(__name__)

# Who acts when no person does: named after the service whose event triggered the change.
ROUTING = Principal(key_id="system", name="routing", role="system", department=None)
SLA_MONITOR = Principal(key_id="system", name="sla-monitor", role="system", department=None)
FEEDBACK = Principal(key_id="system", name="feedback", role="system", department=None)

ACTION_OF: dict[type[c.CaseCommand], CaseAction] = {
    c.AcknowledgeCase: CaseAction.ACKNOWLEDGE,
    c.RespondToCustomer: CaseAction.RESPOND_TO_CUSTOMER,
    c.StartInvestigation: CaseAction.START_INVESTIGATION,
    c.RecordRootCause: CaseAction.RECORD_ROOT_CAUSE,
    c.ProposeSolution: CaseAction.PROPOSE_SOLUTION,
    c.ResolveCase: CaseAction.RESOLVE,
    c.CloseCase: CaseAction.CLOSE,
    c.ReopenCase: CaseAction.REOPEN,
    c.TransferCase: CaseAction.TRANSFER,
    c.EscalateCase: CaseAction.ESCALATE,
    c.AddNote: CaseAction.ADD_NOTE,
    c.AssignCase: CaseAction.ASSIGN,
}


class ComplaintNotReceived(LookupError):
    """Routing never got the ``ComplaintReceived`` of a complaint it is asked to route."""


class CaseNotOpened(LookupError):
    """An event refers to a complaint that has no case."""


def _now() -> datetime:
    return datetime.now(UTC)


def _subject(profile: CaseProfile) -> ComplaintSubject:
    return ComplaintSubject(member_id=profile.subject_staff_ref,
                            department_code=profile.subject_unit)


def _when(record: CaseRecord, happened_at: datetime | None, now: datetime) -> datetime:
    """An event's own time for the history, kept in order and never in the future."""
    if happened_at is None:
        return now
    earliest = record.case.complaint_received_at
    if record.case.history:
        earliest = max(earliest, record.case.history[-1].occurred_at)
    return min(max(happened_at, earliest), now)


# ---- opening ------------------------------------------------------------------------------


async def remember_complaint(event: ComplaintReceived, *, db_session: AsyncSession) -> None:
    """Keep what routing needs from a received complaint until it is classified."""
    if await CaseRepository(db_session).exists_for_complaint(event.complaint_id):
        log.info("complaint %s already has a case; received facts not kept", event.complaint_id)
        return
    await ComplaintFactRepository(db_session).add(ComplaintFacts(
        complaint_id=event.complaint_id, tracking_code=event.tracking_code,
        channel=event.channel, contact_at=event.contact_at, received_at=event.received_at,
        customer_tier=event.customer_tier, product_line=event.product_line,
        region=event.region, subject_staff_ref=event.subject_staff_ref,
        subject_unit=event.subject_unit, contact_details_url=event.contact_details_url,
    ))


def _profile(facts: ComplaintFacts, classification: ClassificationData,
             rule_version: int | None) -> CaseProfile:
    return CaseProfile(
        category=classification.category, severity=classification.severity,
        urgency=classification.urgency, customer_tier=classification.customer_tier,
        channel=facts.channel, product_line=facts.product_line, region=facts.region,
        risk_flags=tuple(classification.risk_flags), subject_staff_ref=facts.subject_staff_ref,
        subject_unit=facts.subject_unit, contact_details_url=facts.contact_details_url,
        rule_version=rule_version,
    )


def routing_facts(profile: CaseProfile) -> RoutingFacts:
    """What the routing rules look at."""
    return RoutingFacts(
        severity=profile.severity, category=profile.category,
        product_line=profile.product_line, region=profile.region, channel=profile.channel,
        customer_tier=profile.customer_tier, risk_flags=frozenset(profile.risk_flags),
        subject=_subject(profile),
    )


async def open_case(
    runtime: Runtime,
    complaint_id: uuid.UUID,
    classification: ClassificationData,
    *,
    db_session: AsyncSession,
    now: datetime | None = None,
) -> CaseRecord | None:
    """Route a classified complaint and open its case; None if it already has one.

    Raises ``ComplaintNotReceived`` when the complaint's received facts never arrived.
    """
    now = now or _now()
    if await CaseRepository(db_session).exists_for_complaint(complaint_id):
        log.info("complaint %s already has a case; classification not routed again",
                 complaint_id)
        return None
    facts_repository = ComplaintFactRepository(db_session)
    facts = await facts_repository.get(complaint_id)
    if facts is None:
        raise ComplaintNotReceived(
            f"complaint {complaint_id} was classified but its ComplaintReceived never arrived"
        )
    rule_set, rule_versions = await RuleRepository(db_session).rule_set()
    profile = _profile(facts, classification, None)
    facts_for_rules = routing_facts(profile)
    roster = await Roster.load(db_session=db_session,
                               assigning_in=[rule_set.route(facts_for_rules).department])
    plan = plan_routing(facts_for_rules, rule_set, roster.departments, roster.members.values())
    complaint_at = min(facts.contact_at, facts.received_at, now)
    # The case counts from the complaint (its recorded_at says when routing ran), so work done
    # offline before routing caught up can still be logged with its real time.
    case = Case.open_from_plan(
        plan, case_id=str(uuid.uuid4()), complaint_id=str(complaint_id),
        complaint_received_at=complaint_at, actor=ROUTING.actor, now=now,
        occurred_at=complaint_at,
    )
    record = CaseRecord(
        case=case,
        profile=dataclasses.replace(profile, rule_version=rule_versions[plan.decision.rule_id]),
        created_at=now,
    )
    if not await store_case_changes(runtime, record, db_session=db_session, principal=ROUTING,
                                    now=now, is_new=True):
        return None
    await facts_repository.remove(complaint_id)
    return record


# ---- reclassification -------------------------------------------------------------------------


async def apply_reclassification(
    runtime: Runtime,
    complaint_id: uuid.UUID,
    classification: ClassificationData,
    *,
    reason: str,
    corrected_by: str,
    db_session: AsyncSession,
    now: datetime | None = None,
) -> CaseRecord | None:
    """Take a person's corrected classification: raise the handler level if it now needs more.

    Levels are never lowered automatically (an escalation or a conflict of interest may be
    why the case sits where it is); the history notes the correction either way. A
    complaint whose first classification never produced a case is routed now.
    """
    now = now or _now()
    cases = CaseRepository(db_session)
    record = await cases.get_by_complaint(complaint_id, for_update=True)
    if record is None:
        return await open_case(runtime, complaint_id, classification, db_session=db_session,
                               now=now)
    previous = record.profile
    record.profile = dataclasses.replace(
        previous, category=classification.category, severity=classification.severity,
        urgency=classification.urgency, customer_tier=classification.customer_tier,
        risk_flags=tuple(classification.risk_flags),
    )
    case = record.case
    by_severity = handler_level_for(classification.severity)
    case.notify_management = case.notify_management or by_severity.notify_management
    change = (f"reclassified by {corrected_by} ({reason}): severity {previous.severity} → "
              f"{classification.severity}, category {previous.category} → "
              f"{classification.category}")
    if case.state is CaseState.CLOSED:
        log.info("case %s is closed; reclassification stored without a transition",
                 case.case_id)
        await cases.save(record, now)
        return record
    roster = await Roster.load(db_session=db_session, assigning_in=[case.department])
    conflict = roster.conflict(_subject(record.profile), case.department)
    needed = conflict.apply_to(by_severity.level)
    if case.handler_level >= needed:
        case.add_note(
            note=f"{change}; handler level stays {case.handler_level} ({by_severity.reason})",
            actor=ROUTING.actor, now=now,
        )
    while case.handler_level < needed:
        decision = roster.choose(case.department, case.handler_level.one_up(),
                                 case.excluded_member_ids)
        case.escalate(actor=ROUTING.actor, now=now, reason=EscalationReason.RECLASSIFICATION,
                      assignee_id=decision.assignee_id, note=f"{change}; {decision.reason}")
    await store_case_changes(runtime, record, db_session=db_session, principal=ROUTING, now=now)
    return record


# ---- actions through the API ----------------------------------------------------------------


async def locked_case_visible_to(
    case_id: uuid.UUID, principal: Principal, *, db_session: AsyncSession,
) -> CaseRecord:
    """The case row-locked, if the caller may see it; others get the same 404 as a missing one."""
    record = await CaseRepository(db_session).get(case_id, for_update=True)
    if record is None or not principal.may_see_department(record.case.department):
        raise NotFound(f"no case {case_id}", field="case_id")
    return record


def _with_assignment(command: c.CaseCommand, record: CaseRecord, roster: Roster) -> c.CaseCommand:
    """Fill in the level and assignee a transfer or escalation leads to, or check a chosen one."""
    case = record.case
    if isinstance(command, c.TransferCase):
        roster.department(command.to_department, field="to_department")
        asked = command.handler_level or case.handler_level
        level = roster.conflict(_subject(record.profile), command.to_department).apply_to(asked)
        if command.assignee_id is not None:
            roster.check_assignable(command.assignee_id, command.to_department, level)
            return dataclasses.replace(command, handler_level=level)
        decision = roster.choose(command.to_department, level, case.excluded_member_ids)
        return dataclasses.replace(command, handler_level=level, assignee_id=decision.assignee_id)
    if isinstance(command, c.EscalateCase):
        level = case.handler_level.one_up()
        if command.assignee_id is not None:
            roster.check_assignable(command.assignee_id, case.department, level)
            return command
        if case.handler_level.is_top:
            return command  # capped: the domain keeps the assignee
        decision = roster.choose(case.department, level, case.excluded_member_ids)
        return dataclasses.replace(command, assignee_id=decision.assignee_id)
    if isinstance(command, c.AssignCase) and command.assignee_id is not None:
        roster.check_assignable(command.assignee_id, case.department, case.handler_level)
    return command


async def perform_action(
    runtime: Runtime,
    command: c.CaseCommand,
    *,
    db_session: AsyncSession,
    principal: Principal,
    now: datetime | None = None,
) -> CaseRecord:
    """Carry out one workflow action for a caller, checking visibility, version and state."""
    now = now or _now()
    record = await locked_case_visible_to(uuid.UUID(command.case_id), principal,
                                          db_session=db_session)
    if command.expected_version is not None:
        record.case.expect_version(command.expected_version)
    action = ACTION_OF[type(command)]
    if not record.case.can(action):
        # Refused before the roster is consulted, so the caller learns what is allowed.
        raise IllegalTransition(action, record.case.state, record.case.allowed_actions)
    if isinstance(command, c.TransferCase | c.EscalateCase | c.AssignCase):
        department = getattr(command, "to_department", record.case.department)
        roster = await Roster.load(db_session=db_session, assigning_in=[department])
        command = _with_assignment(command, record, roster)
    arguments = {
        f.name: getattr(command, f.name) for f in dataclasses.fields(command)
        if f.name not in {"case_id", "expected_version"}
    }
    getattr(record.case, str(action))(**arguments, now=now)
    if action is CaseAction.REOPEN:
        await _hand_over_if_away(record, principal, db_session=db_session, now=now)
    await store_case_changes(runtime, record, db_session=db_session, principal=principal, now=now)
    return record


async def _hand_over_if_away(
    record: CaseRecord, principal: Principal, *, db_session: AsyncSession, now: datetime,
) -> None:
    """A reopened case whose assignee is away goes to an available peer, or the queue."""
    case = record.case
    if case.assignee_id is None:
        return
    roster = await Roster.load(db_session=db_session, assigning_in=[case.department])
    if roster.is_available(case.assignee_id):
        return
    away = case.assignee_id
    decision = roster.choose(case.department, case.handler_level,
                             case.excluded_member_ids | {away})
    case.assign(assignee_id=decision.assignee_id, actor=principal.actor, now=now,
                note=f"{away} is not available: {decision.reason}")


# ---- reactions to other services' events ------------------------------------------------------


async def _locked_case_of(complaint_id: uuid.UUID, *, db_session: AsyncSession) -> CaseRecord:
    record = await CaseRepository(db_session).get_by_complaint(complaint_id, for_update=True)
    if record is None:
        raise CaseNotOpened(f"complaint {complaint_id} has no case")
    return record


async def escalate_for_breach(
    runtime: Runtime,
    complaint_id: uuid.UUID,
    *,
    milestone: str,
    policy: str,
    due_at: datetime,
    db_session: AsyncSession,
    now: datetime | None = None,
) -> CaseRecord | None:
    """An SLA milestone was missed: raise the case one level (recorded even at the top)."""
    now = now or _now()
    record = await _locked_case_of(complaint_id, db_session=db_session)
    case = record.case
    if not case.can(CaseAction.ESCALATE):
        log.info("case %s is %s; breach of %s not escalated", case.case_id, case.state, milestone)
        return None
    assignee = case.assignee_id
    if not case.handler_level.is_top:
        roster = await Roster.load(db_session=db_session, assigning_in=[case.department])
        assignee = roster.choose(case.department, case.handler_level.one_up(),
                                 case.excluded_member_ids).assignee_id
    case.escalate(
        actor=SLA_MONITOR.actor, now=now, reason=EscalationReason.SLA_BREACH,
        assignee_id=assignee,
        note=f"milestone {milestone} (policy {policy}) was due {due_at.isoformat()}",
    )
    await store_case_changes(runtime, record, db_session=db_session, principal=SLA_MONITOR,
                             now=now)
    return record


async def reopen_for_dissatisfaction(
    runtime: Runtime,
    complaint_id: uuid.UUID,
    *,
    comment: str,
    satisfaction: int,
    db_session: AsyncSession,
    now: datetime | None = None,
) -> CaseRecord | None:
    """The customer is not satisfied: back to investigating, same department, with the comment."""
    now = now or _now()
    record = await _locked_case_of(complaint_id, db_session=db_session)
    if not record.case.can(CaseAction.REOPEN):
        log.info("case %s is %s; dissatisfaction not applied", record.case.case_id,
                 record.case.state)
        return None
    text = comment.strip() or "the customer is not satisfied"
    record.case.reopen(comment=f"{text} (satisfaction {satisfaction}/5)",
                       actor=FEEDBACK.actor, now=now)
    await _hand_over_if_away(record, FEEDBACK, db_session=db_session, now=now)
    await store_case_changes(runtime, record, db_session=db_session, principal=FEEDBACK, now=now)
    return record


async def close_after_feedback(
    runtime: Runtime,
    complaint_id: uuid.UUID,
    *,
    reason: ClosureReason,
    happened_at: datetime | None,
    db_session: AsyncSession,
    now: datetime | None = None,
) -> CaseRecord | None:
    """The customer confirmed the result, or never answered the survey: close the case."""
    now = now or _now()
    record = await _locked_case_of(complaint_id, db_session=db_session)
    if record.case.state is not CaseState.RESOLVED:
        log.info("case %s is %s; %s closure not applied", record.case.case_id,
                 record.case.state, reason)
        return None
    record.case.close(actor=FEEDBACK.actor, now=now, close_reason=reason,
                      occurred_at=_when(record, happened_at, now))
    await store_case_changes(runtime, record, db_session=db_session, principal=FEEDBACK, now=now)
    return record

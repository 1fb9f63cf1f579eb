"""Use cases of the case workflow: open a case and carry out the actions people take on it.

Every function works in the unit of work it is given and never commits (the API endpoint
or the inbox consumer does, once). Functions that change an existing case row-lock it
first, so concurrent writers queue up and one complaint's outbox rows stay in commit order.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tousu_shared.auth import Principal, system_principal
from tousu_shared.contracts.complaint import ClassificationData, ComplaintReceived
from tousu_shared.errors import NotFound

from tousu_routing.adapters.complaint_facts import ComplaintFacts
from tousu_routing.domain import Case, CaseAction, IllegalTransition, Stamp, plan_routing
from tousu_routing.domain import commands as c
from tousu_routing.domain.record import CaseProfile, CaseRecord, classified_fields
from tousu_routing.service_layer.context import RoutingContext
from tousu_routing.service_layer.roster import Roster
from tousu_routing.service_layer.unit_of_work import RoutingWork

log = logging.getLogger(__name__)

# Who acts when no person does: named after the service whose event triggered the change.
ROUTING = system_principal("routing")

# Each command and the workflow action and Case method that carry it out; a command's
# actor and occurred_at make the method's Stamp, its other fields (but the case id and
# expected version) are the method's keyword arguments.
CASE_ACTIONS: dict[type[c.CaseCommand], tuple[CaseAction, Callable[..., None]]] = {
    c.AcknowledgeCase: (CaseAction.ACKNOWLEDGE, Case.acknowledge),
    c.RespondToCustomer: (CaseAction.RESPOND_TO_CUSTOMER, Case.respond_to_customer),
    c.StartInvestigation: (CaseAction.START_INVESTIGATION, Case.start_investigation),
    c.RecordRootCause: (CaseAction.RECORD_ROOT_CAUSE, Case.record_root_cause),
    c.ProposeSolution: (CaseAction.PROPOSE_SOLUTION, Case.propose_solution),
    c.ResolveCase: (CaseAction.RESOLVE, Case.resolve),
    c.CloseCase: (CaseAction.CLOSE, Case.close),
    c.ReopenCase: (CaseAction.REOPEN, Case.reopen),
    c.TransferCase: (CaseAction.TRANSFER, Case.transfer),
    c.EscalateCase: (CaseAction.ESCALATE, Case.escalate),
    c.AddNote: (CaseAction.ADD_NOTE, Case.add_note),
    c.AssignCase: (CaseAction.ASSIGN, Case.assign),
}
_NOT_ARGUMENTS = frozenset({"case_id", "expected_version", "actor", "occurred_at"})


class ComplaintNotReceived(LookupError):
    """Routing never got the ``ComplaintReceived`` of a complaint it is asked to route."""


# ---- opening ------------------------------------------------------------------------------


def received_facts(event: ComplaintReceived) -> ComplaintFacts:
    """What routing keeps of a received complaint: the event's fields of the same names."""
    return ComplaintFacts(
        **{f.name: getattr(event, f.name) for f in dataclasses.fields(ComplaintFacts)}
    )


async def remember_complaint(
    ctx: RoutingContext, uow: RoutingWork, event: ComplaintReceived
) -> None:
    """Keep what routing needs from a received complaint until it is classified."""
    if await uow.cases.exists_for_complaint(event.complaint_id):
        log.info("complaint %s already has a case; received facts not kept", event.complaint_id)
        return
    await uow.complaint_facts.add(received_facts(event))


def case_profile(facts: ComplaintFacts, classification: ClassificationData) -> CaseProfile:
    """A new case's profile: its classification and the received facts routing uses."""
    return CaseProfile(
        **classified_fields(classification),
        channel=facts.channel,
        product_line=facts.product_line,
        region=facts.region,
        subject_staff_ref=facts.subject_staff_ref,
        subject_unit=facts.subject_unit,
        contact_details_url=facts.contact_details_url,
    )


async def open_case(
    ctx: RoutingContext,
    uow: RoutingWork,
    complaint_id: uuid.UUID,
    classification: ClassificationData,
) -> CaseRecord | None:
    """Route a classified complaint and open its case; None if it already has one.

    Raises ``ComplaintNotReceived`` when the complaint's received facts never arrived.
    """
    now = ctx.clock()
    # The received facts are removed once the case is open, so only their absence asks
    # whether a case exists (one statement fewer per routed complaint).
    facts = await uow.complaint_facts.get(complaint_id)
    if facts is None:
        if await uow.cases.exists_for_complaint(complaint_id):
            log.info("complaint %s already has a case; not routed again", complaint_id)
            return None
        raise ComplaintNotReceived(
            f"complaint {complaint_id} was classified but its ComplaintReceived never arrived"
        )
    held = uow.openings
    if held is None:
        rule_set, rule_versions = await uow.rules.rule_set()
    else:
        rule_set, rule_versions = held.rule_set, held.rule_versions
    profile = case_profile(facts, classification)
    routing_facts = profile.routing_facts()
    target = rule_set.route(routing_facts).department
    if held is not None and held.roster.covers(target, profile.subject):
        roster = held.roster
    else:
        roster = await Roster.load(uow, [target], subjects=[profile.subject])
    plan = plan_routing(routing_facts, rule_set, roster.departments, roster.members.values())
    complaint_at = min(facts.contact_at, facts.received_at, now)
    # The case counts from the complaint (its recorded_at says when routing ran), so work done
    # offline before routing caught up can still be logged with its real time.
    case = Case.open_from_plan(
        plan,
        Stamp(actor=ROUTING.actor, now=now, occurred_at=complaint_at),
        case_id=str(uuid.uuid4()),
        complaint_id=str(complaint_id),
        complaint_received_at=complaint_at,
    )
    record = CaseRecord(
        case=case,
        profile=dataclasses.replace(profile, rule_version=rule_versions[plan.decision.rule_id]),
        created_at=now,
    )
    if not await uow.add_case(record, ROUTING, now):
        return None
    roster.count(plan.assignment)  # the next case routed with this roster sees the new load
    await uow.complaint_facts.remove(complaint_id)
    return record


# ---- actions through the API ----------------------------------------------------------------


async def case_visible_to(
    uow: RoutingWork, case_id: uuid.UUID, principal: Principal, *, for_update: bool = False
) -> CaseRecord:
    """The case, if the caller may see it; others' answer the same 404 as a missing one.

    ``for_update`` row-locks it until commit, for a change.
    """
    record = await uow.cases.get(case_id, for_update=for_update)
    if record is None or not principal.may_see_department(record.case.department):
        raise NotFound(f"no case {case_id}", field="case_id")
    return record


def _with_assignment(command: c.CaseCommand, record: CaseRecord, roster: Roster) -> c.CaseCommand:
    """Fill in the level and assignee a transfer or escalation leads to, or check a chosen one."""
    case = record.case
    if isinstance(command, c.TransferCase):
        roster.department(command.to_department, field="to_department")
        asked = command.handler_level or case.handler_level
        level = roster.conflict(record.profile.subject, command.to_department).apply_to(asked)
        if command.assignee_id is not None:
            roster.check_assignable(command.assignee_id, command.to_department, level)
            return dataclasses.replace(command, handler_level=level)
        decision = roster.choose(command.to_department, level, case.excluded_member_ids)
        return dataclasses.replace(command, handler_level=level, assignee_id=decision.assignee_id)
    if isinstance(command, c.EscalateCase):
        level = command.to_level or case.handler_level.one_up()
        if command.assignee_id is not None:
            roster.check_assignable(command.assignee_id, case.department, level)
            return command
        if level == case.handler_level:
            return command  # capped at the top: the domain keeps the assignee
        decision = roster.choose(case.department, level, case.excluded_member_ids)
        return dataclasses.replace(command, assignee_id=decision.assignee_id)
    if isinstance(command, c.AssignCase) and command.assignee_id is not None:
        roster.check_assignable(command.assignee_id, case.department, case.handler_level)
    return command


def _assigns_in(command: c.CaseCommand, case: Case) -> tuple[str, str | None] | None:
    """The department a command assigns in and any hand-picked assignee; None if it does not."""
    if isinstance(command, c.TransferCase):
        return command.to_department, command.assignee_id
    if isinstance(command, c.EscalateCase | c.AssignCase):
        return case.department, command.assignee_id
    return None


def _arguments(command: c.CaseCommand) -> dict[str, Any]:
    """The command's fields as the Case method's keyword arguments."""
    fields = dataclasses.asdict(command)
    return {name: value for name, value in fields.items() if name not in _NOT_ARGUMENTS}


async def perform_action(
    ctx: RoutingContext,
    uow: RoutingWork,
    command: c.CaseCommand,
    principal: Principal,
) -> CaseRecord:
    """Carry out one workflow action for a caller, checking visibility, version and state."""
    now = ctx.clock()
    record = await case_visible_to(uow, uuid.UUID(command.case_id), principal, for_update=True)
    case = record.case
    if command.expected_version is not None:
        case.expect_version(command.expected_version)
    action, carry_out = CASE_ACTIONS[type(command)]
    if not case.can(action):
        # Refused before the roster is consulted, so the caller learns what is allowed.
        raise IllegalTransition(action, case.state, case.allowed_actions)
    assigning = _assigns_in(command, case)
    if assigning is not None:
        department, assignee = assigning
        roster = await Roster.load(
            uow, [department], subjects=[record.profile.subject], members=[assignee]
        )
        command = _with_assignment(command, record, roster)
    stamp = Stamp(actor=command.actor, now=now, occurred_at=command.occurred_at)
    carry_out(case, stamp, **_arguments(command))
    if action is CaseAction.REOPEN:
        await hand_over_if_away(uow, record, principal, now)
    await uow.save_case(record, principal, now)
    return record


async def hand_over_if_away(
    uow: RoutingWork, record: CaseRecord, principal: Principal, now: datetime
) -> None:
    """A reopened case whose assignee is away goes to an available peer, or the queue."""
    case = record.case
    if case.assignee_id is None:
        return
    away = case.assignee_id
    roster = await Roster.load(uow, [case.department], members=[away])
    if roster.is_available(away):
        return
    decision = roster.choose(case.department, case.handler_level, case.excluded_member_ids | {away})
    case.assign(
        Stamp(actor=principal.actor, now=now),
        assignee_id=decision.assignee_id,
        note=f"{away} is not available: {decision.reason}",
    )

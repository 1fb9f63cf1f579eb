"""The Case aggregate: one complaint's routed case, its workflow, history and events.

Pure Python, no I/O: callers pass in the current time (``now``) and every fact the domain
needs. The case enforces the workflow (``TRANSITIONS``) and collects the domain events it
produced in ``case.events``; the service layer translates them to contracts on commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from tousu_routing.domain import events
from tousu_routing.domain.assignment import RoutingPlan
from tousu_routing.domain.bookkeeping import CaseBookkeeping
from tousu_routing.domain.errors import ConflictOfInterest, InvalidCommand, MissingResolutionDetails
from tousu_routing.domain.vocabulary import (
    CaseAction,
    CaseState,
    ClosureReason,
    EscalationReason,
    HandlerLevel,
    optional_text,
    require_text,
)
from tousu_routing.domain.workflow import Stamp

E = TypeVar("E", bound=StrEnum)


class Case(CaseBookkeeping):
    """The routed case of one complaint: department, handler, workflow state and history.

    Every action takes a ``Stamp`` (who, and when) and its own facts. A successful one checks
    the transition table, validates ``occurred_at``, appends a ``Transition`` to ``history``,
    bumps ``version`` by one and appends a domain event to ``events``. Failed actions change
    nothing.

    ``occurred_at`` (when the work really happened, for work logged afterwards) defaults
    to ``now`` (when it is recorded) and must be: timezone-aware, not after ``now``, not
    before the complaint was received, and not before the previous transition's
    ``occurred_at`` (history stays in order).
    """

    # ---- creation -----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        stamp: Stamp,
        *,
        case_id: str,
        complaint_id: str,
        complaint_received_at: datetime,
        department: str,
        handler_level: HandlerLevel,
        rule_id: str,
        routing_reason: str,
        assignee_id: str | None = None,
        queued_reason: str | None = None,
        notify_management: bool = False,
        excluded_member_ids: Iterable[str] = (),
    ) -> Case:
        """Create a case in state ``routed`` (version 1) and record ``CaseRouted``."""
        case = cls(
            case_id=case_id,
            complaint_id=complaint_id,
            complaint_received_at=complaint_received_at,
            department=department,
            handler_level=handler_level,
            state=CaseState.ROUTED,
            rule_id=rule_id,
            routing_reason=routing_reason,
            notify_management=notify_management,
            excluded_member_ids=frozenset(excluded_member_ids),
        )
        if assignee_id is not None and assignee_id in case.excluded_member_ids:
            raise ConflictOfInterest(f"{assignee_id} is the subject of the complaint")
        step = case._step(CaseAction.ROUTE, stamp)
        case.assignee_id = assignee_id
        level = str(case.handler_level)
        details = {"rule_id": rule_id, "handler_level": level}
        case._record(step, None, CaseState.ROUTED, routing_reason, details)
        case._emit(
            step,
            events.CaseRouted,
            routing_reason,
            rule_id=rule_id,
            rule_reason=routing_reason,
            handler_level=level,
            assignee=assignee_id,
            queued_reason=queued_reason,
            notify_management=notify_management,
        )
        return case

    @classmethod
    def open_from_plan(
        cls,
        plan: RoutingPlan,
        stamp: Stamp,
        *,
        case_id: str,
        complaint_id: str,
        complaint_received_at: datetime,
    ) -> Case:
        """Create a case from a ``plan_routing`` result."""
        return cls.open(
            stamp,
            case_id=case_id,
            complaint_id=complaint_id,
            complaint_received_at=complaint_received_at,
            department=plan.department,
            handler_level=plan.handler_level,
            rule_id=plan.decision.rule_id,
            routing_reason=plan.reason,
            assignee_id=plan.assignment.assignee_id,
            queued_reason=None if plan.assignment.assignee_id else plan.assignment.reason,
            notify_management=plan.notify_management,
            excluded_member_ids=plan.conflict.excluded_member_ids,
        )

    # ---- workflow actions ---------------------------------------------------------------

    def acknowledge(self, stamp: Stamp, *, note: str | None = None) -> None:
        """The department takes the case: routed → acknowledged."""
        step = self._begin(CaseAction.ACKNOWLEDGE, stamp)
        self.acknowledged_at = step.when
        self._complete(step, events.CaseAcknowledged, note, assignee=self.assignee_id)

    def respond_to_customer(self, stamp: Stamp, *, note: str | None = None) -> None:
        """Record a response to the customer; the first one sets ``first_response_at``.

        The first response emits ``FirstResponseSent``; later ones emit
        ``CustomerResponseSent`` and leave ``first_response_at`` unchanged.
        """
        step = self._begin(CaseAction.RESPOND_TO_CUSTOMER, stamp)
        first = self.first_response_at is None
        if first:
            self.first_response_at = step.when
        event = events.FirstResponseSent if first else events.CustomerResponseSent
        self._complete(step, event, note, {"first": str(first).lower()})

    def start_investigation(self, stamp: Stamp, *, note: str | None = None) -> None:
        """Start verifying and investigating: acknowledged → investigating."""
        step = self._begin(CaseAction.START_INVESTIGATION, stamp)
        self._complete(step, events.InvestigationStarted, note)

    def record_root_cause(
        self,
        stamp: Stamp,
        *,
        root_cause: str,
        responsible_person: str | None = None,
        note: str | None = None,
    ) -> None:
        """Record the root cause (and optionally who is responsible) while investigating.

        Recording again replaces the earlier finding; the history keeps both. A responsible
        person left out keeps any earlier one.
        """
        step = self._begin(CaseAction.RECORD_ROOT_CAUSE, stamp)
        cause = require_text(root_cause, "root_cause")
        person = optional_text(responsible_person) or self.responsible_person
        self.root_cause = cause
        self.responsible_person = person
        details = {"root_cause": cause}
        if person:
            details["responsible_person"] = person
        self._complete(
            step,
            events.RootCauseRecorded,
            note,
            details,
            root_cause=cause,
            responsible_person=person,
        )

    def propose_solution(self, stamp: Stamp, *, solution: str, note: str | None = None) -> None:
        """Propose (or revise) a solution: investigating/solution_proposed → solution_proposed."""
        step = self._begin(CaseAction.PROPOSE_SOLUTION, stamp)
        text = require_text(solution, "solution")
        self.solution = text
        self._complete(step, events.SolutionProposed, note, {"solution": text}, solution=text)

    def resolve(
        self,
        stamp: Stamp,
        *,
        resolution: str,
        root_cause: str | None = None,
        responsible_person: str | None = None,
        note: str | None = None,
    ) -> None:
        """Carry out the solution: solution_proposed → resolved.

        Root cause and responsible person must be known: recorded earlier or given here
        (given values replace earlier ones). Otherwise ``MissingResolutionDetails``.
        """
        step = self._begin(CaseAction.RESOLVE, stamp)
        text = require_text(resolution, "resolution")
        cause = optional_text(root_cause) or self.root_cause
        person = optional_text(responsible_person) or self.responsible_person
        missing = [
            name
            for name, value in (("root_cause", cause), ("responsible_person", person))
            if not value
        ]
        if missing:
            raise MissingResolutionDetails(
                f"cannot resolve without {' and '.join(missing)}: record them first or "
                "give them with resolve"
            )
        assert cause is not None and person is not None  # narrowed by the check above
        self.root_cause, self.responsible_person = cause, person
        self.resolution = text
        self.resolved_at = step.when
        found = {"resolution": text, "root_cause": cause, "responsible_person": person}
        self._complete(step, events.CaseResolved, note, found, **found)

    def close(
        self,
        stamp: Stamp,
        *,
        close_reason: ClosureReason | str = ClosureReason.CUSTOMER_CONFIRMED,
        note: str | None = None,
    ) -> None:
        """Close a resolved case once the customer confirmed (or never answered): → closed."""
        step = self._begin(CaseAction.CLOSE, stamp)
        reason = _member(ClosureReason, close_reason, "close_reason")
        self.closed_at = step.when
        self.close_reason = reason
        why = {"close_reason": str(reason)}
        self._complete(step, events.CaseClosed, note, why, **why)

    def reopen(self, stamp: Stamp, *, comment: str) -> None:
        """The customer is not satisfied: resolved/closed → investigating, same department.

        The history records a ``reopen`` transition carrying the customer's comment;
        there is no resting ``reopened`` state. The resolution, resolution time and
        closure are cleared (the history keeps them); root cause, responsible person,
        assignee and first response time stay.
        """
        from_state = self.state
        step = self._begin(CaseAction.REOPEN, stamp)
        text = require_text(comment, "comment")
        self.reopen_count += 1
        self.resolution = None
        self.resolved_at = None
        self.closed_at = None
        self.close_reason = None
        self._complete(
            step,
            events.CaseReopened,
            text,
            reason=text,
            from_state=str(from_state),
            reopen_count=self.reopen_count,
        )

    def transfer(
        self,
        stamp: Stamp,
        *,
        to_department: str,
        reason: str,
        handler_level: HandlerLevel | str | None = None,
        assignee_id: str | None = None,
    ) -> None:
        """Move the case to another department; it goes back to ``routed`` there.

        History, findings and escalation count are kept; the acknowledgement is cleared
        because the new department must acknowledge it. The handler level stays unless
        one is given (the service recomputes conflict-of-interest floors for the new
        department). ``assignee_id`` None means the case waits in the new department's
        queue.
        """
        step = self._begin(CaseAction.TRANSFER, stamp)
        target = require_text(to_department, "to_department")
        why = require_text(reason, "reason")
        if target == self.department:
            raise InvalidCommand(f"the case is already in {target}")
        level = HandlerLevel(handler_level) if handler_level else self.handler_level
        self._refuse_conflicted(assignee_id)
        from_department = self.department
        self.department = target
        self.handler_level = level
        self.assignee_id = assignee_id
        self.acknowledged_at = None
        details = {
            "from_department": from_department,
            "to_department": target,
            "handler_level": str(level),
        }
        self._complete(
            step,
            events.CaseTransferred,
            why,
            details,
            from_department=from_department,
            reason=why,
            handler_level=str(level),
            assignee=assignee_id,
        )

    def escalate(
        self,
        stamp: Stamp,
        *,
        reason: EscalationReason | str = EscalationReason.MANUAL,
        assignee_id: str | None = None,
        to_level: HandlerLevel | str | None = None,
        note: str | None = None,
    ) -> None:
        """Raise the handler level (agent → … → executive); the state is unchanged.

        Without ``to_level`` the case rises one step; with it (the level an SLA escalation
        says the case must now have) it rises straight there, in one escalation, and a level
        that is not above the current one is refused. Below the top, the case goes to
        ``assignee_id`` at the new level, or waits in the queue at that level when None. A
        one-step escalation at the top (executive) is still recorded, with ``capped=True``
        on the event, but the level and (unless ``assignee_id`` is given) the assignee stay.
        """
        step = self._begin(CaseAction.ESCALATE, stamp)
        trigger = _member(EscalationReason, reason, "escalation reason")
        self._refuse_conflicted(assignee_id)
        from_level = self.handler_level
        target = self._escalation_target(to_level)
        capped = target == from_level
        if capped:
            if assignee_id is not None:
                self.assignee_id = assignee_id
        else:
            self.handler_level = target
            self.assignee_id = assignee_id
        self.escalation_level += 1
        details = {
            "from_level": str(from_level),
            "to_level": str(self.handler_level),
            "reason": str(trigger),
            "capped": str(capped).lower(),
        }
        self._complete(
            step,
            events.CaseEscalated,
            note,
            details,
            from_level=str(from_level),
            to_level=str(self.handler_level),
            reason=str(trigger),
            capped=capped,
            escalation_level=self.escalation_level,
            assignee=self.assignee_id,
        )

    def _escalation_target(self, to_level: HandlerLevel | str | None) -> HandlerLevel:
        """The level an escalation leads to: one step up, or the given higher level."""
        if to_level is None:
            return self.handler_level.one_up()
        level = _member(HandlerLevel, to_level, "level")
        if level <= self.handler_level:
            raise InvalidCommand(
                f"the case is already at {self.handler_level} level, not below {level}"
            )
        return level

    def add_note(self, stamp: Stamp, *, note: str) -> None:
        """Add a note without changing state (any state but closed)."""
        step = self._begin(CaseAction.ADD_NOTE, stamp)
        self._complete(step, events.CaseNoteAdded, require_text(note, "note"))

    def assign(self, stamp: Stamp, *, assignee_id: str | None, note: str | None = None) -> None:
        """Give the case to a person at its level, or back to the queue with None.

        Used when someone picks a queued case and when the assignee is marked absent.
        Never to a member the complaint is about (``ConflictOfInterest``).
        """
        step = self._begin(CaseAction.ASSIGN, stamp)
        self._refuse_conflicted(assignee_id)
        previous = self.assignee_id
        if assignee_id == previous:
            raise InvalidCommand(f"the case is already assigned to {previous or 'the queue'}")
        self.assignee_id = assignee_id
        details = {"from_assignee": previous or "", "assignee": assignee_id or ""}
        self._complete(
            step,
            events.CaseAssigned,
            note,
            details,
            from_assignee=previous,
            assignee=assignee_id,
            handler_level=str(self.handler_level),
        )


def _member(vocabulary: type[E], value: E | str, what: str) -> E:
    """``value`` as a member of ``vocabulary``, or ``InvalidCommand`` naming the choices."""
    try:
        return vocabulary(value)
    except ValueError:
        raise InvalidCommand(
            f"unknown {what} {value!r}; expected one of {[v.value for v in vocabulary]}"
        ) from None

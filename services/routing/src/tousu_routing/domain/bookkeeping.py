"""What every case action shares: the case's state, its history and the events it collected.

``CaseBookkeeping`` holds the facts of one routed case and the bookkeeping each workflow step
does (check the transition, record it in the history, bump the version, collect the domain
event). The actions themselves, and the rules each adds, are the ``Case`` aggregate's
(``case.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from tousu_routing.domain import events
from tousu_routing.domain.errors import ConflictOfInterest, IllegalTransition, VersionConflict
from tousu_routing.domain.vocabulary import (
    CaseAction,
    CaseState,
    ClosureReason,
    HandlerLevel,
    optional_text,
    require_text,
)
from tousu_routing.domain.workflow import (
    TRANSITIONS,
    Stamp,
    Transition,
    allowed_actions,
    happened_at,
    require_aware,
)


@dataclass(frozen=True, kw_only=True)
class Step:
    """One action under way: what, by whom, when it happened (``when``) and was logged (``now``)."""

    action: CaseAction
    actor: str
    when: datetime
    now: datetime


class CaseBookkeeping:
    """A case's facts, history and collected events, and the steps every action takes."""

    def __init__(
        self,
        *,
        case_id: str,
        complaint_id: str,
        complaint_received_at: datetime,
        department: str,
        handler_level: HandlerLevel,
        state: CaseState,
        version: int = 0,
        assignee_id: str | None = None,
        history: Iterable[Transition] = (),
        rule_id: str | None = None,
        routing_reason: str | None = None,
        notify_management: bool = False,
        excluded_member_ids: Iterable[str] = (),
        root_cause: str | None = None,
        responsible_person: str | None = None,
        solution: str | None = None,
        resolution: str | None = None,
        escalation_level: int = 0,
        reopen_count: int = 0,
        acknowledged_at: datetime | None = None,
        first_response_at: datetime | None = None,
        resolved_at: datetime | None = None,
        closed_at: datetime | None = None,
        close_reason: ClosureReason | None = None,
    ) -> None:
        require_aware(complaint_received_at, "complaint_received_at")
        self.case_id = case_id
        self.complaint_id = complaint_id
        self.complaint_received_at = complaint_received_at
        self.department = department
        self.handler_level = HandlerLevel(handler_level)
        self.state = CaseState(state)
        self.version = version
        self.assignee_id = assignee_id
        self.history: list[Transition] = list(history)
        self.rule_id = rule_id
        self.routing_reason = routing_reason
        self.notify_management = notify_management
        # People the complaint is about: never assigned, whatever happens to the case.
        self.excluded_member_ids = frozenset(excluded_member_ids)
        self.root_cause = root_cause
        self.responsible_person = responsible_person
        self.solution = solution
        self.resolution = resolution
        # How many escalation steps were recorded (capped ones included).
        self.escalation_level = escalation_level
        self.reopen_count = reopen_count
        self.acknowledged_at = acknowledged_at
        self.first_response_at = first_response_at
        self.resolved_at = resolved_at
        self.closed_at = closed_at
        self.close_reason = ClosureReason(close_reason) if close_reason else None
        self.events: list[events.CaseEvent] = []

    def __repr__(self) -> str:
        return (
            f"<Case {self.case_id} {self.state} in {self.department} at {self.handler_level}"
            f" v{self.version}>"
        )

    # ---- queries ------------------------------------------------------------------------

    @property
    def allowed_actions(self) -> tuple[CaseAction, ...]:
        """The actions the workflow allows in the current state."""
        return allowed_actions(self.state)

    def can(self, action: CaseAction) -> bool:
        """True when ``action`` is allowed in the current state."""
        return self.state in TRANSITIONS.get(CaseAction(action), {})

    def expect_version(self, expected: int) -> None:
        """Raise ``VersionConflict`` unless the case is at ``expected`` (optimistic locking)."""
        if expected != self.version:
            raise VersionConflict(expected=expected, actual=self.version)

    # ---- internals ----------------------------------------------------------------------

    def _begin(self, action: CaseAction, stamp: Stamp) -> Step:
        """Check the action is allowed now, by someone, at a sane time; return the step."""
        if self.state not in TRANSITIONS[action]:
            raise IllegalTransition(action, self.state, self.allowed_actions)
        return self._step(action, stamp)

    def _step(self, action: CaseAction, stamp: Stamp) -> Step:
        """The step ``stamp`` describes, refusing a missing actor or an impossible time."""
        require_text(stamp.actor, "actor")
        when = happened_at(stamp.now, stamp.occurred_at, self.complaint_received_at, self.history)
        return Step(action=action, actor=stamp.actor, when=when, now=stamp.now)

    def _refuse_conflicted(self, assignee_id: str | None) -> None:
        """Raise ``ConflictOfInterest`` if the would-be assignee is the complaint's subject."""
        if assignee_id is not None and assignee_id in self.excluded_member_ids:
            raise ConflictOfInterest(
                f"{assignee_id} is the subject of the complaint and cannot handle it"
            )

    def _complete(
        self,
        step: Step,
        event_type: type[events.CaseEvent],
        note: str | None,
        details: Mapping[str, str] | None = None,
        **fields: object,
    ) -> None:
        """Move to the action's target state, record the transition and collect the event."""
        from_state = self.state
        self._record(step, from_state, TRANSITIONS[step.action][from_state], note, details or {})
        self._emit(step, event_type, note, **fields)

    def _record(
        self,
        step: Step,
        from_state: CaseState | None,
        to_state: CaseState,
        note: str | None,
        details: Mapping[str, str],
    ) -> None:
        """Append the history entry, set the state and bump the version."""
        self.state = to_state
        self.version += 1
        self.history.append(
            Transition(
                action=step.action,
                from_state=from_state,
                to_state=to_state,
                actor=step.actor,
                occurred_at=step.when,
                recorded_at=step.now,
                version=self.version,
                note=optional_text(note),
                details=dict(details),
            )
        )

    def _emit(
        self,
        step: Step,
        event_type: type[events.CaseEvent],
        note: str | None,
        **fields: object,
    ) -> None:
        """Append a domain event stamped with the case's identity and new version."""
        self.events.append(
            event_type(
                case_id=self.case_id,
                complaint_id=self.complaint_id,
                department=self.department,
                version=self.version,
                actor=step.actor,
                occurred_at=step.when,
                recorded_at=step.now,
                note=optional_text(note),
                **fields,
            )
        )

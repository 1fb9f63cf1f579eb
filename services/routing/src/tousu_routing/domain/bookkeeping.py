"""What every case action shares: the case's state, its history and the events it collected.

``CaseBookkeeping`` holds the facts of one routed case and the bookkeeping each workflow step
does (check the transition, record it in the history, bump the version, collect the domain
event). The actions themselves, and the rules each adds, are the ``Case`` aggregate's
(``case.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from tousu_routing.domain.errors import ConflictOfInterest, IllegalTransition, VersionConflict
from tousu_routing.domain.events import CaseEvent
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


# A dataclass states each fact once; identity equality (eq=False) as befits an aggregate,
# and __post_init__ normalises what the database or a caller hands over as plain values.
@dataclass(eq=False, kw_only=True)
class CaseBookkeeping:
    """A case's facts, history and collected events, and the steps every action takes."""

    case_id: str
    complaint_id: str
    complaint_received_at: datetime
    department: str
    handler_level: HandlerLevel
    state: CaseState
    version: int = 0
    assignee_id: str | None = None
    history: list[Transition] = field(default_factory=list)
    rule_id: str | None = None
    routing_reason: str | None = None
    notify_management: bool = False
    # People the complaint is about: never assigned, whatever happens to the case.
    excluded_member_ids: frozenset[str] = frozenset()
    root_cause: str | None = None
    responsible_person: str | None = None
    solution: str | None = None
    resolution: str | None = None
    # How many escalation steps were recorded (capped ones included).
    escalation_level: int = 0
    reopen_count: int = 0
    acknowledged_at: datetime | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: ClosureReason | None = None
    events: list[CaseEvent] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        require_aware(self.complaint_received_at, "complaint_received_at")
        self.handler_level = HandlerLevel(self.handler_level)
        self.state = CaseState(self.state)
        # A copy: the case appends to its own history, never to the caller's list.
        self.history = list(self.history)
        self.excluded_member_ids = frozenset(self.excluded_member_ids)
        self.close_reason = ClosureReason(self.close_reason) if self.close_reason else None

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
        event_type: type[CaseEvent],
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
        event_type: type[CaseEvent],
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

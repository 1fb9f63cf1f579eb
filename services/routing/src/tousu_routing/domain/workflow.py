"""The case workflow as data: which action is allowed in which state and where it leads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from tousu_routing.domain.errors import InvalidCommand, InvalidOccurredAt
from tousu_routing.domain.vocabulary import CaseAction, CaseState

_S = CaseState
_A = CaseAction
_NOT_CLOSED = tuple(s for s in CaseState if s is not CaseState.CLOSED)
_BEFORE_RESOLUTION = (_S.ROUTED, _S.ACKNOWLEDGED, _S.INVESTIGATING, _S.SOLUTION_PROPOSED)

TRANSITIONS: Mapping[CaseAction, Mapping[CaseState, CaseState]] = MappingProxyType(
    {
        _A.ACKNOWLEDGE: {_S.ROUTED: _S.ACKNOWLEDGED},
        _A.RESPOND_TO_CUSTOMER: {
            _S.ACKNOWLEDGED: _S.ACKNOWLEDGED,
            _S.INVESTIGATING: _S.INVESTIGATING,
        },
        _A.START_INVESTIGATION: {_S.ACKNOWLEDGED: _S.INVESTIGATING},
        _A.RECORD_ROOT_CAUSE: {_S.INVESTIGATING: _S.INVESTIGATING},
        # A proposal may be revised before it is carried out.
        _A.PROPOSE_SOLUTION: {
            _S.INVESTIGATING: _S.SOLUTION_PROPOSED,
            _S.SOLUTION_PROPOSED: _S.SOLUTION_PROPOSED,
        },
        _A.RESOLVE: {_S.SOLUTION_PROPOSED: _S.RESOLVED},
        _A.CLOSE: {_S.RESOLVED: _S.CLOSED},
        _A.REOPEN: {_S.RESOLVED: _S.INVESTIGATING, _S.CLOSED: _S.INVESTIGATING},
        _A.TRANSFER: {state: _S.ROUTED for state in _BEFORE_RESOLUTION},
        _A.ESCALATE: {state: state for state in _NOT_CLOSED},
        _A.ADD_NOTE: {state: state for state in _NOT_CLOSED},
        _A.ASSIGN: {state: state for state in _NOT_CLOSED},
    }
)
"""The workflow as data: action → {state it is allowed in: state it leads to}.

``route`` is absent: it creates the case (``Case.open``) rather than moving one.
"""

WORKFLOW_ACTIONS: tuple[CaseAction, ...] = tuple(TRANSITIONS)


def allowed_actions(state: CaseState) -> tuple[CaseAction, ...]:
    """The actions the workflow allows in ``state``, in declaration order."""
    return tuple(action for action, moves in TRANSITIONS.items() if state in moves)


@dataclass(frozen=True)
class Transition:
    """One entry of a case's history: what was done, by whom, when it happened and was logged."""

    action: CaseAction
    from_state: CaseState | None
    to_state: CaseState
    actor: str
    occurred_at: datetime
    recorded_at: datetime
    version: int
    note: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Stamp:
    """Who takes an action and when: recorded at ``now``, done at ``occurred_at`` (None: now).

    Every case action takes one; ``occurred_at`` is for work logged afterwards.
    """

    actor: str
    now: datetime
    occurred_at: datetime | None = None


def require_aware(value: datetime, what: str) -> None:
    """Refuse naive datetimes: comparing them with aware ones is a bug waiting to happen."""
    if value.tzinfo is None or value.utcoffset() is None:
        error = InvalidOccurredAt if what == "occurred_at" else InvalidCommand
        raise error(f"{what} must carry a time zone, got {value.isoformat()}")


def happened_at(
    now: datetime,
    occurred_at: datetime | None,
    received_at: datetime,
    history: Sequence[Transition],
) -> datetime:
    """When an action happened (default ``now``), refusing times in the future or out of order.

    It must be timezone-aware, not after ``now``, not before the complaint was received and
    not before the previous step, so the history stays in order.
    """
    require_aware(now, "now")
    when = now if occurred_at is None else occurred_at
    require_aware(when, "occurred_at")
    if when > now:
        raise InvalidOccurredAt(
            f"occurred_at {when.isoformat()} is in the future (now is {now.isoformat()})"
        )
    if when < received_at:
        raise InvalidOccurredAt(
            f"occurred_at {when.isoformat()} is before the complaint was received "
            f"({received_at.isoformat()})"
        )
    if history and when < history[-1].occurred_at:
        last = history[-1]
        raise InvalidOccurredAt(
            f"occurred_at {when.isoformat()} is before the previous step "
            f"({last.action} at {last.occurred_at.isoformat()})"
        )
    return when

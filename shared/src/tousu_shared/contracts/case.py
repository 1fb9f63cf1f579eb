"""Events routing publishes on the case stream (and, per department, its routed-case topic)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from tousu_shared.contracts.base import Event
from tousu_shared.contracts.vocabulary import Category, HandlerLevel, Severity, Urgency


class _CaseEvent(Event):
    topic: ClassVar[str] = "case.events"

    department: str
    actor: str
    occurred_at: datetime
    recorded_at: datetime
    case_version: int


class CaseRouted(_CaseEvent):
    """The case was given to a department at a handler level."""

    rule_id: str
    rule_reason: str
    handler_level: HandlerLevel
    assignee: str | None = None
    queued_reason: str | None = None
    notify_management: bool = False
    category: Category
    severity: Severity
    urgency: Urgency
    contact_details_url: str


class CaseAcknowledged(_CaseEvent):
    """The department took the case."""


class FirstResponseSent(_CaseEvent):
    """The customer got a first response."""


class InvestigationStarted(_CaseEvent):
    """Someone started verifying and investigating the complaint."""


class RootCauseRecorded(_CaseEvent):
    """The root cause was found."""

    root_cause: str


class SolutionProposed(_CaseEvent):
    """A solution was proposed to the customer."""

    solution: str


class CaseResolved(_CaseEvent):
    """The solution was carried out."""

    resolution: str
    root_cause: str
    responsible_person: str


class CaseClosed(_CaseEvent):
    """The customer confirmed the result, or the survey went unanswered."""

    close_reason: Literal["customer_confirmed", "no_response", "manual"]


class CaseReopened(_CaseEvent):
    """The customer was not satisfied; the case is investigated again."""

    reason: str


class CaseTransferred(_CaseEvent):
    """The case moved to another department, keeping its history."""

    from_department: str
    reason: str


class CaseEscalated(_CaseEvent):
    """The case was raised one handler level."""

    from_level: HandlerLevel
    to_level: HandlerLevel
    reason: str
    # Appended, optional: what the reason code stands for (milestone, repeat, ...).
    note: str | None = None


class CustomerResponseSent(_CaseEvent):
    """The customer got a further response after the first one."""


class CaseNoteAdded(_CaseEvent):
    """Someone added a note to the case without changing its state."""

    note: str


class CaseAssigned(_CaseEvent):
    """The case was given to a person, or put back in the department queue (no assignee)."""

    from_assignee: str | None = None
    assignee: str | None = None
    handler_level: HandlerLevel

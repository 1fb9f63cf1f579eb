"""Domain events a case records; ``messages`` maps them onto the shared Kafka contracts.

Field names follow ``tousu_shared.contracts.case`` where the two overlap, so the mapping
stays mechanical. No event carries customer personal data: only ids, codes and the
staff's own notes. Each event is a frozen, keyword-only dataclass (a ``KeywordRecord``).
"""

from __future__ import annotations

from datetime import datetime

from tousu_shared.frozen_records import KeywordRecord


class CaseEvent(KeywordRecord):
    """Something that happened to one case: who did it, when, and why."""

    case_id: str
    complaint_id: str
    # The department that owns the case after the event (its topic receives it).
    department: str
    # The case version the event produced; consumers use it to order and deduplicate.
    version: int
    actor: str
    occurred_at: datetime
    recorded_at: datetime
    note: str | None = None

    @property
    def event_type(self) -> str:
        """The event's name on the wire, e.g. ``CaseRouted``."""
        return type(self).__name__


class CaseRouted(CaseEvent):
    """The case was given to a department at a handler level."""

    rule_id: str
    rule_reason: str
    handler_level: str
    assignee: str | None
    queued_reason: str | None
    notify_management: bool


class CaseAcknowledged(CaseEvent):
    """The department took the case."""

    assignee: str | None


class FirstResponseSent(CaseEvent):
    """The customer got the first response (recorded once per case)."""


class CustomerResponseSent(CaseEvent):
    """The customer got a further response after the first one."""


class InvestigationStarted(CaseEvent):
    """Someone started verifying and investigating the complaint."""


class RootCauseRecorded(CaseEvent):
    """The root cause (and possibly the responsible person) was recorded."""

    root_cause: str
    responsible_person: str | None


class SolutionProposed(CaseEvent):
    """A solution was proposed to the customer."""

    solution: str


class CaseResolved(CaseEvent):
    """The solution was carried out."""

    resolution: str
    root_cause: str
    responsible_person: str


class CaseClosed(CaseEvent):
    """The customer confirmed the result, the survey went unanswered, or staff closed it."""

    close_reason: str


class CaseReopened(CaseEvent):
    """The customer was not satisfied; the case is investigated again."""

    reason: str
    from_state: str
    reopen_count: int


class CaseTransferred(CaseEvent):
    """The case moved to another department (``department``), keeping its history."""

    from_department: str
    reason: str
    handler_level: str
    assignee: str | None


class CaseEscalated(CaseEvent):
    """The case was raised one handler level, or recorded as escalated at the top (capped)."""

    from_level: str
    to_level: str
    reason: str
    # True when the case was already at the top level: recorded, but the level did not move.
    capped: bool
    escalation_level: int
    assignee: str | None


class CaseNoteAdded(CaseEvent):
    """Someone added a note to the case without changing its state."""


class CaseAssigned(CaseEvent):
    """The case was given to a person, or put back in the queue (``assignee`` is None)."""

    from_assignee: str | None
    assignee: str | None
    handler_level: str

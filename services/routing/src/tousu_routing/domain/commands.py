"""Commands: what a caller asks the routing service to do, one dataclass per use case.

Each is a frozen, keyword-only dataclass (a ``KeywordRecord``).

Thin on purpose: the service layer loads the case, checks ``expected_version`` with
``Case.expect_version`` when given, and calls the matching ``Case`` method.
"""

from __future__ import annotations

from datetime import datetime

from tousu_shared.frozen_records import KeywordRecord

from tousu_routing.domain.rules import RoutingFacts
from tousu_routing.domain.vocabulary import ClosureReason, EscalationReason, HandlerLevel


class RouteCase(KeywordRecord):
    """Open a case for a classified complaint and route it."""

    case_id: str
    complaint_id: str
    complaint_received_at: datetime
    facts: RoutingFacts
    actor: str
    occurred_at: datetime | None = None


class CaseCommand(KeywordRecord):
    """Fields every action on an existing case carries."""

    case_id: str
    actor: str
    # The version the caller last saw (If-Match); None skips the optimistic check.
    expected_version: int | None = None
    # When the work really happened, for work logged afterwards; None means now.
    occurred_at: datetime | None = None


class AcknowledgeCase(CaseCommand):
    """The department takes the case."""

    note: str | None = None


class RespondToCustomer(CaseCommand):
    """Someone responded to the customer."""

    note: str | None = None


class StartInvestigation(CaseCommand):
    """Start verifying and investigating the complaint."""

    note: str | None = None


class RecordRootCause(CaseCommand):
    """Record what caused the problem and, if known, who is responsible."""

    root_cause: str
    responsible_person: str | None = None
    note: str | None = None


class ProposeSolution(CaseCommand):
    """Propose (or revise) a solution to the customer."""

    solution: str
    note: str | None = None


class ResolveCase(CaseCommand):
    """The solution was carried out; root cause and responsible person may come with it."""

    resolution: str
    root_cause: str | None = None
    responsible_person: str | None = None
    note: str | None = None


class CloseCase(CaseCommand):
    """Close a resolved case (customer confirmed, never answered, or by staff)."""

    close_reason: ClosureReason = ClosureReason.CUSTOMER_CONFIRMED
    note: str | None = None


class ReopenCase(CaseCommand):
    """The customer is not satisfied; investigate again with their comment."""

    comment: str


class TransferCase(CaseCommand):
    """Move the case to another department."""

    to_department: str
    reason: str
    handler_level: HandlerLevel | None = None
    assignee_id: str | None = None


class EscalateCase(CaseCommand):
    """Raise the handler level: one step by hand, or to the level an SLA escalation names."""

    reason: EscalationReason = EscalationReason.MANUAL
    assignee_id: str | None = None
    # The level the case must now have (an SLA escalation); None raises it one step.
    to_level: HandlerLevel | None = None
    note: str | None = None


class AddNote(CaseCommand):
    """Add a note to the case."""

    note: str


class AssignCase(CaseCommand):
    """Give the case to a person, or back to the queue with ``assignee_id=None``."""

    assignee_id: str | None
    note: str | None = None

"""The routing domain's own vocabulary, beside the shared one it imports.

Category, Channel, Severity, CustomerTier, RiskFlag and HandlerLevel are defined once in
``tousu_shared.contracts.vocabulary``; what only routing speaks about (members'
availability, case states and actions, why a case was escalated or closed) lives here, with
the small text helpers every domain module uses.
"""

from __future__ import annotations

from enum import StrEnum

from tousu_shared.contracts.vocabulary import (
    Category,
    Channel,
    CustomerTier,
    HandlerLevel,
    RiskFlag,
    Severity,
)

from tousu_routing.domain.errors import InvalidCommand

__all__ = [
    "CATEGORIES",
    "CHANNELS",
    "CUSTOMER_TIERS",
    "RISK_FLAGS",
    "SEVERITIES",
    "Availability",
    "CaseAction",
    "CaseState",
    "ClosureReason",
    "EscalationReason",
    "HandlerLevel",
    "Severity",
    "normalise",
    "optional_text",
    "require_text",
    "severity_of",
]


class Availability(StrEnum):
    """Whether a member can take new cases right now."""

    AVAILABLE = "available"
    ABSENT = "absent"
    OFF_SHIFT = "off_shift"


class CaseState(StrEnum):
    """Where a case rests in the workflow.

    There is no resting ``reopened`` state: reopening is recorded as a ``reopen``
    transition in the history and the case goes straight back to ``investigating``.
    ``received`` belongs to intake; a case starts life ``routed``.
    """

    ROUTED = "routed"
    ACKNOWLEDGED = "acknowledged"
    INVESTIGATING = "investigating"
    SOLUTION_PROPOSED = "solution_proposed"
    RESOLVED = "resolved"
    CLOSED = "closed"


class CaseAction(StrEnum):
    """Something done to a case; every history entry names one."""

    ROUTE = "route"
    ACKNOWLEDGE = "acknowledge"
    RESPOND_TO_CUSTOMER = "respond_to_customer"
    START_INVESTIGATION = "start_investigation"
    RECORD_ROOT_CAUSE = "record_root_cause"
    PROPOSE_SOLUTION = "propose_solution"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    TRANSFER = "transfer"
    ESCALATE = "escalate"
    ADD_NOTE = "add_note"
    ASSIGN = "assign"


class EscalationReason(StrEnum):
    """Why a case was escalated."""

    SLA_BREACH = "sla_breach"
    MANUAL = "manual"
    # A person raised the severity, and the new severity calls for a higher level.
    RECLASSIFICATION = "reclassification"


class ClosureReason(StrEnum):
    """Why a case was closed (matches the shared ``CaseClosed.close_reason``)."""

    CUSTOMER_CONFIRMED = "customer_confirmed"
    NO_RESPONSE = "no_response"
    MANUAL = "manual"


# Closed vocabularies (the shared contracts): a rule naming anything else is a typo that would
# silently never match, so rule validation refuses it. Facts are not checked: an unknown
# value simply matches no specific rule and falls through to the default queue.
CATEGORIES = frozenset(c.value for c in Category)
CHANNELS = frozenset(c.value for c in Channel)
CUSTOMER_TIERS = frozenset(t.value for t in CustomerTier)
RISK_FLAGS = frozenset(f.value for f in RiskFlag)
SEVERITIES = frozenset(s.value for s in Severity)


def normalise(value: object) -> str | None:
    """Trim and case-fold a code so 'East ' and 'east' match; blank becomes None."""
    if value is None:
        return None
    text = str(value).strip().casefold()
    return text or None


def require_text(value: str | None, what: str) -> str:
    """Return the stripped text, refusing a missing or blank value."""
    if value is None or not str(value).strip():
        raise InvalidCommand(f"{what} is required")
    return str(value).strip()


def optional_text(value: str | None) -> str | None:
    """Stripped text, or None for missing or blank."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def severity_of(value: object) -> Severity:
    """The severity a code names (any case, any surrounding blanks), refusing unknown ones."""
    code = normalise(value)
    if code not in SEVERITIES:
        raise InvalidCommand(f"unknown severity {value!r}; expected one of {sorted(SEVERITIES)}")
    return Severity(code)

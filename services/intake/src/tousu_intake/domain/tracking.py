"""What the customer's tracking page follows of the case and its SLA clocks.

Intake mirrors the case's status and the due dates of its milestones so that a customer
(and a department-bound reader) can see them without asking routing or the SLA monitor.
Due dates are kept as ``{milestone: ISO due time}``; a paused milestone is kept with
``None`` (shown as paused, without a due date) until it resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from tousu_shared.contracts import Event
from tousu_shared.contracts import case as case_events
from tousu_shared.contracts import sla as sla_events

# The case events the tracking page follows (all name the case's department and time).
CaseStatusEvent = (
    case_events.CaseRouted
    | case_events.CaseTransferred
    | case_events.CaseAcknowledged
    | case_events.InvestigationStarted
    | case_events.CaseReopened
    | case_events.SolutionProposed
    | case_events.CaseResolved
    | case_events.CaseClosed
)

# The customer-visible status each case event leads to.
STATUS_AFTER: dict[type[Event], str] = {
    case_events.CaseRouted: "routed",
    case_events.CaseTransferred: "routed",
    case_events.CaseAcknowledged: "acknowledged",
    case_events.InvestigationStarted: "investigating",
    case_events.CaseReopened: "investigating",
    case_events.SolutionProposed: "solution_proposed",
    case_events.CaseResolved: "resolved",
    case_events.CaseClosed: "closed",
}

# What each SLA event does to the milestone's shown due date:
# "start" shows it, "move" changes a shown one (a retarget, or a resume after a pause),
# "pause" keeps it shown without a due date, "drop" removes it (met or no longer applies).
DEADLINE_EFFECT: dict[type[Event], str] = {
    sla_events.SlaMilestoneStarted: "start",
    sla_events.SlaMilestoneRetargeted: "move",
    sla_events.SlaMilestoneResumed: "move",
    sla_events.SlaMilestonePaused: "pause",
    sla_events.SlaMet: "drop",
    sla_events.SlaMilestoneCancelled: "drop",
}

# What a customer is told about each stage of their complaint.
CUSTOMER_NEXT_STEP = {
    "received": "We have recorded your complaint and are assigning it to the right team.",
    "routed": "Your complaint is with the responsible department, who will contact you.",
    "acknowledged": "The responsible department has taken your complaint.",
    "investigating": "We are verifying the problem and looking for its cause.",
    "solution_proposed": "We have proposed a solution; please tell us if it works for you.",
    "resolved": "The solution has been carried out; we will call to confirm you are satisfied.",
    "closed": "Your complaint is closed. Thank you for telling us.",
    "resolved_on_first_contact": "Your complaint was resolved when you contacted us.",
}
DEFAULT_NEXT_STEP = "We are working on your complaint."


def next_step(status: str) -> str:
    """The sentence the tracking page shows for a status."""
    return CUSTOMER_NEXT_STEP.get(status, DEFAULT_NEXT_STEP)


# The SLA events the tracking page follows (all name a milestone and carry its due time).
DeadlineEvent = (
    sla_events.SlaMilestoneStarted
    | sla_events.SlaMilestoneRetargeted
    | sla_events.SlaMilestoneResumed
    | sla_events.SlaMilestonePaused
    | sla_events.SlaMet
    | sla_events.SlaMilestoneCancelled
)


def due_dates_after(due_dates: dict[str, Any], event: DeadlineEvent) -> dict[str, Any]:
    """The shown due dates once an SLA event is applied (a new dict; the input is kept).

    Only a milestone that started is moved or paused: an event about a milestone that was
    already met or cancelled does not bring it back.
    """
    effect = DEADLINE_EFFECT[type(event)]
    milestone, due_at = event.milestone, event.due_at
    changed = dict(due_dates)
    if effect == "drop":
        changed.pop(milestone, None)
    elif effect == "start" or milestone in changed:
        shown = None if effect == "pause" or due_at is None else due_at.astimezone(UTC)
        changed[milestone] = shown.isoformat() if shown else None
    return changed


@dataclass(frozen=True)
class Deadlines:
    """The due dates a reader sees: running milestones with their due time, paused ones apart."""

    due: dict[str, str]
    paused: list[str]

    @classmethod
    def of(cls, due_dates: dict[str, Any]) -> Deadlines:
        """Split the stored due dates into running and paused milestones."""
        return cls(
            due={name: at for name, at in due_dates.items() if at is not None},
            paused=sorted(name for name, at in due_dates.items() if at is None),
        )

"""Contract events as the producing services would publish them, for any service's tests.

Every consumer's tests (routing, SLA, feedback, intake, analytics, the security replays) feed
their service the events of intake, routing and the SLA monitor; the fields none of them reads
are written once here, and a test names only what it checks (on pytest's pythonpath, as
intake_factories is).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from tousu_shared.contracts import Event
from tousu_shared.contracts.case import CaseRouted
from tousu_shared.contracts.complaint import ComplaintReceived, CustomerMessageAdded
from tousu_shared.contracts.sla import (
    SlaMilestonePaused,
    SlaMilestoneRetargeted,
    SlaMilestoneStarted,
)

E = TypeVar("E", bound=Event)


def complaint_received(complaint_id: uuid.UUID, at: datetime, **fields: Any) -> ComplaintReceived:
    """Intake's event for a complaint contacted and received at ``at`` (no personal data)."""
    values: dict[str, Any] = {
        "tracking_code": "TS-1",
        "channel": "phone",
        "contact_at": at,
        "received_at": at,
        "customer_ref": "cust-1",
        "customer_tier": "regular",
        "contact_details_url": "https://intake/contact",
        **fields,
    }
    return ComplaintReceived(complaint_id=complaint_id, **values)


def customer_message_added(complaint_id: uuid.UUID, n: int, **fields: Any) -> CustomerMessageAdded:
    """Intake's event for a customer's message (message id ``n``) on the web form, added now."""
    values: dict[str, Any] = {"channel": "web_form", "added_at": datetime.now(UTC), **fields}
    return CustomerMessageAdded(complaint_id=complaint_id, message_id=str(n), **values)


def case_event(cls: type[E], complaint_id: uuid.UUID, at: datetime, **fields: Any) -> E:
    """One of routing's case events, occurred and recorded at ``at``."""
    values: dict[str, Any] = {
        "department": "quality",
        "actor": "agent:li",
        "case_version": 1,
        **fields,
    }
    return cls(complaint_id=complaint_id, occurred_at=at, recorded_at=at, **values)


def case_routed(complaint_id: uuid.UUID, at: datetime, **fields: Any) -> CaseRouted:
    """Routing's first event of a case: a general, routine product-quality complaint sent to
    quality's agents unless ``fields`` say otherwise."""
    values: dict[str, Any] = {
        "actor": "system:routing",
        "rule_id": "r1",
        "rule_reason": "test",
        "handler_level": "agent",
        "category": "product_quality",
        "severity": "general",
        "urgency": "routine",
        "contact_details_url": "https://intake/contact",
        **fields,
    }
    return case_event(CaseRouted, complaint_id, at, **values)


def milestone_started(
    complaint_id: uuid.UUID, milestone: str, started_at: datetime, due_at: datetime, **fields: Any
) -> SlaMilestoneStarted:
    """The SLA monitor started a milestone's clock (on the default policy unless told)."""
    values: dict[str, Any] = {"policy": "default", **fields}
    return SlaMilestoneStarted(
        complaint_id=complaint_id,
        milestone=milestone,
        started_at=started_at,
        due_at=due_at,
        **values,
    )


def milestone_retargeted(
    complaint_id: uuid.UUID, milestone: str, due_at: datetime, **fields: Any
) -> SlaMilestoneRetargeted:
    """A milestone's deadline moved, as when the urgent classification chose a new policy."""
    values: dict[str, Any] = {"policy": "immediate", **fields}
    return SlaMilestoneRetargeted(
        complaint_id=complaint_id, milestone=milestone, due_at=due_at, **values
    )


def milestone_paused(
    complaint_id: uuid.UUID, milestone: str, paused_at: datetime, reason: str, **fields: Any
) -> SlaMilestonePaused:
    """An agent paused a milestone's clock while the case waits for the customer."""
    values: dict[str, Any] = {"policy": "immediate", "paused_by": "agent:li", **fields}
    return SlaMilestonePaused(
        complaint_id=complaint_id,
        milestone=milestone,
        paused_at=paused_at,
        reason=reason,
        **values,
    )


def sla_event(cls: type[E], complaint_id: uuid.UUID, milestone: str, **fields: Any) -> E:
    """Any of the SLA monitor's events about a milestone, on the immediate policy unless told."""
    return cls(complaint_id=complaint_id, milestone=milestone, **{"policy": "immediate", **fields})

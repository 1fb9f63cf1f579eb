"""Events the SLA monitor publishes on the SLA stream."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from tousu_shared.contracts.base import Event


class _SlaEvent(Event):
    topic: ClassVar[str] = "sla.events"

    milestone: str
    policy: str
    due_at: datetime


class SlaMilestoneStarted(_SlaEvent):
    """A milestone's clock started."""

    started_at: datetime


class SlaAtRisk(_SlaEvent):
    """A milestone reached a warning fraction of its target."""

    fraction: float
    late: bool = False


class SlaBreached(_SlaEvent):
    """A milestone passed its due time unmet."""

    late: bool = False


class SlaMet(_SlaEvent):
    """A milestone was met; elapsed is business time, pauses excluded."""

    met_at: datetime
    elapsed_seconds: float


class SlaEscalated(_SlaEvent):
    """A breached milestone escalated the case one level up the chain."""

    level: str
    late: bool = False


class CalendarDataMissing(_SlaEvent):
    """A business calendar has no data for a date; it is counted by the weekend rule."""

    calendar: str
    missing_dates: list[str]

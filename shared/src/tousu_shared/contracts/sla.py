"""Events the SLA monitor publishes on the SLA stream."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from tousu_shared.contracts.base import Event
from tousu_shared.contracts.vocabulary import HandlerLevel


class _SlaEvent(Event):
    topic: ClassVar[str] = "sla.events"

    milestone: str
    policy: str
    due_at: datetime
    # Appended, optional: the case facts dashboards and routers filter SLA events by.
    department: str | None = None
    urgency: str | None = None


class SlaMilestoneStarted(_SlaEvent):
    """A milestone's clock started."""

    started_at: datetime
    target_seconds: float | None = None
    # The business calendar the clock counts on; None: it counts every second.
    calendar: str | None = None


class SlaAtRisk(_SlaEvent):
    """A milestone reached a warning fraction of its target."""

    fraction: float
    late: bool = False
    # When the threshold fell due, and when a person may be told (calendar-aware, 0 delay
    # for immediate cases).
    scheduled_for: datetime | None = None
    notify_at: datetime | None = None


class SlaBreached(_SlaEvent):
    """A milestone passed its due time unmet."""

    late: bool = False
    scheduled_for: datetime | None = None
    notify_at: datetime | None = None


class SlaMet(_SlaEvent):
    """A milestone was met; elapsed is business time, pauses excluded."""

    met_at: datetime
    elapsed_seconds: float
    within_target: bool | None = None


class SlaEscalated(_SlaEvent):
    """The one escalation trigger: the case must now be handled at ``level``.

    The SLA monitor publishes it once when a case becomes overdue (any milestone breached
    and unmet) and once more per configured interval while any milestone stays overdue,
    never twice for milestones that fell due together. ``milestone`` names the milestone
    that made the case overdue (or keeps it so); routing raises the case to ``level`` and
    ignores an event whose level the case already has.
    """

    level: HandlerLevel
    from_level: HandlerLevel | None = None
    overdue_milestones: list[str] = []
    late: bool = False
    scheduled_for: datetime | None = None
    notify_at: datetime | None = None
    # 0: the escalation when the case became overdue; 1, 2, …: each interval it stays so.
    repeat: int = 0


class CalendarDataMissing(_SlaEvent):
    """A business calendar has no data for a date; it is counted by the weekend rule."""

    calendar: str
    missing_dates: list[str]


class _SlaClockEvent(Event):
    """A change to a milestone's clock; `due_at` is None while the clock is paused."""

    topic: ClassVar[str] = "sla.events"

    milestone: str
    policy: str
    due_at: datetime | None = None
    department: str | None = None
    urgency: str | None = None


class SlaMilestonePaused(_SlaClockEvent):
    """A milestone's clock stopped counting (e.g. while waiting for the customer)."""

    paused_at: datetime
    paused_by: str
    reason: str


class SlaMilestoneResumed(_SlaClockEvent):
    """A paused milestone counts again; `due_at` moved by the time spent paused."""

    resumed_at: datetime
    resumed_by: str | None = None


class SlaMilestoneRetargeted(_SlaClockEvent):
    """A new policy or calendar moved the due time (counted from the original start)."""

    previous_due_at: datetime | None = None


class SlaMilestoneCancelled(_SlaClockEvent):
    """The deadline no longer applies (e.g. the case was closed)."""

    cancelled_at: datetime

"""Events the analytics service publishes."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from tousu_shared.contracts.base import Event


class SystemicIssueDetected(Event):
    """Many complaints of one category about one product or unit within a window."""

    topic: ClassVar[str] = "analytics.events"

    category: str
    product_ref: str | None = None
    unit: str | None = None
    window_start: datetime
    window_end: datetime
    complaint_count: int
    threshold: int

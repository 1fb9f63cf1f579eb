"""Test factories shared by analytics' unit and integration tests (on pytest's pythonpath)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from tousu_analytics.domain.actions import ImprovementAction, Target


def improvement_action(
    *,
    starts_on: date,
    created_at: datetime = datetime(2025, 5, 1, tzinfo=UTC),
    target: Target | None = None,
    title: str = "t",
    due_on: date | None = None,
) -> ImprovementAction:
    """A planned action with no alert, rate target or root cause."""
    return ImprovementAction(
        id=uuid.uuid4(),
        title=title,
        target=target or Target(category="delivery_delay"),
        plan="p",
        owner="o",
        starts_on=starts_on,
        due_on=due_on,
        target_rate=None,
        alert_id=None,
        root_cause=None,
        created_at=created_at,
    )

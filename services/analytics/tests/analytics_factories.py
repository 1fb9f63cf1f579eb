"""Test factories shared by analytics' unit and integration tests (on pytest's pythonpath)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tousu_analytics.domain.actions import ImprovementAction, Target
from tousu_analytics.domain.alerts import Alert, Evidence, Series
from tousu_shared.contracts import Event

CST = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)


def cst(day: date, hour: int) -> datetime:
    """``hour`` o'clock of ``day``, China time (the detector counts China's days)."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=CST)


def daily_quality_complaints(
    kit: Callable[..., Any], first: date, last: date, **received: Any
) -> list[Event]:
    """A detector's quiet history: three product-quality complaints a day (9:00, 12:00 and
    15:00) from ``first`` to ``last``, received and classified; ``kit`` is conftest's."""
    events: list[Event] = []
    day = first
    while day <= last:
        for hour in (9, 12, 15):
            c = kit(contact_at=cst(day, hour), **received)
            events += [c.received(), c.classified("product_quality")]
        day += timedelta(days=1)
    return events


def evidence(day: date = date(2025, 5, 20), **fields: Any) -> Evidence:
    """A Farrington spike on ``day``: 18 complaints against 3 expected (one of them named)."""
    values: dict[str, Any] = {
        "first_day": day,
        "method": "farrington_nb",
        "observed": 18,
        "expected": 3.0,
        "upper_bound": 8.0,
        "p_value": 1e-9,
        "complaint_ids": (uuid.uuid4(),),
        "shared": {},
        **fields,
    }
    return Evidence(day=day, **values)


def raised_alert(series: Series, at: datetime) -> Alert:
    """An alert raised at ``at`` on ``evidence()``, its announcement already taken."""
    alert = Alert.raise_for(series, evidence(), at)
    alert.pull_messages()
    return alert


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

"""The live SLA board: every open milestone clock of open cases, with what is left of it.

The deadline (``due_at``), the breach and the pause are the SLA monitor's, as its events
announced them; the board adds only how much of the clock is left *now*. For a clock on a
business calendar that is counted in working minutes on the Chinese statutory calendar
(workdays and 调休 days, 09:00–18:00 Asia/Shanghai, the monitor's default calendar); for a
wall clock in plain minutes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from tousu_shared.same_names import build

from tousu_analytics.domain.calendar import is_workday
from tousu_analytics.service_layer.context import AnalyticsContext

LOCAL = ZoneInfo("Asia/Shanghai")
WORKING_HOURS = (time(9, 0), time(18, 0))
BOARD_LIMIT = 500  # rows a wall screen can show; counts always cover every open clock
STATES = ("breached", "at_risk", "paused", "running")


def business_seconds_between(start: datetime, end: datetime) -> float:
    """Working seconds in [start, end) on the statutory calendar (negative when end < start)."""
    if end < start:
        return -business_seconds_between(end, start)
    total = 0.0
    day = start.astimezone(LOCAL).date()
    last = end.astimezone(LOCAL).date()
    while day <= last:
        if is_workday(day):
            opens = datetime.combine(day, WORKING_HOURS[0], LOCAL)
            closes = datetime.combine(day, WORKING_HOURS[1], LOCAL)
            lo, hi = max(opens, start), min(closes, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        day += timedelta(days=1)
    return total


def seconds_left(now: datetime, due_at: datetime | None, calendar: str | None) -> float | None:
    """What is left of a clock now (negative: overdue by that much)."""
    if due_at is None:
        return None
    if calendar is None:
        return (due_at - now).total_seconds()
    return business_seconds_between(now, due_at)


@dataclass(frozen=True)
class ClockRow:
    complaint_id: uuid.UUID
    milestone: str
    department: str | None
    level: str | None
    category: str | None
    severity: str | None
    state: str
    due_at: datetime | None
    minutes_left: int | None
    business: bool
    escalated: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "complaint_id": str(self.complaint_id),
            "milestone": self.milestone,
            "department": self.department,
            "level": self.level,
            "category": self.category,
            "severity": self.severity,
            "state": self.state,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "due_local": self.due_at.astimezone(LOCAL).strftime("%m-%d %H:%M")
            if self.due_at
            else None,
            "minutes_left": self.minutes_left,
            "business": self.business,
            "escalated": self.escalated,
        }


def _state(row: Any) -> str:
    if row.paused_at is not None:
        return "paused"
    if row.breached_at is not None:
        return "breached"
    if row.at_risk_at is not None:
        return "at_risk"
    return "running"


async def _open_clocks(ctx: AnalyticsContext, department: str | None) -> list[Any]:
    async with ctx.uow() as uow:
        clock, fact = uow.tables.clock, uow.tables.fact
        query = (
            sa.select(
                clock.c.complaint_id,
                clock.c.milestone,
                clock.c.calendar,
                clock.c.due_at,
                clock.c.at_risk_at,
                clock.c.paused_at,
                clock.c.breached_at,
                fact.c.department,
                fact.c.handler_level,
                fact.c.category,
                fact.c.severity,
                fact.c.escalated_at,
            )
            .join(fact, fact.c.complaint_id == clock.c.complaint_id)
            .where(
                clock.c.met_at.is_(None),
                clock.c.cancelled_at.is_(None),
                fact.c.closed_at.is_(None),
            )
            .order_by(clock.c.due_at.asc().nulls_last(), clock.c.complaint_id)
        )
        if department is not None:
            query = query.where(fact.c.department == department)
        return list((await uow.session.execute(query)).all())


def _row(row: Any, now: datetime) -> ClockRow:
    state = _state(row)
    left = None if state == "paused" else seconds_left(now, row.due_at, row.calendar)
    return build(
        ClockRow,
        row._mapping,
        level=row.handler_level,
        state=state,
        minutes_left=None if left is None else int(left // 60),
        business=row.calendar is not None,
        escalated=row.escalated_at is not None,
    )


def _counts(rows: list[ClockRow], key: str) -> list[dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    escalated: dict[str, set[uuid.UUID]] = {}
    for row in rows:
        name = getattr(row, key) or "—"
        cell = table.setdefault(name, {key: name, **dict.fromkeys(STATES, 0), "escalated": 0})
        cell[row.state] += 1
        if row.escalated:
            escalated.setdefault(name, set()).add(row.complaint_id)
    for name, cases in escalated.items():
        table[name]["escalated"] = len(cases)
    return [table[name] for name in sorted(table)]


async def board(ctx: AnalyticsContext, department: str | None) -> dict[str, Any]:
    """The board as data (the page renders it, the stream sends it): rows most urgent first."""
    now = ctx.clock().astimezone(UTC)
    rows = [_row(row, now) for row in await _open_clocks(ctx, department)]
    urgent = sorted(
        rows,
        key=lambda r: (STATES.index(r.state), r.minutes_left if r.minutes_left is not None else 0),
    )
    return {
        "department": department,
        "totals": {
            **{state: sum(1 for r in rows if r.state == state) for state in STATES},
            "escalated": len({r.complaint_id for r in rows if r.escalated}),
        },
        "per_department": _counts(rows, "department"),
        "per_level": _counts(rows, "level"),
        "rows": [row.as_json() for row in urgent[:BOARD_LIMIT]],
        "breached_ids": sorted(
            {f"{r.complaint_id}:{r.milestone}" for r in rows if r.state == "breached"}
        ),
    }

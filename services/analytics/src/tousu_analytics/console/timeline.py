"""One case from complaint to close: its events in order, and each SLA milestone as a bar
against its target with the pauses in it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from tousu_shared.auth import Principal

from tousu_analytics.service_layer.context import AnalyticsContext

PAUSED, RESUMED = "SlaMilestonePaused", "SlaMilestoneResumed"


@dataclass
class MilestoneBar:
    milestone: str
    started_at: datetime
    due_at: datetime | None
    ended_at: datetime | None  # met or cancelled
    outcome: str  # met | breached | cancelled | running | paused
    target_seconds: float | None
    pauses: list[tuple[datetime, datetime | None]] = field(default_factory=list)


@dataclass
class CaseTimeline:
    complaint_id: uuid.UUID
    fact: dict[str, Any]
    events: list[dict[str, Any]]
    milestones: list[MilestoneBar]
    origin: datetime  # the complaint's contact time: offsets count from it

    def offset_hours(self, at: datetime) -> float:
        return (at - self.origin).total_seconds() / 3600

    @property
    def end(self) -> datetime:
        instants = [e["at"] for e in self.events]
        for bar in self.milestones:
            instants += [i for i in (bar.due_at, bar.ended_at) if i is not None]
        return max(instants, default=self.origin)


def _outcome(clock: Any) -> str:
    if clock.met_at is not None:
        return "breached" if clock.breached_at is not None else "met"
    if clock.cancelled_at is not None:
        return "cancelled"
    if clock.paused_at is not None:
        return "paused"
    return "breached" if clock.breached_at is not None else "running"


def _pauses(events: list[dict[str, Any]], milestone: str) -> list[tuple[datetime, datetime | None]]:
    pauses: list[tuple[datetime, datetime | None]] = []
    for event in events:
        if event["detail"].get("milestone") != milestone:
            continue
        if event["event_type"] == PAUSED:
            pauses.append((event["at"], None))
        elif event["event_type"] == RESUMED and pauses and pauses[-1][1] is None:
            pauses[-1] = (pauses[-1][0], event["at"])
    return pauses


async def case_timeline(
    ctx: AnalyticsContext, principal: Principal, complaint_id: uuid.UUID
) -> CaseTimeline | None:
    """The case's timeline, or None when there is none the principal may see (the same
    answer for both, so a department-bound user cannot probe other departments' ids)."""
    async with ctx.uow() as uow:
        fact, timeline, clock = uow.tables.fact, uow.tables.timeline, uow.tables.clock
        row = (
            await uow.session.execute(sa.select(fact).where(fact.c.complaint_id == complaint_id))
        ).first()
        if row is None or not principal.may_see_department(row.department):
            return None
        events = [
            dict(event._mapping)
            for event in await uow.session.execute(
                sa.select(timeline)
                .where(timeline.c.complaint_id == complaint_id)
                .order_by(timeline.c.at, timeline.c.event_type)
            )
        ]
        clocks = list(
            await uow.session.execute(
                sa.select(clock)
                .where(clock.c.complaint_id == complaint_id)
                .order_by(clock.c.started_at.nulls_last(), clock.c.milestone)
            )
        )
    origin = row.received_at or (events[0]["at"] if events else ctx.clock())
    bars = [
        MilestoneBar(
            milestone=c.milestone,
            started_at=c.started_at or origin,
            due_at=c.due_at,
            ended_at=c.met_at or c.cancelled_at,
            outcome=_outcome(c),
            target_seconds=c.target_seconds,
            pauses=_pauses(events, c.milestone),
        )
        for c in clocks
    ]
    return CaseTimeline(complaint_id, dict(row._mapping), events, bars, origin)


def summary(event: dict[str, Any]) -> str:
    """The one detail of an event worth a column (a reason, a level, a score...)."""
    detail = event["detail"]
    parts = []
    for key in (
        "milestone",
        "department",
        "to_level",
        "level",
        "root_cause",
        "solution",
        "resolution",
        "reason",
        "close_reason",
        "outcome",
        "satisfaction",
        "source",
        "confirmed",
        "note",
    ):
        value = detail.get(key)
        if value not in (None, "", []):
            parts.append(f"{key}={value}")
    classification = detail.get("classification")
    if isinstance(classification, dict):
        parts.append(f"category={classification.get('category')}")
        parts.append(f"severity={classification.get('severity')}")
    return " · ".join(parts[:5])

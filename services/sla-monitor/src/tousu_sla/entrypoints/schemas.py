"""Request and response bodies of the sla-monitor API."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, Field, WithJsonSchema
from tousu_shared.schemas import ApiModel, from_attributes

from tousu_sla.adapters.repository import CalendarRecord, PolicySetRecord, StoredCase
from tousu_sla.domain import MilestoneView, PauseInterval, SlaPolicy, WorkingPeriod
from tousu_sla.service_layer.services import MilestonePage


class PauseRead(BaseModel):
    """A stretch during which a milestone's clock did not count."""

    started_at: dt.datetime
    ended_at: dt.datetime | None
    paused_by: str
    reason: str
    resumed_by: str | None

    @classmethod
    def of(cls, pause: PauseInterval) -> PauseRead:
        """From the domain."""
        return from_attributes(cls, pause)


class MilestoneRead(BaseModel):
    """One deadline of a case, as of the request."""

    key: str
    name: str
    state: str
    clock: str
    calendar: str
    started_at: dt.datetime
    target_seconds: float
    due_at: dt.datetime | None = Field(description="None while paused short of the target")
    elapsed_seconds: float = Field(description="counted time, pauses excluded")
    paused_seconds: float
    pauses: list[PauseRead]
    met_at: dt.datetime | None
    within_target: bool | None
    escalation_level: str
    warning_times: dict[str, dt.datetime | None]
    next_fire_at: dt.datetime | None

    @classmethod
    def of(cls, view: MilestoneView) -> MilestoneRead:
        """From the domain view."""
        return from_attributes(
            cls,
            view,
            state=view.state.value,
            target_seconds=view.target.total_seconds(),
            elapsed_seconds=view.elapsed.total_seconds(),
            paused_seconds=view.paused_time.total_seconds(),
            pauses=[PauseRead.of(pause) for pause in view.pauses],
            escalation_level=view.escalation_level.value,
            warning_times={str(fraction): at for fraction, at in view.warning_times.items()},
        )


class CaseSlaRead(BaseModel):
    """Every deadline of one case at once."""

    complaint_id: uuid.UUID
    as_of: dt.datetime
    policy: str
    policy_set_version: int
    attributes: dict[str, Any]
    escalation_level: str
    milestones: list[MilestoneRead]

    @classmethod
    def of(cls, stored: StoredCase, now: dt.datetime) -> CaseSlaRead:
        """From the stored aggregate."""
        sla = stored.sla
        return cls(
            complaint_id=uuid.UUID(sla.case_id),
            as_of=now,
            policy=sla.policy.name,
            policy_set_version=stored.policy_set_version,
            attributes=sla.attributes.model_dump(),
            escalation_level=sla.escalation_level.value,
            milestones=[MilestoneRead.of(view) for view in sla.views(now)],
        )


class CustomerWait(ApiModel):
    """Why the case waits for the customer (pauses milestones whose policy allows it)."""

    reason: str = Field(min_length=1, max_length=500)


class MilestoneListItem(BaseModel):
    """A breached or at-risk milestone in a list."""

    complaint_id: uuid.UUID
    milestone: str
    name: str
    policy: str
    department: str | None
    urgency: str | None
    state: str
    started_at: dt.datetime
    due_at: dt.datetime | None
    at_risk_at: dt.datetime | None
    breached_at: dt.datetime | None
    met_at: dt.datetime | None
    escalation_level: str

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> MilestoneListItem:
        """From a milestone row."""
        return cls(
            complaint_id=row["case_id"],
            milestone=row["milestone_key"],
            name=row["name"],
            policy=row["policy_name"],
            department=row["department"],
            urgency=row["urgency"],
            state=row["state"],
            started_at=row["started_at"],
            due_at=row["due_at"],
            at_risk_at=row["at_risk_at"],
            breached_at=row["breached_at"],
            met_at=row["met_at"],
            escalation_level=row["escalation_level"],
        )


class MilestonePageRead(BaseModel):
    """One page of a list; pass `next_cursor` back as `cursor` for the next."""

    items: list[MilestoneListItem]
    next_cursor: str | None

    @classmethod
    def of(cls, page: MilestonePage) -> MilestonePageRead:
        """From a page of milestone rows."""
        return cls(
            items=[MilestoneListItem.of(row) for row in page.items], next_cursor=page.next_cursor
        )


class PolicySetRead(BaseModel):
    """One version of the policy set."""

    version: int
    comment: str | None
    created_by: str
    created_at: dt.datetime
    policies: list[dict[str, Any]]

    @classmethod
    def of(cls, record: PolicySetRecord) -> PolicySetRead:
        """From the stored record."""
        return from_attributes(
            cls, record, policies=record.policy_set.model_dump(mode="json")["policies"]
        )


class PolicySetVersionRead(BaseModel):
    """A version in the history, without its body."""

    version: int
    comment: str | None
    created_by: str
    created_at: dt.datetime


class PolicySetUpdate(ApiModel):
    """A new policy set: ordered policies, first match wins, the last one a catch-all."""

    policies: list[SlaPolicy] = Field(min_length=1)
    based_on_version: int | None = Field(
        default=None,
        description="refuse the update unless this is still the current version",
    )
    comment: str | None = Field(default=None, max_length=500)


class CalendarDefinition(ApiModel):
    """A business calendar's data; omitted fields take the calendar defaults."""

    timezone: str | None = None
    working_periods: list[WorkingPeriod] | None = None
    weekend_days: list[int] | None = None
    holidays: list[dt.date] | None = None
    makeup_workdays: list[dt.date] | None = None
    overrides: dict[dt.date, bool] | None = None
    always_open: bool | None = None
    data_years: list[int] | None = None


class CalendarSummary(BaseModel):
    """A calendar in the list."""

    name: str
    version: int
    timezone: str
    always_open: bool
    data_years: list[int] | None
    overrides: int
    updated_by: str
    updated_at: dt.datetime


class CalendarRead(BaseModel):
    """A calendar with all its data."""

    name: str
    version: int
    updated_by: str
    updated_at: dt.datetime
    calendar: dict[str, Any]

    @classmethod
    def of(cls, record: CalendarRecord) -> CalendarRead:
        """From the stored record."""
        return from_attributes(cls, record, calendar=record.calendar.model_dump(mode="json"))


def calendar_summary(record: CalendarRecord) -> CalendarSummary:
    """The list entry of a calendar."""
    calendar = record.calendar
    return from_attributes(
        CalendarSummary,
        record,
        calendar,
        data_years=sorted(calendar.data_years) if calendar.data_years is not None else None,
        overrides=len(calendar.overrides),
    )


class DateOverride(ApiModel):
    """An operator's word on one date."""

    working: bool
    reason: str | None = Field(default=None, max_length=500)


class CalendarYear(ApiModel):
    """One year's holidays and make-up working days (调休), as published by the State Council."""

    holidays: list[dt.date]
    makeup_workdays: list[dt.date] = []


# [start, end) as a pair; said as a two-item array rather than pydantic's prefixItems, which
# OpenAPI tools still read the draft-4 way.
WorkingInterval = Annotated[
    tuple[dt.datetime, dt.datetime],
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "format": "date-time"},
            "minItems": 2,
            "maxItems": 2,
        }
    ),
]


class DayStatusRead(BaseModel):
    """The calendar's verdict on one date."""

    date: dt.date
    is_working: bool
    reason: str
    data_missing: bool
    working_intervals: list[WorkingInterval]

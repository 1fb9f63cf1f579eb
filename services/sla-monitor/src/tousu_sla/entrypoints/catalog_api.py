"""HTTP API of the sla-monitor's catalog (``/v1``): the versioned policy set and calendars."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Path
from tousu_shared.auth import Principal

from tousu_sla.adapters.repository import CalendarRecord
from tousu_sla.entrypoints.dependencies import Context, Reader, Writer
from tousu_sla.entrypoints.schemas import (
    CalendarDefinition,
    CalendarRead,
    CalendarSummary,
    CalendarYear,
    DateOverride,
    DayStatusRead,
    PolicySetRead,
    PolicySetUpdate,
    PolicySetVersionRead,
    calendar_summary,
)
from tousu_sla.service_layer import catalog
from tousu_sla.service_layer.context import SlaContext, SlaUnitOfWork

router = APIRouter(prefix="/v1", tags=["sla-monitor"])


# -- policies ----------------------------------------------------------------------------


@router.get("/sla-policies")
async def get_policy_set(_: Reader, ctx: Context) -> PolicySetRead:
    """The policy set in force."""
    async with ctx.uow() as uow:
        record = await catalog.policy_set_in_force(uow, ctx)
        await uow.commit()  # it may just have seeded the defaults
    return PolicySetRead.of(record)


@router.put("/sla-policies")
async def put_policy_set(body: PolicySetUpdate, principal: Writer, ctx: Context) -> PolicySetRead:
    """Publish a new version; cases adopt it with their next event (clocks keep their start).

    A policy without milestones is refused (422 naming ``policies.<i>.milestones``): it
    would leave every case it matches without a deadline.
    """
    async with ctx.uow() as uow:
        record = await catalog.publish_policy_set(
            uow,
            body.policies,
            based_on_version=body.based_on_version,
            comment=body.comment,
            actor=principal.actor,
        )
        uow.audit(
            principal,
            "sla.policy_set.publish",
            "sla_policy_set",
            str(record.version),
            details={
                "comment": body.comment,
                "policies": [policy.name for policy in record.policy_set.policies],
            },
        )
        await uow.commit()
    return PolicySetRead.of(record)


@router.get("/sla-policies/versions")
async def list_policy_set_versions(_: Reader, ctx: Context) -> list[PolicySetVersionRead]:
    """Every published version, newest first."""
    async with ctx.uow() as uow:
        rows = await catalog.policy_set_history(uow)
    return [PolicySetVersionRead(**row) for row in rows]


@router.get("/sla-policies/versions/{version}")
async def get_policy_set_version(
    version: Annotated[int, Path(ge=1, le=2**31 - 1)], _: Reader, ctx: Context
) -> PolicySetRead:
    """One published version."""
    async with ctx.uow() as uow:
        return PolicySetRead.of(await catalog.policy_set_version(uow, version))


# -- calendars ---------------------------------------------------------------------------


@router.get("/calendars")
async def list_calendars(_: Reader, ctx: Context) -> list[CalendarSummary]:
    """Every business calendar."""
    async with ctx.uow() as uow:
        return [calendar_summary(record) for record in await catalog.list_calendars(uow)]


@router.get("/calendars/{name}")
async def get_calendar(name: str, _: Reader, ctx: Context) -> CalendarRead:
    """One calendar with its holidays, make-up working days and overrides."""
    async with ctx.uow() as uow:
        return CalendarRead.of(await catalog.get_calendar(uow, name))


@router.get("/calendars/{name}/dates/{day}")
async def get_calendar_date(name: str, day: dt.date, _: Reader, ctx: Context) -> DayStatusRead:
    """Whether a date is a working day on a calendar, and why."""
    async with ctx.uow() as uow:
        calendar = (await catalog.get_calendar(uow, name)).calendar
    status = calendar.day_status(day)
    return DayStatusRead(
        date=day,
        is_working=status.is_working,
        reason=status.reason.value,
        data_missing=status.data_missing,
        working_intervals=calendar.working_intervals(day),
    )


@router.put("/calendars/{name}")
async def put_calendar(
    name: str, body: CalendarDefinition, principal: Writer, ctx: Context
) -> CalendarRead:
    """Create or replace a calendar; open deadlines on it are recomputed."""
    calendar = catalog.calendar_from_definition(name, body.model_dump(exclude_none=True))
    return await _calendar_edit(
        ctx,
        principal,
        "sla.calendar.put",
        name,
        lambda uow: catalog.put_calendar(uow, ctx, calendar, actor=principal.actor),
        {},
    )


@router.put("/calendars/{name}/dates/{day}")
async def override_calendar_date(
    name: str, day: dt.date, body: DateOverride, principal: Writer, ctx: Context
) -> CalendarRead:
    """Declare a date working or not working, whatever the calendar's data says."""
    return await _calendar_edit(
        ctx,
        principal,
        "sla.calendar.override_date",
        name,
        lambda uow: catalog.set_calendar_date(
            uow, ctx, name, day, body.working, actor=principal.actor
        ),
        {"date": day.isoformat(), "working": body.working, "reason": body.reason},
    )


@router.delete("/calendars/{name}/dates/{day}")
async def remove_calendar_override(
    name: str, day: dt.date, principal: Writer, ctx: Context
) -> CalendarRead:
    """Drop an operator override; the calendar's own data decides the date again."""
    return await _calendar_edit(
        ctx,
        principal,
        "sla.calendar.remove_override",
        name,
        lambda uow: catalog.set_calendar_date(uow, ctx, name, day, None, actor=principal.actor),
        {"date": day.isoformat()},
    )


@router.put("/calendars/{name}/years/{year}")
async def fill_calendar_year(
    name: str,
    year: Annotated[int, Path(ge=1900, le=2200)],
    body: CalendarYear,
    principal: Writer,
    ctx: Context,
) -> CalendarRead:
    """Publish a year's holidays and make-up working days, ending the weekend-rule fallback."""
    return await _calendar_edit(
        ctx,
        principal,
        "sla.calendar.fill_year",
        name,
        lambda uow: catalog.fill_calendar_year(
            uow,
            ctx,
            name,
            year,
            holidays=body.holidays,
            makeup_workdays=body.makeup_workdays,
            actor=principal.actor,
        ),
        {
            "year": year,
            "holidays": len(body.holidays),
            "makeup_workdays": len(body.makeup_workdays),
        },
    )


async def _calendar_edit(
    ctx: SlaContext,
    principal: Principal,
    action: str,
    name: str,
    edit: Callable[[SlaUnitOfWork], Awaitable[CalendarRecord]],
    details: Mapping[str, Any],
) -> CalendarRead:
    """One calendar edit and its audit entry, committed together."""
    async with ctx.uow() as uow:
        record = await edit(uow)
        uow.audit(
            principal,
            action,
            "sla_calendar",
            name,
            details={**details, "version": record.version},
        )
        await uow.commit()
    return CalendarRead.of(record)

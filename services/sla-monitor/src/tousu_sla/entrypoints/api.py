"""HTTP API of the sla-monitor service (``/v1``): case deadlines, lists, policies, calendars."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from tousu_shared.auth import DEPARTMENT_ROLES, Principal, require
from tousu_shared.errors import Forbidden, NotFound
from tousu_shared.http import DbSession, RuntimeDep

from tousu_sla.entrypoints.schemas import (
    CalendarDefinition,
    CalendarRead,
    CalendarSummary,
    CalendarYear,
    CaseSlaRead,
    CustomerWait,
    DateOverride,
    DayStatusRead,
    MilestoneListItem,
    MilestonePageRead,
    PolicySetRead,
    PolicySetUpdate,
    PolicySetVersionRead,
    calendar_summary,
)
from tousu_sla.service_layer import services

router = APIRouter(prefix="/v1", tags=["sla-monitor"])

Reader = Annotated[Principal, require("sla:read")]
Writer = Annotated[Principal, require("sla:write")]
# Agents and managers pause their own department's clocks while they wait for the customer.
Pauser = Annotated[Principal, require("sla:pause")]
PageSize = Annotated[int, Query(ge=1, le=500)]


async def get_context(request: Request) -> services.SlaContext:
    """The SLA use cases' collaborators."""
    return request.app.state.sla


Context = Annotated[services.SlaContext, Depends(get_context)]


def visible_department(principal: Principal, requested: str | None) -> str | None:
    """Department-bound callers (agents, managers) see their own department only."""
    if principal.role not in DEPARTMENT_ROLES:
        return requested
    if requested is not None and requested != principal.department:
        raise Forbidden(f"you may only see department {principal.department}", field="department")
    return principal.department


# -- cases -------------------------------------------------------------------------------


@router.get("/cases/{case_id}/sla")
async def get_case_sla(
    case_id: uuid.UUID,
    principal: Reader,
    session: DbSession,
    ctx: Context,
) -> CaseSlaRead:
    """Every milestone of a case: start, due, elapsed and paused time, pauses, state, level."""
    stored = await services.case_sla(case_id, db_session=session, ctx=ctx)
    if not principal.may_see_department(stored.sla.attributes.department or ""):
        raise NotFound(f"no SLA for case {case_id}", field="case_id")
    return CaseSlaRead.of(stored, ctx.clock())


@router.post("/cases/{case_id}/sla/customer-wait")
async def start_customer_wait(
    case_id: uuid.UUID,
    body: CustomerWait,
    principal: Pauser,
    session: DbSession,
    runtime: RuntimeDep,
    ctx: Context,
) -> CaseSlaRead:
    """The case waits for the customer: milestones whose policy allows it stop counting."""
    return await _customer_wait(case_id, True, body.reason, principal, session, runtime, ctx)


@router.delete("/cases/{case_id}/sla/customer-wait")
async def end_customer_wait(
    case_id: uuid.UUID,
    principal: Pauser,
    session: DbSession,
    runtime: RuntimeDep,
    ctx: Context,
) -> CaseSlaRead:
    """The customer answered: paused milestones count again."""
    return await _customer_wait(case_id, False, None, principal, session, runtime, ctx)


async def _customer_wait(
    case_id: uuid.UUID,
    waiting: bool,
    reason: str | None,
    principal: Principal,
    session: DbSession,
    runtime: RuntimeDep,
    ctx: services.SlaContext,
) -> CaseSlaRead:
    async with session.begin():
        current = await services.case_sla(case_id, db_session=session, ctx=ctx)
        if not principal.may_see_department(current.sla.attributes.department or ""):
            raise NotFound(f"no SLA for case {case_id}", field="case_id")
        await services.record_customer_wait(
            case_id,
            waiting=waiting,
            reason=reason,
            actor=principal.actor,
            db_session=session,
            ctx=ctx,
        )
        await runtime.audit.record(
            session,
            principal,
            "sla.customer_wait." + ("start" if waiting else "end"),
            "case_sla",
            str(case_id),
            complaint_id=case_id,
            details={"reason": reason},
        )
        stored = await services.case_sla(case_id, db_session=session, ctx=ctx)
    return CaseSlaRead.of(stored, ctx.clock())


# -- lists -------------------------------------------------------------------------------


@router.get("/breaches")
async def list_breaches(
    principal: Reader,
    session: DbSession,
    ctx: Context,
    department: str | None = None,
    milestone: str | None = None,
    urgency: str | None = None,
    include_closed: Annotated[
        bool, Query(description="also milestones met late or cancelled after their breach")
    ] = False,
    cursor: str | None = None,
    limit: PageSize = 50,
) -> MilestonePageRead:
    """Breached milestones, most overdue first."""
    page = await services.milestone_list(
        breached=True,
        include_closed=include_closed,
        department=visible_department(principal, department),
        milestone_key=milestone,
        urgency=urgency,
        cursor=cursor,
        limit=limit,
        db_session=session,
        ctx=ctx,
    )
    return MilestonePageRead(
        items=[MilestoneListItem.of(row) for row in page.items], next_cursor=page.next_cursor
    )


@router.get("/at-risk")
async def list_at_risk(
    principal: Reader,
    session: DbSession,
    ctx: Context,
    department: str | None = None,
    milestone: str | None = None,
    urgency: str | None = None,
    cursor: str | None = None,
    limit: PageSize = 50,
) -> MilestonePageRead:
    """Milestones past their at-risk warning and not yet breached, soonest due first."""
    page = await services.milestone_list(
        breached=False,
        department=visible_department(principal, department),
        milestone_key=milestone,
        urgency=urgency,
        cursor=cursor,
        limit=limit,
        db_session=session,
        ctx=ctx,
    )
    return MilestonePageRead(
        items=[MilestoneListItem.of(row) for row in page.items], next_cursor=page.next_cursor
    )


# -- policies ----------------------------------------------------------------------------


@router.get("/sla-policies")
async def get_policy_set(_: Reader, session: DbSession, ctx: Context) -> PolicySetRead:
    """The policy set in force."""
    async with session.begin():
        record = await services.policy_set_in_force(db_session=session, ctx=ctx)
    return PolicySetRead.of(record)


@router.put("/sla-policies")
async def put_policy_set(
    body: PolicySetUpdate,
    principal: Writer,
    session: DbSession,
    runtime: RuntimeDep,
    ctx: Context,
) -> PolicySetRead:
    """Publish a new version; cases adopt it with their next event (clocks keep their start)."""
    async with session.begin():
        record = await services.publish_policy_set(
            body.policies,
            based_on_version=body.based_on_version,
            comment=body.comment,
            actor=principal.actor,
            db_session=session,
            ctx=ctx,
        )
        await runtime.audit.record(
            session,
            principal,
            "sla.policy_set.publish",
            "sla_policy_set",
            str(record.version),
            details={
                "comment": body.comment,
                "policies": [policy.name for policy in record.policy_set.policies],
            },
        )
    return PolicySetRead.of(record)


@router.get("/sla-policies/versions")
async def list_policy_set_versions(
    _: Reader,
    session: DbSession,
    ctx: Context,
) -> list[PolicySetVersionRead]:
    """Every published version, newest first."""
    rows = await services.policy_set_history(db_session=session, ctx=ctx)
    return [PolicySetVersionRead(**row) for row in rows]


@router.get("/sla-policies/versions/{version}")
async def get_policy_set_version(
    version: int,
    _: Reader,
    session: DbSession,
    ctx: Context,
) -> PolicySetRead:
    """One published version."""
    return PolicySetRead.of(await services.policy_set_version(version, db_session=session, ctx=ctx))


# -- calendars ---------------------------------------------------------------------------


@router.get("/calendars")
async def list_calendars(_: Reader, session: DbSession, ctx: Context) -> list[CalendarSummary]:
    """Every business calendar."""
    return [
        calendar_summary(record)
        for record in await services.list_calendars(db_session=session, ctx=ctx)
    ]


@router.get("/calendars/{name}")
async def get_calendar(name: str, _: Reader, session: DbSession, ctx: Context) -> CalendarRead:
    """One calendar with its holidays, make-up working days and overrides."""
    return CalendarRead.of(await services.get_calendar(name, db_session=session, ctx=ctx))


@router.put("/calendars/{name}")
async def put_calendar(
    name: str,
    body: CalendarDefinition,
    principal: Writer,
    session: DbSession,
    runtime: RuntimeDep,
    ctx: Context,
) -> CalendarRead:
    """Create or replace a calendar; open deadlines on it are recomputed."""
    async with session.begin():
        calendar = services.calendar_from_definition(
            name,
            body.model_dump(exclude_none=True),
        )
        record = await services.put_calendar(
            calendar, actor=principal.actor, db_session=session, ctx=ctx
        )
        await runtime.audit.record(
            session,
            principal,
            "sla.calendar.put",
            "sla_calendar",
            name,
            details={"version": record.version},
        )
    return CalendarRead.of(record)


@router.get("/calendars/{name}/dates/{day}")
async def get_calendar_date(
    name: str,
    day: dt.date,
    _: Reader,
    session: DbSession,
    ctx: Context,
) -> DayStatusRead:
    """Whether a date is a working day on a calendar, and why."""
    calendar = (await services.get_calendar(name, db_session=session, ctx=ctx)).calendar
    status = calendar.day_status(day)
    return DayStatusRead(
        date=day,
        is_working=status.is_working,
        reason=status.reason.value,
        data_missing=status.data_missing,
        working_intervals=calendar.working_intervals(day),
    )


@router.put("/calendars/{name}/dates/{day}")
async def override_calendar_date(
    name: str,
    day: dt.date,
    body: DateOverride,
    principal: Writer,
    session: DbSession,
    runtime: RuntimeDep,
    ctx: Context,
) -> CalendarRead:
    """Declare a date working or not working, whatever the calendar's data says."""
    async with session.begin():
        record = await services.set_calendar_date(
            name,
            day,
            body.working,
            actor=principal.actor,
            db_session=session,
            ctx=ctx,
        )
        await runtime.audit.record(
            session,
            principal,
            "sla.calendar.override_date",
            "sla_calendar",
            name,
            details={
                "date": day.isoformat(),
                "working": body.working,
                "reason": body.reason,
                "version": record.version,
            },
        )
    return CalendarRead.of(record)


@router.delete("/calendars/{name}/dates/{day}")
async def remove_calendar_override(
    name: str,
    day: dt.date,
    principal: Writer,
    session: DbSession,
    runtime: RuntimeDep,
    ctx: Context,
) -> CalendarRead:
    """Drop an operator override; the calendar's own data decides the date again."""
    async with session.begin():
        record = await services.set_calendar_date(
            name,
            day,
            None,
            actor=principal.actor,
            db_session=session,
            ctx=ctx,
        )
        await runtime.audit.record(
            session,
            principal,
            "sla.calendar.remove_override",
            "sla_calendar",
            name,
            details={"date": day.isoformat(), "version": record.version},
        )
    return CalendarRead.of(record)


@router.put("/calendars/{name}/years/{year}")
async def fill_calendar_year(
    name: str,
    year: Annotated[int, Path(ge=1900, le=2200)],
    body: CalendarYear,
    principal: Writer,
    session: DbSession,
    runtime: RuntimeDep,
    ctx: Context,
) -> CalendarRead:
    """Publish a year's holidays and make-up working days, ending the weekend-rule fallback."""
    async with session.begin():
        record = await services.fill_calendar_year(
            name,
            year,
            holidays=body.holidays,
            makeup_workdays=body.makeup_workdays,
            actor=principal.actor,
            db_session=session,
            ctx=ctx,
        )
        await runtime.audit.record(
            session,
            principal,
            "sla.calendar.fill_year",
            "sla_calendar",
            name,
            details={
                "year": year,
                "holidays": len(body.holidays),
                "makeup_workdays": len(body.makeup_workdays),
                "version": record.version,
            },
        )
    return CalendarRead.of(record)

"""HTTP API of the sla-monitor service (``/v1``): case deadlines and the breach/at-risk lists."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query
from tousu_shared.auth import Principal
from tousu_shared.errors import NotFound

from tousu_sla.adapters.repository import StoredCase
from tousu_sla.entrypoints.dependencies import Context, PageSize, Pauser, Reader
from tousu_sla.entrypoints.schemas import (
    CaseSlaRead,
    CustomerWait,
    MilestonePageRead,
)
from tousu_sla.service_layer import services
from tousu_sla.service_layer.context import SlaContext, SlaUnitOfWork

router = APIRouter(prefix="/v1", tags=["sla-monitor"])


# -- cases -------------------------------------------------------------------------------


@router.get("/cases/{case_id}/sla")
async def get_case_sla(case_id: uuid.UUID, principal: Reader, ctx: Context) -> CaseSlaRead:
    """Every milestone of a case: start, due, elapsed and paused time, pauses, state, level."""
    async with ctx.uow() as uow:
        return CaseSlaRead.of(await _visible_case(uow, ctx, case_id, principal), ctx.clock())


@router.post("/cases/{case_id}/sla/customer-wait")
async def start_customer_wait(
    case_id: uuid.UUID, body: CustomerWait, principal: Pauser, ctx: Context
) -> CaseSlaRead:
    """The case waits for the customer: milestones whose policy allows it stop counting."""
    return await _customer_wait(ctx, case_id, principal, waiting=True, reason=body.reason)


@router.delete("/cases/{case_id}/sla/customer-wait")
async def end_customer_wait(case_id: uuid.UUID, principal: Pauser, ctx: Context) -> CaseSlaRead:
    """The customer answered: paused milestones count again."""
    return await _customer_wait(ctx, case_id, principal, waiting=False, reason=None)


async def _customer_wait(
    ctx: SlaContext,
    case_id: uuid.UUID,
    principal: Principal,
    *,
    waiting: bool,
    reason: str | None,
) -> CaseSlaRead:
    async with ctx.uow() as uow:
        # Locked before the department is checked: a transfer cannot slip in between.
        await services.lock_case(uow, case_id)
        await _visible_case(uow, ctx, case_id, principal)
        await services.record_customer_wait(
            uow, ctx, case_id, waiting=waiting, reason=reason, actor=principal.actor
        )
        uow.audit(
            principal,
            "sla.customer_wait." + ("start" if waiting else "end"),
            "case_sla",
            str(case_id),
            complaint_id=case_id,
            details={"reason": reason},
        )
        stored = await services.case_sla(uow, ctx, case_id)
        await uow.commit()
    return CaseSlaRead.of(stored, ctx.clock())


async def _visible_case(
    uow: SlaUnitOfWork, ctx: SlaContext, case_id: uuid.UUID, principal: Principal
) -> StoredCase:
    stored = await services.case_sla(uow, ctx, case_id)
    if not principal.may_see_department(stored.sla.attributes.department):
        raise NotFound(f"no SLA for case {case_id}", field="case_id")
    return stored


# -- lists -------------------------------------------------------------------------------


@router.get("/breaches")
async def list_breaches(
    principal: Reader,
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
    filters = ListFilters(department, milestone, urgency, cursor, limit)
    return await _milestone_page(ctx, principal, filters, breached=True, closed=include_closed)


@router.get("/at-risk")
async def list_at_risk(
    principal: Reader,
    ctx: Context,
    department: str | None = None,
    milestone: str | None = None,
    urgency: str | None = None,
    cursor: str | None = None,
    limit: PageSize = 50,
) -> MilestonePageRead:
    """Milestones past their at-risk warning and not yet breached, soonest due first."""
    filters = ListFilters(department, milestone, urgency, cursor, limit)
    return await _milestone_page(ctx, principal, filters, breached=False, closed=False)


@dataclass(frozen=True)
class ListFilters:
    """The query of a milestone list."""

    department: str | None
    milestone: str | None
    urgency: str | None
    cursor: str | None
    limit: int


async def _milestone_page(
    ctx: SlaContext, principal: Principal, filters: ListFilters, *, breached: bool, closed: bool
) -> MilestonePageRead:
    async with ctx.uow() as uow:
        page = await services.milestone_list(
            uow,
            breached=breached,
            include_closed=closed,
            # The one department rule: a 403 naming `department` for another department.
            department=principal.visible_department(filters.department),
            milestone_key=filters.milestone,
            urgency=filters.urgency,
            cursor=filters.cursor,
            limit=filters.limit,
        )
    return MilestonePageRead.of(page)

"""Read side of cases: one case with its history, and filtered, keyset-paginated lists."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.auth import Principal
from tousu_shared.errors import Forbidden, NotFound
from tousu_shared.pagination import decode_cursor, encode_cursor

from tousu_routing.adapters.orm import routed_case
from tousu_routing.adapters.repository import CaseRecord, CaseRepository


@dataclass(frozen=True)
class CaseFilters:
    """What a case list may be narrowed by; None means any."""

    department: str | None = None
    state: str | None = None
    level: str | None = None
    assignee: str | None = None
    category: str | None = None
    severity: str | None = None
    complaint_id: uuid.UUID | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclass(frozen=True)
class CasePage:
    """One page of cases (newest first) and the cursor of the next page, if any."""

    items: list[dict[str, Any]]
    next_cursor: str | None


async def get_case(case_id: uuid.UUID, principal: Principal, *,
                   db_session: AsyncSession) -> CaseRecord:
    """A case with its full history, if the caller may see it (others get 404, never 403)."""
    record = await CaseRepository(db_session).get(case_id)
    if record is None or not principal.may_see_department(record.case.department):
        raise NotFound(f"no case {case_id}", field="case_id")
    return record


async def list_cases(
    filters: CaseFilters,
    principal: Principal,
    *,
    db_session: AsyncSession,
    limit: int = 50,
    cursor: str | None = None,
) -> CasePage:
    """Cases newest first; department-bound callers see only their own department's."""
    department = filters.department
    if not principal.may_see_department(department or ""):
        if department is not None:
            raise Forbidden(f"you can list only the cases of {principal.department}",
                            field="department")
        department = principal.department
    query = sa.select(routed_case)
    for column, value in (
        (routed_case.c.department, department), (routed_case.c.state, filters.state),
        (routed_case.c.handler_level, filters.level),
        (routed_case.c.assignee_id, filters.assignee),
        (routed_case.c.category, filters.category), (routed_case.c.severity, filters.severity),
        (routed_case.c.complaint_id, filters.complaint_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.created_from is not None:
        query = query.where(routed_case.c.created_at >= filters.created_from)
    if filters.created_to is not None:
        query = query.where(routed_case.c.created_at < filters.created_to)
    if cursor is not None:
        created_at, case_id = decode_cursor(cursor, datetime, uuid.UUID)
        query = query.where(
            sa.tuple_(routed_case.c.created_at, routed_case.c.id) < sa.tuple_(
                sa.literal(created_at, sa.DateTime(timezone=True)),
                sa.literal(case_id, routed_case.c.id.type),
            )
        )
    query = query.order_by(routed_case.c.created_at.desc(), routed_case.c.id.desc())
    rows = (await db_session.execute(query.limit(limit + 1))).mappings().all()
    items = [dict(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(last["created_at"], last["id"])
    return CasePage(items=items, next_cursor=next_cursor)

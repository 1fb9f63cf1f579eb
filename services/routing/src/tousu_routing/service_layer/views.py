"""Read side of cases: one case with its history, and filtered, keyset-paginated lists."""

from __future__ import annotations

import dataclasses
import uuid

from tousu_shared.auth import Principal

from tousu_routing.adapters.case_repository import CaseFilters, CasePage
from tousu_routing.domain.record import CaseRecord
from tousu_routing.service_layer.cases import case_visible_to
from tousu_routing.service_layer.unit_of_work import RoutingWork


async def get_case(uow: RoutingWork, case_id: uuid.UUID, principal: Principal) -> CaseRecord:
    """A case with its full history, if the caller may see it (others get 404, never 403)."""
    return await case_visible_to(uow, case_id, principal)


async def list_cases(
    uow: RoutingWork,
    filters: CaseFilters,
    principal: Principal,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> CasePage:
    """Cases newest first; a department-bound caller sees only their own department's."""
    department = principal.visible_department(filters.department)
    narrowed = dataclasses.replace(filters, department=department)
    return await uow.cases.page(narrowed, limit=limit, cursor=cursor)

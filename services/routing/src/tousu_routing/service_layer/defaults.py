"""The default department and catch-all rule that make routing always land somewhere.

Migration 0002 seeds the same rows; ``ensure_defaults`` restores them (for tests that empty
the schema, or an operator who emptied it by hand).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.clock import Clock, utc_now

from tousu_routing.adapters.department_repository import DepartmentRepository
from tousu_routing.adapters.rule_repository import RuleRepository
from tousu_routing.domain import RoutingRule

DEFAULT_DEPARTMENT_CODE = "general"
DEFAULT_DEPARTMENT_NAME = "General complaints desk"
DEFAULT_RULE = RoutingRule(
    id="default",
    order=1_000_000,
    name="Default queue",
    target_department=DEFAULT_DEPARTMENT_CODE,
)
SEEDED_BY = "system:migration"


async def ensure_defaults(*, db_session: AsyncSession, clock: Clock = utc_now) -> None:
    """Add the default department and rule if they are missing (idempotent).

    A seeding step, like the migration: it runs in the caller's session, outside any unit of
    work, so the tests and operators who empty the schema can restore it.
    """
    now = clock()
    await DepartmentRepository(db_session).add(
        DEFAULT_DEPARTMENT_CODE, DEFAULT_DEPARTMENT_NAME, {}, now
    )
    rules = RuleRepository(db_session)
    if await rules.get(DEFAULT_RULE.id) is None:
        await rules.add(DEFAULT_RULE, SEEDED_BY, now)

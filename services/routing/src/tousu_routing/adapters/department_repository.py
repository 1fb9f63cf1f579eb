"""Departments, their chains and their members, with each member's current load.

Repositories never commit: the unit of work does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tousu_routing.adapters.case_repository import WORK_IN_PROGRESS_STATES, CaseRepository
from tousu_routing.adapters.orm import (
    department,
    member,
    routed_case,
)
from tousu_routing.domain import (
    Department,
    HandlerLevel,
    Member,
)

# ---- departments and members --------------------------------------------------------------


@dataclass(frozen=True)
class DepartmentRecord:
    """A department with what the API shows beside the domain's view of it."""

    department: Department
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def code(self) -> str:
        """The department code."""
        return self.department.code


def _department_from_row(row: RowMapping) -> DepartmentRecord:
    return DepartmentRecord(
        department=Department(code=row["code"], name=row["name"], chain=dict(row["chain"])),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def chain_to_json(chain: Mapping[HandlerLevel, Iterable[str]]) -> dict[str, list[str]]:
    """A chain as stored: only the levels that list somebody."""
    return {str(level): list(ids) for level, ids in chain.items() if ids}


class DepartmentRepository:
    """Departments, their chains and their members (with each member's current load)."""

    def __init__(self, session: AsyncSession, cases: CaseRepository | None = None) -> None:
        self._session = session
        # Loads count the cases of the transaction's ``cases``: they are written first.
        self._cases = cases

    async def _cases_written(self) -> None:
        if self._cases is not None:
            await self._cases.write_unsaved()

    async def all(self, *, for_share: bool = False) -> list[DepartmentRecord]:
        """Every department by code; ``for_share`` keeps them from changing until commit."""
        query = sa.select(department).order_by(department.c.code)
        if for_share:
            query = query.with_for_update(read=True)
        rows = (await self._session.execute(query)).mappings().all()
        return [_department_from_row(row) for row in rows]

    async def codes(self) -> list[str]:
        """Every department code, in order."""
        return list(
            (
                await self._session.execute(
                    sa.select(department.c.code).order_by(department.c.code)
                )
            ).scalars()
        )

    async def many(self, codes: Iterable[str]) -> list[DepartmentRecord]:
        """The departments with these codes (unknown codes are left out)."""
        rows = (
            (
                await self._session.execute(
                    sa.select(department).where(department.c.code.in_(sorted(set(codes))))
                )
            )
            .mappings()
            .all()
        )
        return [_department_from_row(row) for row in rows]

    async def get(self, code: str, *, for_update: bool = False) -> DepartmentRecord | None:
        """One department; ``for_update`` row-locks it."""
        query = sa.select(department).where(department.c.code == code)
        if for_update:
            query = query.with_for_update()
        row = (await self._session.execute(query)).mappings().first()
        return None if row is None else _department_from_row(row)

    async def add(
        self, code: str, name: str, chain: Mapping[HandlerLevel, Iterable[str]], now: datetime
    ) -> bool:
        """Insert a department; False if the code is taken."""
        inserted = await self._session.scalar(
            insert(department)
            .values(
                code=code,
                name=name,
                chain=chain_to_json(chain),
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
            .returning(department.c.code)
        )
        return inserted is not None

    async def update(self, dept: Department, now: datetime) -> None:
        """Write a department's name and chain and bump its version."""
        await self._session.execute(
            sa.update(department)
            .where(department.c.code == dept.code)
            .values(
                name=dept.name,
                chain=chain_to_json(dept.chain),
                updated_at=now,
                version=department.c.version + 1,
            )
        )

    async def remove(self, code: str) -> None:
        """Delete a department row."""
        await self._session.execute(sa.delete(department).where(department.c.code == code))

    async def lock_assignments(self, codes: Iterable[str]) -> None:
        """Serialise assignment in these departments until commit (loads are read, then bumped).

        Locks are taken in code order, so two writers never wait on each other in a cycle:
        one statement takes them one after the other in the array's order, instead of a round
        trip per department (issue #12).
        """
        ordered = sorted(set(codes))
        if ordered:
            await self._session.execute(
                sa.text(
                    "SELECT pg_advisory_xact_lock(hashtextextended('routing.assignment.' || c, 0)) "
                    "FROM unnest(CAST(:codes AS text[])) WITH ORDINALITY AS u(c, n) ORDER BY n"
                ),
                {"codes": ordered},
            )

    async def has_work_in_progress(self, code: str) -> bool:
        """Whether any unresolved case sits in the department."""
        await self._cases_written()
        found = await self._session.scalar(
            sa.select(routed_case.c.id)
            .where(
                routed_case.c.department == code,
                routed_case.c.state.in_(WORK_IN_PROGRESS_STATES),
            )
            .limit(1)
        )
        return found is not None

    async def member_ids_of(self, code: str) -> list[str]:
        """Members whose home is the department."""
        return list(
            (
                await self._session.execute(
                    sa.select(member.c.id).where(member.c.department == code).order_by(member.c.id)
                )
            ).scalars()
        )

    async def members(self, ids: Iterable[str] | None = None) -> list[Member]:
        """Members with their current load (cases in progress assigned to them)."""
        await self._cases_written()
        load = (
            sa.select(sa.func.count())
            .where(
                routed_case.c.assignee_id == member.c.id,
                routed_case.c.state.in_(WORK_IN_PROGRESS_STATES),
            )
            .scalar_subquery()
        )
        query = sa.select(member, load.label("open_cases")).order_by(member.c.id)
        if ids is not None:
            query = query.where(member.c.id.in_(list(ids)))
        rows = (await self._session.execute(query)).mappings().all()
        return [
            Member(
                id=row["id"],
                name=row["name"],
                department=row["department"],
                level=HandlerLevel(row["level"]),
                availability=row["availability"],
                open_cases=row["open_cases"],
                manager_id=row["manager_id"],
            )
            for row in rows
        ]

    async def get_member(self, member_id: str, *, for_update: bool = False) -> Member | None:
        """One member with their load."""
        if for_update:
            await self._session.execute(
                sa.select(member.c.id).where(member.c.id == member_id).with_for_update()
            )
        found = await self.members([member_id])
        return found[0] if found else None

    async def add_member(self, new: Member, now: datetime) -> bool:
        """Insert a member; False if the id is taken."""
        inserted = await self._session.scalar(
            insert(member)
            .values(
                id=new.id,
                name=new.name,
                department=new.department,
                level=str(new.level),
                availability=str(new.availability),
                manager_id=new.manager_id,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
            .returning(member.c.id)
        )
        return inserted is not None

    async def update_member(self, changed: Member, now: datetime) -> None:
        """Write a member's name, availability and manager."""
        await self._session.execute(
            sa.update(member)
            .where(member.c.id == changed.id)
            .values(
                name=changed.name,
                availability=str(changed.availability),
                manager_id=changed.manager_id,
                updated_at=now,
            )
        )

    async def remove_member(self, member_id: str) -> None:
        """Delete a member and forget them as anybody's manager."""
        await self._session.execute(
            sa.update(member).where(member.c.manager_id == member_id).values(manager_id=None)
        )
        await self._session.execute(sa.delete(member).where(member.c.id == member_id))

    async def departments_listing(self, member_id: str) -> list[DepartmentRecord]:
        """Departments whose chain lists the member, locked for a chain edit."""
        rows = (
            (
                await self._session.execute(
                    sa.select(department).order_by(department.c.code).with_for_update()
                )
            )
            .mappings()
            .all()
        )
        records = [_department_from_row(row) for row in rows]
        return [r for r in records if r.department.level_of(member_id) is not None]

"""Who can take a case right now: departments, members and their loads, loaded once per use case."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.errors import InvalidInput

from tousu_routing.adapters.repository import DepartmentRepository
from tousu_routing.domain import (
    AssignmentDecision,
    ComplaintSubject,
    ConflictCheck,
    Department,
    HandlerLevel,
    Member,
    check_conflict_of_interest,
    choose_assignee,
)


@dataclass
class Roster:
    """Departments and members as one use case sees them; loads follow its own assignments."""

    departments: dict[str, Department]
    members: dict[str, Member]

    @classmethod
    async def load(cls, *, db_session: AsyncSession, assigning_in: Iterable[str] = ()) -> Roster:
        """Every department and member, with each member's current load.

        ``assigning_in`` names the departments the caller will assign in: their assignments
        are serialised until commit, so concurrent cases cannot all pick the same
        "least loaded" member from the same stale loads.
        """
        repository = DepartmentRepository(db_session)
        await repository.lock_assignments(assigning_in)
        departments = {record.code: record.department for record in await repository.all()}
        members = {m.id: m for m in await repository.members()}
        return cls(departments=departments, members=members)

    def department(self, code: str, *, field: str = "department") -> Department:
        """A department by code; an unknown code is the caller's mistake."""
        found = self.departments.get(code)
        if found is None:
            raise InvalidInput(f"there is no department {code!r}", field=field)
        return found

    def conflict(self, subject: ComplaintSubject, department_code: str) -> ConflictCheck:
        """What the conflict-of-interest rule demands if the case sits in this department."""
        return check_conflict_of_interest(subject, department_code, self.members.values())

    def choose(
        self, department_code: str, level: HandlerLevel, excluded: Iterable[str],
    ) -> AssignmentDecision:
        """The least-loaded available member at that level, or the queue; counts the new case."""
        decision = choose_assignee(
            self.department(department_code), level, self.members.values(), excluded,
        )
        if decision.assignee_id is not None:
            chosen = self.members[decision.assignee_id]
            self.members[chosen.id] = dataclasses.replace(chosen, open_cases=chosen.open_cases + 1)
        return decision

    def check_assignable(self, member_id: str, department_code: str, level: HandlerLevel) -> None:
        """Refuse a hand-picked assignee who cannot take the case (conflicts are the domain's)."""
        department = self.department(department_code)
        member = self.members.get(member_id)
        if member is None:
            raise InvalidInput(f"there is no member {member_id!r}", field="assignee_id")
        serves_at = department.level_of(member_id)
        if serves_at is None:
            raise InvalidInput(f"{member_id} does not serve {department_code}", field="assignee_id")
        if serves_at < level:
            raise InvalidInput(
                f"{member_id} serves {department_code} at {serves_at} level; the case needs "
                f"{level} or above", field="assignee_id",
            )
        if not member.is_available:
            raise InvalidInput(f"{member_id} is {member.availability}", field="assignee_id")

    def is_available(self, member_id: str) -> bool:
        """Whether a member exists and can take cases now."""
        member = self.members.get(member_id)
        return member is not None and member.is_available

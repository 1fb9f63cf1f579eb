"""Who can take a case right now: the departments a use case assigns in, and only their people.

A routed case reads its target department's chain, the members that chain lists (with their
current loads), and the people the conflict-of-interest rule looks at (the complaint's
subject and their manager), never the whole organisation. A consumed batch of complaints
reads one roster for all of them (see ``openings``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from tousu_shared.errors import InvalidInput

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
from tousu_routing.service_layer.unit_of_work import RoutingWork


@dataclass
class Roster:
    """Departments and members as one use case sees them; loads follow its own assignments."""

    departments: dict[str, Department]
    members: dict[str, Member]
    # The department codes and member ids asked for, found or not.
    asked_departments: frozenset[str] = field(default=frozenset())
    asked_members: frozenset[str] = field(default=frozenset())

    @classmethod
    async def load(
        cls,
        uow: RoutingWork,
        departments: Iterable[str],
        *,
        subjects: Iterable[ComplaintSubject] = (),
        members: Iterable[str | None] = (),
        assigning: bool = True,
    ) -> Roster:
        """The named departments, the members their chains list, the subjects and ``members``.

        When ``assigning``, assignments in those departments are serialised until commit
        (the locks are taken in code order before the loads are read), so concurrent cases
        cannot all pick the same "least loaded" member from the same stale loads. A roster
        a batch holds (``uow.openings``) is then given up: this one may assign, and the
        held one's loads would no longer count every case of the transaction.
        """
        codes = sorted(set(departments))
        if assigning:
            uow.openings = None
            await uow.departments.lock_assignments(codes)
        found = {record.code: record.department for record in await uow.departments.many(codes)}
        wanted = {m for dept in found.values() for ids in dept.chain.values() for m in ids}
        wanted |= {m for m in members if m is not None}
        subject_ids = {s.member_id for s in subjects if s.member_id is not None}
        people = {m.id: m for m in await uow.departments.members(sorted(wanted | subject_ids))}
        # The conflict-of-interest floor is a subject's manager's level: read them too.
        managers = {people[s].manager_id for s in subject_ids if s in people}
        missing = sorted(m for m in managers if m is not None and m not in people)
        if missing:
            people.update({m.id: m for m in await uow.departments.members(missing)})
        return cls(
            departments=found,
            members=people,
            asked_departments=frozenset(codes),
            asked_members=frozenset(wanted | subject_ids),
        )

    def covers(self, department_code: str, subject: ComplaintSubject) -> bool:
        """Whether this roster was read for a case in that department about that subject."""
        return department_code in self.asked_departments and (
            subject.member_id is None or subject.member_id in self.asked_members
        )

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
        self,
        department_code: str,
        level: HandlerLevel,
        excluded: Iterable[str],
    ) -> AssignmentDecision:
        """The least-loaded available member at that level, or the queue; counts the new case."""
        decision = choose_assignee(
            self.department(department_code),
            level,
            self.members.values(),
            excluded,
        )
        self.count(decision)
        return decision

    def count(self, decision: AssignmentDecision) -> None:
        """Add a case just assigned to its assignee's load."""
        if decision.assignee_id is not None:
            chosen = self.members[decision.assignee_id]
            self.members[chosen.id] = dataclasses.replace(chosen, open_cases=chosen.open_cases + 1)

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
                f"{level} or above",
                field="assignee_id",
            )
        if not member.is_available:
            raise InvalidInput(f"{member_id} is {member.availability}", field="assignee_id")

    def is_available(self, member_id: str) -> bool:
        """Whether a member exists and can take cases now."""
        member = self.members.get(member_id)
        return member is not None and member.is_available

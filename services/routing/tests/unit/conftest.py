"""A routing unit of work without Kafka or Postgres, for unit tests of the use cases.

``FakeRoutingUnitOfWork`` is the shared ``FakeUnitOfWork`` with in-memory repositories: the
state lives across units of work (as a database's would) and a case is stored as a copy, so
a change that is never saved is never seen. Test modules reach it through the ``routing``
fixture (with ``--import-mode=importlib`` they cannot import this file).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest
from tousu_routing.adapters.case_repository import WORK_IN_PROGRESS_STATES
from tousu_routing.adapters.complaint_facts import ComplaintFacts
from tousu_routing.adapters.department_repository import DepartmentRecord
from tousu_routing.domain import Department, HandlerLevel, Member, RoutingRule, RuleSet
from tousu_routing.domain.record import CaseRecord
from tousu_routing.service_layer.context import RoutingContext
from tousu_routing.service_layer.rules import criteria_from
from tousu_routing.service_layer.unit_of_work import RoutingWork
from tousu_shared.clock import FixedClock
from tousu_shared.uow import FakeUnitOfWork

START = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)


class FakeCaseRepository:
    """Cases by id; loads and saves copies, like rows."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, CaseRecord] = {}

    def _loaded(self, record: CaseRecord | None) -> CaseRecord | None:
        return copy.deepcopy(record)

    async def get(self, case_id: uuid.UUID, *, for_update: bool = False) -> CaseRecord | None:
        return self._loaded(self.rows.get(case_id))

    async def get_by_complaint(
        self, complaint_id: uuid.UUID, *, for_update: bool = False
    ) -> CaseRecord | None:
        found = [r for r in self.rows.values() if r.case.complaint_id == str(complaint_id)]
        return self._loaded(found[0]) if found else None

    async def exists_for_complaint(self, complaint_id: uuid.UUID) -> bool:
        return any(r.case.complaint_id == str(complaint_id) for r in self.rows.values())

    async def assigned_work_in_progress(
        self, member_id: str, *, for_update: bool = False
    ) -> list[CaseRecord]:
        return [
            copy.deepcopy(r)
            for r in self.rows.values()
            if r.case.assignee_id == member_id and r.case.state in WORK_IN_PROGRESS_STATES
        ]

    async def add(self, record: CaseRecord, now: datetime) -> bool:
        if await self.exists_for_complaint(uuid.UUID(record.case.complaint_id)):
            return False
        record.stored_version = record.case.version
        self.rows[record.id] = self._stored(record)
        return True

    async def save(self, record: CaseRecord, now: datetime) -> None:
        if self.rows[record.id].case.version != record.stored_version:
            raise RuntimeError(f"case {record.id} changed under a write without its row lock")
        record.stored_version = record.case.version
        record.updated_at = now
        self.rows[record.id] = self._stored(record)

    def _stored(self, record: CaseRecord) -> CaseRecord:
        stored = copy.deepcopy(record)
        stored.case.events.clear()  # events go to the outbox, not the row
        return stored

    def load_of(self, member_id: str) -> int:
        """Cases in progress assigned to a member (what the SQL load subquery counts)."""
        return sum(
            1
            for r in self.rows.values()
            if r.case.assignee_id == member_id and r.case.state in WORK_IN_PROGRESS_STATES
        )


class FakeComplaintFactRepository:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, ComplaintFacts] = {}

    async def add(self, facts: ComplaintFacts) -> None:
        self.rows.setdefault(facts.complaint_id, facts)

    async def get(self, complaint_id: uuid.UUID) -> ComplaintFacts | None:
        return self.rows.get(complaint_id)

    async def remove(self, complaint_id: uuid.UUID) -> None:
        self.rows.pop(complaint_id, None)


class FakeDepartmentRepository:
    """Departments and members; loads come from the case repository."""

    def __init__(self, cases: FakeCaseRepository) -> None:
        self._cases = cases
        self.departments: dict[str, Department] = {}
        self.people: dict[str, Member] = {}
        self.locked: list[list[str]] = []
        self.member_reads: list[list[str]] = []

    async def lock_assignments(self, codes: Iterable[str]) -> None:
        self.locked.append(sorted(set(codes)))

    async def codes(self) -> list[str]:
        return sorted(self.departments)

    async def many(self, codes: Iterable[str]) -> list[DepartmentRecord]:
        return [
            DepartmentRecord(self.departments[code], 1, START, START)
            for code in sorted(set(codes))
            if code in self.departments
        ]

    async def members(self, ids: Iterable[str] | None = None) -> list[Member]:
        wanted = sorted(self.people) if ids is None else sorted(set(ids))
        self.member_reads.append(wanted)
        return [
            replace(self.people[i], open_cases=self._cases.load_of(i))
            for i in wanted
            if i in self.people
        ]


class FakeRuleRepository:
    def __init__(self) -> None:
        self.rules: list[RoutingRule] = [
            RoutingRule(id="default", order=1_000_000, name="Default", target_department="general")
        ]

    async def rule_set(self) -> tuple[RuleSet, dict[str, int]]:
        return RuleSet(self.rules), {rule.id: 1 for rule in self.rules}


class FakeRoutingUnitOfWork(RoutingWork, FakeUnitOfWork):
    """Routing's unit of work on in-memory repositories."""

    def __init__(self) -> None:
        super().__init__()
        self.cases = FakeCaseRepository()
        self.complaint_facts = FakeComplaintFactRepository()
        self.departments = FakeDepartmentRepository(self.cases)
        self.rules = FakeRuleRepository()


@dataclass
class Routing:
    """One fake unit of work (reused, like a database) and the context around it."""

    uow: FakeRoutingUnitOfWork = field(default_factory=FakeRoutingUnitOfWork)
    clock: FixedClock = field(default_factory=lambda: FixedClock(START))
    topics_created: list[str] = field(default_factory=list)

    @property
    def ctx(self) -> RoutingContext:
        async def department_topics(codes) -> None:
            self.topics_created.extend(codes)

        return RoutingContext(
            uow=lambda: self.uow, clock=self.clock, department_topics=department_topics
        )

    def department(self, code: str, **levels: list[str]) -> None:
        """A department whose chain lists the given member ids per level (all available)."""
        chain = {HandlerLevel(level): tuple(ids) for level, ids in levels.items()}
        self.uow.departments.departments[code] = Department(code=code, name=code, chain=chain)
        for level, ids in chain.items():
            for member_id in ids:
                self.uow.departments.people[member_id] = Member(
                    id=member_id, name=member_id.upper(), department=code, level=level
                )

    def rule(self, rule_id: str, target: str, order: int, **criteria: list[str]) -> None:
        self.uow.rules.rules.append(
            RoutingRule(
                id=rule_id,
                order=order,
                name=rule_id,
                target_department=target,
                criteria=criteria_from(criteria),
            )
        )


@pytest.fixture
def routing() -> Routing:
    """Routing with the default desk, a quality department and a rule sending products there."""
    setup = Routing()
    setup.department("general", agent=["g-1"])
    setup.department(
        "quality",
        agent=["qa-1", "qa-2"],
        department_manager=["qa-mgr"],
        director=["qa-dir"],
        executive=["ceo"],
    )
    setup.department("logistics", agent=["lg-1"], department_manager=["lg-mgr"])
    setup.rule("quality-products", "quality", 10, category=["product_quality"])
    return setup

"""Use cases for departments and their members: editing, availability and reassignment.

A department created at run time gets its routed-case topic before its row commits, so a
case can never be published to a department topic that does not exist (the broker does
not create topics on its own).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.auth import Principal
from tousu_shared.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from tousu_shared.kafka import ensure_topics
from tousu_shared.runtime import Runtime
from tousu_shared.topics import department_topic

from tousu_routing.adapters.repository import (
    CaseRepository,
    DepartmentRecord,
    DepartmentRepository,
    RuleRepository,
    chain_to_json,
)
from tousu_routing.domain import Availability, Department, HandlerLevel, Member
from tousu_routing.service_layer.publishing import store_case_changes
from tousu_routing.service_layer.roster import Roster

DEPARTMENT_TOPIC_PARTITIONS = 3
Chain = Mapping[HandlerLevel, Sequence[str]]


@dataclass(frozen=True)
class DepartmentView:
    """A department with the members who belong to it or serve it."""

    record: DepartmentRecord
    members: list[Member]


def _now() -> datetime:
    return datetime.now(UTC)


async def ensure_department_topics(runtime: Runtime, codes: Sequence[str] | None = None) -> None:
    """Create the routed-case topics of the given departments (default: all) if missing."""
    if codes is None:
        async with runtime.session_factory() as session:
            codes = [record.code for record in await DepartmentRepository(session).all()]
    settings = runtime.settings
    await ensure_topics(settings.kafka_bootstrap, [
        (settings.topic(department_topic(code)), DEPARTMENT_TOPIC_PARTITIONS) for code in codes
    ])


async def _view(record: DepartmentRecord, repository: DepartmentRepository) -> DepartmentView:
    listed = {m for ids in record.department.chain.values() for m in ids}
    home = set(await repository.member_ids_of(record.code))
    return DepartmentView(record, await repository.members(sorted(listed | home)))


async def list_departments(*, db_session: AsyncSession) -> list[DepartmentView]:
    """Every department with its members."""
    repository = DepartmentRepository(db_session)
    return [await _view(record, repository) for record in await repository.all()]


async def get_department(code: str, *, db_session: AsyncSession) -> DepartmentView:
    """One department with its members."""
    repository = DepartmentRepository(db_session)
    record = await repository.get(code)
    if record is None:
        raise NotFound(f"no department {code!r}", field="code")
    return await _view(record, repository)


async def _check_chain_members(department: Department, repository: DepartmentRepository) -> None:
    listed = sorted({m for ids in department.chain.values() for m in ids})
    known = {m.id for m in await repository.members(listed)}
    unknown = [m for m in listed if m not in known]
    if unknown:
        raise InvalidInput(f"the chain lists unknown members {unknown}; add them first",
                           field="chain")


async def create_department(
    runtime: Runtime,
    *,
    db_session: AsyncSession,
    principal: Principal,
    code: str,
    name: str,
    chain: Chain,
    now: datetime | None = None,
) -> DepartmentView:
    """Add a department and create its routed-case topic (no restart needed)."""
    now = now or _now()
    repository = DepartmentRepository(db_session)
    department = Department(code=code, name=name, chain=dict(chain))
    await _check_chain_members(department, repository)
    if not await repository.add(code, name, department.chain, now):
        raise Conflict(f"department {code!r} already exists", field="code")
    await runtime.audit.record(db_session, principal, "department.create", "department", code,
                               details={"name": name, "chain": chain_to_json(department.chain)})
    await ensure_department_topics(runtime, [code])
    return await get_department(code, db_session=db_session)


async def _locked_department(code: str, repository: DepartmentRepository) -> DepartmentRecord:
    record = await repository.get(code, for_update=True)
    if record is None:
        raise NotFound(f"no department {code!r}", field="code")
    return record


async def update_department(
    runtime: Runtime,
    code: str,
    *,
    db_session: AsyncSession,
    principal: Principal,
    name: str | None = None,
    chain: Chain | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> DepartmentView:
    """Rename a department or change its chain."""
    now = now or _now()
    repository = DepartmentRepository(db_session)
    record = await _locked_department(code, repository)
    if expected_version is not None and expected_version != record.version:
        raise PreconditionFailed(
            f"department {code} is at version {record.version}, not {expected_version}",
            current_version=record.version,
        )
    current = record.department
    changed = Department(code=code, name=name if name is not None else current.name,
                         chain=dict(chain) if chain is not None else dict(current.chain))
    await _check_chain_members(changed, repository)
    await repository.update(changed, now)
    await runtime.audit.record(
        db_session, principal, "department.update", "department", code,
        details={"name": changed.name, "chain": chain_to_json(changed.chain)},
    )
    return await get_department(code, db_session=db_session)


async def delete_department(
    runtime: Runtime, code: str, *, db_session: AsyncSession, principal: Principal,
) -> None:
    """Remove an empty department that no rule targets (its topic and past cases stay)."""
    repository = DepartmentRepository(db_session)
    await _locked_department(code, repository)
    rules = await RuleRepository(db_session).targets(code)
    if rules:
        raise Conflict(f"rules {rules} send cases to {code}; change them first", rule_ids=rules)
    if await repository.has_work_in_progress(code):
        raise Conflict(f"{code} still has cases in progress; transfer or resolve them first")
    members = await repository.member_ids_of(code)
    if members:
        raise Conflict(f"{code} still has members {members}; remove them first",
                       member_ids=members)
    await repository.remove(code)
    await runtime.audit.record(db_session, principal, "department.delete", "department", code)


async def add_member(
    runtime: Runtime,
    code: str,
    *,
    db_session: AsyncSession,
    principal: Principal,
    member_id: str,
    name: str,
    level: HandlerLevel,
    availability: Availability = Availability.AVAILABLE,
    manager_id: str | None = None,
    now: datetime | None = None,
) -> Member:
    """Add a member to a department and list them in its chain at their level."""
    now = now or _now()
    repository = DepartmentRepository(db_session)
    record = await _locked_department(code, repository)
    member = Member(id=member_id, name=name, department=code, level=level,
                    availability=availability, manager_id=manager_id)
    if manager_id is not None and await repository.get_member(manager_id) is None:
        raise InvalidInput(f"there is no member {manager_id!r}", field="manager_id")
    if not await repository.add_member(member, now):
        raise Conflict(f"member {member_id!r} already exists", field="id")
    chain = {lvl: list(ids) for lvl, ids in record.department.chain.items()}
    if member_id not in chain[member.level]:
        chain[member.level].append(member_id)
    await repository.update(Department(code=code, name=record.department.name, chain=chain), now)
    await runtime.audit.record(db_session, principal, "member.create", "member", member_id,
                               details={"department": code, "level": str(member.level),
                                        "availability": str(member.availability)})
    found = await repository.get_member(member_id)
    assert found is not None  # inserted above, in this transaction
    return found


async def _home_member(code: str, member_id: str, repository: DepartmentRepository) -> Member:
    member = await repository.get_member(member_id, for_update=True)
    if member is None or member.department != code:
        raise NotFound(f"no member {member_id!r} in {code}", field="member_id")
    return member


async def update_member(
    runtime: Runtime,
    code: str,
    member_id: str,
    *,
    db_session: AsyncSession,
    principal: Principal,
    name: str | None = None,
    availability: Availability | None = None,
    manager_id: str | None = None,
    now: datetime | None = None,
) -> Member:
    """Rename a member, change their manager, or mark them absent / off shift / back.

    A member who stops being available hands their cases in progress to the least-loaded
    available peer at the same level, or to the department queue.
    """
    now = now or _now()
    repository = DepartmentRepository(db_session)
    member = await _home_member(code, member_id, repository)
    if manager_id is not None and await repository.get_member(manager_id) is None:
        raise InvalidInput(f"there is no member {manager_id!r}", field="manager_id")
    changed = dataclasses.replace(
        member,
        name=name if name is not None else member.name,
        availability=Availability(availability) if availability is not None
        else member.availability,
        manager_id=manager_id if manager_id is not None else member.manager_id,
    )
    await repository.update_member(changed, now)
    await runtime.audit.record(db_session, principal, "member.update", "member", member_id,
                               details={"department": code, "name": changed.name,
                                        "availability": str(changed.availability),
                                        "manager_id": changed.manager_id})
    if member.is_available and not changed.is_available:
        await reassign_work_of(runtime, member_id, f"is {changed.availability}",
                               db_session=db_session, principal=principal, now=now)
    found = await repository.get_member(member_id)
    assert found is not None  # locked above
    return found


async def remove_member(
    runtime: Runtime,
    code: str,
    member_id: str,
    *,
    db_session: AsyncSession,
    principal: Principal,
    now: datetime | None = None,
) -> None:
    """Remove a member from every chain, hand over their cases in progress, delete them."""
    now = now or _now()
    repository = DepartmentRepository(db_session)
    await _home_member(code, member_id, repository)
    for record in await repository.departments_listing(member_id):
        chain = {lvl: [m for m in ids if m != member_id]
                 for lvl, ids in record.department.chain.items()}
        await repository.update(
            Department(code=record.code, name=record.department.name, chain=chain), now,
        )
    await reassign_work_of(runtime, member_id, "left the department", db_session=db_session,
                           principal=principal, now=now)
    await repository.remove_member(member_id)
    await runtime.audit.record(db_session, principal, "member.delete", "member", member_id,
                               details={"department": code})


async def reassign_work_of(
    runtime: Runtime,
    member_id: str,
    why: str,
    *,
    db_session: AsyncSession,
    principal: Principal,
    now: datetime,
) -> int:
    """Hand a member's cases in progress to available peers (or the queue); returns how many."""
    records = await CaseRepository(db_session).assigned_work_in_progress(member_id,
                                                                         for_update=True)
    roster = await Roster.load(db_session=db_session,
                               assigning_in=[r.case.department for r in records])
    for record in records:
        case = record.case
        decision = roster.choose(case.department, case.handler_level,
                                 case.excluded_member_ids | {member_id})
        case.assign(assignee_id=decision.assignee_id, actor=principal.actor, now=now,
                    note=f"{member_id} {why}: {decision.reason}")
        await store_case_changes(runtime, record, db_session=db_session, principal=principal,
                                 now=now)
    return len(records)

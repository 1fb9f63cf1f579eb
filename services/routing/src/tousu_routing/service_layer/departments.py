"""Use cases for departments and their members: editing, availability and reassignment.

A department created at run time gets its routed-case topic before its row commits, so a
case can never be published to a department topic that does not exist (the broker does
not create topics on its own).

Every change of the directory (create, rename, delete) publishes the department's state on
``platform.departments`` in the same transaction, and the whole directory is announced once
at start (``announce_departments``), so the other services' replicas know which departments
a credential may be bound to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tousu_shared.auth import Principal
from tousu_shared.contracts.platform import department_declared, department_retired
from tousu_shared.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from tousu_shared.kafka import connection, ensure_topics
from tousu_shared.runtime import Runtime
from tousu_shared.settings import ServiceSettings
from tousu_shared.topics import department_topic

from tousu_routing.adapters.department_repository import DepartmentRecord, chain_to_json
from tousu_routing.domain import Availability, Department, HandlerLevel, Member, Stamp
from tousu_routing.service_layer.context import RoutingContext
from tousu_routing.service_layer.roster import Roster
from tousu_routing.service_layer.unit_of_work import RoutingUnitOfWork, RoutingWork

DEPARTMENT_TOPIC_PARTITIONS = 3
Chain = Mapping[HandlerLevel, Sequence[str]]


@dataclass(frozen=True)
class DepartmentView:
    """A department with the members who belong to it or serve it."""

    record: DepartmentRecord
    members: list[Member]


async def create_department_topics(settings: ServiceSettings, codes: Sequence[str]) -> None:
    """Create the routed-case topics of these departments if they are missing."""
    await ensure_topics(
        connection(settings),
        [(settings.topic(department_topic(code)), DEPARTMENT_TOPIC_PARTITIONS) for code in codes],
    )


async def ensure_department_topics(runtime: Runtime, codes: Sequence[str] | None = None) -> None:
    """At start: the routed-case topics of the given departments (default: all) exist."""
    if codes is None:
        async with runtime.unit_of_work_factory(RoutingUnitOfWork)() as uow:
            codes = await uow.departments.codes()
    await create_department_topics(runtime.settings, codes)


async def announce_departments(ctx: RoutingContext) -> int:
    """Publish the state of every department through the outbox; returns how many.

    Run at every start (beside the relay), not once by a migration: the departments seeded
    by migration 0002 or ``ensure_defaults``, or created before routing published department
    events, reach every replica however the other side was set up or lost (a new broker or
    namespace, a service schema restored or emptied, a consumer group reset), which a
    migration's one-off events would not repair. The events carry state and ``as_of`` (the
    row's last change), so announcing again is harmless, and the topic is compacted, so it
    keeps one event per department. The rows are share-locked until commit: a concurrent
    rename or delete waits and publishes after this, never before it.
    """
    async with ctx.uow() as uow:
        records = await uow.departments.all(for_share=True)
        for record in records:
            uow.publish(department_declared(record.code, record.department.name, record.updated_at))
        await uow.commit()
    return len(records)


def _chain_of(chain: Chain) -> dict[HandlerLevel, tuple[str, ...]]:
    return {HandlerLevel(level): tuple(ids) for level, ids in chain.items()}


async def _view(uow: RoutingWork, record: DepartmentRecord) -> DepartmentView:
    listed = {m for ids in record.department.chain.values() for m in ids}
    home = set(await uow.departments.member_ids_of(record.code))
    return DepartmentView(record, await uow.departments.members(sorted(listed | home)))


async def list_departments(uow: RoutingWork) -> list[DepartmentView]:
    """Every department with its members."""
    return [await _view(uow, record) for record in await uow.departments.all()]


async def get_department(uow: RoutingWork, code: str) -> DepartmentView:
    """One department with its members."""
    record = await uow.departments.get(code)
    if record is None:
        raise NotFound(f"no department {code!r}", field="code")
    return await _view(uow, record)


async def _check_chain_members(uow: RoutingWork, department: Department) -> None:
    listed = sorted({m for ids in department.chain.values() for m in ids})
    known = {m.id for m in await uow.departments.members(listed)}
    unknown = [m for m in listed if m not in known]
    if unknown:
        raise InvalidInput(
            f"the chain lists unknown members {unknown}; add them first", field="chain"
        )


async def create_department(
    ctx: RoutingContext,
    uow: RoutingWork,
    principal: Principal,
    *,
    code: str,
    name: str,
    chain: Chain,
) -> DepartmentView:
    """Add a department and create its routed-case topic (no restart needed)."""
    now = ctx.clock()
    department = Department(code=code, name=name, chain=_chain_of(chain))
    await _check_chain_members(uow, department)
    if not await uow.departments.add(code, name, department.chain, now):
        raise Conflict(f"department {code!r} already exists", field="code")
    uow.audit(
        principal,
        "department.create",
        "department",
        code,
        details={"name": name, "chain": chain_to_json(department.chain)},
    )
    uow.publish(department_declared(code, name, now))
    await ctx.department_topics([code])
    return await get_department(uow, code)


async def _locked_department(uow: RoutingWork, code: str) -> DepartmentRecord:
    record = await uow.departments.get(code, for_update=True)
    if record is None:
        raise NotFound(f"no department {code!r}", field="code")
    return record


async def update_department(
    ctx: RoutingContext,
    uow: RoutingWork,
    principal: Principal,
    code: str,
    *,
    name: str | None = None,
    chain: Chain | None = None,
    expected_version: int | None = None,
) -> DepartmentView:
    """Rename a department or change its chain."""
    now = ctx.clock()
    record = await _locked_department(uow, code)
    if expected_version is not None and expected_version != record.version:
        raise PreconditionFailed(
            f"department {code} is at version {record.version}, not {expected_version}",
            current_version=record.version,
        )
    current = record.department
    changed = Department(
        code=code,
        name=name if name is not None else current.name,
        chain=_chain_of(chain) if chain is not None else current.chain,
    )
    await _check_chain_members(uow, changed)
    await uow.departments.update(changed, now)
    uow.audit(
        principal,
        "department.update",
        "department",
        code,
        details={"name": changed.name, "chain": chain_to_json(changed.chain)},
    )
    uow.publish(department_declared(code, changed.name, now))
    return await get_department(uow, code)


async def delete_department(
    ctx: RoutingContext, uow: RoutingWork, principal: Principal, code: str
) -> None:
    """Remove an empty department that no rule targets (its topic and past cases stay)."""
    await _locked_department(uow, code)
    rules = await uow.rules.targets(code)
    if rules:
        raise Conflict(f"rules {rules} send cases to {code}; change them first", rule_ids=rules)
    if await uow.departments.has_work_in_progress(code):
        raise Conflict(f"{code} still has cases in progress; transfer or resolve them first")
    members = await uow.departments.member_ids_of(code)
    if members:
        raise Conflict(f"{code} still has members {members}; remove them first", member_ids=members)
    await uow.departments.remove(code)
    uow.audit(principal, "department.delete", "department", code)
    uow.publish(department_retired(code, ctx.clock()))


async def _known_manager(uow: RoutingWork, manager_id: str | None) -> None:
    if manager_id is not None and await uow.departments.get_member(manager_id) is None:
        raise InvalidInput(f"there is no member {manager_id!r}", field="manager_id")


async def _member(uow: RoutingWork, member_id: str) -> Member:
    found = await uow.departments.get_member(member_id)
    assert found is not None  # written or locked earlier in this transaction
    return found


async def add_member(
    ctx: RoutingContext, uow: RoutingWork, principal: Principal, member: Member
) -> Member:
    """Add a member to their department and list them in its chain at their level."""
    now = ctx.clock()
    code, member_id = member.department, member.id
    record = await _locked_department(uow, code)
    await _known_manager(uow, member.manager_id)
    if not await uow.departments.add_member(member, now):
        raise Conflict(f"member {member_id!r} already exists", field="id")
    chain = dict(record.department.chain)
    if member_id not in chain[member.level]:
        chain[member.level] = (*chain[member.level], member_id)
    await uow.departments.update(dataclasses.replace(record.department, chain=chain), now)
    uow.audit(
        principal,
        "member.create",
        "member",
        member_id,
        details={
            "department": code,
            "level": str(member.level),
            "availability": str(member.availability),
        },
    )
    return await _member(uow, member_id)


async def _home_member(uow: RoutingWork, code: str, member_id: str) -> Member:
    member = await uow.departments.get_member(member_id, for_update=True)
    if member is None or member.department != code:
        raise NotFound(f"no member {member_id!r} in {code}", field="member_id")
    return member


async def update_member(
    ctx: RoutingContext,
    uow: RoutingWork,
    principal: Principal,
    code: str,
    member_id: str,
    *,
    name: str | None = None,
    availability: Availability | None = None,
    manager_id: str | None = None,
) -> Member:
    """Rename a member, change their manager, or mark them absent / off shift / back.

    A member who stops being available hands their cases in progress to the least-loaded
    available peer at the same level, or to the department queue.
    """
    now = ctx.clock()
    member = await _home_member(uow, code, member_id)
    await _known_manager(uow, manager_id)
    changed = dataclasses.replace(
        member,
        name=name if name is not None else member.name,
        availability=Availability(availability)
        if availability is not None
        else member.availability,
        manager_id=manager_id if manager_id is not None else member.manager_id,
    )
    await uow.departments.update_member(changed, now)
    uow.audit(
        principal,
        "member.update",
        "member",
        member_id,
        details={
            "department": code,
            "name": changed.name,
            "availability": str(changed.availability),
            "manager_id": changed.manager_id,
        },
    )
    if member.is_available and not changed.is_available:
        await reassign_work_of(ctx, uow, principal, member_id, f"is {changed.availability}")
    return await _member(uow, member_id)


async def remove_member(
    ctx: RoutingContext, uow: RoutingWork, principal: Principal, code: str, member_id: str
) -> None:
    """Remove a member from every chain, hand over their cases in progress, delete them."""
    now = ctx.clock()
    await _home_member(uow, code, member_id)
    for record in await uow.departments.departments_listing(member_id):
        chain = {
            level: tuple(m for m in ids if m != member_id)
            for level, ids in record.department.chain.items()
        }
        await uow.departments.update(dataclasses.replace(record.department, chain=chain), now)
    await reassign_work_of(ctx, uow, principal, member_id, "left the department")
    await uow.departments.remove_member(member_id)
    uow.audit(principal, "member.delete", "member", member_id, details={"department": code})


async def reassign_work_of(
    ctx: RoutingContext, uow: RoutingWork, principal: Principal, member_id: str, why: str
) -> int:
    """Hand a member's cases in progress to available peers (or the queue); returns how many."""
    now = ctx.clock()
    records = await uow.cases.assigned_work_in_progress(member_id, for_update=True)
    roster = await Roster.load(uow, [r.case.department for r in records])
    for record in records:
        case = record.case
        decision = roster.choose(
            case.department, case.handler_level, case.excluded_member_ids | {member_id}
        )
        case.assign(
            Stamp(actor=principal.actor, now=now),
            assignee_id=decision.assignee_id,
            note=f"{member_id} {why}: {decision.reason}",
        )
        await uow.save_case(record, principal, now)
    return len(records)

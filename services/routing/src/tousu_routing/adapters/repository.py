"""Loads and stores routing's aggregates and reference data; never commits (the caller does)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import CursorResult, RowMapping
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.pagination import decode_cursor, encode_cursor

from tousu_routing.adapters.orm import (
    case_history,
    complaint_fact,
    department,
    member,
    routed_case,
    routing_rule,
    routing_rule_revision,
)
from tousu_routing.domain import (
    Case,
    CaseAction,
    CaseState,
    Department,
    HandlerLevel,
    Member,
    RoutingRule,
    RuleCriteria,
    RuleSet,
    Transition,
)
from tousu_routing.domain.record import CaseProfile, CaseRecord
from tousu_routing.domain.rules import CRITERIA_FIELDS

# Cases someone still works on: they count towards a member's load and move when the
# member is away. Resolved cases only wait for the customer's verdict.
WORK_IN_PROGRESS_STATES: tuple[str, ...] = (
    CaseState.ROUTED,
    CaseState.ACKNOWLEDGED,
    CaseState.INVESTIGATING,
    CaseState.SOLUTION_PROPOSED,
)


# ---- complaint facts --------------------------------------------------------------------


@dataclass(frozen=True)
class ComplaintFacts:
    """What intake told routing about a complaint when it was received."""

    complaint_id: uuid.UUID
    tracking_code: str
    channel: str
    contact_at: datetime
    received_at: datetime
    customer_tier: str
    product_line: str | None
    region: str | None
    subject_staff_ref: str | None
    subject_unit: str | None
    contact_details_url: str


class ComplaintFactRepository:
    """Complaint facts kept from ``ComplaintReceived`` until the case is opened."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, facts: ComplaintFacts) -> None:
        """Store facts; the first copy of a complaint wins."""
        await self._session.execute(
            insert(complaint_fact).values(**vars(facts)).on_conflict_do_nothing()
        )

    async def get(self, complaint_id: uuid.UUID) -> ComplaintFacts | None:
        """The stored facts of a complaint, if any."""
        row = (
            (
                await self._session.execute(
                    sa.select(complaint_fact).where(complaint_fact.c.complaint_id == complaint_id)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        return ComplaintFacts(**{k: v for k, v in row.items() if k != "stored_at"})

    async def remove(self, complaint_id: uuid.UUID) -> None:
        """Forget the facts once the case holds what it needs."""
        await self._session.execute(
            sa.delete(complaint_fact).where(complaint_fact.c.complaint_id == complaint_id)
        )


# ---- cases --------------------------------------------------------------------------------


def _case_columns(record: CaseRecord, now: datetime) -> dict[str, Any]:
    case, profile = record.case, record.profile
    return {
        "department": case.department,
        "handler_level": str(case.handler_level),
        "state": str(case.state),
        "version": case.version,
        "assignee_id": case.assignee_id,
        "rule_id": case.rule_id,
        "rule_version": profile.rule_version,
        "routing_reason": case.routing_reason,
        "notify_management": case.notify_management,
        "excluded_member_ids": sorted(case.excluded_member_ids),
        "category": profile.category,
        "severity": profile.severity,
        "urgency": profile.urgency,
        "customer_tier": profile.customer_tier,
        "channel": profile.channel,
        "product_line": profile.product_line,
        "region": profile.region,
        "risk_flags": list(profile.risk_flags),
        "subject_staff_ref": profile.subject_staff_ref,
        "subject_unit": profile.subject_unit,
        "contact_details_url": profile.contact_details_url,
        "complaint_received_at": case.complaint_received_at,
        "root_cause": case.root_cause,
        "responsible_person": case.responsible_person,
        "solution": case.solution,
        "resolution": case.resolution,
        "escalation_level": case.escalation_level,
        "reopen_count": case.reopen_count,
        "acknowledged_at": case.acknowledged_at,
        "first_response_at": case.first_response_at,
        "resolved_at": case.resolved_at,
        "closed_at": case.closed_at,
        "close_reason": str(case.close_reason) if case.close_reason else None,
        "updated_at": now,
    }


def _transition_from_row(row: RowMapping) -> Transition:
    return Transition(
        action=CaseAction(row["action"]),
        from_state=CaseState(row["from_state"]) if row["from_state"] else None,
        to_state=CaseState(row["to_state"]),
        actor=row["actor"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        version=row["version"],
        note=row["note"],
        details=dict(row["details"]),
    )


def _record_from_rows(row: RowMapping, history: list[Transition]) -> CaseRecord:
    case = Case(
        case_id=str(row["id"]),
        complaint_id=str(row["complaint_id"]),
        complaint_received_at=row["complaint_received_at"],
        department=row["department"],
        handler_level=HandlerLevel(row["handler_level"]),
        state=CaseState(row["state"]),
        version=row["version"],
        assignee_id=row["assignee_id"],
        history=history,
        rule_id=row["rule_id"],
        routing_reason=row["routing_reason"],
        notify_management=row["notify_management"],
        excluded_member_ids=row["excluded_member_ids"],
        root_cause=row["root_cause"],
        responsible_person=row["responsible_person"],
        solution=row["solution"],
        resolution=row["resolution"],
        escalation_level=row["escalation_level"],
        reopen_count=row["reopen_count"],
        acknowledged_at=row["acknowledged_at"],
        first_response_at=row["first_response_at"],
        resolved_at=row["resolved_at"],
        closed_at=row["closed_at"],
        close_reason=row["close_reason"],
    )
    profile = CaseProfile(
        category=row["category"],
        severity=row["severity"],
        urgency=row["urgency"],
        customer_tier=row["customer_tier"],
        channel=row["channel"],
        product_line=row["product_line"],
        region=row["region"],
        risk_flags=tuple(row["risk_flags"]),
        subject_staff_ref=row["subject_staff_ref"],
        subject_unit=row["subject_unit"],
        contact_details_url=row["contact_details_url"],
        rule_version=row["rule_version"],
    )
    return CaseRecord(
        case=case,
        profile=profile,
        created_at=row["created_at"],
        stored_version=row["version"],
        updated_at=row["updated_at"],
    )


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


class CaseRepository:
    """Cases and their append-only history."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, case_id: uuid.UUID, *, for_update: bool = False) -> CaseRecord | None:
        """A case with its whole history; ``for_update`` row-locks it until commit."""
        return await self._one(routed_case.c.id == case_id, for_update)

    async def get_by_complaint(
        self,
        complaint_id: uuid.UUID,
        *,
        for_update: bool = False,
    ) -> CaseRecord | None:
        """The case of a complaint, if it was opened."""
        return await self._one(routed_case.c.complaint_id == complaint_id, for_update)

    async def exists_for_complaint(self, complaint_id: uuid.UUID) -> bool:
        """Whether the complaint already has a case."""
        found = await self._session.scalar(
            sa.select(routed_case.c.id).where(routed_case.c.complaint_id == complaint_id)
        )
        return found is not None

    async def assigned_work_in_progress(
        self,
        member_id: str,
        *,
        for_update: bool = False,
    ) -> list[CaseRecord]:
        """Cases in progress assigned to a member, oldest first (locked in id order)."""
        query = (
            sa.select(routed_case)
            .where(
                routed_case.c.assignee_id == member_id,
                routed_case.c.state.in_(WORK_IN_PROGRESS_STATES),
            )
            .order_by(routed_case.c.id)
        )
        if for_update:
            query = query.with_for_update()
        rows = (await self._session.execute(query)).mappings().all()
        records = [await self._with_history(row) for row in rows]
        return sorted(records, key=lambda r: (r.created_at, r.case.case_id))

    async def page(self, filters: CaseFilters, *, limit: int, cursor: str | None) -> CasePage:
        """Case rows newest first, filtered, from a keyset cursor."""
        query = sa.select(routed_case)
        for column, value in (
            (routed_case.c.department, filters.department),
            (routed_case.c.state, filters.state),
            (routed_case.c.handler_level, filters.level),
            (routed_case.c.assignee_id, filters.assignee),
            (routed_case.c.category, filters.category),
            (routed_case.c.severity, filters.severity),
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
                sa.tuple_(routed_case.c.created_at, routed_case.c.id)
                < sa.tuple_(
                    sa.literal(created_at, sa.DateTime(timezone=True)),
                    sa.literal(case_id, routed_case.c.id.type),
                )
            )
        query = query.order_by(routed_case.c.created_at.desc(), routed_case.c.id.desc())
        rows = (await self._session.execute(query.limit(limit + 1))).mappings().all()
        items = [dict(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(items[-1]["created_at"], items[-1]["id"])
        return CasePage(items=items, next_cursor=next_cursor)

    async def add(self, record: CaseRecord, now: datetime) -> bool:
        """Insert a new case and its history; False if the complaint already has one."""
        values = {
            "id": record.id,
            "complaint_id": uuid.UUID(record.case.complaint_id),
            "created_at": record.created_at,
            **_case_columns(record, now),
        }
        inserted = await self._session.scalar(
            insert(routed_case)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["complaint_id"])
            .returning(routed_case.c.id)
        )
        if inserted is None:
            return False
        await self._append_history(record)
        return True

    async def save(self, record: CaseRecord, now: datetime) -> None:
        """Write the case's current state and append the transitions recorded since loading."""
        result = cast(
            CursorResult[Any],
            await self._session.execute(
                sa.update(routed_case)
                .where(
                    routed_case.c.id == record.id, routed_case.c.version == record.stored_version
                )
                .values(**_case_columns(record, now))
            ),
        )
        if result.rowcount != 1:
            # Callers lock the row first, so this means a caller forgot to.
            raise RuntimeError(f"case {record.id} changed under a write without its row lock")
        await self._append_history(record)
        record.updated_at = now

    async def _append_history(self, record: CaseRecord) -> None:
        new = [t for t in record.case.history if t.version > record.stored_version]
        if new:
            await self._session.execute(
                sa.insert(case_history),
                [
                    {
                        "case_id": record.id,
                        "version": t.version,
                        "action": str(t.action),
                        "from_state": str(t.from_state) if t.from_state else None,
                        "to_state": str(t.to_state),
                        "actor": t.actor,
                        "occurred_at": t.occurred_at,
                        "recorded_at": t.recorded_at,
                        "note": t.note,
                        "details": dict(t.details),
                    }
                    for t in new
                ],
            )
        record.stored_version = record.case.version

    async def _one(self, where: sa.ColumnElement[bool], for_update: bool) -> CaseRecord | None:
        query = sa.select(routed_case).where(where)
        if for_update:
            query = query.with_for_update()
        row = (await self._session.execute(query)).mappings().first()
        return None if row is None else await self._with_history(row)

    async def _with_history(self, row: RowMapping) -> CaseRecord:
        history = (
            (
                await self._session.execute(
                    sa.select(case_history)
                    .where(case_history.c.case_id == row["id"])
                    .order_by(case_history.c.version)
                )
            )
            .mappings()
            .all()
        )
        return _record_from_rows(row, [_transition_from_row(h) for h in history])


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

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def all(self) -> list[DepartmentRecord]:
        """Every department by code."""
        rows = (
            (await self._session.execute(sa.select(department).order_by(department.c.code)))
            .mappings()
            .all()
        )
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

        Locks are taken in code order, so two writers never wait on each other in a cycle.
        """
        for code in sorted(set(codes)):
            await self._session.execute(
                sa.select(
                    sa.func.pg_advisory_xact_lock(
                        sa.func.hashtextextended(f"routing.assignment.{code}", 0)
                    )
                )
            )

    async def has_work_in_progress(self, code: str) -> bool:
        """Whether any unresolved case sits in the department."""
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


# ---- routing rules --------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleRecord:
    """A routing rule with its edit version and timestamps."""

    rule: RoutingRule
    version: int
    updated_by: str
    created_at: datetime
    updated_at: datetime


def criteria_to_json(criteria: RuleCriteria) -> dict[str, list[str]]:
    """Criteria as stored: only the criteria that are set, values sorted."""
    return {
        name: sorted(getattr(criteria, name))
        for name in CRITERIA_FIELDS
        if getattr(criteria, name) is not None
    }


def rule_snapshot(rule: RoutingRule) -> dict[str, Any]:
    """A rule as its revision history and the audit log keep it."""
    return {
        "order": rule.order,
        "name": rule.name,
        "target_department": rule.target_department,
        "criteria": criteria_to_json(rule.criteria),
        "enabled": rule.enabled,
    }


def _rule_from_row(row: RowMapping) -> RuleRecord:
    rule = RoutingRule(
        id=row["id"],
        order=row["position"],
        name=row["name"],
        target_department=row["target_department"],
        criteria=RuleCriteria(**{k: frozenset(v) for k, v in row["criteria"].items()}),
        enabled=row["enabled"],
    )
    return RuleRecord(
        rule=rule,
        version=row["version"],
        updated_by=row["updated_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class RuleRepository:
    """The ordered routing rules and their revision history."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_for_edit(self) -> None:
        """Serialise rule edits: the rule set is validated as a whole, so edits must not interleave.

        Readers (routing a complaint) are not blocked.
        """
        await self._session.execute(
            sa.text("LOCK TABLE routing.routing_rule IN SHARE ROW EXCLUSIVE MODE")
        )

    async def all(self) -> list[RuleRecord]:
        """Every rule by order."""
        rows = (
            (await self._session.execute(sa.select(routing_rule).order_by(routing_rule.c.position)))
            .mappings()
            .all()
        )
        return [_rule_from_row(row) for row in rows]

    async def rule_set(self) -> tuple[RuleSet, dict[str, int]]:
        """The rule set and each rule's version."""
        records = await self.all()
        return RuleSet(r.rule for r in records), {r.rule.id: r.version for r in records}

    async def get(self, rule_id: str) -> RuleRecord | None:
        """One rule."""
        row = (
            (
                await self._session.execute(
                    sa.select(routing_rule).where(routing_rule.c.id == rule_id)
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else _rule_from_row(row)

    async def add(self, rule: RoutingRule, actor: str, now: datetime) -> int:
        """Insert a rule and its first revision; returns its version.

        A rule id used before (and deleted) continues its old revision numbering.
        """
        version: int = (
            await self._session.scalar(
                sa.select(
                    sa.func.coalesce(sa.func.max(routing_rule_revision.c.version), 0) + 1
                ).where(routing_rule_revision.c.rule_id == rule.id)
            )
            or 1
        )
        await self._session.execute(
            sa.insert(routing_rule).values(
                id=rule.id,
                position=rule.order,
                name=rule.name,
                target_department=rule.target_department,
                criteria=criteria_to_json(rule.criteria),
                enabled=rule.enabled,
                version=version,
                updated_by=actor,
                created_at=now,
                updated_at=now,
            )
        )
        await self._revise(rule.id, version, "created", rule_snapshot(rule), actor, now)
        return version

    async def update(self, rule: RoutingRule, change: str, actor: str, now: datetime) -> int:
        """Write a rule, bump its version and keep the revision; returns the new version."""
        version = await self._session.scalar(
            sa.update(routing_rule)
            .where(routing_rule.c.id == rule.id)
            .values(
                position=rule.order,
                name=rule.name,
                target_department=rule.target_department,
                criteria=criteria_to_json(rule.criteria),
                enabled=rule.enabled,
                version=routing_rule.c.version + 1,
                updated_by=actor,
                updated_at=now,
            )
            .returning(routing_rule.c.version)
        )
        await self._revise(rule.id, version, change, rule_snapshot(rule), actor, now)
        return version

    async def remove(self, record: RuleRecord, actor: str, now: datetime) -> None:
        """Delete a rule; its revisions keep a tombstone."""
        await self._session.execute(
            sa.delete(routing_rule).where(routing_rule.c.id == record.rule.id)
        )
        await self._revise(
            record.rule.id, record.version + 1, "deleted", rule_snapshot(record.rule), actor, now
        )

    async def revisions(self, rule_id: str) -> list[dict[str, Any]]:
        """Every revision of a rule, oldest first."""
        rows = (
            (
                await self._session.execute(
                    sa.select(routing_rule_revision)
                    .where(routing_rule_revision.c.rule_id == rule_id)
                    .order_by(routing_rule_revision.c.version)
                )
            )
            .mappings()
            .all()
        )
        return [dict(row) for row in rows]

    async def targets(self, code: str) -> list[str]:
        """Ids of the rules that send cases to a department."""
        return list(
            (
                await self._session.execute(
                    sa.select(routing_rule.c.id)
                    .where(routing_rule.c.target_department == code)
                    .order_by(routing_rule.c.position)
                )
            ).scalars()
        )

    async def _revise(
        self,
        rule_id: str,
        version: int,
        change: str,
        snapshot: dict[str, Any],
        actor: str,
        now: datetime,
    ) -> None:
        await self._session.execute(
            sa.insert(routing_rule_revision).values(
                rule_id=rule_id,
                version=version,
                change=change,
                snapshot=snapshot,
                changed_by=actor,
                changed_at=now,
            )
        )

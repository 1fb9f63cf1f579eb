"""Cases with their append-only history.

Repositories never commit: the unit of work does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import CursorResult, RowMapping
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.pagination import decode_cursor, encode_cursor

from tousu_routing.adapters.orm import (
    case_history,
    routed_case,
)
from tousu_routing.domain import (
    Case,
    CaseAction,
    CaseState,
    HandlerLevel,
    Transition,
)
from tousu_routing.domain.record import CaseProfile, CaseRecord

# Cases someone still works on: they count towards a member's load and move when the
# member is away. Resolved cases only wait for the customer's verdict.
WORK_IN_PROGRESS_STATES: tuple[str, ...] = (
    CaseState.ROUTED,
    CaseState.ACKNOWLEDGED,
    CaseState.INVESTIGATING,
    CaseState.SOLUTION_PROPOSED,
)


# ---- cases --------------------------------------------------------------------------------


# Every field of a case's profile is a routed_case column of the same name, so the profile is
# written and read field by field instead of through two hand-kept lists.
def _profile_columns(profile: CaseProfile) -> dict[str, Any]:
    return {**vars(profile), "risk_flags": list(profile.risk_flags)}


def _profile_from_row(row: RowMapping) -> CaseProfile:
    values = {f.name: row[f.name] for f in fields(CaseProfile)}
    return CaseProfile(**{**values, "risk_flags": tuple(row["risk_flags"])})


def _case_columns(record: CaseRecord, now: datetime) -> dict[str, Any]:
    case, profile = record.case, record.profile
    return {
        "department": case.department,
        "handler_level": str(case.handler_level),
        "state": str(case.state),
        "version": case.version,
        "assignee_id": case.assignee_id,
        "rule_id": case.rule_id,
        "routing_reason": case.routing_reason,
        "notify_management": case.notify_management,
        "excluded_member_ids": sorted(case.excluded_member_ids),
        **_profile_columns(profile),
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
    return CaseRecord(
        case=case,
        profile=_profile_from_row(row),
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
        # complaint → whether it has a case, for complaints this transaction asked about.
        self._has_case: dict[uuid.UUID, bool] = {}
        # New cases' rows and their history, written together (see ``write_unsaved``).
        self._unwritten: list[dict[str, Any]] = []
        self._unwritten_history: list[dict[str, Any]] = []

    async def _execute(self, statement: Any, params: Any = None) -> Any:
        """A statement of this repository, after the new cases it might read or touch."""
        await self.write_unsaved()
        return await self._session.execute(statement, params)

    async def write_unsaved(self) -> None:
        """Write the cases added since the last statement: one insert per table.

        A complaint's case is opened only by the consumer of its partition, after the
        event's inbox row, so a conflict here means another transaction opened it
        meanwhile; this one then fails and is applied again (and finds the case).
        """
        cases, self._unwritten = self._unwritten, []
        history, self._unwritten_history = self._unwritten_history, []
        if cases:
            inserted = (
                await self._session.execute(
                    insert(routed_case)
                    .on_conflict_do_nothing(index_elements=["complaint_id"])
                    .returning(routed_case.c.complaint_id),
                    cases,
                )
            ).all()
            if len(inserted) != len(cases):
                raise RuntimeError("a case of this transaction was opened by another meanwhile")
        if history:
            await self._session.execute(sa.insert(case_history), history)

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
        if complaint_id not in self._has_case:
            await self.load_existence([complaint_id])
        return self._has_case[complaint_id]

    async def load_existence(self, complaint_ids: Iterable[uuid.UUID]) -> None:
        """Find out in one statement which of these complaints have a case.

        What is found stays true for the transaction: a complaint's case is opened only by
        the consumer of its partition, after its inbox row, so no other writer opens it.
        """
        wanted = sorted(set(complaint_ids) - self._has_case.keys())
        if not wanted:
            return
        found = set(
            (
                await self._execute(
                    sa.select(routed_case.c.complaint_id).where(
                        routed_case.c.complaint_id.in_(wanted)
                    )
                )
            ).scalars()
        )
        self._has_case.update({complaint_id: complaint_id in found for complaint_id in wanted})

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
        rows = (await self._execute(query)).mappings().all()
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
        rows = (await self._execute(query.limit(limit + 1))).mappings().all()
        items = [dict(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(items[-1]["created_at"], items[-1]["id"])
        return CasePage(items=items, next_cursor=next_cursor)

    async def add(self, record: CaseRecord, now: datetime) -> bool:
        """Add a new case and its history; False if the complaint already has one.

        The rows are written with the transaction's other new cases before this
        repository's next statement, or at commit.
        """
        complaint_id = uuid.UUID(record.case.complaint_id)
        if await self.exists_for_complaint(complaint_id):
            return False
        self._has_case[complaint_id] = True
        self._unwritten.append(
            {
                "id": record.id,
                "complaint_id": complaint_id,
                "created_at": record.created_at,
                **_case_columns(record, now),
            }
        )
        self._unwritten_history += self._new_history(record)
        return True

    async def save(self, record: CaseRecord, now: datetime) -> None:
        """Write the case's current state and append the transitions recorded since loading."""
        result = cast(
            CursorResult[Any],
            await self._execute(
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
        new = self._new_history(record)
        if new:
            await self._execute(sa.insert(case_history), new)

    @staticmethod
    def _new_history(record: CaseRecord) -> list[dict[str, Any]]:
        """The history rows of the transitions since the record was stored; it counts as
        stored from now on."""
        new = [
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
            for t in record.case.history
            if t.version > record.stored_version
        ]
        record.stored_version = record.case.version
        return new

    async def _one(self, where: sa.ColumnElement[bool], for_update: bool) -> CaseRecord | None:
        query = sa.select(routed_case).where(where)
        if for_update:
            query = query.with_for_update()
        row = (await self._execute(query)).mappings().first()
        return None if row is None else await self._with_history(row)

    async def _with_history(self, row: RowMapping) -> CaseRecord:
        history = (
            (
                await self._execute(
                    sa.select(case_history)
                    .where(case_history.c.case_id == row["id"])
                    .order_by(case_history.c.version)
                )
            )
            .mappings()
            .all()
        )
        return _record_from_rows(row, [_transition_from_row(h) for h in history])

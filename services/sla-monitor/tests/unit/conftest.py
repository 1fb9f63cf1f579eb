"""A fake SLA unit of work: the repository's contract on dicts, no Kafka and no Postgres.

The use cases run against it exactly as they do against ``SlaUnitOfWork``; what a committed
unit of work published is in ``uow.published`` (with each event's ``firing_key`` meta).
Stored case state goes through JSON, as it does through the JSONB column.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import pytest
from tousu_shared.audit import AuditEntry
from tousu_shared.clock import FixedClock
from tousu_shared.uow import FakeUnitOfWork, OutgoingMessage
from tousu_sla.adapters.repository import (
    CalendarRecord,
    PolicySetRecord,
    Row,
    SlaRepository,
    StoredCase,
    case_row,
    milestone_rows,
)
from tousu_sla.domain import (
    BusinessCalendar,
    PolicySet,
    always_open_calendar,
    chinese_statutory_calendar,
)
from tousu_sla.service_layer.context import SlaContext

CLOCK_START = dt.datetime(2025, 3, 3, 2, tzinfo=dt.UTC)  # Monday 10:00 in Shanghai


def _json(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


class InMemorySlaRepository(SlaRepository):
    """Policy sets, calendars, cases and milestone rows in dicts (one test's 'database')."""

    def __init__(self, clock: FixedClock) -> None:  # no session: nothing here touches SQL
        self._clock = clock
        self.policy_sets: dict[int, PolicySetRecord] = {}
        self.calendar_records: dict[str, CalendarRecord] = {}
        self.cases: dict[uuid.UUID, dict[str, Any]] = {}
        self.milestones: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
        self.forget_held()

    # -- policy sets and calendars -------------------------------------------------------

    async def current_policy_set(self) -> PolicySetRecord | None:
        return self.policy_sets[max(self.policy_sets)] if self.policy_sets else None

    async def policy_set(self, version: int) -> PolicySetRecord | None:
        return self.policy_sets.get(version)

    async def lock_policy_sets(self) -> None:
        """One test, one writer."""

    async def add_policy_set(
        self, policy_set: PolicySet, *, created_by: str, comment: str | None
    ) -> PolicySetRecord:
        record = PolicySetRecord(
            policy_set.version, uuid.uuid4(), policy_set, comment, created_by, self._clock()
        )
        self.policy_sets[policy_set.version] = record
        return record

    async def calendars(self) -> dict[str, CalendarRecord]:
        return dict(sorted(self.calendar_records.items()))

    async def calendar(self, name: str, *, for_update: bool = False) -> CalendarRecord | None:
        return self.calendar_records.get(name)

    async def save_calendar(
        self, calendar: BusinessCalendar, *, version: int, updated_by: str
    ) -> CalendarRecord:
        record = CalendarRecord(
            calendar.name, version, uuid.uuid4(), calendar, updated_by, self._clock()
        )
        self.calendar_records[calendar.name] = record
        return record

    async def mark_calendar_cases_due(self, calendar_name: str, now: dt.datetime) -> int:
        due = [
            row
            for row in self.milestones.values()
            if row["calendar"] == calendar_name and row["next_fire_at"] is not None
        ]
        for row in due:
            row["next_fire_at"] = now
        return len(due)

    # -- cases ---------------------------------------------------------------------------

    async def case_state(self, case_id: uuid.UUID, *, for_update: bool) -> Row | None:
        return self.cases.get(case_id)

    async def cases_with_due_times(
        self, case_ids: list[uuid.UUID], *, for_update: bool
    ) -> dict[uuid.UUID, tuple[Row, dict[str, dt.datetime | None]]]:
        found: dict[uuid.UUID, tuple[Row, dict[str, dt.datetime | None]]] = {}
        for case_id in sorted(case_ids):
            if case_id in self.cases:
                due = {
                    key: row["due_at"]
                    for (owner, key), row in sorted(self.milestones.items())
                    if owner == case_id
                }
                found[case_id] = (self.cases[case_id], due)
        return found

    async def insert_cases_if_absent(self, cases: list[StoredCase]) -> None:
        for stored in cases:
            row = case_row(stored)
            self.cases.setdefault(row["case_id"], _stored(row))

    async def save_cases(self, cases: list[StoredCase]) -> None:
        for stored in cases:
            row = case_row(stored)
            self.cases[row["case_id"]] = _stored(row) | {"last_error": None}
            for milestone in milestone_rows(stored.sla):
                self.milestones[(milestone["case_id"], milestone["milestone_key"])] = milestone

    async def record_failure(
        self, case_id: uuid.UUID, error: str, *, retry_at: dt.datetime, now: dt.datetime
    ) -> None:
        self.cases[case_id]["last_error"] = error
        for (owner, _), row in self.milestones.items():
            if owner == case_id and row["next_fire_at"] is not None and row["next_fire_at"] <= now:
                row["next_fire_at"] = retry_at

    async def claim_due_cases(self, now: dt.datetime, limit: int) -> list[uuid.UUID]:
        due = sorted(
            (row["next_fire_at"], case_id)
            for (case_id, _), row in self.milestones.items()
            if row["next_fire_at"] is not None and row["next_fire_at"] <= now
        )
        return sorted({case_id for _, case_id in due[:limit]})

    async def earliest_next_fire_at(self) -> dt.datetime | None:
        instants = [row["next_fire_at"] for row in self.milestones.values()]
        return min((at for at in instants if at is not None), default=None)


def _stored(row: Mapping[str, Any]) -> dict[str, Any]:
    # JSONB columns come back as plain JSON, as they would from Postgres.
    return {**row, "state": _json(row["state"]), "calendar_etags": _json(row["calendar_etags"])}


class FakeSlaUnitOfWork(FakeUnitOfWork):
    """The SLA unit of work on an in-memory repository (shared by every use of it)."""

    def __init__(self, repository: InMemorySlaRepository) -> None:
        super().__init__()
        self.sla = repository

    async def _begin(self) -> None:
        await super()._begin()
        self.sla.forget_held()  # what one transaction held, as a new SlaRepository would

    async def _store(self, messages: list[OutgoingMessage], entries: list[AuditEntry]) -> None:
        await self.sla.write_unsaved()
        await super()._store(messages, entries)

    def firing_keys(self) -> list[str]:
        """The firing keys of what committed transactions published."""
        return [m.meta["firing_key"] for m in self.published if m.meta.get("firing_key")]

    def published_types(self, types: Iterable[str] | None = None) -> list[str]:
        """The event types published, in order (optionally only some)."""
        wanted = set(types) if types is not None else None
        return [
            m.event.event_type
            for m in self.published
            if wanted is None or m.event.event_type in wanted
        ]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(CLOCK_START)


@pytest.fixture
def uow(clock: FixedClock) -> FakeSlaUnitOfWork:
    return FakeSlaUnitOfWork(InMemorySlaRepository(clock))


@pytest.fixture
def ctx(uow: FakeSlaUnitOfWork, clock: FixedClock) -> SlaContext:
    """The service context as bootstrap builds it, on the fake unit of work."""
    return SlaContext(uow=lambda: uow, clock=clock)


@pytest.fixture(scope="module")
def calendars() -> dict[str, BusinessCalendar]:
    """The built-in calendars by name, for the domain tests that build a ``CaseSla``."""
    return {"cn-statutory": chinese_statutory_calendar(), "24x7": always_open_calendar()}

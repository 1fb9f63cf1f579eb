"""Loads and stores policy sets, calendars and case SLA aggregates in the service's schema.

Lock order, which keeps every writer deadlock-free: a case row first (consumer, API and
scheduler alike), then its milestone rows in key order; several cases in case-id order.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.pagination import decode_cursor, encode_cursor
from tousu_shared.schemas import INT64_MAX

from tousu_sla.adapters import orm
from tousu_sla.domain import (
    BusinessCalendar,
    CaseSla,
    FiringKind,
    MilestoneClock,
    PauseInterval,
    PolicySet,
)

# A stored row read by column name (SQLAlchemy's RowMapping also takes columns as keys).
Row = Mapping[Any, Any]


@dataclass(frozen=True)
class PolicySetRecord:
    """One stored version of the policy set."""

    version: int
    etag: uuid.UUID
    policy_set: PolicySet
    comment: str | None
    created_by: str
    created_at: dt.datetime


@dataclass(frozen=True)
class CalendarRecord:
    """One stored calendar at its current version."""

    name: str
    version: int
    etag: uuid.UUID
    calendar: BusinessCalendar
    updated_by: str
    updated_at: dt.datetime


@dataclass
class StoredCase:
    """A case's SLA aggregate plus what the repository needs to store it back."""

    sla: CaseSla
    policy_set_version: int
    calendar_etags: dict[str, str]
    # Due times as last stored, so a recomputation can tell which deadlines really moved.
    stored_due: dict[str, dt.datetime | None]


@dataclass(frozen=True)
class MilestonePageKey:
    """Keyset position in a due-ordered milestone list."""

    due_at: dt.datetime
    case_id: uuid.UUID
    milestone_key: str

    def encode(self) -> str:
        """An opaque cursor for the API."""
        return encode_cursor(self.due_at, self.case_id, self.milestone_key)

    @classmethod
    def decode(cls, cursor: str) -> MilestonePageKey:
        """Parse a cursor; a forged one is a 422 naming ``cursor``."""
        return cls(*decode_cursor(cursor, dt.datetime, uuid.UUID, str))


@dataclass(frozen=True)
class StreamPosition:
    """Where a reader of the SLA event log stands: (writer transaction id, entry id)."""

    xid: int
    id: int

    def encode(self) -> str:
        """The SSE event id (a client sends it back as Last-Event-ID)."""
        return f"{self.xid}-{self.id}"

    @classmethod
    def decode(cls, text: str) -> StreamPosition:
        """Parse an SSE event id; raises ValueError when it was not made by `encode`."""
        xid, _, entry = text.strip().partition("-")
        position = cls(int(xid), int(entry))
        # Both are bigint columns: anything past their range was never a position.
        if not (0 <= position.xid <= INT64_MAX and 0 <= position.id <= INT64_MAX):
            raise ValueError(f"not a stream position: {text[:40]!r}")
        return position


STREAM_START = StreamPosition(0, 0)


# A case's milestone keys and stored due times, in the same order, beside its row.
_DUE_KEYS: sa.Label[Any] = sa.literal_column(
    "ARRAY(SELECT m.milestone_key FROM sla_milestone m"
    " WHERE m.case_id = sla_case.case_id ORDER BY m.milestone_key)"
).label("due_keys")
_DUE_TIMES: sa.Label[Any] = sa.literal_column(
    "ARRAY(SELECT m.due_at FROM sla_milestone m"
    " WHERE m.case_id = sla_case.case_id ORDER BY m.milestone_key)"
).label("due_times")


class CatalogCache:
    """Parsed policy sets and calendars shared by one process, keyed by their etag."""

    def __init__(self) -> None:
        self.policy_sets: dict[uuid.UUID, PolicySet] = {}
        self.calendars: dict[uuid.UUID, BusinessCalendar] = {}


class SlaRepository:
    """Data access for one transaction (the caller owns the session and commits)."""

    def __init__(self, session: AsyncSession, cache: CatalogCache) -> None:
        self._session = session
        self._cache = cache
        # Stored versions never change, so one lookup per version serves a whole batch.
        self._versions: dict[int, PolicySetRecord] = {}
        # The set in force and the calendars, read once per transaction: a consumer applies a
        # partition's batch in one transaction and each event asked again (two statements
        # of about seven). A change committed meanwhile by another process applies from the
        # next transaction on, as if these events had come just before it; this
        # transaction's own changes, and taking the publishers' lock, drop what was read.
        self._in_force: PolicySetRecord | None = None
        self._all_calendars: dict[str, CalendarRecord] | None = None
        # Whether this transaction wrote timers (milestone rows, or cases made due by a
        # calendar edit): its commit must wake the schedulers even if it published nothing.
        self.timers_written = False
        self.forget_held()

    def forget_held(self) -> None:
        """Start a transaction's identity map: no case held, nothing unsaved."""
        # Cases locked in this transaction, so that every event of a batch applies to the
        # same aggregate (read once), and those saved but not yet written: the whole batch
        # is written by one statement per table before this repository's next statement
        # or at commit, instead of a read and two writes per event.
        self._held: dict[uuid.UUID, StoredCase] = {}
        self._unsaved: dict[uuid.UUID, StoredCase] = {}

    async def _execute(self, statement: Any, params: Any = None) -> Any:
        """A statement of this repository, after the unsaved cases it might read or touch."""
        if self._unsaved:
            await self.write_unsaved()
        return await self._session.execute(statement, params)

    # -- policy sets -----------------------------------------------------------------

    async def current_policy_set(self) -> PolicySetRecord | None:
        """The policy set in force (highest version), or None before any is stored."""
        if self._in_force is None:
            self._in_force = await self._policy_set_where(None)
            if self._in_force is not None:
                self._versions[self._in_force.version] = self._in_force
        return self._in_force

    async def policy_set(self, version: int) -> PolicySetRecord | None:
        """One stored version."""
        record = self._versions.get(version)
        if record is None:
            record = await self._policy_set_where(version)
            if record is not None:
                self._versions[version] = record
        return record

    async def _policy_set_where(self, version: int | None) -> PolicySetRecord | None:
        table = orm.policy_set
        query = sa.select(
            table.c.version, table.c.etag, table.c.comment, table.c.created_by, table.c.created_at
        )
        if version is None:
            query = query.order_by(table.c.version.desc()).limit(1)
        else:
            query = query.where(table.c.version == version)
        row = (await self._execute(query)).first()
        if row is None:
            return None
        parsed = self._cache.policy_sets.get(row.etag)
        if parsed is None:
            body = (
                await self._execute(sa.select(table.c.body).where(table.c.version == row.version))
            ).scalar_one()
            parsed = PolicySet.model_validate(body)
            self._cache.policy_sets[row.etag] = parsed
        return PolicySetRecord(
            row.version, row.etag, parsed, row.comment, row.created_by, row.created_at
        )

    async def policy_set_versions(self) -> list[dict[str, Any]]:
        """Every stored version, newest first, without bodies."""
        table = orm.policy_set
        rows = await self._execute(
            sa.select(
                table.c.version, table.c.comment, table.c.created_by, table.c.created_at
            ).order_by(table.c.version.desc())
        )
        return [dict(row._mapping) for row in rows]

    async def lock_policy_sets(self) -> None:
        """Serialise publishers of a new version (the version number is max + 1)."""
        self._in_force = None  # read again under the lock
        await self._execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext('sla_monitor.sla_policy_set'))")
        )

    async def add_policy_set(
        self,
        policy_set: PolicySet,
        *,
        created_by: str,
        comment: str | None,
    ) -> PolicySetRecord:
        """Store a new version; its number is the one inside `policy_set`."""
        etag = uuid.uuid4()
        row = (
            await self._execute(
                insert(orm.policy_set)
                .values(
                    version=policy_set.version,
                    body=policy_set.model_dump(mode="json"),
                    etag=etag,
                    comment=comment,
                    created_by=created_by,
                )
                .returning(orm.policy_set.c.created_at)
            )
        ).one()
        self._cache.policy_sets[etag] = policy_set
        self._in_force = None
        return PolicySetRecord(
            policy_set.version, etag, policy_set, comment, created_by, row.created_at
        )

    # -- calendars -------------------------------------------------------------------

    async def calendars(self) -> dict[str, CalendarRecord]:
        """Every calendar at its current version."""
        if self._all_calendars is None:
            self._all_calendars = await self._calendars_where(None, lock=False)
        return dict(self._all_calendars)

    async def calendar(self, name: str, *, for_update: bool = False) -> CalendarRecord | None:
        """One calendar, optionally locked for an edit."""
        if for_update:
            self._all_calendars = None  # an edit follows
        return (await self._calendars_where(name, lock=for_update)).get(name)

    async def _calendars_where(self, name: str | None, *, lock: bool) -> dict[str, CalendarRecord]:
        table = orm.calendar
        query = sa.select(
            table.c.name, table.c.version, table.c.etag, table.c.updated_by, table.c.updated_at
        ).order_by(table.c.name)
        if name is not None:
            query = query.where(table.c.name == name)
        if lock:
            query = query.with_for_update()
        rows = list(await self._execute(query))
        unknown = [row.name for row in rows if row.etag not in self._cache.calendars]
        if unknown:
            bodies = await self._execute(
                sa.select(table.c.etag, table.c.body).where(table.c.name.in_(unknown))
            )
            for etag, body in bodies:
                self._cache.calendars[etag] = BusinessCalendar.model_validate(body)
        return {
            row.name: CalendarRecord(
                row.name,
                row.version,
                row.etag,
                self._cache.calendars[row.etag],
                row.updated_by,
                row.updated_at,
            )
            for row in rows
        }

    async def save_calendar(
        self,
        calendar: BusinessCalendar,
        *,
        version: int,
        updated_by: str,
    ) -> CalendarRecord:
        """Insert or replace a calendar at the given version."""
        etag = uuid.uuid4()
        table = orm.calendar
        values = {
            "name": calendar.name,
            "version": version,
            "body": calendar.model_dump(mode="json"),
            "etag": etag,
            "updated_by": updated_by,
        }
        row = (
            await self._execute(
                insert(table)
                .values(**values)
                .on_conflict_do_update(
                    index_elements=[table.c.name],
                    set_={
                        **{key: value for key, value in values.items() if key != "name"},
                        "updated_at": sa.func.now(),
                    },
                )
                .returning(table.c.updated_at)
            )
        ).one()
        self._cache.calendars[etag] = calendar
        self._all_calendars = None
        return CalendarRecord(calendar.name, version, etag, calendar, updated_by, row.updated_at)

    async def mark_calendar_cases_due(self, calendar_name: str, now: dt.datetime) -> int:
        """Make the scheduler recompute every open milestone counted on a changed calendar."""
        result = await self._execute(
            sa.text(
                "UPDATE sla_milestone m SET next_fire_at = :now FROM ("
                "  SELECT case_id, milestone_key FROM sla_milestone"
                "  WHERE calendar = :name AND next_fire_at IS NOT NULL"
                "  ORDER BY case_id, milestone_key FOR UPDATE"
                ") due WHERE m.case_id = due.case_id AND m.milestone_key = due.milestone_key"
            ),
            {"now": now, "name": calendar_name},
        )
        moved = cast("CursorResult[Any]", result).rowcount
        if moved:
            self.timers_written = True
        return moved

    # -- cases -----------------------------------------------------------------------

    async def case_state(self, case_id: uuid.UUID, *, for_update: bool) -> Row | None:
        """The stored row of one case (locked when asked)."""
        query = sa.select(orm.sla_case).where(orm.sla_case.c.case_id == case_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._execute(query)).first()
        return None if row is None else row._mapping

    async def case_with_due_times(
        self, case_id: uuid.UUID, *, for_update: bool
    ) -> tuple[Row, dict[str, dt.datetime | None]] | None:
        """A case's row and its milestones' stored due times in one round trip (every event
        applied to a case reads both)."""
        return (await self.cases_with_due_times([case_id], for_update=for_update)).get(case_id)

    async def cases_with_due_times(
        self, case_ids: list[uuid.UUID], *, for_update: bool
    ) -> dict[uuid.UUID, tuple[Row, dict[str, dt.datetime | None]]]:
        """Several cases' rows with their stored due times, in one statement; locked in
        case-id order when asked."""
        query = (
            sa.select(orm.sla_case, _DUE_KEYS, _DUE_TIMES)
            .where(orm.sla_case.c.case_id.in_(case_ids))
            .order_by(orm.sla_case.c.case_id)
        )
        if for_update:
            query = query.with_for_update(of=orm.sla_case)
        found: dict[uuid.UUID, tuple[Row, dict[str, dt.datetime | None]]] = {}
        for row in await self._execute(query):
            mapping = row._mapping
            due = dict(zip(mapping["due_keys"], mapping["due_times"], strict=True))
            found[mapping["case_id"]] = (mapping, due)
        return found

    async def insert_cases_if_absent(self, cases: list[StoredCase]) -> None:
        """Create case rows unless a concurrent writer already did (case-id order)."""
        if not cases:
            return
        ordered = sorted(cases, key=lambda stored: stored.sla.case_id)
        rows = [case_row(stored) for stored in ordered]
        await self._execute(_INSERT_CASE.statement, _INSERT_CASE.params(rows))

    def held(self, case_id: uuid.UUID) -> StoredCase | None:
        """The case this transaction already locked and loaded, if any."""
        return self._held.get(case_id)

    def hold(self, stored: StoredCase) -> StoredCase:
        """Keep a case loaded ``for_update`` for the rest of the transaction; the one held
        already wins."""
        return self._held.setdefault(uuid.UUID(stored.sla.case_id), stored)

    async def save_case(self, stored: StoredCase) -> None:
        """Store a locked case's changes: written before this repository's next statement,
        or by :meth:`write_unsaved` at commit."""
        self._unsaved[uuid.UUID(stored.sla.case_id)] = stored

    async def write_unsaved(self) -> None:
        """Write the saved cases (the unit of work calls this at commit)."""
        unsaved, self._unsaved = list(self._unsaved.values()), {}
        await self.save_cases(unsaved)

    async def save_cases(self, cases: list[StoredCase]) -> None:
        """Write several aggregates with their milestone rows (the caller holds their locks).

        One statement for all the cases and one for all their milestones, in (case id,
        milestone key) order: the lock order every writer follows. A case given twice is
        written as its last copy (one statement cannot update a row twice).
        """
        if not cases:
            return
        last = {stored.sla.case_id: stored for stored in cases}
        ordered = sorted(last.values(), key=lambda stored: stored.sla.case_id)
        await self._session.execute(
            _UPSERT_CASE.statement, _UPSERT_CASE.params([case_row(stored) for stored in ordered])
        )
        rows = [row for stored in ordered for row in milestone_rows(stored.sla)]
        if rows:
            await self._session.execute(_UPSERT_MILESTONE.statement, _UPSERT_MILESTONE.params(rows))
            self.timers_written = True

    async def record_failure(
        self,
        case_id: uuid.UUID,
        error: str,
        *,
        retry_at: dt.datetime,
        now: dt.datetime,
    ) -> None:
        """Note why a case could not be processed and retry it later, not in a hot loop."""
        await self._execute(
            sa.update(orm.sla_case)
            .where(orm.sla_case.c.case_id == case_id)
            .values(last_error=error[:2000], updated_at=sa.func.now())
        )
        milestone = orm.milestone
        await self._execute(
            sa.update(milestone)
            .where(milestone.c.case_id == case_id, milestone.c.next_fire_at <= now)
            .values(next_fire_at=retry_at)
        )

    # -- the scheduler's queue -------------------------------------------------------

    async def claim_due_cases(self, now: dt.datetime, limit: int) -> list[uuid.UUID]:
        """Lock up to `limit` cases with a timer due by `now`, skipping cases others hold.

        Driven by the partial index on next_fire_at; the case row lock (not the milestone
        row) is what several schedulers and the consumer contend for, so a case is worked
        on by one transaction at a time and none waits for another.
        """
        rows = await self._execute(
            sa.text(
                "SELECT c.case_id FROM sla_milestone m JOIN sla_case c ON c.case_id = m.case_id "
                "WHERE m.next_fire_at <= :now ORDER BY m.next_fire_at LIMIT :limit "
                "FOR UPDATE OF c SKIP LOCKED"
            ),
            {"now": now, "limit": limit},
        )
        return sorted(set(rows.scalars()))

    async def earliest_next_fire_at(self) -> dt.datetime | None:
        """When the scheduler is next needed (from the index)."""
        return (
            await self._execute(
                sa.select(sa.func.min(orm.milestone.c.next_fire_at)).where(
                    orm.milestone.c.next_fire_at.is_not(None)
                )
            )
        ).scalar_one()

    # -- lists for the API -----------------------------------------------------------

    async def milestone_page(
        self,
        *,
        breached: bool,
        include_closed: bool,
        department: str | None,
        milestone_key: str | None,
        urgency: str | None,
        after: MilestonePageKey | None,
        limit: int,
    ) -> list[Row]:
        """Breached or at-risk milestones in due order, filtered, after a keyset position."""
        table = orm.milestone
        query = sa.select(table)
        if breached:
            query = query.where(table.c.breached_at.is_not(None))
            if not include_closed:
                query = query.where(table.c.state == "breached")
        else:
            query = query.where(table.c.state == "at_risk")
        for column, value in (
            ("department", department),
            ("milestone_key", milestone_key),
            ("urgency", urgency),
        ):
            if value is not None:
                query = query.where(table.c[column] == value)
        if after is not None:
            query = query.where(
                sa.tuple_(table.c.due_at, table.c.case_id, table.c.milestone_key)
                > sa.tuple_(after.due_at, after.case_id, after.milestone_key)
            )
        query = query.order_by(table.c.due_at, table.c.case_id, table.c.milestone_key)
        rows = await self._execute(query.limit(limit))
        return [row._mapping for row in rows]

    # -- the live stream -------------------------------------------------------------

    async def event_log_tail(self) -> StreamPosition:
        """The position after every entry that can be read now."""
        row = (
            await self._execute(
                sa.text(
                    "SELECT xid::text AS xid, id FROM sla_event_log "
                    "WHERE xid < pg_snapshot_xmin(pg_current_snapshot()) "
                    "ORDER BY xid DESC, id DESC LIMIT 1"
                )
            )
        ).first()
        return STREAM_START if row is None else StreamPosition(int(row.xid), row.id)

    async def event_log_after(
        self,
        position: StreamPosition,
        limit: int,
    ) -> list[tuple[StreamPosition, Row]]:
        """Entries after a position, oldest first, never skipping one that commits later.

        Ordered by the writer's transaction id, and only up to the oldest transaction still
        running: every entry that becomes visible later sorts after what was returned.
        """
        rows = await self._execute(
            sa.text(
                "SELECT xid::text AS xid, id, event_type, milestone, department, urgency, envelope "
                "FROM sla_event_log "
                "WHERE (xid, id) > (CAST(:xid AS xid8), :id) "
                "AND xid < pg_snapshot_xmin(pg_current_snapshot()) "
                "ORDER BY xid, id LIMIT :limit"
            ),
            {"xid": position.xid, "id": position.id, "limit": limit},
        )
        return [(StreamPosition(int(row.xid), row.id), row._mapping) for row in rows]

    async def purge_event_log(self, *, older_than: dt.datetime) -> int:
        """Drop stream entries past their retention (Kafka keeps the events)."""
        result = await self._execute(
            sa.delete(orm.event_log).where(orm.event_log.c.created_at < older_than)
        )
        return cast("CursorResult[Any]", result).rowcount


class BulkInsert:
    """An INSERT of many rows as one statement, with one array per column unnested by the
    server: one execution for the whole batch, where an executemany (all SQLAlchemy does for
    an INSERT without RETURNING on asyncpg) executes the statement once per row.

    JSONB columns travel as text (serialised here) and are cast back by the statement; rows
    are inserted in the order given (identity columns number them so). ``conflict`` is the
    ``ON CONFLICT`` clause, if any; on a DO UPDATE, the rows given must not repeat a key.
    """

    def __init__(self, table: sa.Table, columns: Sequence[str], conflict: str = "") -> None:
        self.columns = tuple(columns)
        self._json = frozenset(
            name for name in self.columns if isinstance(table.c[name].type, pg.JSONB)
        )
        dialect = pg.dialect()
        arrays = ", ".join(
            f"CAST(:{name} AS "
            f"{'text' if name in self._json else table.c[name].type.compile(dialect)}[])"
            for name in self.columns
        )
        picked = ", ".join(
            f"CAST(u.{name} AS jsonb)" if name in self._json else f"u.{name}"
            for name in self.columns
        )
        names = ", ".join(self.columns)
        self.statement = sa.text(
            f"INSERT INTO {table.name} ({names}) SELECT {picked} "
            f"FROM unnest({arrays}) WITH ORDINALITY AS u({names}, ordinality) "
            f"ORDER BY u.ordinality {conflict}".rstrip()
        )

    def params(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        """The statement's parameters for ``rows`` (dicts with every column)."""
        params: dict[str, list[Any]] = {}
        for name in self.columns:
            values = [row[name] for row in rows]
            if name in self._json:
                values = [_json_text(value) for value in values]
            params[name] = values
        return params


def _json_text(value: Any) -> str:
    # orjson.Fragment passes JSON that is serialised already through unchanged.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _upsert(table: sa.Table, key: Sequence[str], kept: set[str], reset: Mapping[str, str]) -> str:
    """The ON CONFLICT clause that sets every column but ``kept`` from the new row."""
    assigned = [
        f"{column.name} = EXCLUDED.{column.name}"
        for column in table.columns
        if column.name not in kept and column.name not in reset
    ]
    assigned += [f"{name} = {value}" for name, value in reset.items()]
    return f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(assigned)}"


# The stored columns of a case and of a milestone (bench_breach.py bulk-loads the same).
CASE_COLUMNS = (
    "case_id",
    "policy_set_version",
    "policy_name",
    "calendar_etags",
    "urgency",
    "severity",
    "customer_tier",
    "category",
    "channel",
    "department",
    "escalation_level",
    "state",
)
MILESTONE_COLUMNS = tuple(
    column.name for column in orm.milestone.columns if column.name != "updated_at"
)
_INSERT_CASE = BulkInsert(orm.sla_case, CASE_COLUMNS, "ON CONFLICT (case_id) DO NOTHING")
_UPSERT_CASE = BulkInsert(
    orm.sla_case,
    CASE_COLUMNS,
    _upsert(
        orm.sla_case,
        ["case_id"],
        {"case_id", "created_at"},
        {"last_error": "NULL", "updated_at": "now()"},
    ),
)
_UPSERT_MILESTONE = BulkInsert(
    orm.milestone,
    MILESTONE_COLUMNS,
    _upsert(
        orm.milestone,
        ["case_id", "milestone_key"],
        {"case_id", "milestone_key"},
        {"updated_at": "now()"},
    ),
)
EVENT_LOG = BulkInsert(
    orm.event_log,
    (
        "event_id",
        "event_type",
        "complaint_id",
        "milestone",
        "department",
        "urgency",
        "firing_key",
        "envelope",
    ),
)


def milestone_rows(sla: CaseSla) -> list[dict[str, Any]]:
    """The milestone table rows of a case, in key order (the lock order of every writer)."""
    rows = [
        _milestone_row(sla, clock, cycle=sla.cycles.get(clock.key, 0) + 1)
        for clock in sla.clocks.values()
    ]
    return sorted(rows, key=lambda row: row["milestone_key"])


def case_row(stored: StoredCase) -> dict[str, Any]:
    """The case table row of a stored case."""
    sla = stored.sla
    attributes = sla.attributes
    return {
        "case_id": uuid.UUID(sla.case_id),
        "policy_set_version": stored.policy_set_version,
        "policy_name": sla.policy.name,
        "calendar_etags": stored.calendar_etags,
        "urgency": attributes.urgency,
        "severity": attributes.severity,
        "customer_tier": attributes.customer_tier,
        "category": attributes.category,
        "channel": attributes.channel,
        "department": attributes.department,
        "escalation_level": sla.escalation_level.value,
        "state": sla.to_memento(),
    }


def _milestone_row(sla: CaseSla, clock: MilestoneClock, *, cycle: int) -> dict[str, Any]:
    fired = clock.fired.values()
    at_risk = [
        firing.fired_at
        for firing in fired
        if firing.kind is FiringKind.WARNING
        and (firing.warn_fraction or 0) >= clock.spec.at_risk_fraction
    ]
    breached = [firing.fired_at for firing in fired if firing.kind is FiringKind.BREACH]
    return {
        "case_id": uuid.UUID(sla.case_id),
        "milestone_key": clock.key,
        "cycle": cycle,
        "name": clock.spec.name,
        "policy_name": sla.policy.name,
        "clock": clock.spec.clock.value,
        "calendar": clock.timekeeper.name,
        "department": sla.attributes.department,
        "urgency": sla.attributes.urgency,
        "started_at": clock.started_at,
        "target_seconds": clock.target.total_seconds(),
        "due_at": clock.due_at,
        "next_fire_at": sla.milestone_next_fire_at(clock.key),
        "state": clock.state.value,
        "escalation_level": sla.escalation_level.value,
        "pauses": [pause_data(pause) for pause in clock.pauses],
        "at_risk_at": min(at_risk, default=None),
        "breached_at": min(breached, default=None),
        "met_at": clock.met_at,
        "elapsed_seconds": (
            clock.elapsed_when_met.total_seconds() if clock.elapsed_when_met is not None else None
        ),
        "cancelled_at": clock.cancelled_at,
    }


def pause_data(pause: PauseInterval) -> dict[str, Any]:
    """A pause interval as JSON-ready data."""
    return {
        "started_at": pause.started_at.isoformat(),
        "ended_at": pause.ended_at.isoformat() if pause.ended_at else None,
        "paused_by": pause.paused_by,
        "reason": pause.reason,
        "resumed_by": pause.resumed_by,
    }


def used_calendar_etags(
    sla: CaseSla,
    calendars: Mapping[str, CalendarRecord],
) -> dict[str, str]:
    """The revision of every calendar the case's clocks count on."""
    names = {clock.timekeeper.name for clock in sla.clocks.values()}
    return {name: str(calendars[name].etag) for name in sorted(names) if name in calendars}


def calendars_changed(
    stored_etags: Mapping[str, str],
    calendars: Mapping[str, CalendarRecord],
) -> bool:
    """Whether a calendar the case counts on was edited since its due times were computed."""
    return any(
        name not in calendars or str(calendars[name].etag) != etag
        for name, etag in stored_etags.items()
    )

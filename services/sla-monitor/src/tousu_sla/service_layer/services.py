"""SLA use cases: apply case events, fire due timers, edit policies and calendars, query.

Every function works inside the caller's transaction (`db_session`); the entrypoints
(consumer, scheduler loop, API endpoint) commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.errors import Conflict, InvalidInput, NotFound

from tousu_sla.adapters.publisher import OutgoingEvent, SlaEventPublisher
from tousu_sla.adapters.repository import (
    CalendarRecord,
    CatalogCache,
    MilestonePageKey,
    PolicySetRecord,
    SlaRepository,
    StoredCase,
    StreamPosition,
    calendars_changed,
    used_calendar_etags,
)
from tousu_sla.domain import (
    LATE_AFTER,
    WALL_CLOCK,
    BusinessCalendar,
    CalendarHasNoWorkingTime,
    CaseEvent,
    CaseSla,
    ClockKind,
    EventType,
    PolicySet,
    SlaOutcome,
    SlaPolicy,
    UnknownCalendar,
    always_open_calendar,
    chinese_statutory_calendar,
    default_policy_set,
)
from tousu_sla.service_layer.sla_events import contract_events

T = TypeVar("T")


def utc_now() -> dt.datetime:
    """The current instant in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class SlaContext:
    """What the use cases share within one process: caches, the publisher, time."""

    publisher: SlaEventPublisher
    cache: CatalogCache = field(default_factory=CatalogCache)
    late_after: dt.timedelta = LATE_AFTER
    clock: Callable[[], dt.datetime] = utc_now

    def repository(self, db_session: AsyncSession) -> SlaRepository:
        """A repository bound to one transaction."""
        return SlaRepository(db_session, self.cache)


class EventNotApplicable(Exception):
    """The domain refused an event for good (e.g. out of order, or a broken calendar)."""


class SchedulingStalled(Exception):
    """Firing a case left a timer due, which would make the scheduler spin on it."""


# -- catalog: defaults, policies, calendars ------------------------------------------------


async def ensure_default_catalog(*, db_session: AsyncSession, ctx: SlaContext) -> list[str]:
    """Seed the default policy set and calendars if missing; add statutory years the library
    newly publishes to ``cn-statutory`` (operators' own dates win). Returns what changed."""
    repo = ctx.repository(db_session)
    changed: list[str] = []
    if await repo.current_policy_set() is None:
        await repo.lock_policy_sets()
        if await repo.current_policy_set() is None:
            await repo.add_policy_set(
                default_policy_set(), created_by="system", comment="domain.md §4 defaults"
            )
            changed.append("policy_set")
    for default in (chinese_statutory_calendar(), always_open_calendar()):
        existing = await repo.calendar(default.name, for_update=True)
        if existing is None:
            await repo.save_calendar(default, version=1, updated_by="system")
            changed.append(f"calendar:{default.name}")
            continue
        merged = _with_new_library_years(existing.calendar, default)
        if merged is not None:
            await repo.save_calendar(merged, version=existing.version + 1, updated_by="system")
            await repo.mark_calendar_cases_due(default.name, ctx.clock())
            changed.append(f"calendar:{default.name}")
    return changed


def _with_new_library_years(
    stored: BusinessCalendar,
    library: BusinessCalendar,
) -> BusinessCalendar | None:
    if stored.data_years is None or library.data_years is None:
        return None
    new_years = library.data_years - stored.data_years
    if not new_years:
        return None
    taken = stored.holidays | stored.makeup_workdays | set(stored.overrides)

    def fresh(days: Iterable[dt.date]) -> set[dt.date]:
        return {day for day in days if day.year in new_years and day not in taken}

    return _calendar_with(
        stored,
        holidays=stored.holidays | fresh(library.holidays),
        makeup_workdays=stored.makeup_workdays | fresh(library.makeup_workdays),
        data_years=stored.data_years | new_years,
    )


async def policy_set_in_force(*, db_session: AsyncSession, ctx: SlaContext) -> PolicySetRecord:
    """The current policy set, seeding the defaults on an empty database."""
    repo = ctx.repository(db_session)
    current = await repo.current_policy_set()
    if current is None:
        await ensure_default_catalog(db_session=db_session, ctx=ctx)
        current = await repo.current_policy_set()
        assert current is not None, "seeding stores a policy set"
    return current


async def policy_set_version(
    version: int,
    *,
    db_session: AsyncSession,
    ctx: SlaContext,
) -> PolicySetRecord:
    """One stored version of the policy set."""
    record = await ctx.repository(db_session).policy_set(version)
    if record is None:
        raise NotFound(f"no policy set version {version}", field="version")
    return record


async def policy_set_history(*, db_session: AsyncSession, ctx: SlaContext) -> list[dict[str, Any]]:
    """Every version, newest first."""
    return await ctx.repository(db_session).policy_set_versions()


async def publish_policy_set(
    policies: Iterable[SlaPolicy],
    *,
    based_on_version: int | None,
    comment: str | None,
    actor: str,
    db_session: AsyncSession,
    ctx: SlaContext,
) -> PolicySetRecord:
    """Store a new version of the policy set; cases adopt it with their next event."""
    repo = ctx.repository(db_session)
    await repo.lock_policy_sets()
    current = await repo.current_policy_set()
    current_version = current.version if current else 0
    if based_on_version is not None and based_on_version != current_version:
        raise Conflict(
            f"the policy set is at version {current_version}, not {based_on_version}",
            field="based_on_version",
            current_version=current_version,
        )
    policy_set = _validated(
        lambda: PolicySet(version=current_version + 1, policies=tuple(policies))
    )
    calendars = await repo.calendars()
    for p_index, policy in enumerate(policy_set.policies):
        for m_index, spec in enumerate(policy.milestones):
            if spec.clock is ClockKind.BUSINESS and spec.calendar not in calendars:
                raise InvalidInput(
                    f"milestone {spec.key!r} of policy {policy.name!r} counts on the unknown "
                    f"calendar {spec.calendar!r}",
                    field=f"policies.{p_index}.milestones.{m_index}.calendar",
                )
    return await repo.add_policy_set(policy_set, created_by=actor, comment=comment)


async def list_calendars(*, db_session: AsyncSession, ctx: SlaContext) -> list[CalendarRecord]:
    """Every calendar at its current version."""
    return list((await ctx.repository(db_session).calendars()).values())


async def get_calendar(name: str, *, db_session: AsyncSession, ctx: SlaContext) -> CalendarRecord:
    """One calendar."""
    record = await ctx.repository(db_session).calendar(name)
    if record is None:
        raise NotFound(f"no calendar {name!r}", field="name")
    return record


def calendar_from_definition(name: str, definition: Mapping[str, Any]) -> BusinessCalendar:
    """A validated calendar from API data (omitted fields take the calendar defaults)."""
    return _validated(lambda: BusinessCalendar.model_validate({**definition, "name": name}))


async def put_calendar(
    calendar: BusinessCalendar,
    *,
    actor: str,
    db_session: AsyncSession,
    ctx: SlaContext,
) -> CalendarRecord:
    """Create or replace a calendar; open deadlines counted on it are recomputed."""
    if calendar.name == WALL_CLOCK.name:
        raise InvalidInput(f"{WALL_CLOCK.name!r} is the built-in wall clock", field="name")
    repo = ctx.repository(db_session)
    existing = await repo.calendar(calendar.name, for_update=True)
    return await _store_calendar(repo, existing, calendar, actor=actor, now=ctx.clock())


async def set_calendar_date(
    name: str,
    day: dt.date,
    working: bool | None,
    *,
    actor: str,
    db_session: AsyncSession,
    ctx: SlaContext,
) -> CalendarRecord:
    """Override one date as working (True) or off (False), or drop the override (None)."""
    repo = ctx.repository(db_session)
    existing = await _calendar_for_edit(repo, name)
    overrides = dict(existing.calendar.overrides)
    if working is None:
        overrides.pop(day, None)
    else:
        overrides[day] = working
    changed = _calendar_with(existing.calendar, overrides=overrides)
    return await _store_calendar(repo, existing, changed, actor=actor, now=ctx.clock())


async def fill_calendar_year(
    name: str,
    year: int,
    *,
    holidays: Iterable[dt.date],
    makeup_workdays: Iterable[dt.date],
    actor: str,
    db_session: AsyncSession,
    ctx: SlaContext,
) -> CalendarRecord:
    """Publish one year's holidays and make-up working days (调休); the year then counts
    as known data instead of being guessed by the weekend rule."""
    holidays, makeup_workdays = set(holidays), set(makeup_workdays)
    outside = sorted(day for day in holidays | makeup_workdays if day.year != year)
    if outside:
        raise InvalidInput(
            f"dates outside {year}: {[d.isoformat() for d in outside]}", field="holidays"
        )
    repo = ctx.repository(db_session)
    existing = await _calendar_for_edit(repo, name)
    current = existing.calendar
    changed = _calendar_with(
        current,
        holidays={day for day in current.holidays if day.year != year} | holidays,
        makeup_workdays={d for d in current.makeup_workdays if d.year != year} | makeup_workdays,
        data_years=None if current.data_years is None else current.data_years | {year},
    )
    return await _store_calendar(repo, existing, changed, actor=actor, now=ctx.clock())


async def _calendar_for_edit(repo: SlaRepository, name: str) -> CalendarRecord:
    existing = await repo.calendar(name, for_update=True)
    if existing is None:
        raise NotFound(f"no calendar {name!r}", field="name")
    return existing


async def _store_calendar(
    repo: SlaRepository,
    existing: CalendarRecord | None,
    calendar: BusinessCalendar,
    *,
    actor: str,
    now: dt.datetime,
) -> CalendarRecord:
    record = await repo.save_calendar(
        calendar,
        version=(existing.version + 1) if existing else 1,
        updated_by=actor,
    )
    if existing is not None:
        # Due times may move either way; the scheduler recomputes these cases right away.
        await repo.mark_calendar_cases_due(calendar.name, now)
    return record


def _calendar_with(calendar: BusinessCalendar, **changes: Any) -> BusinessCalendar:
    return _validated(lambda: BusinessCalendar.model_validate({**calendar.model_dump(), **changes}))


def _validated(build: Callable[[], T]) -> T:
    try:
        return build()
    except ValidationError as error:
        errors = [
            {
                "field": ".".join(str(part) for part in item["loc"]),
                "message": item["msg"],
                "type": item["type"],
            }
            for item in error.errors()
        ]
        message = errors[0]["message"] if errors else "invalid"
        raise InvalidInput(message, errors=errors) from error


# -- cases ---------------------------------------------------------------------------------


async def apply_event(
    case_id: uuid.UUID,
    event: CaseEvent,
    *,
    db_session: AsyncSession,
    ctx: SlaContext,
) -> list[OutgoingEvent]:
    """Apply one complaint/case/feedback event to the case's SLA and publish the outcome."""
    repo = ctx.repository(db_session)
    current = await policy_set_in_force(db_session=db_session, ctx=ctx)
    calendars = await repo.calendars()
    stored = await _case_for_update(repo, case_id, current, calendars, ctx)
    sla = stored.sla
    outcomes: list[SlaOutcome] = []
    try:
        outcomes += _refresh_calendars(stored, calendars)
        if stored.policy_set_version != current.version:
            # A new policy version applies from the next event on, retargeting from the
            # original starts and starting milestones an operator added.
            outcomes += sla.use_policy_set(current.policy_set, event.occurred_at)
            stored.policy_set_version = current.version
        outcomes += sla.apply(event, ctx.clock())
    except (ValueError, CalendarHasNoWorkingTime, UnknownCalendar) as error:
        raise EventNotApplicable(f"{event.type}: {error}") from error
    return await _store_and_publish(repo, stored, outcomes, calendars, db_session, ctx)


async def record_customer_wait(
    case_id: uuid.UUID,
    *,
    waiting: bool,
    reason: str | None,
    actor: str,
    db_session: AsyncSession,
    ctx: SlaContext,
) -> list[OutgoingEvent]:
    """Pause (waiting) or resume the milestones whose policy pauses for the customer."""
    repo = ctx.repository(db_session)
    if await repo.case_state(case_id, for_update=True) is None:
        raise NotFound(f"no SLA for case {case_id}", field="case_id")
    event_type = EventType.CUSTOMER_WAIT_STARTED if waiting else EventType.CUSTOMER_WAIT_ENDED
    payload = {"reason": reason} if reason else {}
    event = CaseEvent(event_type.value, ctx.clock(), payload, actor=actor)
    try:
        return await apply_event(case_id, event, db_session=db_session, ctx=ctx)
    except EventNotApplicable as error:
        raise InvalidInput(str(error)) from error


async def claim_due_cases(
    *,
    db_session: AsyncSession,
    ctx: SlaContext,
    now: dt.datetime,
    limit: int,
) -> list[uuid.UUID]:
    """Lock cases with a timer due by `now` that no one else holds (case-id order)."""
    return await ctx.repository(db_session).claim_due_cases(now, limit)


@dataclass
class FiredBatch:
    """What firing a batch of claimed cases published, and the cases that could not fire."""

    published: list[OutgoingEvent] = field(default_factory=list)
    failed: dict[uuid.UUID, Exception] = field(default_factory=dict)


async def fire_due_cases(
    case_ids: list[uuid.UUID],
    *,
    db_session: AsyncSession,
    ctx: SlaContext,
    now: dt.datetime,
) -> FiredBatch:
    """Fire whatever fell due on claimed cases and publish it (each threshold once).

    Loads and stores the whole batch with a few statements. A case the domain cannot fire
    is left out and returned in `failed` for the caller to report and retry later.
    """
    repo = ctx.repository(db_session)
    calendars = await repo.calendars()
    rows = await repo.case_states(case_ids)
    stored_due = await repo.stored_due_times_of(case_ids)
    batch = FiredBatch()
    fired: list[StoredCase] = []
    for row in rows:
        try:
            stored = await _restore(repo, row, calendars, stored_due.get(row["case_id"], {}), ctx)
            outcomes = _fire(stored, calendars, now)
        except Exception as error:  # handed to the caller, who logs it and retries later
            batch.failed[row["case_id"]] = error
            continue
        stored.calendar_etags = used_calendar_etags(stored.sla, calendars)
        fired.append(stored)
        batch.published += contract_events(stored.sla, outcomes, previous_due=stored.stored_due)
    await repo.save_cases(fired)
    await ctx.publisher.publish(db_session, batch.published)
    return batch


async def fire_due(
    case_id: uuid.UUID,
    *,
    db_session: AsyncSession,
    ctx: SlaContext,
    now: dt.datetime,
) -> list[OutgoingEvent]:
    """Fire one claimed case on its own (the fallback when a batch cannot be stored)."""
    repo = ctx.repository(db_session)
    calendars = await repo.calendars()
    stored = await _stored_case(repo, case_id, calendars, ctx, for_update=False)
    if stored is None:
        return []
    outcomes = _fire(stored, calendars, now)
    return await _store_and_publish(repo, stored, outcomes, calendars, db_session, ctx)


def _fire(
    stored: StoredCase,
    calendars: Mapping[str, CalendarRecord],
    now: dt.datetime,
) -> list[SlaOutcome]:
    outcomes = _refresh_calendars(stored, calendars) + stored.sla.fire(now)
    next_fire = stored.sla.next_fire_at()
    if next_fire is not None and next_fire <= now:
        # Storing this would make the scheduler claim the case again at once, forever.
        raise SchedulingStalled(
            f"case {stored.sla.case_id} is still due at {next_fire} after firing"
        )
    return outcomes


async def defer_failed_case(
    case_id: uuid.UUID,
    error: str,
    *,
    db_session: AsyncSession,
    ctx: SlaContext,
    now: dt.datetime,
    retry_after: dt.timedelta,
) -> None:
    """Record why a case's timers could not fire and try it again later."""
    await ctx.repository(db_session).record_failure(
        case_id,
        error,
        retry_at=now + retry_after,
        now=now,
    )


async def next_due_at(*, db_session: AsyncSession, ctx: SlaContext) -> dt.datetime | None:
    """When the earliest open timer falls due."""
    return await ctx.repository(db_session).earliest_next_fire_at()


async def purge_event_log(
    *,
    db_session: AsyncSession,
    ctx: SlaContext,
    retention: dt.timedelta,
) -> int:
    """Drop live-stream entries older than the retention."""
    return await ctx.repository(db_session).purge_event_log(older_than=ctx.clock() - retention)


async def case_sla(
    case_id: uuid.UUID,
    *,
    db_session: AsyncSession,
    ctx: SlaContext,
) -> StoredCase:
    """A case's SLA as of now, on the current calendars (read only)."""
    repo = ctx.repository(db_session)
    calendars = await repo.calendars()
    stored = await _stored_case(repo, case_id, calendars, ctx, for_update=False)
    if stored is None:
        raise NotFound(f"no SLA for case {case_id}", field="case_id")
    _refresh_calendars(stored, calendars)
    return stored


@dataclass(frozen=True)
class MilestonePage:
    """One page of a milestone list and the cursor of the next page."""

    items: list[Mapping[str, Any]]
    next_cursor: str | None


async def milestone_list(
    *,
    breached: bool,
    include_closed: bool = False,
    department: str | None,
    milestone_key: str | None,
    urgency: str | None,
    cursor: str | None,
    limit: int,
    db_session: AsyncSession,
    ctx: SlaContext,
) -> MilestonePage:
    """Breached or at-risk milestones, most overdue first, with keyset pagination."""
    after = MilestonePageKey.decode(cursor) if cursor else None
    rows = await ctx.repository(db_session).milestone_page(
        breached=breached,
        include_closed=include_closed,
        department=department,
        milestone_key=milestone_key,
        urgency=urgency,
        after=after,
        limit=limit + 1,
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = MilestonePageKey(
            last["due_at"],
            last["case_id"],
            last["milestone_key"],
        ).encode()
    return MilestonePage(rows, next_cursor)


async def stream_tail(*, db_session: AsyncSession, ctx: SlaContext) -> StreamPosition:
    """Where a new live-stream reader starts: after everything published so far."""
    return await ctx.repository(db_session).event_log_tail()


async def stream_after(
    position: StreamPosition,
    *,
    limit: int,
    db_session: AsyncSession,
    ctx: SlaContext,
) -> list[tuple[StreamPosition, Mapping[str, Any]]]:
    """Published SLA events after a stream position, oldest first."""
    return await ctx.repository(db_session).event_log_after(position, limit)


# -- internals -----------------------------------------------------------------------------


async def _case_for_update(
    repo: SlaRepository,
    case_id: uuid.UUID,
    current: PolicySetRecord,
    calendars: Mapping[str, CalendarRecord],
    ctx: SlaContext,
) -> StoredCase:
    stored = await _stored_case(repo, case_id, calendars, ctx, for_update=True)
    if stored is not None:
        return stored
    fresh = CaseSla(
        str(case_id), current.policy_set, _calendar_map(calendars), late_after=ctx.late_after
    )
    # Two topics may bring a new case's first events at once: one insert wins, both lock.
    await repo.insert_case_if_absent(StoredCase(fresh, current.version, {}, {}))
    stored = await _stored_case(repo, case_id, calendars, ctx, for_update=True)
    assert stored is not None, "the case row was just inserted"
    return stored


async def _stored_case(
    repo: SlaRepository,
    case_id: uuid.UUID,
    calendars: Mapping[str, CalendarRecord],
    ctx: SlaContext,
    *,
    for_update: bool,
) -> StoredCase | None:
    row = await repo.case_state(case_id, for_update=for_update)
    if row is None:
        return None
    return await _restore(repo, row, calendars, await repo.stored_due_times(case_id), ctx)


async def _restore(
    repo: SlaRepository,
    row: Mapping[str, Any],
    calendars: Mapping[str, CalendarRecord],
    stored_due: dict[str, dt.datetime | None],
    ctx: SlaContext,
) -> StoredCase:
    version = row["policy_set_version"]
    record = await repo.policy_set(version)
    if record is None:
        raise LookupError(f"case {row['case_id']} uses missing policy set {version}")
    sla = CaseSla.from_memento(
        row["state"], record.policy_set, _calendar_map(calendars), late_after=ctx.late_after
    )
    return StoredCase(sla, version, dict(row["calendar_etags"]), stored_due)


def _calendar_map(calendars: Mapping[str, CalendarRecord]) -> dict[str, BusinessCalendar]:
    return {name: record.calendar for name, record in calendars.items()}


def _refresh_calendars(
    stored: StoredCase,
    calendars: Mapping[str, CalendarRecord],
) -> list[SlaOutcome]:
    if not calendars_changed(stored.calendar_etags, calendars):
        return []
    return stored.sla.use_calendars(_calendar_map(calendars))


async def _store_and_publish(
    repo: SlaRepository,
    stored: StoredCase,
    outcomes: list[SlaOutcome],
    calendars: Mapping[str, CalendarRecord],
    db_session: AsyncSession,
    ctx: SlaContext,
) -> list[OutgoingEvent]:
    stored.calendar_etags = used_calendar_etags(stored.sla, calendars)
    await repo.save_case(stored)
    outgoing = contract_events(stored.sla, outcomes, previous_due=stored.stored_due)
    await ctx.publisher.publish(db_session, outgoing)
    return outgoing

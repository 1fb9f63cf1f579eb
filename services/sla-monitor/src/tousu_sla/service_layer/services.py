"""Case use cases: apply case events, pause for the customer, fire due timers, query.

Every function works inside the caller's unit of work (consumer, scheduler loop or API
endpoint), publishes through it and never commits: the caller does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tousu_shared.contracts import Event
from tousu_shared.errors import InvalidInput, NotFound

from tousu_sla.adapters.repository import (
    CalendarRecord,
    MilestonePageKey,
    PolicySetRecord,
    SlaRepository,
    StoredCase,
    StreamPosition,
    calendars_changed,
    used_calendar_etags,
)
from tousu_sla.domain import (
    BusinessCalendar,
    CalendarHasNoWorkingTime,
    CaseEvent,
    CaseSla,
    EventType,
    SlaOutcome,
    UnknownCalendar,
)
from tousu_sla.service_layer.catalog import policy_set_in_force
from tousu_sla.service_layer.context import (
    EventNotApplicable,
    SchedulingStalled,
    SlaContext,
    SlaUnitOfWork,
)
from tousu_sla.service_layer.sla_events import contract_events

# -- events ------------------------------------------------------------------------------


async def apply_event(
    uow: SlaUnitOfWork, ctx: SlaContext, case_id: uuid.UUID, event: CaseEvent
) -> list[Event]:
    """Apply one complaint/case/feedback event to the case's SLA and publish the outcome."""
    repo = uow.sla
    current = await policy_set_in_force(uow, ctx)
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
    return await _store_and_publish(uow, stored, outcomes, calendars)


async def load_cases(uow: SlaUnitOfWork, ctx: SlaContext, case_ids: Sequence[uuid.UUID]) -> None:
    """Lock and load the cases a batch of events applies to, before the first is applied.

    One statement locks every existing case (in case-id order, the order every writer
    takes them in); the missing ones are created by one insert and locked by one more.
    The events then apply to the held aggregates: reading each case once per batch
    instead of once per event.
    """
    repo = uow.sla
    wanted = sorted({case_id for case_id in case_ids if repo.held(case_id) is None})
    if not wanted:
        return
    calendars = await repo.calendars()
    found = await repo.cases_with_due_times(wanted, for_update=True)
    missing = [case_id for case_id in wanted if case_id not in found]
    if missing:
        current = await policy_set_in_force(uow, ctx)
        fresh = [_fresh_case(case_id, current, calendars, ctx) for case_id in missing]
        await repo.insert_cases_if_absent(fresh)
        found |= await repo.cases_with_due_times(missing, for_update=True)
    for row, stored_due in found.values():
        repo.hold(await _restore(repo, row, calendars, stored_due, ctx))


async def lock_case(uow: SlaUnitOfWork, case_id: uuid.UUID) -> None:
    """Lock a case's row until the transaction ends, so what is checked on it (its
    department) cannot change before the change made on it commits."""
    if await uow.sla.case_state(case_id, for_update=True) is None:
        raise NotFound(f"no SLA for case {case_id}", field="case_id")


async def record_customer_wait(
    uow: SlaUnitOfWork,
    ctx: SlaContext,
    case_id: uuid.UUID,
    *,
    waiting: bool,
    reason: str | None,
    actor: str,
) -> list[Event]:
    """Pause (waiting) or resume the milestones whose policy pauses for the customer."""
    await lock_case(uow, case_id)
    event_type = EventType.CUSTOMER_WAIT_STARTED if waiting else EventType.CUSTOMER_WAIT_ENDED
    payload = {"reason": reason} if reason else {}
    event = CaseEvent(event_type.value, ctx.clock(), payload, actor=actor)
    try:
        return await apply_event(uow, ctx, case_id, event)
    except EventNotApplicable as error:
        raise InvalidInput(str(error)) from error


# -- timers ------------------------------------------------------------------------------


async def claim_due_cases(uow: SlaUnitOfWork, *, now: dt.datetime, limit: int) -> list[uuid.UUID]:
    """Lock cases with a timer due by `now` that no one else holds (case-id order)."""
    return await uow.sla.claim_due_cases(now, limit)


@dataclass
class FiredBatch:
    """What firing a batch of claimed cases published, and the cases that could not fire."""

    published: list[Event] = field(default_factory=list)
    failed: dict[uuid.UUID, Exception] = field(default_factory=dict)


async def fire_due_cases(
    uow: SlaUnitOfWork, ctx: SlaContext, case_ids: Sequence[uuid.UUID], *, now: dt.datetime
) -> FiredBatch:
    """Fire whatever fell due on claimed cases and publish it (each threshold once).

    Loads and stores the whole batch with a few statements. A case the domain cannot fire
    is left out and returned in `failed` for the caller to report and retry later.
    """
    repo = uow.sla
    calendars = await repo.calendars()
    found = await repo.cases_with_due_times(list(case_ids), for_update=False)
    batch = FiredBatch()
    fired: list[StoredCase] = []
    for row, stored_due in found.values():
        try:
            stored = await _restore(repo, row, calendars, stored_due, ctx)
            outcomes = _fire(stored, calendars, now)
        except Exception as error:  # handed to the caller, who logs it and retries later
            batch.failed[row["case_id"]] = error
            continue
        stored.calendar_etags = used_calendar_etags(stored.sla, calendars)
        fired.append(stored)
        batch.published += _publish(uow, stored, outcomes)
    await repo.save_cases(fired)
    return batch


async def fire_due(
    uow: SlaUnitOfWork, ctx: SlaContext, case_id: uuid.UUID, *, now: dt.datetime
) -> list[Event]:
    """Fire one case on its own, locking it (the fallback when a batch cannot commit)."""
    repo = uow.sla
    calendars = await repo.calendars()
    stored = await _stored_case(repo, case_id, calendars, ctx, for_update=True)
    if stored is None:
        return []
    outcomes = _fire(stored, calendars, now)
    return await _store_and_publish(uow, stored, outcomes, calendars)


def _fire(
    stored: StoredCase, calendars: Mapping[str, CalendarRecord], now: dt.datetime
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
    uow: SlaUnitOfWork,
    case_id: uuid.UUID,
    error: str,
    *,
    now: dt.datetime,
    retry_after: dt.timedelta,
) -> None:
    """Record why a case's timers could not fire and try it again later."""
    await uow.sla.record_failure(case_id, error, retry_at=now + retry_after, now=now)


async def next_due_at(uow: SlaUnitOfWork) -> dt.datetime | None:
    """When the earliest open timer falls due."""
    return await uow.sla.earliest_next_fire_at()


async def purge_event_log(uow: SlaUnitOfWork, ctx: SlaContext, *, retention: dt.timedelta) -> int:
    """Drop live-stream entries older than the retention."""
    return await uow.sla.purge_event_log(older_than=ctx.clock() - retention)


# -- queries -----------------------------------------------------------------------------


async def case_sla(uow: SlaUnitOfWork, ctx: SlaContext, case_id: uuid.UUID) -> StoredCase:
    """A case's SLA as of now, on the current calendars (read only)."""
    repo = uow.sla
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
    uow: SlaUnitOfWork,
    *,
    breached: bool,
    include_closed: bool = False,
    department: str | None,
    milestone_key: str | None,
    urgency: str | None,
    cursor: str | None,
    limit: int,
) -> MilestonePage:
    """Breached or at-risk milestones, most overdue first, with keyset pagination."""
    after = MilestonePageKey.decode(cursor) if cursor else None
    rows = await uow.sla.milestone_page(
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
            last["due_at"], last["case_id"], last["milestone_key"]
        ).encode()
    return MilestonePage(rows, next_cursor)


async def stream_tail(uow: SlaUnitOfWork) -> StreamPosition:
    """Where a new live-stream reader starts: after everything published so far."""
    return await uow.sla.event_log_tail()


async def stream_after(
    uow: SlaUnitOfWork, position: StreamPosition, *, limit: int
) -> list[tuple[StreamPosition, Mapping[str, Any]]]:
    """Published SLA events after a stream position, oldest first."""
    return await uow.sla.event_log_after(position, limit)


# -- internals ---------------------------------------------------------------------------


async def _case_for_update(
    repo: SlaRepository,
    case_id: uuid.UUID,
    current: PolicySetRecord,
    calendars: Mapping[str, CalendarRecord],
    ctx: SlaContext,
) -> StoredCase:
    held = repo.held(case_id)
    if held is not None:
        return held
    stored = await _stored_case(repo, case_id, calendars, ctx, for_update=True)
    if stored is None:
        # Two topics may bring a new case's first events at once: one insert wins, both lock.
        await repo.insert_cases_if_absent([_fresh_case(case_id, current, calendars, ctx)])
        stored = await _stored_case(repo, case_id, calendars, ctx, for_update=True)
        assert stored is not None, "the case row was just inserted"
    return repo.hold(stored)


def _fresh_case(
    case_id: uuid.UUID,
    current: PolicySetRecord,
    calendars: Mapping[str, CalendarRecord],
    ctx: SlaContext,
) -> StoredCase:
    """A case no event has reached yet, on the policy set in force."""
    sla = CaseSla(
        str(case_id), current.policy_set, _calendar_map(calendars), late_after=ctx.late_after
    )
    return StoredCase(sla, current.version, {}, {})


async def _stored_case(
    repo: SlaRepository,
    case_id: uuid.UUID,
    calendars: Mapping[str, CalendarRecord],
    ctx: SlaContext,
    *,
    for_update: bool,
) -> StoredCase | None:
    found = await repo.case_with_due_times(case_id, for_update=for_update)
    if found is None:
        return None
    row, stored_due = found
    return await _restore(repo, row, calendars, stored_due, ctx)


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
    stored: StoredCase, calendars: Mapping[str, CalendarRecord]
) -> list[SlaOutcome]:
    if not calendars_changed(stored.calendar_etags, calendars):
        return []
    return stored.sla.use_calendars(_calendar_map(calendars))


def _publish(uow: SlaUnitOfWork, stored: StoredCase, outcomes: list[SlaOutcome]) -> list[Event]:
    outgoing = contract_events(stored.sla, outcomes, previous_due=stored.stored_due)
    for item in outgoing:
        uow.publish(item.event, firing_key=item.firing_key)
    # What the next event of this transaction compares with: the due times as they will be
    # stored (the held case is written once, at commit).
    stored.stored_due = {clock.key: clock.due_at for clock in stored.sla.clocks.values()}
    return [item.event for item in outgoing]


async def _store_and_publish(
    uow: SlaUnitOfWork,
    stored: StoredCase,
    outcomes: list[SlaOutcome],
    calendars: Mapping[str, CalendarRecord],
) -> list[Event]:
    stored.calendar_etags = used_calendar_etags(stored.sla, calendars)
    await uow.sla.save_case(stored)
    return _publish(uow, stored, outcomes)

"""Catalog use cases: the policy set (versioned data) and the business calendars.

Each works inside the caller's unit of work; the entrypoint commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError
from tousu_shared.errors import Conflict, InvalidInput, NotFound

from tousu_sla.adapters.repository import CalendarRecord, PolicySetRecord, SlaRepository
from tousu_sla.domain import (
    WALL_CLOCK,
    BusinessCalendar,
    ClockKind,
    PolicySet,
    SlaPolicy,
    always_open_calendar,
    chinese_statutory_calendar,
    default_policy_set,
)
from tousu_sla.service_layer.context import SlaContext, SlaUnitOfWork

T = TypeVar("T")


async def seed_defaults(uow: SlaUnitOfWork, ctx: SlaContext) -> list[str]:
    """Seed the default policy set and calendars if missing; add statutory years the library
    newly publishes to ``cn-statutory`` (operators' own dates win). Returns what changed."""
    return await seed_catalog(uow.sla, ctx.clock())


async def seed_catalog(repo: SlaRepository, now: dt.datetime) -> list[str]:
    """`seed_defaults` on a repository of the caller's transaction."""
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
            await repo.mark_calendar_cases_due(default.name, now)
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


async def policy_set_in_force(uow: SlaUnitOfWork, ctx: SlaContext) -> PolicySetRecord:
    """The current policy set, seeding the defaults on an empty database."""
    repo = uow.sla
    current = await repo.current_policy_set()
    if current is None:
        await seed_defaults(uow, ctx)
        current = await repo.current_policy_set()
        assert current is not None, "seeding stores a policy set"
    return current


async def policy_set_version(
    uow: SlaUnitOfWork,
    version: int,
) -> PolicySetRecord:
    """One stored version of the policy set."""
    record = await uow.sla.policy_set(version)
    if record is None:
        raise NotFound(f"no policy set version {version}", field="version")
    return record


async def policy_set_history(uow: SlaUnitOfWork) -> list[dict[str, Any]]:
    """Every version, newest first."""
    return await uow.sla.policy_set_versions()


async def publish_policy_set(
    uow: SlaUnitOfWork,
    policies: Iterable[SlaPolicy],
    *,
    based_on_version: int | None,
    comment: str | None,
    actor: str,
) -> PolicySetRecord:
    """Store a new version of the policy set; cases adopt it with their next event."""
    repo = uow.sla
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


async def list_calendars(uow: SlaUnitOfWork) -> list[CalendarRecord]:
    """Every calendar at its current version."""
    return list((await uow.sla.calendars()).values())


async def get_calendar(uow: SlaUnitOfWork, name: str) -> CalendarRecord:
    """One calendar."""
    record = await uow.sla.calendar(name)
    if record is None:
        raise NotFound(f"no calendar {name!r}", field="name")
    return record


def calendar_from_definition(name: str, definition: Mapping[str, Any]) -> BusinessCalendar:
    """A validated calendar from API data (omitted fields take the calendar defaults)."""
    return _validated(lambda: BusinessCalendar.model_validate({**definition, "name": name}))


async def put_calendar(
    uow: SlaUnitOfWork,
    ctx: SlaContext,
    calendar: BusinessCalendar,
    *,
    actor: str,
) -> CalendarRecord:
    """Create or replace a calendar; open deadlines counted on it are recomputed."""
    if calendar.name == WALL_CLOCK.name:
        raise InvalidInput(f"{WALL_CLOCK.name!r} is the built-in wall clock", field="name")
    repo = uow.sla
    existing = await repo.calendar(calendar.name, for_update=True)
    return await _store_calendar(repo, existing, calendar, actor=actor, now=ctx.clock())


async def set_calendar_date(
    uow: SlaUnitOfWork,
    ctx: SlaContext,
    name: str,
    day: dt.date,
    working: bool | None,
    *,
    actor: str,
) -> CalendarRecord:
    """Override one date as working (True) or off (False), or drop the override (None)."""
    repo = uow.sla
    existing = await _calendar_for_edit(repo, name)
    overrides = dict(existing.calendar.overrides)
    if working is None:
        overrides.pop(day, None)
    else:
        overrides[day] = working
    changed = _calendar_with(existing.calendar, overrides=overrides)
    return await _store_calendar(repo, existing, changed, actor=actor, now=ctx.clock())


async def fill_calendar_year(
    uow: SlaUnitOfWork,
    ctx: SlaContext,
    name: str,
    year: int,
    *,
    holidays: Iterable[dt.date],
    makeup_workdays: Iterable[dt.date],
    actor: str,
) -> CalendarRecord:
    """Publish one year's holidays and make-up working days (调休); the year then counts
    as known data instead of being guessed by the weekend rule."""
    holidays, makeup_workdays = set(holidays), set(makeup_workdays)
    outside = sorted(day for day in holidays | makeup_workdays if day.year != year)
    if outside:
        raise InvalidInput(
            f"dates outside {year}: {[d.isoformat() for d in outside]}", field="holidays"
        )
    repo = uow.sla
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

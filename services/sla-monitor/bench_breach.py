"""Benchmark: how soon after its due time a breach is detected, with 100,000 open cases.

Bulk-loads `open_cases` open cases (each with the default policy's milestones, due hours
to days away) by COPY, adds `due_cases` cases whose breach falls due within the next few
seconds, runs the real scheduler, and measures, for each due case, the time from its due
instant until its SlaBreached is committed (seen by a separate connection polling the
event log). Everything the benchmark created is deleted afterwards; its outbox rows carry
the ``bench.`` topic namespace so a relay that happens to run never feeds real consumers.

Run: ``python services/sla-monitor/bench_breach.py`` (after ``python -m tousu_sla migrate``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import statistics
import time
import uuid
from typing import Any

import asyncpg
import orjson
from tousu_shared.runtime import Service
from tousu_sla.adapters.repository import (
    CASE_COLUMNS,
    MILESTONE_COLUMNS,
    StoredCase,
    case_row,
    milestone_rows,
)
from tousu_sla.bootstrap import bootstrap
from tousu_sla.domain import WALL_CLOCK, CaseEvent, CaseSla, MilestoneClock, MilestoneSpec
from tousu_sla.entrypoints.scheduler import SlaScheduler
from tousu_sla.service_layer import catalog
from tousu_sla.service_layer.context import SlaContext
from tousu_sla.settings import SlaSettings

UTC = dt.UTC
JSON_COLUMNS = {"calendar_etags", "state", "pauses"}
BENCH_DEPARTMENT = "bench"
COPY_CHUNK = 20_000


async def bench_stack() -> tuple[SlaSettings, Service, SlaContext, asyncpg.Connection]:
    """The SLA monitor as the benches run it: settings whose topics carry the ``bench.``
    namespace, the service and its context, and a raw connection on its schema for bulk
    work."""
    settings = SlaSettings(topic_namespace="bench.")
    service = bootstrap(settings)
    raw = await asyncpg.connect(
        settings.sqlalchemy_url.replace("+asyncpg", ""),
        server_settings={"search_path": settings.db_schema},
    )
    return settings, service, service.app.state.sla, raw


async def measure_breach_latency(
    open_cases: int = 100_000,
    *,
    due_cases: int = 50,
    due_spread_seconds: float = 5.0,
) -> dict[str, Any]:
    """Detection lag (due time → committed SlaBreached) of `due_cases` among `open_cases`."""
    settings, service, ctx, raw = await bench_stack()
    runtime = service.runtime
    bulk_ids = [uuid.uuid4() for _ in range(open_cases)]
    due_ids: list[uuid.UUID] = []
    try:
        async with ctx.uow() as uow:
            await catalog.seed_defaults(uow, ctx)
            policy = await catalog.policy_set_in_force(uow, ctx)
            calendars = await catalog.list_calendars(uow)
            await uow.commit()
        calendar_map = {record.name: record.calendar for record in calendars}
        etags = {record.name: str(record.etag) for record in calendars}

        started = time.perf_counter()
        open_milestones = await _copy_open_cases(raw, bulk_ids, policy, calendar_map, etags)
        await raw.execute("ANALYZE sla_case; ANALYZE sla_milestone")
        load_seconds = time.perf_counter() - started
        plan = await _claim_plan(raw)

        first_due = dt.datetime.now(UTC) + dt.timedelta(seconds=3)
        due_at = {}
        async with ctx.uow() as uow:
            for index in range(due_cases):
                case_id = uuid.uuid4()
                due_ids.append(case_id)
                due = first_due + dt.timedelta(seconds=due_spread_seconds * index / due_cases)
                due_at[case_id] = due
                sla = _due_case(case_id, due, policy, calendar_map)
                await uow.sla.save_case(StoredCase(sla, policy.version, etags, {}))
            await uow.commit()

        stop = asyncio.Event()
        scheduler = asyncio.create_task(SlaScheduler(settings, ctx).run(stop))
        seen = await _watch_breaches(raw, due_at, give_up_after=due_spread_seconds + 30)
        stop.set()
        await scheduler
        lags = sorted((seen[case_id] - due_at[case_id]).total_seconds() for case_id in seen)
        return {
            "open_cases": open_cases,
            "open_milestones": open_milestones,
            "due_cases": due_cases,
            "breaches_detected": len(lags),
            "bulk_load_seconds": round(load_seconds, 2),
            "detection_lag_p50_seconds": round(statistics.median(lags), 3) if lags else None,
            "detection_lag_p99_seconds": round(_percentile(lags, 0.99), 3) if lags else None,
            "detection_lag_max_seconds": round(lags[-1], 3) if lags else None,
            "scheduler_poll_seconds": settings.scheduler_poll_ms / 1000,
            "claim_uses_next_fire_index": "ix_sla_milestone_next_fire_at" in plan,
            "claim_plan": plan,
        }
    finally:
        await clean_up(raw, bulk_ids + due_ids)
        await raw.close()
        await runtime.close()


def _template_case(case_id: uuid.UUID, policy: Any, calendars: dict, at: dt.datetime) -> CaseSla:
    sla = CaseSla(str(case_id), policy.policy_set, calendars)
    sla.apply(
        CaseEvent(
            "ComplaintReceived",
            at,
            {"channel": "phone", "customer_tier": "regular", "department": BENCH_DEPARTMENT},
        )
    )
    return sla


async def _copy_open_cases(
    raw: asyncpg.Connection,
    case_ids: list[uuid.UUID],
    policy: Any,
    calendars: dict,
    etags: dict[str, str],
) -> int:
    # One real aggregate is built and stored; the others are copies under their own ids.
    template_id = uuid.UUID(int=0)
    sla = _template_case(template_id, policy, calendars, dt.datetime.now(UTC))
    stored = StoredCase(sla, policy.version, {}, {})
    stored.calendar_etags = {
        name: etags[name]
        for name in {c.timekeeper.name for c in sla.clocks.values()}
        if name in etags
    }
    case_template = case_row(stored)
    open_rows = [row for row in milestone_rows(sla) if row["next_fire_at"] is not None]
    state_json = orjson.dumps(case_template["state"]).decode()
    template_text = str(template_id)
    milestones = 0
    for start in range(0, len(case_ids), COPY_CHUNK):
        chunk = case_ids[start : start + COPY_CHUNK]
        cases = []
        rows = []
        for case_id in chunk:
            values = {
                **case_template,
                "case_id": case_id,
                "state": state_json.replace(template_text, str(case_id)),
            }
            cases.append(_record(values, CASE_COLUMNS))
            for row in open_rows:
                rows.append(_record({**row, "case_id": case_id}, MILESTONE_COLUMNS))
        await raw.copy_records_to_table("sla_case", records=cases, columns=CASE_COLUMNS)
        await raw.copy_records_to_table("sla_milestone", records=rows, columns=MILESTONE_COLUMNS)
        milestones += len(rows)
    return milestones


def _record(values: dict[str, Any], columns: tuple[str, ...]) -> tuple:
    return tuple(
        (value if isinstance(value, str) else orjson.dumps(value).decode())
        if column in JSON_COLUMNS
        else value
        for column, value in ((column, values[column]) for column in columns)
    )


def _due_case(case_id: uuid.UUID, due: dt.datetime, policy: Any, calendars: dict) -> CaseSla:
    received = due - dt.timedelta(seconds=10)
    sla = _template_case(case_id, policy, calendars, received)
    # A wall-clock milestone of 10 s whose only timer is its breach (no warnings first).
    spec = MilestoneSpec(
        key="bench_breach",
        name="Benchmark deadline",
        start_event="ComplaintReceived",
        stop_events=("CaseResolved",),
        target=due - received,
        warn_fractions=(),
        escalation_interval=None,
    )
    sla.clocks[spec.key] = MilestoneClock(spec, WALL_CLOCK, received)
    return sla


async def _claim_plan(raw: asyncpg.Connection) -> str:
    rows = await raw.fetch(
        "EXPLAIN SELECT c.case_id FROM sla_milestone m JOIN sla_case c "
        "ON c.case_id = m.case_id WHERE m.next_fire_at <= now() ORDER BY m.next_fire_at "
        "LIMIT 200 FOR UPDATE OF c SKIP LOCKED"
    )
    return "\n".join(row[0] for row in rows)


async def _watch_breaches(
    raw: asyncpg.Connection,
    due_at: dict[uuid.UUID, dt.datetime],
    *,
    give_up_after: float,
) -> dict[uuid.UUID, dt.datetime]:
    # Reads only what is new in the log since the last poll, so watching costs next to nothing.
    seen: dict[uuid.UUID, dt.datetime] = {}
    deadline = time.monotonic() + give_up_after
    last_id = await raw.fetchval("SELECT coalesce(max(id), 0) FROM sla_event_log")
    while len(seen) < len(due_at) and time.monotonic() < deadline:
        rows = await raw.fetch(
            "SELECT id, complaint_id FROM sla_event_log WHERE id > $1 "
            "AND event_type = 'SlaBreached' ORDER BY id",
            last_id,
        )
        observed = dt.datetime.now(UTC)
        for row in rows:
            if row["complaint_id"] in due_at:
                seen.setdefault(row["complaint_id"], observed)
        # Ids may commit out of order: re-read a short window instead of trusting the max.
        if rows:
            last_id = max(last_id, rows[-1]["id"] - 1000)
        await asyncio.sleep(0.01)
    return seen


def _percentile(ordered: list[float], fraction: float) -> float:
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def clean_up(raw: asyncpg.Connection, case_ids: list[uuid.UUID]) -> None:
    """Delete the benchmark's cases, their event log and their outbox rows."""
    await raw.execute("DELETE FROM sla_event_log WHERE complaint_id = ANY($1::uuid[])", case_ids)
    await raw.execute(
        "DELETE FROM outbox WHERE message_key = ANY($1::text[])",
        [str(case_id) for case_id in case_ids],
    )
    await raw.execute("DELETE FROM sla_case WHERE case_id = ANY($1::uuid[])", case_ids)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure_breach_latency()), indent=2))

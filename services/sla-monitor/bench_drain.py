"""Benchmark: the SLA monitor's CPU per complaint draining a backlog, and per idle scheduler round.

In process, on the real database, no broker: `complaints` synthetic complaints (each a
ComplaintReceived and a ComplaintClassified on complaint.events, then a CaseRouted on
case.events, the three events the pipeline brings the monitor per complaint) go through
the consumer's own batch path (inbox rows, batch preparer, handlers, one transaction per
chunk, as a backlog of a partition arrives), on the default policies. Then the scheduler
does `idle_rounds` rounds with nothing due (claim, nothing claimed, read the earliest
timer), as it does whenever a commit wakes it.

Prints CPU of this process per complaint and per idle round, statements sent per
complaint, and the events published per complaint by type. `--profile FILE` records a
cProfile of the drain (FILE) and of the idle rounds (FILE.idle). Everything it created is
deleted afterwards; its outbox rows carry the ``bench.`` topic namespace.

Run: ``python services/sla-monitor/bench_drain.py [--complaints N] [--profile FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import datetime as dt
import json
import time
import uuid
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from bench_breach import bench_stack, clean_up
from sqlalchemy import event as sa_event
from tousu_shared.contracts import Event
from tousu_shared.contracts.case import CaseRouted
from tousu_shared.contracts.complaint import (
    ClassificationData,
    ComplaintClassified,
    ComplaintReceived,
)
from tousu_shared.inbox import EventConsumer
from tousu_shared.outbox import CommitListener
from tousu_sla.domain.policy import default_policy_set
from tousu_sla.entrypoints.scheduler import SlaScheduler
from tousu_sla.service_layer import catalog
from tousu_sla.service_layer.context import SlaContext
from tousu_sla.settings import SlaSettings

UTC = dt.UTC
CONSUMER = "bench-drain"
URGENCIES = ("routine", "priority", "immediate", "routine")
SEVERITIES = ("general", "general", "serious", "general")
# As the consumer fetches a backlog: up to this many records of a partition at once.
FETCH = 200


async def measure_drain(
    complaints: int = 2000,
    *,
    idle_rounds: int = 200,
    warm_up: int = 100,
    profile: str | None = None,
    loop_seconds: float = 0.0,
) -> dict[str, Any]:
    """CPU per complaint drained and per idle scheduler round, on this process."""
    settings, service, ctx, raw = await bench_stack()
    runtime = service.runtime
    consumer = EventConsumer(
        settings,
        service.uow,
        service.handlers,
        topics=service.topics,
        consumer_factory=runtime.consumer,
        producer_factory=runtime.producer,
        name=CONSUMER,
        prepare=service.prepare,
    )
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    sa_event.listen(runtime.engine.sync_engine, "before_cursor_execute", count)
    ids: list[uuid.UUID] = []
    offsets: collections.Counter[str] = collections.Counter()
    try:
        async with ctx.uow() as uow:
            await catalog.seed_defaults(uow, ctx)
            current = await catalog.policy_set_in_force(uow, ctx)
            if current.policy_set.policies != default_policy_set().policies:
                raise SystemExit(f"policy set {current.version} in force is not the defaults")
            await uow.commit()

        def backlog(count_: int) -> tuple[list[uuid.UUID], list[list[ConsumerRecord]]]:
            # Built before the clock starts: what the producers did is not the monitor's CPU.
            # Complaints received a few milliseconds apart, as a real backlog's are.
            batch = [uuid.uuid4() for _ in range(count_)]
            ids.extend(batch)
            end = dt.datetime.now(UTC)
            complaint_events: list[Event] = []
            case_events: list[Event] = []
            for index, complaint_id in enumerate(batch):
                at = end - dt.timedelta(milliseconds=7 * (count_ - index))
                complaint_events += _complaint_events(complaint_id, index, at)
                case_events.append(_routed(complaint_id, index, at))
            return batch, [
                *_fetches(runtime, "complaint.events", complaint_events, offsets),
                *_fetches(runtime, "case.events", case_events, offsets),
            ]

        async def drain(fetches: list[list[ConsumerRecord]]) -> None:
            for records in fetches:
                tp = TopicPartition(records[0].topic, records[0].partition)
                await consumer._consume_partition(None, tp, records)

        await drain(backlog(warm_up)[1])
        measured, fetches = backlog(complaints)
        statements = 0
        profiler = cProfile.Profile() if profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        await drain(fetches)
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        drain_statements = statements

        published = collections.Counter(
            row["event_type"]
            for row in await raw.fetch(
                "SELECT event_type FROM sla_event_log WHERE complaint_id = ANY($1::uuid[])",
                measured,
            )
        )

        scheduler = SlaScheduler(settings, ctx)
        for _ in range(10):
            await _idle_round(scheduler)
        statements = 0
        profiler = cProfile.Profile() if profile else None
        idle_cpu, idle_wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for _ in range(idle_rounds):
            await _idle_round(scheduler)
        if profiler:
            profiler.disable()
            profiler.dump_stats(f"{profile}.idle")
        idle_cpu, idle_wall = time.process_time() - idle_cpu, time.perf_counter() - idle_wall
        loop = await _scheduler_loop(settings, ctx, runtime, loop_seconds) if loop_seconds else {}
        return {
            "complaints": complaints,
            "cpu_ms_per_complaint": round(1000 * cpu / complaints, 3),
            "wall_ms_per_complaint": round(1000 * wall / complaints, 3),
            "statements_per_complaint": round(drain_statements / complaints, 3),
            "sla_events_per_complaint": round(sum(published.values()) / complaints, 3),
            "sla_events_by_type": {
                name: round(n / complaints, 3) for name, n in sorted(published.items())
            },
            "idle_rounds": idle_rounds,
            "cpu_ms_per_idle_round": round(1000 * idle_cpu / idle_rounds, 3),
            "wall_ms_per_idle_round": round(1000 * idle_wall / idle_rounds, 3),
            "statements_per_idle_round": round(statements / idle_rounds, 3),
            **loop,
        }
    finally:
        sa_event.remove(runtime.engine.sync_engine, "before_cursor_execute", count)
        await clean_up(raw, ids)
        await raw.execute("DELETE FROM inbox WHERE consumer = $1", CONSUMER)
        await raw.close()
        await runtime.close()


async def _scheduler_loop(
    settings: SlaSettings, ctx: SlaContext, runtime: Any, seconds: float
) -> dict[str, Any]:
    """The real scheduler loop with nothing due, `seconds` each: this process doing
    nothing else (the base), the scheduler asleep on its commit listener, and the
    scheduler woken by a commit signal every poll (as a busy consumer wakes it)."""

    async def window(*, scheduler: bool, poke: bool) -> tuple[float, int]:
        rounds = 0
        sched = SlaScheduler(settings, ctx, CommitListener(settings, runtime.engine))
        original = sched._round

        async def counted(now: dt.datetime | None = None) -> tuple[int, dt.datetime | None]:
            nonlocal rounds
            rounds += 1
            return await original(now)

        sched._round = counted  # type: ignore[method-assign]
        stop = asyncio.Event()
        task = asyncio.create_task(sched.run(stop)) if scheduler else None
        await asyncio.sleep(2.0)  # seeded, listening
        rounds, cpu = 0, time.process_time()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(settings.scheduler_poll_ms / 1000)
            if poke and runtime.outbox.signal is not None:
                runtime.outbox.signal.poke()
        cpu = time.process_time() - cpu
        stop.set()
        if task is not None:
            await task
        return cpu, rounds

    base, _ = await window(scheduler=False, poke=True)
    asleep, slept_rounds = await window(scheduler=True, poke=False)
    woken, woken_rounds = await window(scheduler=True, poke=True)
    return {
        "loop_seconds": seconds,
        "loop_base_cpu_ms": round(1000 * base, 1),
        "loop_asleep_cpu_ms": round(1000 * asleep, 1),
        "loop_asleep_rounds": slept_rounds,
        "loop_woken_cpu_ms": round(1000 * woken, 1),
        "loop_woken_rounds": woken_rounds,
        "loop_cpu_ms_per_woken_round": round(1000 * (woken - base) / max(woken_rounds, 1), 3),
    }


async def _idle_round(scheduler: SlaScheduler) -> None:
    # What a woken scheduler does when nothing is due: claim none, then ask when to wake.
    claimed, _ = await scheduler._round()
    assert claimed == 0, "the bench's cases have no timer due"


def _fetches(
    runtime: Any, topic: str, events: list[Event], offsets: collections.Counter[str]
) -> list[list[ConsumerRecord]]:
    """The events as records of one partition, in fetches as the consumer takes a backlog."""
    name = runtime.settings.topic(topic)
    records = []
    for event in events:
        envelope = runtime.outbox.envelope(event)
        records.append(_record(name, offsets[name], envelope.subject, envelope.to_bytes()))
        offsets[name] += 1
    return [records[start : start + FETCH] for start in range(0, len(records), FETCH)]


def _record(topic: str, offset: int, key: str, value: bytes) -> ConsumerRecord:
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=(),
    )


def _complaint_events(complaint_id: uuid.UUID, index: int, at: dt.datetime) -> list[Event]:
    urgency, severity = URGENCIES[index % 4], SEVERITIES[index % 4]
    return [
        ComplaintReceived(
            complaint_id=complaint_id,
            tracking_code=f"TS-{index}",
            channel="phone",
            contact_at=at,
            received_at=at,
            customer_ref=f"cust-{index}",
            customer_tier="regular",
            contact_details_url="https://intake/contact",
        ),
        ComplaintClassified(
            complaint_id=complaint_id,
            classification=ClassificationData(
                category="product_quality",
                severity=severity,
                urgency=urgency,
                customer_tier="regular",
            ),
            explanation={"urgency": "bench"},
            ruleset_version="bench",
        ),
    ]


def _routed(complaint_id: uuid.UUID, index: int, at: dt.datetime) -> CaseRouted:
    return CaseRouted(
        complaint_id=complaint_id,
        occurred_at=at,
        recorded_at=at,
        department="quality",
        actor="system:routing",
        case_version=1,
        rule_id="r1",
        rule_reason="bench",
        handler_level="agent",
        category="product_quality",
        severity=SEVERITIES[index % 4],
        urgency=URGENCIES[index % 4],
        contact_details_url="https://intake/contact",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--complaints", type=int, default=2000)
    parser.add_argument("--idle-rounds", type=int, default=200)
    parser.add_argument("--profile", help="write cProfile stats of the drain here")
    parser.add_argument(
        "--loop-seconds", type=float, default=0.0, help="also time the real scheduler loop"
    )
    args = parser.parse_args()
    result = asyncio.run(
        measure_drain(
            args.complaints,
            idle_rounds=args.idle_rounds,
            profile=args.profile,
            loop_seconds=args.loop_seconds,
        )
    )
    print(json.dumps(result, indent=2))

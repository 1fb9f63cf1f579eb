"""The pipeline's figures on the stack `make run` starts (deploy/run-services.sh: one process
per service, every role in it), on infrastructure of its own (the drills' stack, ports
15432/19092/18201–18205), so the development database and broker are not touched:

- sustained rate: a burst of distinct complaints over 16 connections for 10 s, then the time
  until every accepted complaint has a routed case and its SLA clocks (and, reported apart,
  until analytics and feedback have consumed everything too);
- capacity: the same burst while routing, the SLA monitor, feedback and analytics are
  stopped, then the time the four take to work off that backlog together. The sustained
  rate above cannot exceed what intake accepts with the rest of the stack running; this one
  is what the consumers can do;
- 201 → ``CaseRouted`` readable on the department's topic, at a steady rate.

Prints figures; asserts nothing. ``python -m bench.pipeline`` runs it alone.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import httpx
from aiokafka import AIOKafkaConsumer
from tousu_shared.kafka import admin_connection
from tousu_shared.topics import DEPARTMENT_TOPIC_PREFIX

from bench.intake_load import complaint, summary
from drills.ledger import Checker
from drills.load import LoadDriver
from drills.stack import Stack, drill_env

BURST_SECONDS = float(os.environ.get("BENCH_BURST_SECONDS", "10"))
# The consumers the capacity phase stops during its burst (every one but intake's own).
CONSUMERS = ("routing", "sla-monitor", "feedback", "analytics")
BACKLOG_SECONDS = float(os.environ.get("BENCH_BACKLOG_SECONDS", "20"))
STEADY_RATE = float(os.environ.get("BENCH_STEADY_RATE", "150"))
STEADY_SECONDS = float(os.environ.get("BENCH_STEADY_SECONDS", "20"))


async def _counts(checker: Checker, ids: list[uuid.UUID]) -> tuple[int, int, int]:
    """Of ``ids``: complaints with a routed case, with SLA clocks, with an analytics fact."""
    queries = (
        ("routing", "SELECT count(*) FROM routing.routed_case WHERE complaint_id = ANY(:ids)"),
        ("sla_monitor", "SELECT count(*) FROM sla_monitor.sla_case WHERE case_id = ANY(:ids)"),
        ("analytics", "SELECT count(*) FROM analytics.fact WHERE complaint_id = ANY(:ids)"),
    )
    found = [(await checker.rows(schema, query, ids=ids))[0][0] for schema, query in queries]
    return found[0], found[1], found[2]


async def _closed_loop(urls: list[str], key: str, tag: str, seconds: float) -> list[str]:
    """16 connections, each posting its next complaint as soon as the last is answered, for
    ``seconds``; the ids accepted."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    accepted: list[str] = []
    deadline = time.monotonic() + seconds
    seq = iter(range(10**9))

    async def connection(n: int) -> None:
        async with httpx.AsyncClient(base_url=urls[n % len(urls)], headers=headers) as client:
            while time.monotonic() < deadline:
                response = await client.post(
                    "/v1/complaints", content=complaint(next(seq), tag), timeout=30
                )
                if response.status_code == 201:
                    accepted.append(response.json()["id"])

    await asyncio.gather(*(connection(n) for n in range(16)))
    return accepted


async def burst(stack: Stack, checker: Checker) -> None:
    """Complaints as fast as intake accepts them for BURST_SECONDS, then the drain."""
    tag = f"bench-burst-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    accepted = await _closed_loop(stack.intake_urls(), stack.admin_key, tag, BURST_SECONDS)
    answered = time.monotonic() - started
    ids = [uuid.UUID(i) for i in set(accepted)]
    total = len(ids)
    print(
        f"  burst: {total} complaints accepted in {answered:.1f} s over 16 connections "
        f"({total / answered:.0f}/s, the rest of the stack running)",
        flush=True,
    )
    samples = await _follow(checker, ids, started)
    routed_at, clocks_at, facts_at = (_first(samples, column, total) for column in (1, 2, 3))
    done = max(routed_at or float("inf"), clocks_at or float("inf"))
    print(
        f"  routed + SLA clocks for all {total}: {done:.1f} s after the first request "
        f"→ pipeline sustained {total / done:.0f} complaints/s "
        f"(routed {routed_at or float('nan'):.1f} s, clocks {clocks_at or float('nan'):.1f} s, "
        f"analytics' read model {facts_at or float('nan'):.1f} s)",
        flush=True,
    )
    recovery = await stack.wait_recovered(started, timeout=600, backlog=lambda: _zero())
    print(
        f"  every consumer (feedback and analytics too) caught up "
        f"{recovery.after or float('nan'):.1f} s after the first request; {recovery.line()}",
        flush=True,
    )


async def capacity(stack: Stack, checker: Checker) -> None:
    """A backlog built while the consumers are stopped, then their rate of working it off:
    measured between 10% and 90% of the backlog done, so neither the processes' start-up nor
    the tail (the last partitions finishing alone) is in it."""
    await asyncio.to_thread(stack.supervisorctl, "stop", *CONSUMERS)
    tag = f"bench-backlog-{uuid.uuid4().hex[:6]}"
    try:
        accepted = await _closed_loop(stack.intake_urls(), stack.admin_key, tag, BACKLOG_SECONDS)
        await _intake_outbox_empty(checker)  # the backlog is on Kafka, not in intake's outbox
    finally:
        started = time.monotonic()
        starting = asyncio.create_task(asyncio.to_thread(stack.supervisorctl, "start", *CONSUMERS))
    ids = [uuid.UUID(i) for i in set(accepted)]
    total = len(ids)
    samples = await _follow(checker, ids, started)
    await starting
    facts_at = _first(samples, 3, total)
    done_by = [(t, min(routed, clocks)) for t, routed, clocks, _ in samples]

    def reached(share: float) -> tuple[float, int]:
        return next(((t, n) for t, n in done_by if n >= share * total), done_by[-1])

    (t10, n10), (t90, n90), (done, _) = reached(0.1), reached(0.9), reached(1.0)
    rate = (n90 - n10) / (t90 - t10) if t90 > t10 else float("nan")
    print(
        f"  backlog: {total} complaints accepted in {BACKLOG_SECONDS:.0f} s with routing, SLA, "
        f"feedback and analytics stopped, then started: all routed + SLA clocks {done:.1f} s "
        f"after the start command (analytics' read model {facts_at or float('nan'):.1f} s); "
        f"from 10% to 90% done ({t10:.1f}-{t90:.1f} s) → consumers' capacity "
        f"{rate:.0f} complaints/s",
        flush=True,
    )


async def _follow(
    checker: Checker, ids: list[uuid.UUID], started: float
) -> list[tuple[float, int, int, int]]:
    """(seconds since ``started``, routed, with SLA clocks, in analytics) every 0.25 s until
    all of ``ids`` are everywhere, or 600 s."""
    samples = []
    while time.monotonic() - started < 600:
        counts = await _counts(checker, ids)
        samples.append((time.monotonic() - started, *counts))
        if min(counts) == len(ids):
            break
        await asyncio.sleep(0.25)
    return samples


def _first(samples: list[tuple[float, int, int, int]], column: int, total: int) -> float | None:
    """When the count in ``column`` of the samples first reached ``total``."""
    return next((sample[0] for sample in samples if sample[column] == total), None)


async def _intake_outbox_empty(checker: Checker) -> None:
    unsent_query = "SELECT count(*) FROM intake.outbox WHERE sent_at IS NULL"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        (unsent,) = (await checker.rows("intake", unsent_query))[0]
        if unsent == 0:
            return
        await asyncio.sleep(0.25)


async def _zero() -> int:
    return 0


async def steady(stack: Stack) -> None:
    """201 → CaseRouted readable on the department's topic, at STEADY_RATE."""
    consumer = AIOKafkaConsumer(
        **admin_connection(stack.env["TOUSU_KAFKA_BOOTSTRAP"]),
        group_id=f"bench-{uuid.uuid4().hex}",
        auto_offset_reset="latest",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        metadata_max_age_ms=1000,
    )
    consumer.subscribe(pattern=f"^{DEPARTMENT_TOPIC_PREFIX.replace('.', '[.]')}.*")
    await consumer.start()
    routed: dict[str, float] = {}
    wanted: set[str] | None = None  # the accepted ids, once the load is over
    assigned, complete = asyncio.Event(), asyncio.Event()

    async def read() -> None:
        while not complete.is_set():
            for records in (await consumer.getmany(timeout_ms=50)).values():
                now = time.time()
                for record in records:
                    if b'"CaseRouted"' in record.value:
                        routed.setdefault(record.key.decode(), now)
            if consumer.assignment():
                assigned.set()
            if wanted is not None and wanted <= routed.keys():
                complete.set()

    reader = asyncio.create_task(read())
    # Partitions assigned (at their end offsets) before the load starts.
    await asyncio.wait_for(assigned.wait(), timeout=60)
    tag = f"bench-steady-{uuid.uuid4().hex[:6]}"
    driver = LoadDriver(stack.intake_urls(), stack.admin_key, tag, rate=STEADY_RATE, connections=16)
    result = await driver.run(STEADY_SECONDS, give_up_after=30)
    answered = result.answered_at
    wanted = set(answered)
    try:
        await asyncio.wait_for(complete.wait(), timeout=120)
    except TimeoutError:
        complete.set()  # reported below as fewer CaseRouted seen than accepted
    await reader
    await consumer.stop()
    latencies = [max(0.0, (routed[i] - at) * 1000) for i, at in answered.items() if i in routed]
    print(
        f"  steady {STEADY_RATE:.0f}/s for {STEADY_SECONDS:.0f} s: {len(answered)} accepted, "
        f"{len(latencies)} CaseRouted seen; 201 → CaseRouted {summary(latencies)}",
        flush=True,
    )


async def measure() -> None:
    """Set up the stack, run the burst and the steady phase, tear it down."""
    stack = Stack()
    print("\npipeline, on a stack of its own started as `make run` starts it:", flush=True)
    started = time.monotonic()
    await asyncio.to_thread(stack.set_up)
    print(f"  stack up in {time.monotonic() - started:.0f} s", flush=True)
    checker = Checker()
    try:
        await burst(stack, checker)
        await capacity(stack, checker)
        await steady(stack)
    finally:
        await checker.close()
        await asyncio.to_thread(stack.tear_down)


def run() -> None:
    """Measure with this process's environment pointed at the stack's infrastructure (make
    exports the development ports and password file), then put it back."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(drill_env())
    try:
        asyncio.run(measure())
    finally:
        os.environ.clear()
        os.environ.update(saved)


if __name__ == "__main__":
    run()

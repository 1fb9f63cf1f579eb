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

The steady phase also prints where the latency goes, hop by hop, from the timestamps the
pipeline leaves anyway: the outbox rows' ``created_at`` (when the writer inserted them, just
before its commit) and ``sent_at`` (the relay's batch start), the routing inbox row's
``processed_at`` (the start of the transaction that applied the event), the Kafka records'
CreateTime (the producer's ``send``) and when this process read each record.

Prints figures; asserts nothing. ``python -m bench.pipeline`` runs it alone;
``python -m bench.pipeline --only steady`` runs one phase.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer
from tousu_shared.kafka import admin_connection
from tousu_shared.topics import DEPARTMENT_TOPIC_PREFIX

from bench.intake_load import complaint
from drills.ledger import Checker
from drills.load import LoadDriver
from drills.stack import DRILL_TOPOLOGY, REPO, SERVICES, Stack, drill_env

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


COMPLAINT_TOPIC = "complaint.events"
PHASES = ("burst", "capacity", "steady")


async def steady(stack: Stack, checker: Checker, profile: Path | None = None) -> None:
    """201 → CaseRouted readable on the department's topic, at STEADY_RATE; then the hops."""
    consumer = AIOKafkaConsumer(
        **admin_connection(stack.env["TOUSU_KAFKA_BOOTSTRAP"]),
        group_id=f"bench-{uuid.uuid4().hex}",
        auto_offset_reset="latest",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        metadata_max_age_ms=1000,
    )
    # The department topics (what is measured) and intake's topic (for the hops).
    departments = DEPARTMENT_TOPIC_PREFIX.replace(".", "[.]")
    complaints = COMPLAINT_TOPIC.replace(".", "[.]")
    consumer.subscribe(pattern=f"^({departments}.*|{complaints})$")
    await consumer.start()
    routed: dict[str, float] = {}
    # complaint id → (CreateTime, read here), of its CaseRouted and its ComplaintClassified
    routed_record: dict[str, tuple[float, float]] = {}
    classified_record: dict[str, tuple[float, float]] = {}
    wanted: set[str] | None = None  # the accepted ids, once the load is over
    assigned, complete = asyncio.Event(), asyncio.Event()

    async def read() -> None:
        while not complete.is_set():
            for tp, records in (await consumer.getmany(timeout_ms=50)).items():
                now = time.time()
                for record in records:
                    key = record.key.decode()
                    if tp.topic == COMPLAINT_TOPIC:
                        if b'"ComplaintClassified"' in record.value:
                            classified_record.setdefault(key, (record.timestamp / 1000, now))
                    elif b'"CaseRouted"' in record.value:
                        routed.setdefault(key, now)
                        routed_record.setdefault(key, (record.timestamp / 1000, now))
            if consumer.assignment():
                assigned.set()
            if wanted is not None and wanted <= routed.keys():
                complete.set()

    reader = asyncio.create_task(read())
    # Partitions assigned (at their end offsets) before the load starts.
    await asyncio.wait_for(assigned.wait(), timeout=60)
    tag = f"bench-steady-{uuid.uuid4().hex[:6]}"
    driver = LoadDriver(stack.intake_urls(), stack.admin_key, tag, rate=STEADY_RATE, connections=16)
    profiling = asyncio.create_task(_profile(stack, profile)) if profile else None
    result = await driver.run(STEADY_SECONDS, give_up_after=30)
    answered = result.answered_at
    wanted = set(answered)
    if profiling is not None:
        await profiling
    try:
        await asyncio.wait_for(complete.wait(), timeout=120)
    except TimeoutError:
        complete.set()  # reported below as fewer CaseRouted seen than accepted
    await reader
    await consumer.stop()
    latencies = [max(0.0, (routed[i] - at) * 1000) for i, at in answered.items() if i in routed]
    print(
        f"  steady {STEADY_RATE:.0f}/s for {STEADY_SECONDS:.0f} s: {len(answered)} accepted, "
        f"{len(latencies)} CaseRouted seen; 201 → CaseRouted {_percentiles(latencies)}",
        flush=True,
    )
    await _hops(checker, answered, classified_record, routed_record)


async def _profile(stack: Stack, out: Path, seconds: float = 10.0) -> None:
    """CPU of each process of the stack over ``seconds`` in the middle of the steady load, and
    a py-spy record (raw, idle frames included, so waiting shows) of each service into
    ``out``."""
    await asyncio.sleep(STEADY_SECONDS * 0.25)
    pids, spies = await asyncio.to_thread(_start_spies, stack, out, seconds)
    before = {name: sum(map(_cpu_ticks, group)) for name, group in pids.items()}
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    hertz = os.sysconf("SC_CLK_TCK")
    used = {
        name: (sum(map(_cpu_ticks, group)) - before[name]) / hertz / elapsed * 100
        for name, group in pids.items()
    }
    print(
        f"  CPU over {elapsed:.0f} s of the steady load (% of one core; {os.cpu_count()} cores): "
        + ", ".join(f"{name} {share:.0f}" for name, share in used.items())
        + f"; total {sum(used.values()):.0f}",
        flush=True,
    )
    for spy in spies:
        await asyncio.to_thread(spy.wait)


def _start_spies(
    stack: Stack, out: Path, seconds: float
) -> tuple[dict[str, list[int]], list[subprocess.Popen[bytes]]]:
    """The stack's processes by name, and a py-spy recording each service."""
    out.mkdir(parents=True, exist_ok=True)
    pids = {service: [stack.service_pid(service)] for service in SERVICES}
    postmaster = stack.infra_pid("postgres")
    children = subprocess.run(
        ["pgrep", "-P", str(postmaster)], capture_output=True, text=True
    ).stdout.split()
    pids["postgres"] = [postmaster, *map(int, children)]
    pids["kafka"] = [stack.infra_pid("kafka")]
    pids["bench"] = [os.getpid()]
    spy = str(REPO / ".venv" / "bin" / "py-spy")
    spies = [
        subprocess.Popen(
            [spy, "record", "--pid", str(pids[service][0]), "--duration", str(int(seconds))]
            + ["--rate", "50", "--idle", "--nonblocking", "--format", "raw"]
            + ["--output", str(out / f"{service}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for service in SERVICES
        if pids[service][0]
    ]
    return pids, spies


def _cpu_ticks(pid: int) -> int:
    """User + system CPU of a process so far, in clock ticks (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _percentiles(values: Sequence[float]) -> str:
    """p50 / p95 / p99 / max of milliseconds."""
    if not values:
        return "n/a"
    ordered = sorted(values)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return (
        f"p50 {statistics.median(ordered):.0f} ms, p95 {at(0.95):.0f} ms, "
        f"p99 {at(0.99):.0f} ms, max {ordered[-1]:.0f} ms"
    )


async def _hops(
    checker: Checker,
    answered: dict[str, float],
    classified_record: dict[str, tuple[float, float]],
    routed_record: dict[str, tuple[float, float]],
) -> None:
    """Where each complaint's 201 → CaseRouted went, from the stamps the pipeline leaves."""
    keys = list(answered)
    intake = {
        key: (event_id, created, sent)
        for key, event_id, created, sent in await checker.rows(
            "intake",
            "SELECT message_key, event_id, extract(epoch FROM created_at), "
            "extract(epoch FROM sent_at) FROM intake.outbox "
            "WHERE event_type = 'ComplaintClassified' AND message_key = ANY(:keys)",
            keys=keys,
        )
    }
    applied = dict(
        await checker.rows(
            "routing",
            "SELECT event_id, extract(epoch FROM processed_at) FROM routing.inbox "
            "WHERE event_id = ANY(:ids) AND event_type = 'ComplaintClassified'",
            ids=[event_id for event_id, _, _ in intake.values()],
        )
    )
    routing = {
        key: (created, sent)
        for key, created, sent in await checker.rows(
            "routing",
            "SELECT message_key, extract(epoch FROM created_at), extract(epoch FROM sent_at) "
            "FROM routing.outbox WHERE event_type = 'CaseRouted' AND topic LIKE :departments "
            "AND message_key = ANY(:keys)",
            departments=f"{DEPARTMENT_TOPIC_PREFIX}%",
            keys=keys,
        )
    }
    names = (
        "intake's outbox rows written → 201 seen by the client",
        "201 → intake relay's batch starts (sent_at)",
        "intake relay batch start → ComplaintClassified sent (CreateTime)",
        "sent → readable on complaint.events (read by the bench)",
        "readable → routing's transaction starts (inbox processed_at)",
        "routing transaction start → its outbox rows written (created_at)",
        "routing's outbox rows written → routing relay's batch starts (sent_at)",
        "routing relay batch start → CaseRouted sent (CreateTime)",
        "sent → readable on the department topic (read by the bench)",
    )
    hops: list[list[float]] = [[] for _ in names]
    for key, at in answered.items():
        if key not in intake or key not in classified_record or key not in routed_record:
            continue
        event_id, intake_created, intake_sent = intake[key]
        if event_id not in applied or key not in routing or intake_sent is None:
            continue
        routing_created, routing_sent = routing[key]
        if routing_sent is None:
            continue
        stamps = (
            float(intake_created),
            at,
            float(intake_sent),
            *classified_record[key],
            float(applied[event_id]),
            float(routing_created),
            float(routing_sent),
            *routed_record[key],
        )
        for hop, (start, end) in enumerate(zip(stamps, stamps[1:], strict=False)):
            hops[hop].append((end - start) * 1000)
    print(f"  where it went, {len(hops[0])} complaints with every stamp (ms; p50/p95/p99):")
    for name, values in zip(names, hops, strict=True):
        print(f"    {name:<68} {_percentiles(values)}")
    print(
        "    (a negative hop is stamp granularity: CreateTime is in ms)",
        flush=True,
    )


async def measure(phases: Sequence[str] = PHASES, profile: Path | None = None) -> None:
    """Set up the stack, run the chosen phases (all by default), tear it down."""
    stack = Stack()
    # make run's own process layout, not the drills' one process per service.
    for setting in DRILL_TOPOLOGY:
        stack.env.pop(setting)
    print("\npipeline, on a stack of its own started as `make run` starts it:", flush=True)
    started = time.monotonic()
    await asyncio.to_thread(stack.set_up)
    print(f"  stack up in {time.monotonic() - started:.0f} s", flush=True)
    checker = Checker()
    try:
        if "burst" in phases:
            await burst(stack, checker)
        if "capacity" in phases:
            await capacity(stack, checker)
        if "steady" in phases:
            await steady(stack, checker, profile)
    finally:
        await checker.close()
        await asyncio.to_thread(stack.tear_down)


def run(phases: Sequence[str] = PHASES, profile: Path | None = None) -> None:
    """Measure with this process's environment pointed at the stack's infrastructure (make
    exports the development ports and password file), then put it back."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(drill_env())
    try:
        asyncio.run(measure(phases, profile))
    finally:
        os.environ.clear()
        os.environ.update(saved)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", choices=PHASES, action="append", help="run this phase (repeatable); default all"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="during the steady load: each process's CPU, and py-spy of each service into DIR",
    )
    args = parser.parse_args()
    run(args.only or PHASES, args.profile)

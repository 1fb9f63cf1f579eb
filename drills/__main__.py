"""`make drills`: fault drills against a stack of their own (issue #14).

Each drill drives a steady load of distinct complaints at intake, breaks one thing mid-load
(drills/faults.py), waits until the system is quiescent again and checks the ledger
(drills/ledger.py). Exit status 1 when any check of any drill failed.

    python -m drills [DRILL ...] [--rate 20] [--seconds 30] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from tousu_shared.kafka import admin_connection
from tousu_shared.topics import DLQ_SUFFIX, TOPICS_BY_NAME, all_topic_names, dlq_topic

from drills import deadlines, faults, netfault
from drills.faults import POISON_KEY, POISONED, Fault
from drills.ledger import Checker, Ledger
from drills.load import LoadDriver, LoadResult, replay_answers
from drills.order import check_order
from drills.stack import DATA_DIR, HTTP_PORTS, Recovery, Stack, drill_env


@dataclass(frozen=True)
class Drill:
    """One drill: what it breaks mid-load, and what it sets up before the load and undoes
    after the ledger (e.g. ``two_instances``)."""

    title: str
    strike: Callable[[Stack, float], Awaitable[Fault]]
    setup: Callable[[Stack], AbstractAsyncContextManager[None]] | None = None


@asynccontextmanager
async def two_instances(stack: Stack) -> AsyncIterator[None]:
    """The second instance of every service runs while the drill does."""
    await asyncio.to_thread(stack.start_second)
    try:
        if await wait_ready(stack, time.monotonic()) is None:
            raise RuntimeError("the second instances did not become ready in 120 s")
        yield
    finally:
        await asyncio.to_thread(stack.stop_second)


@asynccontextmanager
async def _as_it_is(stack: Stack) -> AsyncIterator[None]:
    yield


@dataclass
class Outcome:
    name: str
    fault: Fault | None = None
    lines: list[str] = field(default_factory=list)
    ledger: Ledger | None = None
    ready_after: float | None = None
    drained_after: float | None = None
    problems: list[str] = field(default_factory=list)


DRILLS: dict[str, Drill] = {
    "intake-commit": Drill(
        "1. kill -9 intake after its commit, before its answer", faults.intake_after_commit
    ),
    "relay": Drill(
        "2. kill -9 intake's relay after the broker's acknowledgement, before marking sent",
        faults.relay_after_publish,
    ),
    "consumer": Drill(
        "3. kill -9 routing's consumer after its commit, before the offset commit",
        faults.consumer_after_apply,
    ),
    "kafka": Drill("4. kill -9 the Kafka broker under load, restart after 5 s", faults.kill_kafka),
    "postgres": Drill("5. kill -9 Postgres under load, restart after 5 s", faults.kill_postgres),
    "rebalance": Drill("6. a rebalance storm", faults.rebalance_storm),
    "xmin": Drill("7. a long transaction pins the xmin horizon", faults.pin_xmin),
    "sla-stop": Drill(
        "8. the SLA monitor stopped across many deadlines",
        deadlines.stop_sla_monitor,
        setup=deadlines.short_deadlines,
    ),
    "netfault": Drill(
        "10. network faults between a routing instance and the broker and the database",
        netfault.network_faults,
        setup=netfault.instance_behind_faulty_network,
    ),
    "poison": Drill("9. poison events on every topic the services consume", faults.poison),
    "twice": Drill(
        "11. two instances of every service; the first of each killed mid-load",
        faults.first_instances_killed,
        setup=two_instances,
    ),
    "restore": Drill(
        "12. the database restored from its backup to the last commit under load",
        faults.restore_latest,
        setup=faults.archiving,
    ),
    "routing": Drill("kill -9 the routing process mid-load", faults.kill_routing),
}


async def dead_letters(stack: Stack) -> list[tuple[str, bytes, dict[str, bytes]]]:
    """Every record on every dead-letter topic: (topic, key, headers)."""
    reader = AIOKafkaConsumer(
        **admin_connection(stack.env["TOUSU_KAFKA_BOOTSTRAP"]), enable_auto_commit=False
    )
    await reader.start()
    try:
        # The registry's partition counts: a consumer without a subscription knows none.
        partitions = [
            TopicPartition(name, p)
            for name, count in all_topic_names()
            if name.endswith(DLQ_SUFFIX)
            for p in range(count)
        ]
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        end = await reader.end_offsets(partitions)
        letters = []
        while any([await reader.position(tp) < end[tp] for tp in partitions]):
            for tp, records in (await reader.getmany(timeout_ms=1000)).items():
                for record in records:
                    headers = {k: v for k, v in record.headers or ()}
                    letters.append((tp.topic, record.key or b"", headers))
        return letters
    finally:
        await reader.stop()


async def wait_ready(stack: Stack, after: float, timeout: float = 120) -> float | None:
    """The first moment after ``after`` at which every service's /readyz answers 200."""
    async with httpx.AsyncClient() as client:
        while time.monotonic() - after < timeout:
            if await stack.all_ready(client):
                return time.monotonic()
            await asyncio.sleep(0.25)
    return None


@dataclass
class Observed:
    """What one drill saw: the load's record, the fault, recovery and the checks' findings."""

    urls: list[str]
    result: LoadResult
    fault: Fault
    ready_at: float | None
    recovery: Recovery
    ledger: Ledger
    replayed: int
    wrong: list[str]
    letters: list[tuple[str, bytes, dict[str, bytes]]]
    evidence: list[str] = field(default_factory=list)
    evidence_problems: list[str] = field(default_factory=list)


async def observe(stack: Stack, drill: Drill, tag: str, args: argparse.Namespace) -> Observed:
    """Load, strike mid-load, wait for quiescence, then check the ledger and the evidence."""
    urls = stack.intake_urls()
    checker = Checker()
    try:
        since = await checker.now()
        driver = LoadDriver(
            urls, stack.admin_key, tag, rate=args.rate, connections=args.connections
        )
        start = time.monotonic()
        load = asyncio.create_task(driver.run(args.seconds))
        await asyncio.sleep(args.fault_at)
        fault = await drill.strike(stack, start)
        ready_at = await wait_ready(stack, fault.over_at)
        result = await load
        ids = [uuid.UUID(i) for i in set(result.acknowledged.values())]
        recovery = await stack.wait_recovered(
            fault.struck_at, timeout=180, backlog=lambda: checker.backlog(ids)
        )
        ledger = await checker.check(
            result.acknowledged, key_prefix=tag, since=since, poison_ids=fault.poison_ids
        )
        replayed, wrong = await replay_answers(urls, stack.admin_key, result)
        seen = Observed(
            urls, result, fault, ready_at, recovery, ledger, replayed, wrong,
            await dead_letters(stack),
        )  # fmt: skip
        order_lines, order_problems = await check_order(
            stack.env["TOUSU_KAFKA_BOOTSTRAP"], checker, ids
        )
        if fault.evidence is not None:
            seen.evidence, seen.evidence_problems = await fault.evidence(stack, ids)
        seen.evidence = order_lines + seen.evidence
        seen.evidence_problems += order_problems
        return seen
    finally:
        await checker.close()


async def run_drill(stack: Stack, name: str, args: argparse.Namespace) -> Outcome:
    drill = DRILLS[name]
    tag = f"drill-{name}-{uuid.uuid4().hex[:6]}"
    async with (drill.setup or _as_it_is)(stack):
        seen = await observe(stack, drill, tag, args)
    return report(name, drill, seen, args)


def report(name: str, drill: Drill, seen: Observed, args: argparse.Namespace) -> Outcome:
    """The drill's verdict and the lines it prints."""
    result, fault, ledger, letters = seen.result, seen.fault, seen.ledger, seen.letters
    ready_at, replayed, wrong = seen.ready_at, seen.replayed, seen.wrong
    drained = seen.recovery.after
    load_end = result.ended_at
    outcome = Outcome(name, fault, ledger=ledger, drained_after=drained)
    outcome.ready_after = None if ready_at is None else ready_at - fault.struck_at
    problems = outcome.problems
    problems += fault.problems + ledger.problems + seen.evidence_problems
    if name == "intake-commit" and not result.replayed:
        problems.append("no cut request was answered by its retry as a replay: nothing was cut")
    if ready_at is None:
        problems.append("a service did not become ready within 120 s of the fault")
    if drained is None:
        problems.append("the backlog did not drain within 180 s")
    if result.refused:
        problems.append(f"{len(result.refused)} requests refused, e.g. {result.refused[:2]}")
    if result.unanswered:
        problems.append(f"{len(result.unanswered)} requests never answered")
    if wrong:
        problems.append(f"{len(wrong)} replays answered otherwise, e.g. {wrong[:2]}")
    valid_letters = [(t, k) for t, k, _ in letters if not k.startswith(POISON_KEY)]
    if valid_letters:
        problems.append(f"{len(valid_letters)} dead letters of valid events: {valid_letters[:3]}")
    poison_line = ""
    if fault.poison_ids:
        poison_line = _check_poison(letters, problems)

    def after(value: float | None) -> str:
        return "never" if value is None else f"+{value:.1f} s after the fault"

    outcome.lines = [
        f"== drill {name}: {drill.title}",
        f"   load: {result.sent} complaints offered at {args.rate:g}/s over {args.connections} "
        f"connections for {args.seconds:g} s; {result.attempts} attempts, "
        f"{len(result.retried)} requests retried with their Idempotency-Key",
        f"   killed: {fault.description}",
        f"   recovery: every /readyz ready {after(outcome.ready_after)}; backlog drained "
        f"(outboxes sent, consumer lag 0, every case, SLA record and read-model row there) "
        f"{after(drained)} (load ended +{load_end - fault.struck_at:.1f} s)",
        f"   drain: {seen.recovery.line()}",
        f"   ledger: {ledger.line()}; {replayed} requests sent again with their key: "
        f"{replayed - len(wrong)} answered 200 with the same id",
        f"   dead letters of valid events: {len(valid_letters)} on the DLQ topics, "
        f"{sum(1 for p in ledger.problems if 'dead-lettered' in p)} schemas with some in "
        "their inbox",
        *seen.evidence,
    ]
    if result.replayed:
        outcome.lines.append(
            f"   cut: {len(result.replayed)} requests lost their answer after the commit; the "
            "retry with the same key was answered 200 with the same id"
        )
    if poison_line:
        outcome.lines.append(poison_line)
    verdict = "PASS" if not problems else "FAIL" + "".join(f"\n     - {p}" for p in problems)
    outcome.lines.append(f"   result: {verdict}")
    return outcome


def _check_poison(letters: list[tuple[str, bytes, dict[str, bytes]]], problems: list[str]) -> str:
    """Each consumer of a poisoned topic dead-lettered each malformed record of it; each
    contract-violating envelope was dead-lettered by the consumers that handle its type (at
    least one; the others ignore the type, and the ledger checks no consumer applied it)."""
    seen: dict[tuple[str, bytes], set[str]] = {}
    for topic, key, headers in letters:
        if key.startswith(POISON_KEY):
            consumer = headers.get("dlq.consumer", b"").decode()
            seen.setdefault((topic, key), set()).add(consumer)
    malformed = contract = expected_malformed = expected_contract = 0
    for topic in POISONED:
        spec = TOPICS_BY_NAME[topic]
        consumers = {f"tousu-{c}" for c in spec.consumers}
        for partition in range(spec.partitions):
            key = POISON_KEY + f"malformed-{topic}-{partition}".encode()
            by = seen.get((dlq_topic(topic), key), set())
            expected_malformed += len(consumers)
            malformed += len(by & consumers)
            for consumer in sorted(consumers - by):
                problems.append(f"{consumer} did not dead-letter {key.decode()}")
            key = POISON_KEY + f"contract-{topic}-{partition}".encode()
            expected_contract += 1
            if seen.get((dlq_topic(topic), key)):
                contract += 1
            else:
                problems.append(f"no consumer dead-lettered {key.decode()}")
    return (
        f"   poison on {', '.join(POISONED)}: {malformed} of {expected_malformed} malformed "
        f"records dead-lettered by every consumer of their topic; {contract} of "
        f"{expected_contract} contract violations dead-lettered by the consumers of their "
        "type and applied by none; the partitions kept flowing (ledger above)"
    )


async def amain(args: argparse.Namespace) -> int:
    stack = Stack()
    started = time.monotonic()
    print(
        f"drills: setting up the drill stack under {DATA_DIR} (Postgres 127.0.0.1:"
        f"{stack.env['PG_PORT']}, Kafka 127.0.0.1:{stack.env['KAFKA_PORT']}, services "
        f"{min(HTTP_PORTS.values())}-{max(HTTP_PORTS.values())})",
        flush=True,
    )
    await asyncio.to_thread(stack.set_up)
    print(f"drills: stack up in {time.monotonic() - started:.0f} s", flush=True)
    outcomes = []
    try:
        for name in args.drills:
            outcome = await run_drill(stack, name, args)
            outcomes.append(outcome)
            print("\n".join(outcome.lines), flush=True)
    finally:
        if not args.keep:
            await asyncio.to_thread(stack.tear_down)
    print("\nsummary:")
    print(
        f"  {'drill':<13} {'ready after':>11} {'drained after':>13} {'acknowledged':>12} "
        f"{'present':>8} {'lost':>5} {'doubled':>7}  result"
    )
    for o in outcomes:
        ledger = o.ledger or Ledger()
        ready = "never" if o.ready_after is None else f"{o.ready_after:.1f} s"
        drained = "never" if o.drained_after is None else f"{o.drained_after:.1f} s"
        print(
            f"  {o.name:<13} {ready:>11} {drained:>13} {ledger.acknowledged:>12} "
            f"{ledger.present:>8} {ledger.lost:>5} {ledger.doubled:>7}  "
            f"{'PASS' if not o.problems else 'FAIL'}"
        )
    print(f"drills: {time.monotonic() - started:.0f} s in all; logs in {DATA_DIR / 'logs'}")
    return 1 if any(o.problems for o in outcomes) else 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m drills")
    parser.add_argument("drills", nargs="*", help=f"some of {', '.join(DRILLS)} (default: all)")
    parser.add_argument("--rate", type=float, default=20.0, help="complaints per second")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0, help="load per drill")
    parser.add_argument("--fault-at", type=float, default=8.0, help="seconds into the load")
    parser.add_argument("--keep", action="store_true", help="leave the drill stack running")
    args = parser.parse_args()
    unknown = [name for name in args.drills if name not in DRILLS]
    if unknown:
        parser.error(f"unknown drill {unknown}; the drills are {', '.join(DRILLS)}")
    args.drills = args.drills or list(DRILLS)
    # Everything this process and its children reach is the drill stack's (make exports the
    # shared infrastructure's ports and password file).
    os.environ.clear()
    os.environ.update(drill_env())
    sys.exit(asyncio.run(amain(args)))


if __name__ == "__main__":
    main()

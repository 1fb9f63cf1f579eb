"""What each drill breaks, and how it tells that the breaking happened.

A fault is an async function of the stack and the load's start (monotonic) that strikes and
returns a :class:`Fault`: what it did, when, and optionally a check to run once the system is
quiescent again (evidence that the fault did what it claims, e.g. that a redelivery happened
and was absorbed).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaProducer
from tousu_shared.contracts import Envelope
from tousu_shared.faults import FaultPoint
from tousu_shared.kafka import admin_connection

from drills.stack import FAULT_DIR, PG_PORT, SERVICES, Stack

POISON_KEY = b"drill-poison-"
# Every topic a service consumes, with a type some of its consumers handle (and so decode
# and check against the contract).
POISONED = {
    "complaint.events": "ComplaintClassified",
    "case.events": "CaseRouted",
    "sla.events": "SlaBreached",
    "feedback.events": "CustomerConfirmed",
    "platform.credentials": "CredentialIssued",
    "platform.departments": "DepartmentDeclared",
}

# After the drain, given the acknowledged complaints: (lines to print, problems). Evidence that
# the fault did what it claims.
Evidence = Callable[[Stack, list[uuid.UUID]], Awaitable[tuple[list[str], list[str]]]]


@dataclass
class Fault:
    """What a drill broke: when it struck and when the breaking was over (a restart issued)."""

    description: str
    struck_at: float
    over_at: float
    poison_ids: set[uuid.UUID] = field(default_factory=set)
    evidence: Evidence | None = None
    problems: list[str] = field(default_factory=list)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


async def _gone(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        await asyncio.sleep(0.02)
    return False


async def _restart(stack: Stack, program: str, old_pid: int, since: float) -> tuple[str, bool]:
    """Wait (60 s at most) for supervisord to start ``program`` again; says how it went."""
    while time.monotonic() - since < 60:
        new_pid = await asyncio.to_thread(stack.service_pid, program)
        if new_pid and new_pid != old_pid:
            after = time.monotonic() - since
            return f"supervisord started it again as pid {new_pid} after {after:.1f} s", True
        await asyncio.sleep(0.2)
    return "supervisord did NOT restart it within 60 s", False


async def kill_routing(stack: Stack, start: float) -> Fault:
    """kill -9 the routing process (API, consumer and relay); supervisord must restart it."""
    pid = await asyncio.to_thread(stack.service_pid, "routing")
    struck = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    await _gone(pid)
    how, restarted = await _restart(stack, "routing", pid, struck)
    fault = Fault(f"kill -9 routing (pid {pid}) at +{struck - start:.1f} s; {how}", struck, struck)
    if not restarted:
        fault.problems.append(how)
    return fault


async def _kill_and_restart(stack: Stack, start: float, part: str, what: str) -> Fault:
    """kill -9 one part of the drill's infrastructure (its process group); start it again
    5 s later through infra.sh, as an operator would."""
    pid = await asyncio.to_thread(stack.infra_pid, part)
    struck = time.monotonic()
    stack.kill_group(pid)
    await asyncio.sleep(5)
    await asyncio.to_thread(stack.infra, "up")
    over = time.monotonic()
    return Fault(
        f"kill -9 {what} (pid {pid}) at +{struck - start:.1f} s; restarted 5 s later, "
        f"serving again at +{over - start:.1f} s",
        struck,
        over,
    )


async def kill_postgres(stack: Stack, start: float) -> Fault:
    """kill -9 the drill's postmaster and its backends (crash recovery on restart)."""
    return await _kill_and_restart(stack, start, "postgres", "Postgres postmaster and backends")


async def kill_kafka(stack: Stack, start: float) -> Fault:
    """kill -9 the drill's broker (KRaft, single node)."""
    return await _kill_and_restart(stack, start, "kafka", "the Kafka broker")


# ---------------------------------------------------------------- fault points (1, 2, 3)

POINTS: dict[FaultPoint, str] = {
    "after-commit": "after committing a submission, before answering it",
    "after-publish": "after the broker acknowledged its relay's batch, before marking it sent",
    "after-apply": "after its consumer's transaction committed, before the offset commit",
}


async def _strike_point(
    stack: Stack, start: float, service: str, point: FaultPoint, evidence: Evidence | None = None
) -> Fault:
    """Arm ``point`` of ``service`` (tousu_shared.faults): the process kills itself by SIGKILL
    when it next gets there; supervisord must restart it."""
    pid = await asyncio.to_thread(stack.service_pid, service)
    armed = FAULT_DIR / f"{service}.{point}"
    armed.touch()
    armed_at = time.monotonic()
    if not await _gone(pid, timeout=30):
        armed.unlink(missing_ok=True)
        fault = Fault(
            f"{service} never reached its fault point {point} in 30 s", armed_at, armed_at
        )
        fault.problems.append(fault.description)
        return fault
    struck = time.monotonic()
    how, restarted = await _restart(stack, service, pid, struck)
    fault = Fault(
        f"{service} (pid {pid}) died by SIGKILL {POINTS[point]} at +{struck - start:.1f} s "
        f"(armed {struck - armed_at:.2f} s before); {how}",
        struck,
        struck,
        evidence=evidence,
    )
    if not restarted:
        fault.problems.append(how)
    return fault


async def intake_after_commit(stack: Stack, start: float) -> Fault:
    """Drill 1: intake dies between its commit and its answer; the client, cut off, retries
    with the same Idempotency-Key and must be answered with the complaint already made (the
    drill checks that a retry was answered so: LoadResult.replayed)."""
    return await _strike_point(stack, start, "intake", "after-commit")


async def relay_after_publish(stack: Stack, start: float) -> Fault:
    """Drill 2: intake's relay dies after the broker took its batch and before it marked the
    rows sent; restarted, it publishes them again and every consumer must apply each once."""
    before = await stack.consumed("duplicate")

    async def evidence(stack: Stack, _: list[uuid.UUID]) -> tuple[list[str], list[str]]:
        after = await stack.consumed("duplicate")
        # Intake itself restarted (its counters began again); the others kept counting.
        skipped = {s: after[s] - before.get(s, 0) for s in SERVICES if s != "intake"}
        total = sum(skipped.values())
        line = (
            f"   redelivered: {total:.0f} events published twice were skipped as already "
            f"applied ({', '.join(f'{s} {n:.0f}' for s, n in skipped.items() if n)})"
        )
        return [line], [] if total else ["no event was published twice: the fault proved nothing"]

    return await _strike_point(stack, start, "intake", "after-publish", evidence)


async def consumer_after_apply(stack: Stack, start: float) -> Fault:
    """Drill 3: routing's consumer dies after its transaction and before its offset commit;
    restarted, it reads those events again and its inbox must turn them into no-ops."""

    async def evidence(stack: Stack, _: list[uuid.UUID]) -> tuple[list[str], list[str]]:
        skipped = (await stack.consumed("duplicate"))["routing"]
        line = (
            f"   redelivered: after its restart routing read {skipped:.0f} events again that it "
            "had applied, and skipped them as already applied"
        )
        return [line], [] if skipped else ["routing read no event twice: the fault proved nothing"]

    return await _strike_point(stack, start, "routing", "after-apply", evidence)


# ---------------------------------------------------------------- poison (9)


async def poison(stack: Stack, start: float) -> Fault:
    """On every partition of every event topic: one record that is not JSON and one
    CloudEvents envelope whose data violates its event's contract."""
    producer = AIOKafkaProducer(**admin_connection(stack.env["TOUSU_KAFKA_BOOTSTRAP"]))
    await producer.start()
    ids: set[uuid.UUID] = set()
    struck = time.monotonic()
    try:
        for topic, event_type in POISONED.items():
            for partition in sorted(await producer.partitions_for(topic)):
                await producer.send_and_wait(
                    topic,
                    b"\xff\xfe not an event {",
                    key=POISON_KEY + f"malformed-{topic}-{partition}".encode(),
                    partition=partition,
                )
                envelope = Envelope(
                    source="drills",
                    type=event_type,
                    subject=str(uuid.uuid4()),
                    schema_version=1,
                    correlation_id="drill-poison",
                    data={"complaint_id": "not-a-uuid", "unexpected": True},
                )
                ids.add(envelope.id)
                await producer.send_and_wait(
                    topic,
                    envelope.to_bytes(),
                    key=POISON_KEY + f"contract-{topic}-{partition}".encode(),
                    partition=partition,
                )
    finally:
        await producer.stop()
    kinds = ", ".join(f"{event_type} on {topic}" for topic, event_type in POISONED.items())
    return Fault(
        f"at +{struck - start:.1f} s: a malformed record and a contract-violating {kinds}, "
        "on every partition",
        struck,
        struck,
        ids,
    )


# ---------------------------------------------------------------- rebalance storm (6)


async def rebalance_storm(stack: Stack, start: float, seconds: float = 20) -> Fault:
    """Drill 6: a second instance of every service started and stopped again and again, so
    every consumer group rebalances every few seconds; every other stop is a kill -9."""
    struck = time.monotonic()

    async def storm(service: str) -> int:
        group = f"{service}-2"
        cycles = 0
        while time.monotonic() - struck < seconds:
            await asyncio.to_thread(stack.supervisorctl, "start", f"{group}:*")
            await asyncio.sleep(random.uniform(1.0, 3.0))
            if cycles % 2:
                for pid in (await asyncio.to_thread(stack.group_pids, group)).values():
                    os.kill(pid, signal.SIGKILL)
                    await _gone(pid)
            await asyncio.to_thread(stack.supervisorctl, "stop", f"{group}:*")
            cycles += 1
        return cycles

    # Each service's second instance comes and goes on its own rhythm, so the groups'
    # rebalances overlap with each other and with the main instances' work.
    cycles = await asyncio.gather(*(storm(service) for service in SERVICES))
    over = time.monotonic()
    return Fault(
        f"from +{struck - start:.1f} s to +{over - start:.1f} s: a second instance of each "
        f"service started and stopped {min(cycles)}-{max(cycles)} times ({sum(cycles)} in all, "
        "every other stop a kill -9), each start and stop a rebalance of its consumer group",
        struck,
        over,
    )


# ---------------------------------------------------------------- two instances (11)


async def first_instances_killed(stack: Stack, start: float) -> Fault:
    """Drill 11 (the stack runs two instances of every service): kill -9 the first instance
    of every service at once; the second ones carry on (the load fails over to the second
    intake) while supervisord brings the first ones back."""
    pids = {s: await asyncio.to_thread(stack.service_pid, s) for s in SERVICES}
    struck = time.monotonic()
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    fault = Fault("", struck, struck)
    restarts = []
    for service, pid in pids.items():
        await _gone(pid)
        how, restarted = await _restart(stack, service, pid, struck)
        restarts.append(f"{service}: {how.removeprefix('supervisord ')}")
        if not restarted:
            fault.problems.append(f"{service}: {how}")
    fault.description = (
        f"two instances of every service (the second one process per role: API on a second "
        f"port, consumer in the same group, relay, each worker); at +{struck - start:.1f} s "
        f"kill -9 of the first instance of all {len(SERVICES)} at once; " + "; ".join(restarts)
    )
    return fault


# ---------------------------------------------------------------- xmin horizon (7)


async def pin_xmin(stack: Stack, start: float, seconds: float = 20) -> Fault:
    """Drill 7: a transaction holds one snapshot for ``seconds`` while the outboxes grow, so
    vacuum can remove no row deleted or updated since (a relay marking rows sent updates
    them); reports what the relays published meanwhile and the dead rows left behind."""
    conn = await asyncpg.connect(
        host="127.0.0.1", port=PG_PORT, user="intake", password="intake", database="tousu"
    )
    try:
        before = await _outbox_stats(conn)
        transaction = conn.transaction(isolation="repeatable_read", readonly=True)
        await transaction.start()
        # The snapshot is taken by the first query and held until the transaction ends.
        await conn.fetchval("SELECT count(*) FROM intake.outbox")
        struck = time.monotonic()
        sampler = await asyncpg.connect(
            host="127.0.0.1", port=PG_PORT, user="intake", password="intake", database="tousu"
        )
        try:
            peak_unsent = 0
            while time.monotonic() - struck < seconds:
                peak_unsent = max(peak_unsent, await _intake_unsent(sampler))
                await asyncio.sleep(0.5)
            during = await _outbox_stats(sampler)
        finally:
            await sampler.close()
        await transaction.rollback()
        over = time.monotonic()
    finally:
        await conn.close()
    held = over - struck
    published = during["sent"] - before["sent"]
    return Fault(
        f"at +{struck - start:.1f} s a repeatable-read transaction held its snapshot (and the "
        f"xmin horizon) for {held:.1f} s: intake's relay published {published} outbox rows "
        f"meanwhile ({published / held:.1f}/s), at most {peak_unsent} waited unsent; intake's "
        f"outbox had {during['dead']} dead rows vacuum could not remove (before: "
        f"{before['dead']})",
        struck,
        over,
    )


async def _outbox_stats(conn: asyncpg.Connection) -> dict[str, int]:
    sent = await conn.fetchval("SELECT count(*) FROM intake.outbox WHERE sent_at IS NOT NULL")
    dead = await conn.fetchval(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = 'intake' "
        "AND relname = 'outbox'"
    )
    return {"sent": int(sent), "dead": int(dead or 0)}


async def _intake_unsent(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM intake.outbox WHERE sent_at IS NULL"))


# ---------------------------------------------------------------- backup and restore (12)


@asynccontextmanager
async def archiving(stack: Stack) -> AsyncIterator[None]:
    """Continuous archiving on, and a first (full) backup, before the load starts."""
    await asyncio.to_thread(stack.infra, "backup")
    yield


async def restore_latest(stack: Stack, start: float) -> Fault:
    """Drill 12: an incremental backup under load, then the database restored from the
    repository into an emptied data directory and replayed to its last commit (archived WAL,
    then what was still in pg_wal), while the load goes on."""
    backed_up = time.monotonic()
    out = await asyncio.to_thread(stack.infra, "backup")
    label = re.findall(r"(?:full|incr) backup: (\S+)", out)
    await asyncio.sleep(3)
    struck = time.monotonic()
    out = await asyncio.to_thread(stack.infra, "restore")
    over = time.monotonic()
    timeline = re.search(r"timeline (\d+)", out)
    fault = Fault(
        f"pgBackRest backup {label[-1] if label else '?'} at +{backed_up - start:.1f} s "
        f"({struck - backed_up - 3:.1f} s); at +{struck - start:.1f} s Postgres stopped, its "
        f"data directory emptied and restored from the repository to the last commit, serving "
        f"again at +{over - start:.1f} s on timeline {timeline.group(1) if timeline else '?'}",
        struck,
        over,
    )
    if not label or not timeline or int(timeline.group(1)) < 2:
        fault.problems.append(f"the backup or the restore did not happen as said: {out[-500:]}")
    return fault

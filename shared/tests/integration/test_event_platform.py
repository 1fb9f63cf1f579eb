"""The outbox, relay, inbox and dead-letter path against the real broker and database."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from contract_events import customer_message_added as message
from fastapi import FastAPI
from sqlalchemy import text
from tousu_analytics.settings import AnalyticsSettings
from tousu_shared.auth import Principal
from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts.complaint import CustomerMessageAdded
from tousu_shared.dlq import replay_dead_letters
from tousu_shared.inbox import EventConsumer, PermanentFailure
from tousu_shared.kafka import ensure_topics
from tousu_shared.outbox import OutboxRelay, lane_of
from tousu_shared.runtime import Runtime, Service
from tousu_shared.testing import (
    KAFKA_ADMIN,
    delete_outbox_rows,
    envelopes,
    read_topic,
    test_settings,
    truncate_schema,
    wait_for,
)
from tousu_shared.uow import SqlUnitOfWork

pytestmark = pytest.mark.integration

EFFECTS = "analytics.platform_test_effect"


@contextlib.asynccontextmanager
async def runtime_with_effects(**overrides):
    """A runtime on an empty analytics schema plus a scratch table handlers record into."""
    runtime = Runtime.build(test_settings(AnalyticsSettings, **overrides))
    await truncate_schema(runtime.engine, "analytics")
    async with runtime.engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {EFFECTS} (event_id uuid, complaint_id uuid, seq int)"
            )
        )
        await conn.execute(text(f"TRUNCATE {EFFECTS}"))
    yield runtime
    async with runtime.engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {EFFECTS}"))
    await runtime.close()


@pytest.fixture
async def runtime(kafka_topics):
    # One event per transaction: these tests count attempts per event (``batched`` below
    # covers shared transactions).
    async with runtime_with_effects(consumer_transaction_batch=1) as runtime:
        yield runtime


async def enqueued(runtime: Runtime, *events: Event) -> list[Envelope]:
    """Commit the events to the outbox in one transaction, as a service's use case does."""
    async with runtime.session_factory() as session, session.begin():
        return [await runtime.outbox.enqueue(session, event) for event in events]


async def record_effect(uow, event, envelope: Envelope) -> None:
    await uow.session.execute(
        text(f"INSERT INTO {EFFECTS} VALUES (:e, :c, :s)"),
        {"e": envelope.id, "c": event.complaint_id, "s": int(event.message_id)},
    )


def consumer_for(runtime: Runtime, handler=record_effect, *, prepare=None) -> EventConsumer:
    return EventConsumer(
        runtime.settings,
        runtime.uow,
        {"CustomerMessageAdded": handler},
        topics=["complaint.events"],
        consumer_factory=runtime.consumer,
        producer_factory=runtime.producer,
        prepare=prepare,
    )


@contextlib.asynccontextmanager
async def running(*workers):
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)) for worker in workers]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def effects(runtime: Runtime, *complaints: uuid.UUID) -> list[tuple]:
    """Effects recorded for these complaints (the topic also holds other tests' events)."""
    async with runtime.engine.connect() as conn:
        return list(
            await conn.execute(
                text(
                    f"SELECT event_id, complaint_id, seq FROM {EFFECTS} "
                    "WHERE complaint_id = ANY(:ids)"
                ),
                {"ids": list(complaints)},
            )
        )


def topic(runtime: Runtime, name: str = "complaint.events") -> str:
    return runtime.settings.topic(name)


async def test_unit_of_work_commits_state_events_and_audit_together_or_nothing(runtime):
    kept, dropped = uuid.uuid4(), uuid.uuid4()
    who = Principal(key_id="k", name="tester", role="admin", department=None)

    async def change(uow: SqlUnitOfWork, complaint: uuid.UUID) -> None:
        await uow.session.execute(
            text(f"INSERT INTO {EFFECTS} VALUES (gen_random_uuid(), :c, 1)"),
            {"c": complaint},
        )
        uow.publish(message(complaint, 1))
        uow.audit(who, "test.change", "complaint", complaint_id=complaint)

    with pytest.raises(RuntimeError):
        async with runtime.uow() as uow:
            await change(uow, dropped)
            raise RuntimeError("the use case failed half-way")
    async with runtime.uow() as uow:
        await change(uow, kept)
        await uow.commit()

    async with runtime.engine.connect() as conn:
        for table in (EFFECTS, "analytics.audit_log"):
            rows = (await conn.execute(text(f"SELECT complaint_id FROM {table}"))).scalars().all()
            assert rows == [kept], table
    relay = OutboxRelay(runtime.settings, runtime.engine, runtime.producer)
    async with running(relay):
        records = await read_topic(
            topic(runtime),
            until=lambda rs: any(r.key == str(kept).encode() for r in rs),
        )
        # Give a wrongly published rolled-back event time to show up as well.
        await asyncio.sleep(0.5)
        records = await read_topic(topic(runtime), until=lambda rs: len(rs) >= len(records))
    subjects = {e.subject for e in envelopes(records)}
    assert str(kept) in subjects
    assert str(dropped) not in subjects


async def test_crash_between_publish_and_mark_sent_republishes_and_applies_once(runtime):
    complaint = uuid.uuid4()
    [envelope] = await enqueued(runtime, message(complaint, 7))

    async def crash(_rows):
        raise RuntimeError("relay killed after publishing")

    crashing = OutboxRelay(runtime.settings, runtime.engine, runtime.producer, after_publish=crash)
    with pytest.raises(RuntimeError):
        await crashing.relay_once()
    await crashing.close()
    # The row is still unsent, so a fresh relay publishes it again.
    relay = OutboxRelay(runtime.settings, runtime.engine, runtime.producer)
    assert await relay.relay_once() == 1
    await relay.close()
    records = await read_topic(
        topic(runtime),
        until=lambda rs: sum(r.key == str(complaint).encode() for r in rs) >= 2,
    )
    assert [e.id for e in envelopes(records) if e.subject == str(complaint)] == [envelope.id] * 2

    async with running(consumer_for(runtime)):
        rows = await wait_for(lambda: effects(runtime, complaint))
        await asyncio.sleep(0.5)
    assert len(await effects(runtime, complaint)) == 1 == len(rows)


async def test_same_event_delivered_twice_is_applied_once(runtime):
    complaint = uuid.uuid4()
    await enqueued(runtime, message(complaint, 1))
    relay = OutboxRelay(runtime.settings, runtime.engine, runtime.producer)
    await relay.relay_once()
    await relay.close()
    mine = lambda rs: [r for r in rs if r.key == str(complaint).encode()]  # noqa: E731
    [record] = mine(await read_topic(topic(runtime), until=mine))

    consumer = consumer_for(runtime)
    outcomes = []
    async with running(consumer):  # the running consumer gives process() its DLQ producer
        await wait_for(lambda: effects(runtime, complaint))
        outcomes.append(await consumer.process(record))
        outcomes.append(await consumer.process(record))
    assert outcomes == ["duplicate", "duplicate"]
    assert len(await effects(runtime, complaint)) == 1


async def test_poison_event_goes_to_dlq_with_reason_and_next_event_is_processed(runtime):
    poison, healthy = uuid.uuid4(), uuid.uuid4()
    attempts = 0

    async def fragile(uow, event, envelope):
        nonlocal attempts
        if event.complaint_id == poison:
            attempts += 1
            raise ValueError("cannot apply this event")
        await record_effect(uow, event, envelope)

    await enqueued(runtime, message(poison, 1), message(healthy, 2))
    # A malformed record as well: it is dead-lettered at once.
    producer = runtime.producer()
    await producer.start()
    await producer.send_and_wait(topic(runtime), b"{not json", key=b"garbage")
    await producer.stop()

    relay = OutboxRelay(runtime.settings, runtime.engine, runtime.producer)
    async with running(relay, consumer_for(runtime, fragile)):
        rows = await wait_for(lambda: effects(runtime, poison, healthy))
        dead = await read_topic(
            topic(runtime, "complaint.events.dlq"),
            until=lambda rs: {str(poison).encode(), b"garbage"} <= {r.key for r in rs},
        )
    assert [row.complaint_id for row in rows] == [healthy]
    assert attempts == runtime.settings.consumer_max_attempts
    by_key = {r.key: dict(r.headers) for r in dead}
    poisoned = by_key[str(poison).encode()]
    assert b"cannot apply this event" in poisoned["dlq.reason"]
    assert poisoned["dlq.attempts"] == str(runtime.settings.consumer_max_attempts).encode()
    assert poisoned["content-type"] == b"application/cloudevents+json"  # original headers kept
    assert by_key[b"garbage"]["dlq.reason"].startswith(b"malformed")


async def test_permanent_failure_skips_retries(runtime):
    complaint = uuid.uuid4()
    calls = 0

    async def refuse(uow, event, envelope):
        nonlocal calls
        calls += event.complaint_id == complaint
        raise PermanentFailure("business rule says no")

    await enqueued(runtime, message(complaint, 1))
    relay = OutboxRelay(runtime.settings, runtime.engine, runtime.producer)
    async with running(relay, consumer_for(runtime, refuse)):
        records = await read_topic(
            topic(runtime, "complaint.events.dlq"),
            until=lambda rs: any(r.key == str(complaint).encode() for r in rs),
        )
    [dead] = [r for r in records if r.key == str(complaint).encode()]
    assert calls == 1
    assert dict(dead.headers)["dlq.attempts"] == b"1"


async def test_per_complaint_order_holds_across_partitions_and_two_relays(runtime):
    complaints = [uuid.uuid4() for _ in range(30)]
    per_complaint = 15

    async def write(complaint):
        for seq in range(per_complaint):
            await enqueued(runtime, message(complaint, seq))

    relays = [
        OutboxRelay(
            runtime.settings.model_copy(update={"relay_batch_size": 7, "relay_lanes_per_claim": 3}),
            runtime.engine,
            runtime.producer,
        )
        for _ in range(2)
    ]
    async with running(*relays):
        await asyncio.gather(*(write(c) for c in complaints))
        keys = {str(c).encode() for c in complaints}
        records = await read_topic(
            topic(runtime),
            until=lambda rs: sum(r.key in keys for r in rs) >= len(complaints) * per_complaint,
            timeout=60,
        )
    records = [r for r in records if r.key in keys]
    assert len({r.partition for r in records}) == 3
    seen: dict[str, list[int]] = {}
    for envelope in envelopes(records):
        seen.setdefault(envelope.subject, []).append(int(envelope.data["message_id"]))
    assert {uuid.UUID(k) for k in seen} == set(complaints)
    for sequence in seen.values():
        assert sequence == list(range(per_complaint))


async def test_an_unpublishable_row_holds_back_only_its_own_lane(runtime):
    stuck = uuid.uuid4()
    flowing = next(c for c in iter(uuid.uuid4, None) if lane_of(str(c)) != lane_of(str(stuck)))
    missing_topic = f"missing-{uuid.uuid4().hex[:8]}"
    async with runtime.session_factory() as session, session.begin():
        await runtime.outbox.enqueue(session, message(stuck, 1), topic=missing_topic)
        await runtime.outbox.enqueue(session, message(stuck, 2))  # same key: must wait behind
        await runtime.outbox.enqueue(session, message(flowing, 1))
    relay = OutboxRelay(
        runtime.settings.model_copy(update={"relay_lanes_per_claim": 16}),
        runtime.engine,
        runtime.producer,
    )
    try:
        assert await relay.relay_once() == 1
        assert set(relay.blocked_lanes) == {lane_of(str(stuck))}
        assert "does not exist" in relay.blocked_lanes[lane_of(str(stuck))]
        # Once the topic exists, the held-back lane flows, in order, after its backoff.
        await ensure_topics(KAFKA_ADMIN, [(runtime.settings.topic(missing_topic), 1)])
        await asyncio.sleep(0.2)
        assert await relay.relay_once() == 2
    finally:
        await relay.close()
    records = await read_topic(
        topic(runtime),
        until=lambda rs: {str(stuck).encode(), str(flowing).encode()} <= {r.key for r in rs},
    )
    mine = [r for r in records if r.key == str(stuck).encode()]
    assert [e.data["message_id"] for e in envelopes(mine)] == ["2"]


async def test_the_relay_claims_the_lanes_with_the_oldest_unsent_rows_first(runtime):
    # A relay that claims fewer lanes than hold rows takes the longest-waiting first, so a
    # high-numbered lane is not left behind while low-numbered ones keep getting rows.
    older = next(c for c in iter(uuid.uuid4, None) if lane_of(str(c)) == 15)
    newer = next(c for c in iter(uuid.uuid4, None) if lane_of(str(c)) == 0)
    for complaint in (older, newer):  # two commits: the older row has the lower id
        await enqueued(runtime, message(complaint, 1))
    sent: list[str] = []

    async def note(rows) -> None:
        sent.extend(row.key for row in rows)

    relay = OutboxRelay(
        runtime.settings.model_copy(update={"relay_lanes_per_claim": 1}),
        runtime.engine,
        runtime.producer,
        after_publish=note,
    )
    try:
        assert await relay.relay_once() == 1
        assert await relay.relay_once() == 1
    finally:
        await relay.close()
    assert sent == [str(older), str(newer)]


def keys_on_two_partitions() -> tuple[uuid.UUID, uuid.UUID]:
    """Two complaint ids whose events land on different partitions of a 3-partition topic."""
    partitioner, partitions = DefaultPartitioner(), [0, 1, 2]
    first = uuid.uuid4()
    home = partitioner(str(first).encode(), partitions, partitions)
    while True:
        other = uuid.uuid4()
        if partitioner(str(other).encode(), partitions, partitions) != home:
            return first, other


async def test_transient_failure_is_retried_past_the_attempt_limit_and_stalls_only_its_partition(
    runtime,
):
    stuck, other = keys_on_two_partitions()
    outage = asyncio.Event()  # set = the "database" is back
    failures = 0

    async def needs_database(uow, event, envelope):
        nonlocal failures
        if event.complaint_id == stuck and not outage.is_set():
            failures += 1
            raise ConnectionRefusedError("database unavailable")
        await record_effect(uow, event, envelope)

    await enqueued(runtime, message(stuck, 1), message(other, 1))
    relay = OutboxRelay(runtime.settings, runtime.engine, runtime.producer)
    consumer = consumer_for(runtime, needs_database)
    async with running(relay, consumer):
        # The other partition is applied while the first one waits.
        assert [row.complaint_id for row in await wait_for(lambda: effects(runtime, other))] == [
            other
        ]
        await wait_for(lambda: failures > 2 * runtime.settings.consumer_max_attempts)
        assert any(
            reason.endswith("ConnectionRefusedError") for reason in consumer.stalled.values()
        )
        outage.set()
        rows = await wait_for(lambda: effects(runtime, stuck))
        await wait_for(lambda: not consumer.stalled)
    assert [row.complaint_id for row in rows] == [stuck]
    async with runtime.engine.connect() as conn:
        outcomes = (
            (
                await conn.execute(
                    text("SELECT outcome FROM analytics.inbox WHERE consumer = :c"),
                    {"c": consumer.name},
                )
            )
            .scalars()
            .all()
        )
    assert "dead_lettered" not in outcomes


async def test_dead_letters_are_replayed_once_after_the_cause_is_fixed(runtime):
    complaint = uuid.uuid4()
    fixed = False

    async def buggy(uow, event, envelope):
        if event.complaint_id == complaint and not fixed:
            raise ValueError("a defect this event triggers")
        await record_effect(uow, event, envelope)

    service = Service(
        name="analytics",
        runtime=runtime,
        app=FastAPI(),
        uow=runtime.uow,
        handlers={"CustomerMessageAdded": buggy},
        consumed_topics=["complaint.events"],
        migrations_dir=Path("."),
    )
    await enqueued(runtime, message(complaint, 1))
    relay = OutboxRelay(runtime.settings, runtime.engine, runtime.producer)
    async with running(relay, consumer_for(runtime, buggy)):
        await read_topic(
            topic(runtime, "complaint.events.dlq"),
            until=lambda rs: any(r.key == str(complaint).encode() for r in rs),
        )
    fixed = True
    first = await replay_dead_letters(service)
    second = await replay_dead_letters(service)
    assert len(first.replayed) >= 1 and second.replayed == []
    async with running(consumer_for(runtime, buggy)):
        rows = await wait_for(lambda: effects(runtime, complaint))
        await asyncio.sleep(0.5)  # a second application would show up by now
        rows = await effects(runtime, complaint)
    assert [row.complaint_id for row in rows] == [complaint]


async def test_a_committed_unit_of_work_wakes_a_sleeping_relay_without_polling(kafka_topics):
    # A fallback poll of ten minutes: only the commit's NOTIFY can get the event out in time.
    runtime = Runtime.build(
        test_settings(AnalyticsSettings, relay_fallback_poll_ms=600_000, relay_idle_poll_ms=600_000)
    )
    relay = OutboxRelay(runtime.settings, runtime.engine, runtime.producer)
    complaint = uuid.uuid4()
    try:
        async with running(relay):
            await wait_for(lambda: relay.commits.listening)  # asleep, listening
            async with runtime.uow() as uow:
                uow.publish(message(complaint, 1))
                await uow.commit()
            await read_topic(
                topic(runtime),
                until=lambda rs: any(r.key == str(complaint).encode() for r in rs),
                timeout=15,
            )
    finally:
        await runtime.close()


def sleepy_relay() -> tuple[Runtime, OutboxRelay]:
    """A relay whose fallback and idle polls are ten minutes: within a test, only a signal
    or its own bookkeeping can make it read."""
    runtime = Runtime.build(
        test_settings(AnalyticsSettings, relay_fallback_poll_ms=600_000, relay_idle_poll_ms=600_000)
    )
    return runtime, OutboxRelay(runtime.settings, runtime.engine, runtime.producer)


async def test_one_signal_gets_out_the_rows_of_every_lane(kafka_topics):
    # More lanes hold rows than one claim takes (8 of 16): the relay claims again at once
    # instead of sleeping until the next signal.
    runtime, relay = sleepy_relay()
    complaints: dict[int, uuid.UUID] = {}
    while len(complaints) < 16:
        complaint = uuid.uuid4()
        complaints.setdefault(lane_of(str(complaint)), complaint)
    try:
        async with running(relay):
            await wait_for(lambda: relay.commits.listening)  # asleep, listening
            async with runtime.uow() as uow:
                for complaint in complaints.values():
                    uow.publish(message(complaint, 1))
                await uow.commit()  # one commit, one signal
            wanted = {str(complaint).encode() for complaint in complaints.values()}
            await read_topic(topic(runtime), until=lambda rs: wanted <= {r.key for r in rs})
    finally:
        await runtime.close()


async def test_a_relay_whose_listening_connection_drops_reads_what_it_missed(kafka_topics):
    # The row is committed without a signal, as while nobody listened; the relay's LISTEN
    # connection then drops (a database restart): it listens again and reads at once
    # instead of sleeping out the fallback poll.
    runtime, relay = sleepy_relay()
    complaint = uuid.uuid4()
    try:
        async with running(relay):
            await wait_for(lambda: relay.commits.listening)
            await enqueued(runtime, message(complaint, 1))  # no signal
            listener = relay.commits._raw.get_server_pid()
            async with runtime.engine.connect() as conn:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": listener})
            await read_topic(
                topic(runtime),
                until=lambda rs: any(r.key == str(complaint).encode() for r in rs),
                timeout=15,
            )
            await wait_for(lambda: relay.commits.listening)  # and it listens again
    finally:
        await runtime.close()


@pytest.fixture
async def batched(kafka_topics):
    """A runtime whose consumer applies up to 50 events of a partition per transaction."""
    async with runtime_with_effects(consumer_transaction_batch=50) as runtime:
        yield runtime


class CountingUnitOfWork(SqlUnitOfWork):
    commits = 0

    async def _commit(self) -> None:
        await super()._commit()
        CountingUnitOfWork.commits += 1


async def publish_all(runtime: Runtime, messages: list[CustomerMessageAdded]) -> list:
    """Put the events on the topic before any consumer runs, so it fetches them in batches."""
    async with runtime.session_factory() as session, session.begin():
        await runtime.outbox.enqueue_many(session, [(m, None) for m in messages])
    relay = OutboxRelay(runtime.settings, runtime.engine, runtime.producer)
    wanted = {str(m.complaint_id).encode() for m in messages}
    async with running(relay):
        records = await read_topic(topic(runtime), until=lambda rs: wanted <= {r.key for r in rs})
    return [r for r in records if r.key in wanted]


async def republish(runtime: Runtime, records: list) -> None:
    """A relay republishing after a crash: the same records once more, near the originals."""
    producer = runtime.producer()
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(record.topic, record.value, key=record.key)
    finally:
        await producer.stop()


async def test_a_partitions_batch_commits_in_few_transactions_in_order_and_once(batched):
    complaints = [uuid.uuid4() for _ in range(4)]
    messages = [message(c, seq) for seq in range(1, 26) for c in complaints]
    records = await publish_all(batched, messages)
    await republish(batched, records[:10])
    CountingUnitOfWork.commits = 0
    order: dict[uuid.UUID, list[int]] = {}

    async def in_order(uow, event, envelope):
        order.setdefault(event.complaint_id, []).append(int(event.message_id))
        await record_effect(uow, event, envelope)

    factory = batched.unit_of_work_factory(CountingUnitOfWork)
    consumer = EventConsumer(
        batched.settings,
        factory,
        {"CustomerMessageAdded": in_order},
        topics=["complaint.events"],
        consumer_factory=batched.consumer,
        producer_factory=batched.producer,
    )
    async with running(consumer):
        rows = await wait_for(
            lambda: _all(effects(batched, *complaints), len(messages)),
            timeout=30,
        )
    assert all(order[c] == list(range(1, 26)) for c in complaints), order
    assert len(rows) == len(messages)  # the republished ten were not applied again
    # The topic also holds earlier tests' events, which this consumer applies as well.
    applied = sum(len(seqs) for seqs in order.values())
    assert CountingUnitOfWork.commits < applied / 2


async def test_a_batchs_preparer_sees_its_new_events_first_in_its_unit_of_work(batched):
    complaints = [uuid.uuid4() for _ in range(3)]
    messages = [message(c, seq) for seq in range(1, 11) for c in complaints]
    records = await publish_all(batched, messages)
    await republish(batched, records[:5])  # already in the inbox when they come again
    prepared: list[tuple[uuid.UUID, str]] = []
    handled: list[bool] = []

    async def prepare(uow, events):
        uow.prepared = [(e.complaint_id, e.message_id) for e in events]
        prepared.extend(uow.prepared)

    async def handler(uow, event, envelope):
        # A chunk of one record is applied on its own, without a preparer.
        seen_first = getattr(uow, "prepared", None)
        if seen_first is not None:
            handled.append((event.complaint_id, event.message_id) in seen_first)
        await record_effect(uow, event, envelope)

    async with running(consumer_for(batched, handler, prepare=prepare)):
        await wait_for(lambda: _all(effects(batched, *complaints), len(messages)), timeout=30)
    mine = [item for item in prepared if item[0] in complaints]
    assert handled and all(handled)
    assert len(mine) > 1
    assert len(mine) == len(set(mine)), "a duplicate delivery was prepared again"


async def _all(rows_coroutine, count: int):
    rows = await rows_coroutine
    return rows if len(rows) >= count else None


async def test_a_failing_event_in_a_batch_is_dead_lettered_alone(batched):
    poison, healthy = uuid.uuid4(), uuid.uuid4()

    async def fragile(uow, event, envelope):
        if event.complaint_id == poison:
            raise ValueError("cannot apply this event")
        await record_effect(uow, event, envelope)

    messages = [message(c, seq) for seq in range(1, 6) for c in (healthy, poison)]
    await publish_all(batched, messages)
    async with running(consumer_for(batched, fragile)):
        await read_topic(
            topic(batched, "complaint.events.dlq"),
            until=lambda rs: sum(r.key == str(poison).encode() for r in rs) == 5,
        )
        rows = await wait_for(lambda: _all(effects(batched, healthy), 5))
    assert sorted(row.seq for row in rows) == [1, 2, 3, 4, 5]
    assert not await effects(batched, poison)


async def test_a_partition_busy_with_a_batch_still_receives_its_next_records_at_once(
    kafka_topics,
):
    # The broker holds an empty fetch for 30 s here. Were the busy partition left out of
    # the fetches, its next record would only be asked for once that fetch ended.
    async with runtime_with_effects(consumer_fetch_wait_ms=30000) as runtime:
        complaint = uuid.uuid4()
        first_started, release = asyncio.Event(), asyncio.Event()

        async def slow_first(uow, event, envelope):
            if event.complaint_id == complaint and event.message_id == "1":
                first_started.set()
                await release.wait()
            await record_effect(uow, event, envelope)

        consumer = consumer_for(runtime, slow_first)
        await publish_all(runtime, [message(complaint, 1)])
        async with running(consumer):
            # The first record may wait for the group's first join and one empty 30 s fetch
            # under a loaded machine (it did once in CI at 20 s); the claim under test is
            # the second record's, within 15 s of its batch.
            await asyncio.wait_for(first_started.wait(), timeout=70)
            await publish_all(runtime, [message(complaint, 2)])
            release.set()
            rows = await wait_for(lambda: _all(effects(runtime, complaint), 2), timeout=15)
        assert sorted(seq for _, _, seq in rows) == [1, 2]


async def _committed(group: str) -> dict:
    admin = AIOKafkaAdminClient(**KAFKA_ADMIN)
    await admin.start()
    try:
        return await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()


@pytest.mark.parametrize("interval_ms", [100, 60000])
async def test_applied_offsets_are_committed_together_while_running_and_at_stop(
    kafka_topics, interval_ms
):
    # 100 ms: committed while the consumer runs; a minute: only the commit at stop can
    # have stored them.
    async with runtime_with_effects(consumer_commit_interval_ms=interval_ms) as runtime:
        complaints = keys_on_two_partitions()
        records = await publish_all(runtime, [message(c, 1) for c in complaints])
        wanted = {TopicPartition(r.topic, r.partition): r.offset + 1 for r in records}
        consumer = consumer_for(runtime)

        async def stored() -> bool:
            offsets = await _committed(consumer.name)
            return all(tp in offsets and offsets[tp].offset >= o for tp, o in wanted.items())

        async with running(consumer):
            await wait_for(lambda: _all(effects(runtime, *complaints), 2))
            if interval_ms < 1000:
                await wait_for(stored)
        assert await stored()


async def test_the_outbox_rows_of_a_finished_runs_topics_are_deleted_with_them(runtime):
    # Left behind, an unsent row for a deleted topic would hold back its lane for a stack
    # started on the same database after the tests.
    gone, kept = f"{runtime.settings.topic_namespace}gone-{uuid.uuid4().hex[:6]}.", uuid.uuid4()
    stale = message(uuid.uuid4(), 1)
    async with runtime.session_factory() as session, session.begin():
        await runtime.outbox.enqueue_many(session, [(stale, None), (message(kept, 1), None)])
        await session.execute(
            text("UPDATE analytics.outbox SET topic = :t WHERE message_key = :k"),
            {"t": f"{gone}complaint.events", "k": str(stale.complaint_id)},
        )
    await delete_outbox_rows(gone)
    async with runtime.engine.connect() as conn:
        keys = set((await conn.execute(text("SELECT message_key FROM analytics.outbox"))).scalars())
    assert str(stale.complaint_id) not in keys
    assert str(kept) in keys

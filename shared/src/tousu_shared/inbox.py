"""Idempotent consumer: the inbox row and the handler's effect commit together, offsets after.

A redelivered event finds its inbox row and has no second effect.

Failures, by kind:
- transient (database or broker unavailable, serialization failure, timeout; see
  :mod:`tousu_shared.transient`): retried without limit, with backoff. Only the partition
  concerned waits (what arrives for it meanwhile waits behind, and it is paused once a
  fetch's worth is waiting); the others go on. The
  stall shows in ``/readyz`` and in the ``tousu_consumer_stalled_partitions`` gauge, and
  it never ends the worker nor sends the event to the dead-letter topic;
- a malformed event or a ``PermanentFailure``: dead-lettered at once;
- any other error (a defect the event triggers): retried the configured number of times,
  then dead-lettered with the reason in its headers, so one bad event does not stall its
  partition for ever. ``python -m tousu_shared.cli dlq-replay`` puts dead letters back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, IllegalStateError
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import text

from tousu_shared.contracts import Envelope, Event, decode
from tousu_shared.errors import PermanentFailure
from tousu_shared.faults import strike
from tousu_shared.logging import describe_error, log_context
from tousu_shared.settings import ServiceSettings
from tousu_shared.topics import dlq_topic
from tousu_shared.transient import is_transient
from tousu_shared.uow import SqlUnitOfWork

log = logging.getLogger(__name__)
T = TypeVar("T")

CONSUMED = Counter(
    "tousu_events_consumed_total",
    "Events consumed, by outcome",
    ["service", "type", "outcome"],
)
HANDLE_SECONDS = Histogram("tousu_event_handle_seconds", "Handler time per event", ["service"])
TRANSIENT_RETRIES = Counter(
    "tousu_consumer_transient_retries_total",
    "Attempts that failed for a transient reason and will be retried",
    ["service"],
)
# Where a service's processes share their metrics (tousu_shared.metrics): the sum over its
# processes still running.
STALLED = Gauge(
    "tousu_consumer_stalled_partitions",
    "Partitions waiting for a transient failure to pass",
    ["service"],
    multiprocess_mode="livesum",
)
# getmany's timeout once the consumer has its partitions (see EventConsumer.run).
_IDLE_FETCH_MS = 30_000

# A handler changes state through the unit of work it is given and never commits: the
# consumer commits the inbox row, the effect and the events it published together.
Handler = Callable[[Any, Event, Envelope], Awaitable[None]]
# Optional: called with a batch's new events (in order) in its unit of work before the first
# handler runs, so a service can read or lock what the whole batch needs in one statement.
BatchPreparer = Callable[[Any, Sequence[Event]], Awaitable[None]]
UnitOfWorkFactory = Callable[[], SqlUnitOfWork]


@dataclass(frozen=True)
class DeadLetter:
    """Why an event was dead-lettered."""

    reason: str
    attempts: int


class EventConsumer:
    """Consumes a service's topics and applies each event at most once."""

    def __init__(
        self,
        settings: ServiceSettings,
        uow_factory: UnitOfWorkFactory,
        handlers: Mapping[str, Handler],
        *,
        topics: Iterable[str],
        consumer_factory: Callable[[list[str], str], AIOKafkaConsumer],
        producer_factory: Callable[[], AIOKafkaProducer],
        name: str | None = None,
        prepare: BatchPreparer | None = None,
    ) -> None:
        self._settings = settings
        self._uow_factory = uow_factory
        self._handlers = dict(handlers)
        self._prepare = prepare
        self._topics = [settings.topic(topic) for topic in topics]
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self.name = name or settings.consumer_group
        self._record = text(
            f"INSERT INTO {settings.db_schema}.inbox "
            "(consumer, event_id, event_type, topic, kafka_partition, kafka_offset, outcome) "
            "VALUES (:consumer, :event_id, :event_type, :topic, :partition, :offset, :outcome) "
            "ON CONFLICT DO NOTHING RETURNING 1"
        )
        self._record_many = text(
            f"INSERT INTO {settings.db_schema}.inbox "
            "(consumer, event_id, event_type, topic, kafka_partition, kafka_offset, outcome) "
            "SELECT :consumer, e, t, :topic, :partition, o, 'applied' FROM unnest("
            "CAST(:event_ids AS uuid[]), CAST(:event_types AS text[]), "
            "CAST(:offsets AS bigint[])) AS u(e, t, o) "
            "ON CONFLICT DO NOTHING RETURNING event_id"
        )
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        # One task per partition whose batch is being applied. Records fetched for it
        # meanwhile wait in ``_queued`` (in order) for the next batch; the partition stays in
        # the fetches, so its next records arrive at once instead of after the broker's fetch
        # wait, and it is paused only when ``consumer_batch_size`` records are waiting.
        self._inflight: dict[TopicPartition, asyncio.Task[None]] = {}
        self._queued: dict[TopicPartition, list[ConsumerRecord]] = {}
        # Next offset of each partition whose batches are applied but not yet committed. One
        # OffsetCommit request carries them all, at most once per commit interval: a commit
        # per partition per batch was a third of the broker's CPU under load. Committing late
        # only means that a partition moving to another member re-reads a little more, which
        # the inbox turns into no-ops.
        self._applied: dict[TopicPartition, int] = {}
        self._applied_since_commit = asyncio.Event()
        # "topic-partition" → why it is waiting (transient failures only).
        self.stalled: dict[str, str] = {}
        self._backoff_base = max(settings.consumer_retry_backoff_ms, 1) / 1000
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume until stopped; only a defect in the consumer itself ends it."""
        stop = stop or asyncio.Event()
        consumer = self._consumer_factory(self._topics, self.name)
        consumer.subscribe(self._topics, listener=_CancelOnRevoke(self))
        await consumer.start()
        self._consumer = consumer
        self._producer = self._producer_factory()
        await self._producer.start()
        stopping = asyncio.create_task(stop.wait())
        committer = asyncio.create_task(self._commit_applied_periodically(consumer))
        fetch: asyncio.Task[dict[TopicPartition, list[ConsumerRecord]]] | None = None
        try:
            while not stop.is_set():
                if fetch is None:
                    # New records end getmany at once, so its timeout only sets how often an
                    # idle consumer's loop turns: each second until the first assignment
                    # (readiness waits for it), then twice a minute (issue #12).
                    wait_ms = _IDLE_FETCH_MS if self.ready.is_set() else 1000
                    fetch = asyncio.create_task(consumer.getmany(timeout_ms=wait_ms))
                # Wake for new records, a batch done (to start what waits behind it), a
                # failed offset commit, or stop.
                await asyncio.wait(
                    {fetch, stopping, committer, *self._inflight.values()},
                    return_when=asyncio.FIRST_COMPLETED,
                )
                self._reap()
                if not self.ready.is_set() and consumer.assignment():
                    self.ready.set()
                if fetch.done():
                    batches, fetch = fetch.result(), None
                    for tp, records in batches.items():
                        if records:
                            self._take(consumer, tp, records)
                if committer.done():
                    committer.result()  # a defect of the commit itself ends the worker
        finally:
            if fetch is not None:
                fetch.cancel()
            stopping.cancel()
            committer.cancel()
            await self._cancel_partitions(list(self._inflight))
            await self._commit_applied(consumer, final=True)
            self._set_stalled_gauge()
            await consumer.stop()
            await self._producer.stop()

    def _take(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        records: list[ConsumerRecord],
    ) -> None:
        """Apply fetched records now, or after the partition's batch in progress."""
        if tp not in self._inflight:
            self._start_partition(consumer, tp, records)
            return
        queued = self._queued.setdefault(tp, [])
        queued.extend(records)
        if len(queued) >= self._settings.consumer_batch_size:
            consumer.pause(tp)  # enough waiting: fetch no more until this backlog is taken

    def _start_partition(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        records: list[ConsumerRecord],
    ) -> None:
        self._inflight[tp] = asyncio.create_task(
            self._consume_partition(consumer, tp, records),
            name=f"consume {tp.topic}-{tp.partition}",
        )

    def _reap(self) -> None:
        """Start the waiting records of partitions whose batch is done (resuming a paused
        one); a failure of the consumer's own code ends it."""
        for tp, task in list(self._inflight.items()):
            if not task.done():
                continue
            del self._inflight[tp]
            if task.cancelled():
                continue
            task.result()  # re-raises a defect: the runner then restarts the process whole
            consumer = self._consumer
            assert consumer is not None
            waiting = self._queued.pop(tp, [])
            if tp not in consumer.assignment():
                continue
            if waiting:
                self._start_partition(consumer, tp, waiting)
            if tp in consumer.paused():
                consumer.resume(tp)

    async def _cancel_partitions(self, partitions: list[TopicPartition]) -> None:
        """Stop applying these partitions' batches (their open transactions roll back)."""
        tasks = [self._inflight.pop(tp) for tp in partitions if tp in self._inflight]
        for tp in partitions:
            self._queued.pop(tp, None)  # the next owner (or this one, reassigned) re-reads them
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for tp in partitions:
            self.stalled.pop(_label(tp), None)

    async def _consume_partition(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        records: list[ConsumerRecord],
    ) -> None:
        size = self._settings.consumer_transaction_batch
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            fallback = _Fallback() if len(chunk) == 1 else await self._process_together(tp, chunk)
            if fallback is None:
                continue
            for record in chunk:
                if fallback.refused is not None and fallback.refused[0] is record:
                    # Its handler already refused it for good: dead-letter it without running
                    # the handler again (so what a refusal counts is counted once).
                    _, envelope, refusal = fallback.refused
                    await self._dead_letter(record, envelope, DeadLetter(str(refusal), 1))
                else:
                    await self.process(record)
        self._applied[tp] = records[-1].offset + 1
        self._applied_since_commit.set()

    async def _commit_applied_periodically(self, consumer: AIOKafkaConsumer) -> None:
        """Commit applied offsets together, at most once per commit interval."""
        interval = self._settings.consumer_commit_interval_ms / 1000
        while True:
            await self._applied_since_commit.wait()
            await asyncio.sleep(interval)
            await self._commit_applied(consumer)

    async def _commit_applied(
        self,
        consumer: AIOKafkaConsumer,
        partitions: Iterable[TopicPartition] | None = None,
        *,
        final: bool = False,
    ) -> None:
        """Commit the applied offsets (of ``partitions`` only, if given) in one request.

        Transient failures are retried, except for the ``final`` commit at stop, which is
        given up after logging: the next owner re-reads those events as inbox no-ops.
        """
        chosen = self._applied if partitions is None else set(partitions)
        offsets = {tp: self._applied.pop(tp) for tp in list(chosen) if tp in self._applied}
        # A partition no longer assigned is another member's now (committing it would fail).
        assigned = consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not self._applied:
            self._applied_since_commit.clear()
        if not offsets:
            return
        try:
            if final:
                await asyncio.wait_for(consumer.commit(offsets), timeout=10)
            else:
                await self._until_done("offsets", "offset commit", lambda: consumer.commit(offsets))
        except (CommitFailedError, IllegalStateError):
            # A partition moved to another member (also while the commit was being retried);
            # it re-reads from the last commit and the inbox turns the repeats into no-ops.
            log.warning("offset commit lost in a rebalance", extra={"partitions": len(offsets)})
        except Exception as exc:
            if not final:
                raise
            log.warning("offset commit at stop failed: %s", describe_error(exc))

    async def process(self, record: ConsumerRecord) -> str:
        """Apply one Kafka record; returns the outcome."""
        try:
            envelope = Envelope.from_bytes(record.value)
        except ValueError as exc:
            return await self._dead_letter(record, None, DeadLetter(f"malformed: {exc}", 1))
        handler = self._handlers.get(envelope.type)
        if handler is None:
            CONSUMED.labels(self._settings.service_name, envelope.type, "ignored").inc()
            return "ignored"
        try:
            event = decode(envelope)
        except ValueError as exc:
            return await self._dead_letter(
                record,
                envelope,
                DeadLetter(f"contract violation: {exc}", 1),
            )
        tp = TopicPartition(record.topic, record.partition)
        failures = 0
        while True:
            try:
                outcome = await self._until_done(
                    _label(tp),
                    envelope.type,
                    lambda: self._apply(record, envelope, event, handler),
                )
                break
            except PermanentFailure as exc:
                return await self._dead_letter(record, envelope, DeadLetter(str(exc), 1))
            except Exception as exc:
                failures += 1
                if failures >= self._settings.consumer_max_attempts:
                    log.warning(
                        "event failed after %d attempts",
                        failures,
                        extra={"event_type": envelope.type, "event_id": str(envelope.id)},
                        exc_info=True,
                    )
                    return await self._dead_letter(
                        record,
                        envelope,
                        DeadLetter(describe_error(exc), failures),
                    )
                await asyncio.sleep(self._wait(failures))
        CONSUMED.labels(self._settings.service_name, envelope.type, outcome).inc()
        return outcome

    async def _process_together(
        self, tp: TopicPartition, records: list[ConsumerRecord]
    ) -> _Fallback | None:
        """Apply a chunk of one partition in one transaction; a fallback: apply it one by one.

        Anything that needs a per-event decision (a malformed record, a contract violation,
        a handler failing for a reason that is not transient) makes the whole chunk fall
        back, and the one-by-one path retries or dead-letters exactly that event.
        """
        work: list[tuple[ConsumerRecord, Envelope, Event, Handler]] = []
        ignored: list[str] = []
        for record in records:
            try:
                envelope = Envelope.from_bytes(record.value)
                handler = self._handlers.get(envelope.type)
                if handler is None:
                    ignored.append(envelope.type)
                    continue
                work.append((record, envelope, decode(envelope), handler))
            except ValueError:
                return _Fallback()
        started = time.perf_counter()
        try:
            outcomes = await self._until_done(
                _label(tp), "batch", lambda: self._apply_together(tp, work)
            )
        except _Refused as refused:
            log.info(
                "an event of a batch of %d was refused; applying the rest one by one", len(work)
            )
            return _Fallback((refused.record, refused.envelope, refused.failure))
        except Exception:
            log.info("a batch of %d failed; applying it one event at a time", len(work))
            return _Fallback()
        service = self._settings.service_name
        for event_type in ignored:
            CONSUMED.labels(service, event_type, "ignored").inc()
        for (_, envelope, _, _), outcome in zip(work, outcomes, strict=True):
            CONSUMED.labels(service, envelope.type, outcome).inc()
        if work:
            HANDLE_SECONDS.labels(service).observe((time.perf_counter() - started) / len(work))
        return None

    async def _apply_together(
        self,
        tp: TopicPartition,
        work: list[tuple[ConsumerRecord, Envelope, Event, Handler]],
    ) -> list[str]:
        if not work:
            return []
        async with self._uow_factory() as uow:
            fresh = set(
                (
                    await uow.session.execute(
                        self._record_many,
                        {
                            "consumer": self.name,
                            "topic": tp.topic,
                            "partition": tp.partition,
                            "event_ids": [envelope.id for _, envelope, _, _ in work],
                            "event_types": [envelope.type for _, envelope, _, _ in work],
                            "offsets": [record.offset for record, _, _, _ in work],
                        },
                    )
                ).scalars()
            )
            if self._prepare is not None and fresh:
                # Each new event once, in order (a republished copy in the chunk is not new).
                new = {e.id: event for _, e, event, _ in work if e.id in fresh}
                await self._prepare(uow, list(new.values()))
            outcomes = []
            for record, envelope, event, handler in work:
                # The same event twice in one chunk (a relay republished it) applies once.
                if envelope.id not in fresh:
                    outcomes.append("duplicate")
                    continue
                fresh.discard(envelope.id)
                with log_context(
                    correlation_id=envelope.correlation_id,
                    causation_id=str(envelope.id),
                    complaint_id=envelope.subject,
                ):
                    try:
                        await handler(uow, event, envelope)
                    except PermanentFailure as failure:
                        raise _Refused(record, envelope, failure) from failure
                outcomes.append("applied")
            await uow.commit()
        if "applied" in outcomes:
            strike(self._settings, "after-apply")  # committed, the offsets not yet
        return outcomes

    async def _until_done(self, where: str, what: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` until it succeeds or fails for a reason that is not transient; while
        it waits, ``where`` (a partition's label, or "offsets") shows in ``stalled``."""
        attempt = 0
        while True:
            try:
                result = await work()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                attempt += 1
                TRANSIENT_RETRIES.labels(self._settings.service_name).inc()
                if where not in self.stalled:
                    log.warning(
                        "%s waits for a transient failure to pass (%s); retrying",
                        where,
                        type(exc).__name__,
                        extra={"where": where, "work": what},
                    )
                self.stalled[where] = f"{what}: {type(exc).__name__}"
                self._set_stalled_gauge()
                await asyncio.sleep(self._wait(attempt))
                continue
            if self.stalled.pop(where, None) is not None:
                log.info("%s recovered after %d retries", where, attempt)
                self._set_stalled_gauge()
            return result

    def _wait(self, attempt: int) -> float:
        """Exponential backoff capped at 5 s, with a little jitter so partitions spread out."""
        return min(self._backoff_base * 2 ** (attempt - 1), 5.0) * random.uniform(1.0, 1.1)

    def _set_stalled_gauge(self) -> None:
        STALLED.labels(self._settings.service_name).set(len(self.stalled))

    async def _apply(
        self,
        record: ConsumerRecord,
        envelope: Envelope,
        event: Event,
        handler: Handler,
    ) -> str:
        started = time.perf_counter()
        with log_context(
            correlation_id=envelope.correlation_id,
            causation_id=str(envelope.id),
            complaint_id=envelope.subject,
        ):
            async with self._uow_factory() as uow:
                first_time = (
                    await uow.session.execute(
                        self._record,
                        self._inbox_row(record, envelope, "applied"),
                    )
                ).first()
                if first_time is None:
                    return "duplicate"
                await handler(uow, event, envelope)
                await uow.commit()
        strike(self._settings, "after-apply")  # committed, the offset not yet
        HANDLE_SECONDS.labels(self._settings.service_name).observe(time.perf_counter() - started)
        return "applied"

    def _inbox_row(self, record: ConsumerRecord, envelope: Envelope, outcome: str) -> dict:
        return {
            "consumer": self.name,
            "event_id": envelope.id,
            "event_type": envelope.type,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "outcome": outcome,
        }

    async def _dead_letter(
        self,
        record: ConsumerRecord,
        envelope: Envelope | None,
        dead: DeadLetter,
    ) -> str:
        tp = TopicPartition(record.topic, record.partition)
        headers = list(record.headers or ()) + [
            ("dlq.reason", dead.reason[:2000].encode()),
            ("dlq.attempts", str(dead.attempts).encode()),
            ("dlq.consumer", self.name.encode()),
            ("dlq.topic", record.topic.encode()),
            ("dlq.partition", str(record.partition).encode()),
            ("dlq.offset", str(record.offset).encode()),
        ]
        producer = self._producer
        assert producer is not None, "dead-lettering needs a running consumer"
        await self._until_done(
            _label(tp),
            "dead-letter publish",
            lambda: producer.send_and_wait(
                dlq_topic(record.topic),
                record.value,
                key=record.key,
                headers=headers,
            ),
        )
        if envelope is not None:
            # Remember it, so a redelivery is not dead-lettered a second time.
            await self._until_done(
                _label(tp),
                "dead-letter record",
                lambda: self._record_dead_letter(record, envelope),
            )
        type_label = envelope.type if envelope else "unparseable"
        CONSUMED.labels(self._settings.service_name, type_label, "dead_lettered").inc()
        return "dead_lettered"

    async def _record_dead_letter(self, record: ConsumerRecord, envelope: Envelope) -> None:
        async with self._uow_factory() as uow:
            await uow.session.execute(
                self._record,
                self._inbox_row(record, envelope, "dead_lettered"),
            )
            await uow.commit()


@dataclass(frozen=True)
class _Fallback:
    """A chunk to apply one event at a time, and the event its handler refused for good
    while the chunk was applied together, if that is why."""

    refused: tuple[ConsumerRecord, Envelope, PermanentFailure] | None = None


class _Refused(Exception):
    """A handler refused an event of a batch for good (``PermanentFailure``)."""

    def __init__(self, record: ConsumerRecord, envelope: Envelope, failure: PermanentFailure):
        super().__init__(str(failure))
        self.record, self.envelope, self.failure = record, envelope, failure


def _label(tp: TopicPartition) -> str:
    return f"{tp.topic}-{tp.partition}"


class _CancelOnRevoke(ConsumerRebalanceListener):
    """A partition taken away mid-batch stops at once and what it applied is committed; its
    new owner re-reads it from the last committed offset and the inbox turns what was
    already applied into no-ops."""

    def __init__(self, owner: EventConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._owner._cancel_partitions(list(revoked))
        consumer = self._owner._consumer
        if consumer is None:
            # A rebalance while consumer.start() is still running: nothing was fetched, so
            # nothing was applied and there is nothing to commit.
            return
        # What was applied is committed before the partitions go (the next owner then starts
        # after it); if the commit fails, the inbox makes the re-read harmless.
        await self._owner._commit_applied(consumer, revoked, final=True)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None

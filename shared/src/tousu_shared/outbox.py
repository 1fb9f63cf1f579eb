"""Transactional outbox: events commit with the state change, a relay publishes them to Kafka.

Waking: a relay LISTENs on its schema's channel and sleeps until a writer's
:class:`CommitSignal` sends a NOTIFY after committing outbox rows (one per few milliseconds
per process however many commits, and off the request's path), so an idle stack costs
nothing and a new event leaves within milliseconds; a relay in the writer's own process is
woken directly at the commit as well. When the listening connection drops, the
relay reads again as soon as it listens again (what it missed meanwhile); a slow fallback
poll covers writers that do not signal.

Ordering: every event of one key lands in one lane (crc32 of the key). A relay takes a lane
row lock (``FOR UPDATE SKIP LOCKED``) for as long as it publishes that lane's rows in id
order, so several relays can run at once and one key's events still leave in order. Rows of
one complaint get their ids in commit order because the writer holds the complaint's row lock
while it inserts them. There is no id watermark: the relay always reads every unsent row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
import zlib
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from tousu_shared.contracts import CONTENT_TYPE, Envelope, Event
from tousu_shared.db import HotStatement
from tousu_shared.faults import strike
from tousu_shared.logging import causation_id_var, correlation_id_var
from tousu_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

# Fixed at migration time: the lane table has one row per lane.
OUTBOX_LANES = 16

PUBLISHED = Counter("tousu_outbox_published_total", "Events published by the relay", ["service"])
RELAY_ERRORS = Counter("tousu_outbox_relay_errors_total", "Relay batches that failed", ["service"])
COMMIT_TO_PUBLISH = Histogram(
    "tousu_outbox_commit_to_publish_seconds",
    "Time from enqueue to acknowledged publish",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def lane_of(key: str) -> int:
    """The outbox lane of a message key; stable across processes."""
    return zlib.crc32(key.encode()) % OUTBOX_LANES


@dataclass(frozen=True)
class OutboxMessage:
    """One unsent outbox row."""

    id: int
    lane: int
    topic: str
    key: str
    value: bytes
    created_at: Any


def notify_channel(settings: ServiceSettings) -> str:
    """The LISTEN/NOTIFY channel of a service's outbox."""
    return f"tousu_outbox_{settings.db_schema}"


class CommitSignal:
    """Tells every relay of the schema that outbox rows were committed.

    ``poke()`` after a commit schedules one NOTIFY a short window later; further pokes in
    that window ride on it. It is sent on its own connection after the commits it covers,
    so a relay woken by it sees their rows.
    """

    def __init__(self, settings: ServiceSettings, engine: AsyncEngine) -> None:
        self._engine = engine
        self._window = settings.relay_notify_window_ms / 1000
        self._notify = text("SELECT pg_notify(:channel, '')")
        self._channel = notify_channel(settings)
        self._pending: asyncio.Task[None] | None = None

    def poke(self) -> None:
        """Rows were committed: wake this process's listeners at once, and make sure a NOTIFY
        (for the other processes) follows soon."""
        _wake_local(self._channel)
        if self._pending is None or self._pending.done():
            self._pending = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        await asyncio.sleep(self._window)
        # A poke from now on needs a notification of its own.
        self._pending = None
        try:
            async with self._engine.connect() as conn:
                await conn.execute(self._notify, {"channel": self._channel})
                await conn.commit()
        except Exception as exc:  # the relay's fallback poll still finds the rows
            log.warning("outbox notify failed: %s", type(exc).__name__)


class Outbox:
    """Writes events into the service's outbox table inside the caller's transaction."""

    def __init__(self, settings: ServiceSettings, signal: CommitSignal | None = None) -> None:
        self._settings = settings
        self.signal = signal
        self._source = f"tousu/{settings.service_name}"
        # created_at is when the row was written (clock_timestamp(), near the commit: a unit
        # of work enqueues its events last), not the transaction's start, so that
        # commit-to-publish histograms and bench.pipeline's hops leave the handler's own time
        # out.
        # Run on the transaction's asyncpg connection: the outbox insert is on every writer's
        # path, and SQLAlchemy's per-execution work cost more than the insert (issue #12).
        self._insert = HotStatement(
            text(
                f"INSERT INTO {settings.db_schema}.outbox "
                "(event_id, event_type, topic, message_key, lane, value, created_at) "
                "VALUES (:event_id, :event_type, :topic, :message_key, :lane, :value, "
                "clock_timestamp())"
            )
        )

    def envelope(self, event: Event) -> Envelope:
        """Wrap an event with the correlation and causation of the work in hand."""
        return Envelope(
            source=self._source,
            type=event.event_type,
            subject=event.subject,
            schema_version=event.schema_version,
            correlation_id=correlation_id_var.get() or event.subject,
            causation_id=causation_id_var.get(),
            data=event.model_dump(mode="json", exclude={"complaint_id"}),
        )

    async def enqueue(
        self,
        session: AsyncSession | AsyncConnection,
        event: Event,
        *,
        topic: str | None = None,
    ) -> Envelope:
        """Add one event to the outbox in the caller's transaction; the caller commits."""
        return (await self.enqueue_many(session, [(event, topic)]))[0]

    async def enqueue_many(
        self,
        session: AsyncSession | AsyncConnection,
        events: Sequence[tuple[Event, str | None]],
    ) -> list[Envelope]:
        """Add several events, in order, in the caller's transaction."""
        envelopes, rows = [], []
        for event, topic in events:
            envelope = self.envelope(event)
            envelopes.append(envelope)
            rows.append(
                {
                    "event_id": envelope.id,
                    "event_type": envelope.type,
                    "topic": self._settings.topic(topic or event.topic),
                    "message_key": envelope.subject,
                    "lane": lane_of(envelope.subject),
                    "value": envelope.to_bytes(),
                }
            )
        if rows:
            await self._insert.execute_many(session, rows)
        return envelopes


# The listeners of this process by channel: a writer's poke wakes them directly, without
# waiting for its NOTIFY (sent on the writer's event loop, a few awaits later, and delivered
# through Postgres). A listener may wait on another thread's loop than the writer's (the
# runner keeps every role on one loop today; a test runs a relay on a loop of its own), so a
# wake-up may cross threads.
_local_listeners: dict[str, weakref.WeakSet[CommitListener]] = {}
_local_lock = threading.Lock()


def _wake_local(channel: str) -> None:
    with _local_lock:
        listeners = list(_local_listeners.get(channel, ()))
    for listener in listeners:
        listener._wake_from_any_thread()


class CommitListener:
    """Wakes a worker when a writer of the schema signals committed outbox rows.

    LISTENs on the schema's channel (see :class:`CommitSignal`) on a connection of its own,
    reopened when it drops; a writer in the same process wakes it directly as well. Besides
    the relay, any worker whose work follows from what the schema commits (the SLA
    scheduler: a new timer comes with the events that announce it) sleeps on it instead of
    polling.
    """

    def __init__(self, settings: ServiceSettings, engine: AsyncEngine) -> None:
        self._engine = engine
        self._channel = notify_channel(settings)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop that waits
        self._conn: AsyncConnection | None = None
        self._raw: Any = None
        with _local_lock:
            _local_listeners.setdefault(self._channel, weakref.WeakSet()).add(self)

    def _wake_from_any_thread(self) -> None:
        """Set the wake-up from whichever thread committed. Skipped while it is set: the
        waiter then clears it before its next read, which starts after this commit."""
        loop = self._loop
        if loop is None or self._wake.is_set():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
            return
        with contextlib.suppress(RuntimeError):  # that loop has closed
            loop.call_soon_threadsafe(self._wake.set)

    @property
    def listening(self) -> bool:
        """Whether the LISTEN connection is open."""
        return self._raw is not None and not self._raw.is_closed()

    def clear(self) -> None:
        """Forget earlier signals; call it before reading, so a commit signalled while the
        read runs wakes the next wait at once instead of being lost."""
        self._wake.clear()

    async def wait(self, stop: asyncio.Event, *, listening: float, polling: float) -> None:
        """Sleep until a signal, the stop or the timeout: ``listening`` seconds while the
        LISTEN connection is open, ``polling`` while it cannot be. Returns at once when it
        has just (re)opened the connection: what was committed while nobody listened sent
        no signal that reached us, so the caller reads again before it sleeps."""
        self._loop = asyncio.get_running_loop()
        was_listening = self.listening
        if not await self._listen():
            timeout = polling
        elif not was_listening:
            return
        else:
            timeout = listening
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def close(self) -> None:
        """Close the LISTEN connection."""
        conn, self._conn, self._raw = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def _listen(self) -> bool:
        """(Re)open the LISTEN connection when it is not open; returns whether it is."""
        if self.listening:
            return True
        await self.close()
        try:
            conn = await self._engine.connect()
            try:
                raw = (await conn.get_raw_connection()).driver_connection
                assert raw is not None, "asyncpg gives every pooled connection a driver"
                await raw.add_listener(self._channel, self._on_notify)
                # A dropped connection (database restart, killed backend) ends the wait at
                # once too: the next wait listens again and has its caller read what the
                # signals it missed were about, instead of sleeping out the fallback.
                raw.add_termination_listener(self._on_notify)
            except BaseException:
                await conn.close()
                raise
        except Exception as exc:
            log.warning("cannot listen for commits (%s); polling meanwhile", type(exc).__name__)
            return False
        self._conn, self._raw = conn, raw
        return True

    def _on_notify(self, *_: object) -> None:
        self._wake.set()


class OutboxRelay:
    """Publishes committed outbox rows to Kafka and marks them sent."""

    def __init__(
        self,
        settings: ServiceSettings,
        engine: AsyncEngine,
        producer_factory: Callable[[], AIOKafkaProducer],
        *,
        after_publish: Callable[[list[OutboxMessage]], Awaitable[None]] | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        # Lanes whose next row could not be published in the last batch, with the reason.
        self.blocked_lanes: dict[int, str] = {}
        # lane → (monotonic time it may be tried again, current backoff in seconds)
        self._lane_backoff: dict[int, tuple[float, float]] = {}
        # A test hook standing in for a crash between publishing and marking rows sent.
        self._after_publish = after_publish
        self.commits = CommitListener(settings, engine)
        self._more_lanes = False
        schema = settings.db_schema
        # The lanes whose oldest unsent row is oldest first: in lane order, a relay claiming
        # 8 of 16 lanes under steady load kept finding rows in lanes 0-7 and left the others
        # waiting until the load stopped (201 → CaseRouted p99 of 40 s at 150/s, issue #12).
        # One probe of ix_outbox_unsent per lane.
        self._claim_lanes = text(
            f"SELECT l.lane FROM {schema}.outbox_lane l "
            "CROSS JOIN LATERAL (SELECT o.id FROM "
            f"{schema}.outbox o WHERE o.lane = l.lane AND o.sent_at IS NULL "
            "ORDER BY o.id LIMIT 1) oldest "
            "WHERE l.lane <> ALL(CAST(:resting AS smallint[])) "
            "ORDER BY oldest.id FOR UPDATE OF l SKIP LOCKED LIMIT :lanes"
        )
        self._fetch = text(
            f"SELECT id, lane, topic, message_key, value, created_at FROM {schema}.outbox "
            "WHERE sent_at IS NULL AND lane = ANY(:lanes) ORDER BY id LIMIT :limit"
        )
        self._mark_sent = text(f"UPDATE {schema}.outbox SET sent_at = now() WHERE id = ANY(:ids)")
        self._purge = text(
            f"DELETE FROM {schema}.outbox WHERE sent_at < now() - make_interval(hours => :hours)"
        )

    async def _get_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._producer_factory()
            await producer.start()
            self._producer = producer
        return self._producer

    async def _discard_producer(self) -> None:
        # An idempotent aiokafka producer stalls after some errors until recreated (aiokafka#1017).
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def close(self) -> None:
        """Stop the Kafka producer."""
        await self._discard_producer()

    async def relay_once(self) -> int:
        """Publish one batch of unsent rows from the lanes this relay claims; returns the count."""
        service = self._settings.service_name
        async with self._engine.connect() as conn, conn.begin():
            lanes = (
                (
                    await conn.execute(
                        self._claim_lanes,
                        {
                            "lanes": self._settings.relay_lanes_per_claim,
                            "resting": self._resting_lanes(),
                        },
                    )
                )
                .scalars()
                .all()
            )
            # Every lane claimed: others may hold rows too, so the relay reads again at once.
            self._more_lanes = len(lanes) >= self._settings.relay_lanes_per_claim
            if not lanes:
                return 0
            rows = [
                OutboxMessage(*row)
                for row in await conn.execute(
                    self._fetch,
                    {"lanes": list(lanes), "limit": self._settings.relay_batch_size},
                )
            ]
            if not rows:
                return 0
            producer = await self._get_producer()
            sent, self.blocked_lanes = await self._publish(producer, rows)
            if self._after_publish is not None:
                await self._after_publish(sent)
            if sent:
                strike(self._settings, "after-publish")
                await conn.execute(self._mark_sent, {"ids": [row.id for row in sent]})
        for row in sent:
            self._lane_backoff.pop(row.lane, None)
        if self.blocked_lanes:
            RELAY_ERRORS.labels(service).inc()
            log.error("outbox lanes held back: %s", self.blocked_lanes)
            self._rest(self.blocked_lanes)
            await self._discard_producer()
        now = time.time()
        PUBLISHED.labels(service).inc(len(sent))
        for row in sent:
            COMMIT_TO_PUBLISH.labels(service).observe(max(0.0, now - row.created_at.timestamp()))
        return len(sent)

    def _resting_lanes(self) -> list[int]:
        now = time.monotonic()
        return [lane for lane, (until, _) in self._lane_backoff.items() if until > now]

    def _until_next_look(self) -> float:
        """Seconds until the fallback poll, or sooner until a resting lane may be retried."""
        wait = self._settings.relay_fallback_poll_ms / 1000
        now = time.monotonic()
        for until, _ in self._lane_backoff.values():
            if until > now:
                wait = min(wait, until - now)
        return wait

    def _rest(self, lanes: dict[int, str]) -> None:
        """Back off held-back lanes exponentially (to 30 s); the other lanes keep their pace."""
        now = time.monotonic()
        for lane in lanes:
            _, previous = self._lane_backoff.get(lane, (0.0, 0.0))
            delay = min(max(previous * 2, 0.1), 30.0)
            self._lane_backoff[lane] = (now + delay, delay)

    async def _publish(
        self,
        producer: AIOKafkaProducer,
        rows: list[OutboxMessage],
    ) -> tuple[list[OutboxMessage], dict[int, str]]:
        """Send rows in id order; a failure holds back its lane from that row on, not others."""
        topics = {row.topic for row in rows}
        if not topics <= producer.client.cluster.topics():
            # Without this, a send to a missing topic blocks for the whole request timeout.
            await producer.client.force_metadata_update()
        known = producer.client.cluster.topics()
        headers = [("content-type", CONTENT_TYPE.encode())]
        blocked: dict[int, str] = {}
        deliveries: list[tuple[OutboxMessage, asyncio.Future]] = []
        for row in rows:
            if row.lane in blocked:
                continue
            if row.topic not in known:
                blocked[row.lane] = f"topic {row.topic} does not exist"
                continue
            try:
                # send() only appends to the producer's batches; all of them go out pipelined.
                future = await producer.send(
                    row.topic,
                    row.value,
                    key=row.key.encode(),
                    headers=headers,
                )
            except KafkaError as exc:
                blocked[row.lane] = f"{type(exc).__name__}: {exc}"
                continue
            deliveries.append((row, future))
        results = await asyncio.gather(*(f for _, f in deliveries), return_exceptions=True)
        sent = []
        for (row, _), result in zip(deliveries, results, strict=True):
            if row.lane in blocked:
                continue
            if isinstance(result, BaseException):
                blocked[row.lane] = f"{type(result).__name__}: {result}"
                continue
            sent.append(row)
        return sent, blocked

    async def purge_sent(self) -> None:
        """Delete rows sent longer ago than the retention."""
        async with self._engine.begin() as conn:
            await conn.execute(self._purge, {"hours": self._settings.outbox_retention_hours})

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Relay until stopped; a failed batch stays unsent and is retried with backoff."""
        stop = stop or asyncio.Event()
        idle = self._settings.relay_idle_poll_ms / 1000
        backoff = idle
        last_purge = time.monotonic()
        try:
            while not stop.is_set():
                # Cleared before reading: a commit signalled while this batch runs wakes the
                # next wait at once instead of being lost.
                self.commits.clear()
                try:
                    published = await self.relay_once()
                    backoff = idle
                except Exception:
                    RELAY_ERRORS.labels(self._settings.service_name).inc()
                    log.exception("outbox relay batch failed; retrying after %.2fs", backoff)
                    await self._discard_producer()
                    await _sleep_unless(stop, backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if time.monotonic() - last_purge > 60:
                    await self.purge_sent()
                    last_purge = time.monotonic()
                if published < self._settings.relay_batch_size and not self._more_lanes:
                    await self.commits.wait(stop, listening=self._until_next_look(), polling=idle)
        finally:
            await self.commits.close()
            await self.close()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass

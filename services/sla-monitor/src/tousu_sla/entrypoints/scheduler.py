"""The timer scheduler: claims due cases from the index, fires them, commits with the outbox.

Each loop is one transaction: claim up to a batch of cases whose `next_fire_at` has passed
(`FOR UPDATE SKIP LOCKED`, so several schedulers and the consumer never work on one case
at once), fire, store the fired thresholds and enqueue the events, commit. A firing is
recorded in the same transaction as its outbox row, so a killed scheduler loses nothing
and repeats nothing; a restarted one catches up and marks what it fired late.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tousu_shared.contracts.sla import SlaAtRisk, SlaBreached, SlaEscalated

from tousu_sla.adapters.publisher import OutgoingEvent
from tousu_sla.service_layer import services
from tousu_sla.settings import SlaSettings

log = logging.getLogger(__name__)

FIRINGS = Counter("tousu_sla_firings_total", "Timer firings published", ["event_type", "late"])
DETECTION_LAG = Histogram(
    "tousu_sla_detection_lag_seconds",
    "From a timer's due time to its firing",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30, 300),
)
FAILED_CASES = Counter("tousu_sla_scheduler_failed_cases_total", "Cases whose firing raised")
LOOP_ERRORS = Counter("tousu_sla_scheduler_errors_total", "Scheduler loops that failed")

PURGE_EVERY_SECONDS = 600.0
MIN_IDLE_SECONDS = 0.02


class SlaScheduler:
    """Fires due SLA timers until stopped; any number may run at once."""

    def __init__(
        self,
        settings: SlaSettings,
        session_factory: async_sessionmaker[AsyncSession],
        ctx: services.SlaContext,
    ) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._ctx = ctx
        self._poll = settings.scheduler_poll_ms / 1000

    async def run(self, stop: asyncio.Event) -> None:
        """Seed the defaults, then fire due timers until `stop` is set."""
        seeded = False
        backoff = self._poll
        last_purge = time.monotonic()
        while not stop.is_set():
            try:
                if not seeded:
                    await self._seed_defaults()
                    seeded = True
                claimed = await self.run_once()
                if claimed < self._settings.scheduler_batch_size:
                    idle = await self._idle_seconds()
                    if claimed == 0:
                        # What is due is held by another scheduler or the consumer right now:
                        # do not spin on it.
                        idle = max(idle, MIN_IDLE_SECONDS)
                    await _sleep_unless(stop, idle)
                if time.monotonic() - last_purge > PURGE_EVERY_SECONDS:
                    await self._purge_event_log()
                    last_purge = time.monotonic()
                backoff = self._poll
            except Exception:
                # The database may be restarting: keep the worker alive and retry.
                LOOP_ERRORS.inc()
                log.exception("SLA scheduler loop failed; retrying in %.2fs", backoff)
                await _sleep_unless(stop, backoff)
                backoff = min(backoff * 2, 5.0)

    async def _seed_defaults(self) -> None:
        async with self._session_factory() as session, session.begin():
            await services.ensure_default_catalog(db_session=session, ctx=self._ctx)

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """One claim-fire-commit round; returns how many cases it claimed."""
        now = now or self._ctx.clock()
        async with self._session_factory() as session, session.begin():
            case_ids = await services.claim_due_cases(
                db_session=session,
                ctx=self._ctx,
                now=now,
                limit=self._settings.scheduler_batch_size,
            )
            if not case_ids:
                return 0
            try:
                async with session.begin_nested():
                    batch = await services.fire_due_cases(
                        case_ids,
                        db_session=session,
                        ctx=self._ctx,
                        now=now,
                    )
            except Exception:
                log.exception(
                    "storing a batch of %d cases failed; firing them one by one", len(case_ids)
                )
                batch = await self._fire_one_by_one(session, case_ids, now)
            for case_id, error in batch.failed.items():
                # One broken case must not hold up every deadline queued behind it.
                FAILED_CASES.inc()
                log.error("SLA timers of case %s failed; retrying later", case_id, exc_info=error)
                await services.defer_failed_case(
                    case_id,
                    f"{type(error).__name__}: {error}",
                    db_session=session,
                    ctx=self._ctx,
                    now=now,
                    retry_after=dt.timedelta(seconds=self._settings.scheduler_retry_after_seconds),
                )
        _observe(batch.published, committed_at=self._ctx.clock())
        return len(case_ids)

    async def _fire_one_by_one(
        self,
        session: AsyncSession,
        case_ids: list[uuid.UUID],
        now: dt.datetime,
    ) -> services.FiredBatch:
        batch = services.FiredBatch()
        for case_id in case_ids:
            try:
                async with session.begin_nested():
                    batch.published += await services.fire_due(
                        case_id,
                        db_session=session,
                        ctx=self._ctx,
                        now=now,
                    )
            except Exception as error:  # reported and deferred by the caller
                batch.failed[case_id] = error
        return batch

    async def _idle_seconds(self) -> float:
        async with self._session_factory() as session:
            next_at = await services.next_due_at(db_session=session, ctx=self._ctx)
        if next_at is None:
            return self._poll
        # Sleep until the earliest due timer, but never longer than the poll: the consumer
        # may add an earlier one at any moment.
        return min(self._poll, max(0.0, (next_at - self._ctx.clock()).total_seconds()))

    async def _purge_event_log(self) -> None:
        async with self._session_factory() as session, session.begin():
            await services.purge_event_log(
                db_session=session,
                ctx=self._ctx,
                retention=dt.timedelta(hours=self._settings.event_log_retention_hours),
            )


def _observe(published: list[OutgoingEvent], *, committed_at: dt.datetime) -> None:
    for item in published:
        event = item.event
        if isinstance(event, SlaAtRisk | SlaBreached | SlaEscalated):
            FIRINGS.labels(event.event_type, str(event.late).lower()).inc()
            if event.scheduled_for is not None and isinstance(event, SlaBreached):
                DETECTION_LAG.observe((committed_at - event.scheduled_for).total_seconds())


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass

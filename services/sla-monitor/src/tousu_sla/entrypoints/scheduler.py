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
from tousu_shared.contracts import Event
from tousu_shared.contracts.sla import SlaAtRisk, SlaBreached, SlaEscalated
from tousu_shared.outbox import CommitListener

from tousu_sla.service_layer import catalog, services
from tousu_sla.service_layer.context import SlaContext, SlaUnitOfWork
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
    """Fires due SLA timers until stopped; any number may run at once, in any process."""

    def __init__(
        self, settings: SlaSettings, ctx: SlaContext, commits: CommitListener | None = None
    ) -> None:
        self._settings = settings
        self._ctx = ctx
        self._poll = settings.scheduler_poll_ms / 1000
        # Without a listener it polls every `poll` (tests that drive it by hand, say).
        self._commits = commits
        self._longest_sleep = (
            settings.scheduler_fallback_poll_ms / 1000 if commits is not None else self._poll
        )
        self._retry_after = dt.timedelta(seconds=settings.scheduler_retry_after_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        """Seed the defaults, then fire due timers until `stop` is set."""
        log.info("SLA scheduler started (poll %.0f ms)", self._poll * 1000)
        seeded = False
        backoff = self._poll
        last_purge = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    if not seeded:
                        await self._seed_defaults()
                        seeded = True
                    if self._commits is not None:
                        self._commits.clear()  # a commit from now on wakes the next sleep
                    claimed, next_at = await self._round()
                    if claimed < self._settings.scheduler_batch_size:
                        if claimed == 0:
                            # Read with the claim that found nothing; what is due is held by
                            # another scheduler or the consumer right now: do not spin on it.
                            idle = max(self._until(next_at), MIN_IDLE_SECONDS)
                        else:
                            idle = await self._idle_seconds()
                        await self._sleep(stop, idle)
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
        finally:
            if self._commits is not None:
                await self._commits.close()
        log.info("SLA scheduler stopped")

    async def _seed_defaults(self) -> None:
        async with self._ctx.uow() as uow:
            await catalog.seed_defaults(uow, self._ctx)
            await uow.commit()

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """One claim-fire-commit round; returns how many cases it claimed."""
        claimed, _ = await self._round(now)
        return claimed

    async def _round(self, now: dt.datetime | None = None) -> tuple[int, dt.datetime | None]:
        """One round: how many cases it claimed and, when it claimed none, the earliest
        timer, read in the same transaction (an idle round is one transaction, not two)."""
        now = now or self._ctx.clock()
        batch: services.FiredBatch | None = None
        async with self._ctx.uow() as uow:
            case_ids = await services.claim_due_cases(
                uow, now=now, limit=self._settings.scheduler_batch_size
            )
            if not case_ids:
                return 0, await services.next_due_at(uow)
            try:
                batch = await services.fire_due_cases(uow, self._ctx, case_ids, now=now)
                await self._defer(uow, batch.failed, now)
                await uow.commit()
            except Exception:
                # E.g. a repeated firing key: the whole firing rolled back with the batch.
                log.exception("a batch of %d cases failed; firing them one by one", len(case_ids))
                batch = None
        if batch is None:
            batch = await self._fire_one_by_one(case_ids, now)
        _observe(batch.published, committed_at=self._ctx.clock())
        if batch.published:
            log.info("fired %d SLA events on %d cases", len(batch.published), len(case_ids))
        return len(case_ids), None

    async def _fire_one_by_one(
        self, case_ids: list[uuid.UUID], now: dt.datetime
    ) -> services.FiredBatch:
        batch = services.FiredBatch()
        for case_id in case_ids:
            try:
                async with self._ctx.uow() as uow:
                    published = await services.fire_due(uow, self._ctx, case_id, now=now)
                    await uow.commit()
                batch.published += published
            except Exception as error:  # reported and deferred below
                batch.failed[case_id] = error
        if batch.failed:
            async with self._ctx.uow() as uow:
                await self._defer(uow, batch.failed, now)
                await uow.commit()
        return batch

    async def _defer(
        self, uow: SlaUnitOfWork, failed: dict[uuid.UUID, Exception], now: dt.datetime
    ) -> None:
        for case_id, error in failed.items():
            # One broken case must not hold up every deadline queued behind it.
            FAILED_CASES.inc()
            log.error("SLA timers of case %s failed; retrying later", case_id, exc_info=error)
            await services.defer_failed_case(
                uow,
                case_id,
                f"{type(error).__name__}: {error}",
                now=now,
                retry_after=self._retry_after,
            )

    async def _idle_seconds(self) -> float:
        async with self._ctx.uow() as uow:
            next_at = await services.next_due_at(uow)
        return self._until(next_at)

    def _until(self, next_at: dt.datetime | None) -> float:
        """How long to sleep before the earliest timer, but not past the fallback poll."""
        if next_at is None:
            return self._longest_sleep
        until_due = (next_at - self._ctx.clock()).total_seconds()
        return min(self._longest_sleep, max(0.0, until_due))

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep `seconds`, or less when a commit may have added an earlier timer.

        The consumer may add an earlier timer at any moment; its commit signal ends the
        sleep, but not before one poll has passed, so a stack committing every few
        milliseconds does not make the scheduler run a round per commit.
        """
        await _sleep_unless(stop, min(seconds, self._poll))
        if self._commits is not None and seconds > self._poll and not stop.is_set():
            # Not listening: polling=0 returns at once, so the loop polls every `poll`.
            await self._commits.wait(stop, listening=seconds - self._poll, polling=0.0)

    async def _purge_event_log(self) -> None:
        async with self._ctx.uow() as uow:
            await services.purge_event_log(
                uow,
                self._ctx,
                retention=dt.timedelta(hours=self._settings.event_log_retention_hours),
            )
            await uow.commit()


def _observe(published: list[Event], *, committed_at: dt.datetime) -> None:
    for event in published:
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

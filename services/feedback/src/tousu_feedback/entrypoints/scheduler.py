"""The scheduler role: offers, reminders, expiries and new complaints as they fall due.

Runs alone (``python -m tousu_feedback scheduler``) or with every other role (``all``);
any number may run at once, each survey being claimed ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Counter
from tousu_shared.kafka import connection, ensure_topics
from tousu_shared.outbox import CommitListener

from tousu_feedback.service_layer.context import FeedbackContext
from tousu_feedback.service_layer.delivery import run_due
from tousu_feedback.settings import FeedbackSettings

log = logging.getLogger(__name__)

LOOP_ERRORS = Counter("tousu_feedback_scheduler_errors_total", "Scheduler rounds that failed")


class SurveyScheduler:
    """Handles due surveys in rounds. With a commit listener it sleeps between rounds until
    feedback commits events (a survey scheduled or answered: what makes work due now), but
    at least ``scheduler_poll_ms`` and at most ``scheduler_fallback_poll_ms`` (for what
    falls due with time alone: reminders, expiries, offers held for the send window);
    without one it polls every ``scheduler_poll_ms``."""

    def __init__(
        self,
        settings: FeedbackSettings,
        ctx: FeedbackContext,
        commits: CommitListener | None = None,
    ) -> None:
        self._settings = settings
        self._ctx = ctx
        self._poll = settings.scheduler_poll_ms / 1000
        self._fallback = max(settings.scheduler_fallback_poll_ms / 1000, self._poll)
        self._commits = commits

    async def run(self, stop: asyncio.Event) -> None:
        """Handle due surveys until ``stop`` is set."""
        # The broker creates no topic by itself, and the gateway topic is feedback's own.
        await ensure_topics(
            connection(self._settings),
            [(self._settings.topic(self._settings.gateway_topic), 3)],
        )
        try:
            await self._loop(stop)
        finally:
            if self._commits is not None:
                await self._commits.close()
            for channel in self._ctx.channels.values():
                await channel.close()
            await self._ctx.intake.close()

    async def _loop(self, stop: asyncio.Event) -> None:
        backoff = self._poll
        while not stop.is_set():
            try:
                if self._commits is not None:
                    self._commits.clear()  # a commit from now on ends the next sleep
                handled = await self.run_once()
                backoff = self._poll
                if handled < self._settings.scheduler_batch_size:
                    await self._sleep(stop)
            except Exception:
                # Intake, the mail server or the database may be restarting: keep going.
                LOOP_ERRORS.inc()
                log.exception("feedback scheduler round failed; retrying in %.2fs", backoff)
                await _sleep_unless(stop, backoff)
                backoff = min(backoff * 2, 30.0)

    async def run_once(self) -> int:
        """One round; returns how many surveys it handled."""
        return await run_due(self._ctx, limit=self._settings.scheduler_batch_size)

    async def _sleep(self, stop: asyncio.Event) -> None:
        # At least one poll, so a stack committing every few milliseconds (its own offers
        # included) does not make it run a round per commit.
        await _sleep_unless(stop, self._poll)
        if self._commits is not None and self._fallback > self._poll and not stop.is_set():
            # Not listening: polling=0 returns at once, so the loop polls every `poll`.
            await self._commits.wait(stop, listening=self._fallback - self._poll, polling=0.0)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass

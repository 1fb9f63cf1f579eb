"""The scheduler role: offers, reminders, expiries and new complaints as they fall due.

Runs alone (``python -m tousu_feedback scheduler``) or with every other role (``all``);
any number may run at once, each survey being claimed ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Counter
from tousu_shared.kafka import connection, ensure_topics

from tousu_feedback.service_layer.context import FeedbackContext
from tousu_feedback.service_layer.delivery import run_due
from tousu_feedback.settings import FeedbackSettings

log = logging.getLogger(__name__)

LOOP_ERRORS = Counter("tousu_feedback_scheduler_errors_total", "Scheduler rounds that failed")


class SurveyScheduler:
    def __init__(self, settings: FeedbackSettings, ctx: FeedbackContext) -> None:
        self._settings = settings
        self._ctx = ctx
        self._poll = settings.scheduler_poll_ms / 1000

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
            for channel in self._ctx.channels.values():
                await channel.close()
            await self._ctx.intake.close()

    async def _loop(self, stop: asyncio.Event) -> None:
        backoff = self._poll
        while not stop.is_set():
            try:
                handled = await self.run_once()
                backoff = self._poll
                if handled < self._settings.scheduler_batch_size:
                    await _sleep_unless(stop, self._poll)
            except Exception:
                # Intake, the mail server or the database may be restarting: keep going.
                LOOP_ERRORS.inc()
                log.exception("feedback scheduler round failed; retrying in %.2fs", backoff)
                await _sleep_unless(stop, backoff)
                backoff = min(backoff * 2, 30.0)

    async def run_once(self) -> int:
        """One round; returns how many surveys it handled."""
        return await run_due(self._ctx, limit=self._settings.scheduler_batch_size)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass

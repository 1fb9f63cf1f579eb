"""Background roles of the analytics service: the detector and the monthly report.

Each runs alone (``python -m tousu_analytics detector``) or with the others (``all``); both
are safe to run twice: an alert series is locked while it is extended, and a month's report
is archived once (unique month).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from tousu_shared.runtime import Worker

from tousu_analytics.domain.projection import local_day
from tousu_analytics.service_layer.context import AnalyticsContext
from tousu_analytics.service_layer.detector import detect

log = logging.getLogger(__name__)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def detector_worker(ctx: AnalyticsContext) -> Worker:
    """Tests yesterday (the last complete local day) every interval; idempotent per day."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            day = local_day(ctx.clock()) - timedelta(days=1)
            try:
                result = await detect(ctx, day)
                log.info(
                    "detector ran",
                    extra={
                        "day": day.isoformat(),
                        "series": result.series_tested,
                        "raised": len(result.alerts_raised),
                    },
                )
            except Exception:
                log.exception("detector run failed")
            await _sleep(stop, ctx.settings.detector_interval_seconds)

    return run


def report_worker(ctx: AnalyticsContext) -> Worker:
    """On the first working day of a month, archives the previous month's report."""
    from tousu_analytics.service_layer.reports import archive_if_due

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await archive_if_due(ctx)
            except Exception:
                log.exception("monthly report run failed")
            await _sleep(stop, ctx.settings.report_check_seconds)

    return run

"""Two detectors at once (two replicas of the ``detector`` role) raise a spike's alert once."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tousu_analytics.service_layer.detector import detect

pytestmark = pytest.mark.integration

CST = ZoneInfo("Asia/Shanghai")


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=CST)


async def test_two_detectors_at_once_raise_one_alert(analytics, kit) -> None:
    first, spike_day = date(2025, 4, 1), date(2025, 5, 20)
    events = []
    day = first
    while day <= spike_day:  # three complaints a day about tablets, for seven weeks
        for hour in (9, 12, 15):
            c = kit(contact_at=at(day, hour), product_line="tablets", region="west")
            events += [c.received(), c.classified("product_quality")]
        day += timedelta(days=1)
    for minute in range(15):  # then fifteen more on one day
        c = kit(contact_at=at(spike_day, 10) + timedelta(minutes=minute), product_line="tablets")
        events += [c.received(), c.classified("product_quality")]
    async with analytics.running():
        await analytics.send(*events)
        await analytics.until_applied(len(events))
        runs = await asyncio.gather(
            detect(analytics.ctx, spike_day), detect(analytics.ctx, spike_day)
        )
        async with analytics.ctx.uow() as uow:
            stored = await uow.session.scalar(sa.text("SELECT count(*) FROM analytics.alert"))

    # The schema is emptied for each test: every alert stored is one of these two runs'.
    assert sorted(len(run.alerts_raised) for run in runs) == [0, 1]
    assert stored == 1

"""Two detectors at once (two replicas of the ``detector`` role) raise a spike's alert once."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from analytics_factories import cst, daily_quality_complaints
from tousu_analytics.service_layer.detector import detect

pytestmark = pytest.mark.integration


async def test_two_detectors_at_once_raise_one_alert(analytics, kit) -> None:
    first, spike_day = date(2025, 4, 1), date(2025, 5, 20)
    # three complaints a day about tablets, for seven weeks
    events = daily_quality_complaints(kit, first, spike_day, product_line="tablets", region="west")
    for minute in range(15):  # then fifteen more on one day
        c = kit(contact_at=cst(spike_day, 10) + timedelta(minutes=minute), product_line="tablets")
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

"""The systemic-issue detector: test every series on a day, raise or extend alerts."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from tousu_shared.same_names import build

from tousu_analytics.domain.alerts import ACTIVE_STATES, Alert, Evidence, Series
from tousu_analytics.domain.detection import Finding, alarms, test_series
from tousu_analytics.service_layer.context import AnalyticsContext
from tousu_analytics.service_layer.unit_of_work import AnalyticsUnitOfWork

# series kind → the read-model column crossed with the category.
SERIES_KINDS = {"category_product_line": "product_line", "category_department": "department"}
SHARED_ATTRIBUTES = ("region", "product_ref", "subject_unit")
SHARED_MIN_SHARE = 0.5


@dataclass(frozen=True)
class DetectionRun:
    day: date
    series_tested: int
    alerts_raised: list[uuid.UUID]
    alerts_extended: list[uuid.UUID]


def _shared(rows: list[sa.Row]) -> dict[str, str]:
    """What most of the complaints have in common (region, batch, unit, tag)."""
    shared: dict[str, str] = {}
    columns = {
        attribute: [row._mapping[attribute] for row in rows] for attribute in SHARED_ATTRIBUTES
    }
    columns["tag"] = [tag for row in rows for tag in (row.tags or [])]
    for attribute, values in columns.items():
        present = [value for value in values if value]
        if not present:
            continue
        value, n = Counter(present).most_common(1)[0]
        if n / len(rows) >= SHARED_MIN_SHARE:
            shared[attribute] = str(value)
    return shared


async def detect(ctx: AnalyticsContext, day: date) -> DetectionRun:
    """Test every series on ``day`` (a complete local day) and act on the alarms."""
    settings = ctx.settings
    start = day - timedelta(days=settings.detector_history_days + 14)
    raised: list[uuid.UUID] = []
    extended: list[uuid.UUID] = []
    tested: list[tuple[Series, Finding]] = []
    async with ctx.uow() as uow:
        # One detection at a time (two replicas of the detector role, a manual run): the
        # next waits for this transaction, then its reads (READ COMMITTED) see the alerts
        # this one raised and extend nothing twice. Without it both would raise the same one.
        await uow.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext('analytics.detector'))")
        )
        fact = uow.tables.fact
        first_day = await uow.session.scalar(sa.select(sa.func.min(fact.c.received_day)))
        if first_day is None or first_day > day:
            return DetectionRun(day, 0, [], [])
        start = max(start, first_day)
        for kind, column in SERIES_KINDS.items():
            counts: dict[tuple[str, str], dict[date, int]] = defaultdict(dict)
            for row in await uow.kpis.daily_counts(start, day + timedelta(days=1), column):
                counts[(row.category, row.value)][row.day] = row.n
            length = (day - start).days + 1
            for (category, value), by_day in counts.items():
                daily = [by_day.get(start + timedelta(days=i), 0) for i in range(length)]
                finding = test_series(
                    daily,
                    start,
                    alpha=settings.detector_alpha,
                    history_days=settings.detector_history_days,
                )
                if finding is not None:
                    tested.append((Series(kind, category, value), finding))
        decisions = alarms(
            [finding for _, finding in tested],
            fdr=settings.detector_fdr,
            min_count=settings.detector_min_count,
        )
        for (series, finding), alarm in zip(tested, decisions, strict=True):
            if not alarm:
                continue
            evidence = await _evidence(uow, series, finding)
            latest = await uow.alerts.latest_for(series)
            now = ctx.clock()
            if (
                latest is not None
                and latest.state in ACTIVE_STATES
                and latest.last_day >= finding.first_day - timedelta(days=1)
            ):
                if latest.last_day < day:
                    latest.extend(evidence, now)
                    await uow.alerts.save(latest)
                    extended.append(latest.id)
                continue
            alert = Alert.raise_for(series, evidence, now)
            uow.track(alert)
            await uow.alerts.save(alert)
            raised.append(alert.id)
        await uow.commit()
    return DetectionRun(day, len(tested), raised, extended)


async def _evidence(uow: AnalyticsUnitOfWork, series: Series, finding: Finding) -> Evidence:
    fact = uow.tables.fact
    column = fact.c[SERIES_KINDS[series.kind]]
    rows = list(
        (
            await uow.session.execute(
                sa.select(
                    fact.c.complaint_id,
                    fact.c.region,
                    fact.c.product_ref,
                    fact.c.subject_unit,
                    fact.c.tags,
                )
                .where(
                    fact.c.category == series.category,
                    column == series.value,
                    fact.c.received_day >= finding.first_day,
                    fact.c.received_day <= finding.day,
                )
                .order_by(fact.c.received_at)
            )
        ).all()
    )
    # The finding's figures, and the complaints behind them.
    return build(
        Evidence,
        finding,
        complaint_ids=tuple(row.complaint_id for row in rows),
        shared=_shared(rows),
    )

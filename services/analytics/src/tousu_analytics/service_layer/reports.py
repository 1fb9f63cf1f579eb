"""The monthly report (工作简报): its content, built from the KPIs, and its archive."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from tousu_analytics.adapters.orm import SCHEMA
from tousu_analytics.domain.actions import ImprovementAction
from tousu_analytics.domain.alerts import Alert
from tousu_analytics.domain.calendar import is_workday, marked_days
from tousu_analytics.domain.periods import shift_month
from tousu_analytics.domain.projection import local_day
from tousu_analytics.service_layer.context import AnalyticsContext
from tousu_analytics.service_layer.kpis import KpiRequest, compute_kpis
from tousu_analytics.service_layer.management import action_effect

HEADLINES = (
    "volume",
    "complaint_rate_per_order",
    "resolution_rate",
    "fcr_rate",
    "reopen_rate",
    "repeat_rate",
    "unhappy_customers_estimate",
)
SLOWEST = 10


def _change(now: float | None, before: float | None) -> float | None:
    if now is None or before is None or before == 0:
        return None
    return round((now - before) / before, 4)


def _cells(document: dict[str, Any], *keys: str) -> list[dict[str, Any]]:
    return [
        {"cell": cell["cell"], **{key: cell[key] for key in keys}} for cell in document["cells"]
    ]


async def _slowest(ctx: AnalyticsContext, month: date, end: date) -> list[sa.Row]:
    async with ctx.uow() as uow:
        fact = uow.tables.fact
        hours = sa.extract("epoch", fact.c.resolved_at - fact.c.received_at) / 3600
        return list(
            (
                await uow.session.execute(
                    sa.select(
                        fact.c.complaint_id,
                        fact.c.category,
                        fact.c.department,
                        hours.label("hours"),
                    )
                    .where(
                        fact.c.received_day >= month,
                        fact.c.received_day < end,
                        fact.c.resolved_at.is_not(None),
                    )
                    .order_by(sa.desc("hours"))
                    .limit(SLOWEST)
                )
            ).all()
        )


async def _alerts(ctx: AnalyticsContext, month: date, end: date) -> Sequence[Alert]:
    async with ctx.uow() as uow:
        return await uow.alerts.in_month(month, end - timedelta(days=1))


async def _action_row(ctx: AnalyticsContext, action: ImprovementAction) -> dict[str, Any]:
    effect = await action_effect(ctx, action)
    return {
        "title": action.title,
        "state": action.state,
        "owner": action.owner,
        "target": action.target.as_json(),
        "started_on": action.started_on.isoformat(),
        "effect": effect["effect"] if effect else None,
    }


async def _actions(ctx: AnalyticsContext, month: date, end: date) -> list[dict[str, Any]]:
    """The improvement actions under way during the month, each with its effect."""
    async with ctx.uow() as uow:
        actions = await uow.actions.active_during(month, end - timedelta(days=1))
    return list(await asyncio.gather(*(_action_row(ctx, action) for action in actions)))


async def build_monthly(ctx: AnalyticsContext, month: date) -> dict[str, Any]:
    """Everything the monthly report shows, as data (every format renders this).

    Its parts are independent queries, so they run at the same time, each on a connection
    of its own; the tables by category, channel and day need only the counts.
    """
    end, previous = shift_month(month, 1), shift_month(month, -1)
    async with asyncio.TaskGroup() as group:
        kpis = group.create_task(compute_kpis(ctx, KpiRequest(month, end)))
        kpis_before = group.create_task(compute_kpis(ctx, KpiRequest(previous, month)))
        by_category, by_channel, by_day = (
            group.create_task(compute_kpis(ctx, KpiRequest(month, end, cell, counts_only=True)))
            for cell in ("category", "channel", "day")
        )
        slowest = group.create_task(_slowest(ctx, month, end))
        alerts = group.create_task(_alerts(ctx, month, end))
        actions = group.create_task(_actions(ctx, month, end))
    current, before = kpis.result(), kpis_before.result()
    totals, previous_totals = current["totals"], before["totals"]
    return {
        "month": month.isoformat()[:7],
        # A list, not an object: the archive (JSONB) keeps list order but not key order.
        "headline": [
            {
                "metric": key,
                "value": totals[key],
                "previous": previous_totals[key],
                "change": _change(totals[key], previous_totals[key]),
            }
            for key in HEADLINES
        ],
        "first_response_hours": totals["first_response_hours"],
        "resolution_hours": totals["resolution_hours"],
        "resolution_business_hours": totals["resolution_business_hours"],
        "by_category": _cells(by_category.result(), "volume", "resolution_rate"),
        "by_channel": _cells(by_channel.result(), "volume", "resolution_rate"),
        "by_day": _cells(by_day.result(), "volume"),
        "sla_compliance": totals["sla_compliance"],
        "csat": totals["csat"],
        "top_root_causes": totals["top_root_causes"],
        "alerts": [
            {
                "id": str(a.id),
                "category": a.series.category,
                "value": a.series.value,
                "state": a.state,
                "first_day": a.first_day.isoformat(),
                "observed": a.evidence.get("observed"),
                "expected": a.evidence.get("expected"),
            }
            for a in alerts.result()
        ],
        "slowest_cases": [
            {
                "complaint_id": str(row.complaint_id),
                "category": row.category,
                "department": row.department,
                "hours": round(float(row.hours), 2),
            }
            for row in slowest.result()
        ],
        "improvement_actions": actions.result(),
        "calendar": marked_days(month, end),
    }


async def read_model_position(ctx: AnalyticsContext) -> dict[str, dict[str, int]]:
    """The live consumer's last applied offset per topic and partition."""
    async with ctx.uow() as uow:
        rows = (
            await uow.session.execute(
                sa.text(
                    f"SELECT topic, kafka_partition, max(kafka_offset) AS last "
                    f"FROM {SCHEMA}.inbox WHERE consumer = :consumer GROUP BY 1, 2"
                ),
                {"consumer": ctx.settings.consumer_group},
            )
        ).all()
    position: dict[str, dict[str, int]] = {}
    for row in rows:
        position.setdefault(row.topic, {})[str(row.kafka_partition)] = int(row.last)
    return position


async def archive(ctx: AnalyticsContext, month: date, actor: str) -> dict[str, Any]:
    """Build and archive a month's report (the first archive of a month stands)."""
    content = await build_monthly(ctx, month)
    position = await read_model_position(ctx)
    async with ctx.uow() as uow:
        await uow.reports.archive(
            month=month, content=content, position=position, actor=actor, now=ctx.clock()
        )
        await uow.commit()
    stored = await archived(ctx, month)
    assert stored is not None
    return stored


async def archived(ctx: AnalyticsContext, month: date) -> dict[str, Any] | None:
    async with ctx.uow() as uow:
        row = await uow.reports.for_month(month)
    if row is None:
        return None
    return {
        "report_id": str(row.id),
        "generated_at": row.generated_at.isoformat(),
        "generated_by": row.generated_by,
        "position": row.position,
        **row.content,
    }


def first_working_day(month: date) -> date:
    day = month
    while not is_workday(day):
        day += timedelta(days=1)
    return day


async def archive_if_due(ctx: AnalyticsContext) -> dict[str, Any] | None:
    """From the first working day of a month on, archive last month's report once."""
    today = local_day(ctx.clock())
    month = today.replace(day=1)
    if today < first_working_day(month):
        return None
    previous = shift_month(month, -1)
    if await archived(ctx, previous) is not None:
        return None
    return await archive(ctx, previous, "system:analytics")

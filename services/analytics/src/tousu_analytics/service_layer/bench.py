"""What ``make bench`` reports for analytics: a KPI query and a monthly report, timed over
a read model that holds (at least) a given number of generated complaints."""

from __future__ import annotations

import statistics
import time
from datetime import date
from typing import Any

import sqlalchemy as sa

from tousu_analytics.adapters import rendering
from tousu_analytics.service_layer.context import AnalyticsContext
from tousu_analytics.service_layer.generate import generate
from tousu_analytics.service_layer.kpis import KpiRequest, compute_kpis
from tousu_analytics.service_layer.reports import build_monthly


async def complaints_in_read_model(ctx: AnalyticsContext) -> int:
    async with ctx.uow() as uow:
        count = await uow.session.scalar(sa.select(sa.func.count()).select_from(uow.tables.fact))
    return int(count or 0)


async def ensure_generated(ctx: AnalyticsContext, complaints: int) -> bool:
    """Generate ``complaints`` (2025, seed 1) unless the read model already holds as many;
    whether it generated. Generating again is harmless: the same ids, the same rows."""
    if await complaints_in_read_model(ctx) >= complaints:
        return False
    await generate(ctx, complaints)
    return True


async def measure(
    ctx: AnalyticsContext, month: date = date(2025, 6, 1), runs: int = 3
) -> dict[str, Any]:
    """Median seconds of a month's KPIs by category, and of the month's report (content
    and PDF), over ``runs`` runs; with the number of complaints in the read model."""
    complaints = await complaints_in_read_model(ctx)
    end = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    kpi, report = [], []
    for _ in range(runs):
        started = time.perf_counter()
        await compute_kpis(ctx, KpiRequest(month, end, "category"))
        kpi.append(time.perf_counter() - started)
        started = time.perf_counter()
        content = await build_monthly(ctx, month)
        rendering.render_pdf(content, "zh")
        report.append(time.perf_counter() - started)
    return {
        "complaints": complaints,
        "kpi_query_seconds": round(statistics.median(kpi), 3),
        "monthly_report_seconds": round(statistics.median(report), 3),
        "kpi_query_runs": [round(seconds, 3) for seconds in kpi],
        "monthly_report_runs": [round(seconds, 3) for seconds in report],
        "kpi_target_met": statistics.median(kpi) < 1.0,
        "report_target_met": statistics.median(report) < 5.0,
    }

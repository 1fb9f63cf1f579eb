"""What ``make bench`` reports for analytics: a KPI query and a monthly report, timed."""

from __future__ import annotations

import statistics
import time
from datetime import date
from typing import Any

import sqlalchemy as sa

from tousu_analytics.adapters import rendering
from tousu_analytics.service_layer.context import AnalyticsContext
from tousu_analytics.service_layer.kpis import KpiRequest, compute_kpis
from tousu_analytics.service_layer.reports import build_monthly


async def measure(
    ctx: AnalyticsContext, month: date = date(2025, 6, 1), runs: int = 3
) -> dict[str, Any]:
    """Median seconds of a month's KPIs by category, and of the month's report (content
    and PDF), over ``runs`` runs; with the number of complaints in the read model."""
    async with ctx.uow() as uow:
        complaints = await uow.session.scalar(
            sa.select(sa.func.count()).select_from(uow.tables.fact)
        )
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
        "complaints": int(complaints or 0),
        "kpi_query_seconds": round(statistics.median(kpi), 3),
        "monthly_report_seconds": round(statistics.median(report), 3),
        "kpi_target_met": statistics.median(kpi) < 1.0,
        "report_target_met": statistics.median(report) < 5.0,
    }

"""The KPI use case: every figure of a period, in total and per cell of one dimension."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from tousu_shared.errors import InvalidInput

from tousu_analytics.adapters.kpi_queries import (
    DESCRIBED_BY,
    DRILL_COLUMNS,
    OUTCOME_METRICS,
    PERCENTILES,
    QUALIFIED_METRICS,
    TOTAL,
    WAITS,
    KpiQueries,
    Scope,
    drill_query,
)
from tousu_analytics.domain.calendar import marked_days
from tousu_analytics.domain.periods import months_between
from tousu_analytics.service_layer.context import AnalyticsContext

TIME_GROUPS = ("day", "week", "month")
GROUP_BY = (*DESCRIBED_BY, "urgency", "tier", *TIME_GROUPS)
# The queries behind one KPI document (KpiQueries methods), run side by side.
PARTS = ("core", "repeats", "sla", "csat", "root_causes", "corrections")
TOP_ROOT_CAUSES = 5
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9000, 1, 1)


@dataclass(frozen=True)
class KpiRequest:
    start: date
    end: date
    group_by: str | None = None
    department: str | None = None  # already narrowed by Principal.visible_department
    # Only the counts and rates of complaints (volume, resolution, FCR, reopen, repeat):
    # no durations, SLA, CSAT, root causes or corrections (the report's per-cell tables).
    counts_only: bool = False

    def __post_init__(self) -> None:
        # Periods are widened (the repeat window's lead-in, whole weeks and months), so the
        # ends of the calendar would overflow the date arithmetic.
        if self.start < FIRST_DAY:
            raise InvalidInput(f"'from' must be on or after {FIRST_DAY}", field="from")
        if self.end > LAST_DAY:
            raise InvalidInput(f"'to' must be on or before {LAST_DAY}", field="to")
        if self.end <= self.start:
            raise InvalidInput("'to' must be after 'from'", field="to")
        if self.group_by is not None and self.group_by not in GROUP_BY:
            raise InvalidInput(
                f"group_by must be one of {', '.join(GROUP_BY)}",
                field="group_by",
                allowed=list(GROUP_BY),
            )


def _ratio(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return round(part / whole, 6)


def _hours(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _exposure(
    denominators: Mapping[tuple[date, str], Any], months: list[date], product_line: str, field: str
) -> float | None:
    """The sum of a denominator over months, or None when any month lacks it."""
    total = 0.0
    for month in months:
        row = denominators.get((month, product_line))
        if row is None or row._mapping[field] is None:
            return None
        total += row._mapping[field]
    return total


@dataclass
class _Parts:
    core: dict[str, dict[str, Any]]
    sla: dict[str, dict[str, Any]]
    csat: dict[str, dict[str, Any]]
    root_causes: dict[str, dict[str, int]]
    corrections: dict[str, dict[str, int]]


async def _part(
    q: KpiQueries, name: str, scope: Scope, group_by: str | None, counts_only: bool
) -> dict[str, Any]:
    if name == "core":
        return await q.core(scope, group_by, durations=not counts_only)
    return await getattr(q, name)(scope, group_by)


async def _parts(
    ctx: AnalyticsContext, scope: Scope, group_by: str | None, counts_only: bool = False
) -> tuple[Mapping[tuple[date, str], Any], _Parts]:
    """The denominators and every part of the figures, each part's query on a connection
    of its own, all in one snapshot of the read model (exported by the first connection,
    imported by the others), so the parts agree as if they had run one after the other."""
    names = ["core", "repeats"] if counts_only else [*PARTS]

    async with ctx.uow() as first:
        snapshot = await first.kpis.export_snapshot()

        async def elsewhere(name: str) -> dict[str, Any]:
            async with ctx.uow() as uow:
                await uow.kpis.import_snapshot(snapshot)
                return await _part(uow.kpis, name, scope, group_by, counts_only)

        others = [asyncio.ensure_future(elsewhere(name)) for name in names[1:]]
        try:
            results = [await _part(first.kpis, names[0], scope, group_by, counts_only)]
            results += await asyncio.gather(*others)
        finally:
            for task in others:
                task.cancel()
        denominators = await first.kpis.denominators(scope.start, scope.end)
    found = dict(zip(names, results, strict=True))
    core = found["core"]
    for key, row in core.items():
        row["repeat"] = found["repeats"].get(key, 0)
    parts = _Parts(
        core=core,
        sla=found.get("sla", {}),
        csat=found.get("csat", {}),
        root_causes=found.get("root_causes", {}),
        corrections=found.get("corrections", {}),
    )
    return denominators, parts


def _metrics(
    parts: _Parts, key: str, orders: float | None, customers: float | None, pyramid_ratio: float
) -> dict[str, Any]:
    core = parts.core.get(key)
    volume = core["volume"] if core else 0
    c = core or {}
    return {
        "volume": volume,
        "complaint_rate_per_order": _ratio(volume, orders),
        "complaint_rate_per_customer": _ratio(volume, customers),
        "resolution_rate": _ratio(c.get("resolved"), volume),
        "fcr_rate": _ratio(c.get("fcr"), volume),
        **{
            kpi: {percentile: _hours(c.get(f"{wait}_{percentile}")) for percentile in PERCENTILES}
            for wait, kpi in WAITS.items()
        },
        "sla_compliance": {
            milestone: {
                "rate": _ratio(row["compliant"], row["decided"]),
                "compliant": row["compliant"],
                "decided": row["decided"],
            }
            for milestone, row in sorted(parts.sla.get(key, {}).items())
        },
        "csat": {
            source: {
                "mean": None if row["mean"] is None else round(float(row["mean"]), 4),
                "share_4_5": _ratio(row["satisfied"], row["answers"]),
                "confirmed_share": _ratio(row["confirmed"], row["surveys"]),
                "answers": row["answers"],
                "surveys": row["surveys"],
            }
            for source, row in sorted(parts.csat.get(key, {}).items())
        },
        "reopen_rate": _ratio(c.get("reopened"), c.get("resolved")),
        "repeat_rate": _ratio(c.get("repeat"), volume),
        "top_root_causes": [
            {"root_cause": cause, "count": n}
            for cause, n in sorted(
                parts.root_causes.get(key, {}).items(), key=lambda item: (-item[1], item[0])
            )[:TOP_ROOT_CAUSES]
        ],
        "classifier_corrections": {
            dimension: {"count": n, "rate": _ratio(n, volume)}
            for dimension, n in sorted(parts.corrections.get(key, {}).items())
        },
        "unhappy_customers_estimate": round(volume * pyramid_ratio, 2),
    }


async def compute_kpis(ctx: AnalyticsContext, request: KpiRequest) -> dict[str, Any]:
    """Every KPI for the period, in total and per cell (``group_by``)."""
    scope = Scope(request.start, request.end, request.department, ctx.settings.repeat_window_days)
    ratio = ctx.settings.pyramid_ratio
    months = months_between(request.start, request.end)
    denominators, parts = await _parts(ctx, scope, request.group_by, request.counts_only)
    document: dict[str, Any] = {
        "from": request.start.isoformat(),
        "to": request.end.isoformat(),
        "group_by": request.group_by,
        "department": request.department,
        "pyramid_ratio": ratio,
        "totals": _metrics(
            parts,
            TOTAL,
            _exposure(denominators, months, "", "orders"),
            _exposure(denominators, months, "", "customers"),
            ratio,
        ),
        "cells": [],
    }
    if request.group_by is not None:
        for key in sorted(key for key in parts.core if key != TOTAL):
            orders = customers = None
            if request.group_by == "month":
                month = [date.fromisoformat(key)]
                orders = _exposure(denominators, month, "", "orders")
                customers = _exposure(denominators, month, "", "customers")
            elif request.group_by == "product_line":
                orders = _exposure(denominators, months, key, "orders")
                customers = _exposure(denominators, months, key, "customers")
            document["cells"].append(
                {"cell": key, **_metrics(parts, key, orders, customers, ratio)}
            )
    if request.group_by in TIME_GROUPS:
        document["calendar"] = marked_days(request.start, request.end)
    return document


@dataclass(frozen=True)
class DrillRequest:
    kpis: KpiRequest
    metric: str
    cell: str | None = None
    after: uuid.UUID | None = None
    limit: int | None = 100  # None: every row (the CSV export)

    def split(self) -> tuple[str, str | None]:
        name, _, qualifier = self.metric.partition(".")
        if name in OUTCOME_METRICS and not qualifier:
            return name, None
        if name in QUALIFIED_METRICS and qualifier:
            return name, qualifier
        allowed = [*OUTCOME_METRICS, *(f"{name}.<value>" for name in QUALIFIED_METRICS)]
        raise InvalidInput(f"unknown metric {self.metric!r}", field="metric", allowed=allowed)


async def drill(ctx: AnalyticsContext, request: DrillRequest) -> AsyncIterator[dict[str, Any]]:
    """The complaints behind one figure, in complaint-id order, each flagged ``counted``."""
    metric, qualifier = request.split()
    if request.cell is not None and request.kpis.group_by is None:
        raise InvalidInput("a cell needs group_by", field="cell")
    scope = Scope(
        request.kpis.start,
        request.kpis.end,
        request.kpis.department,
        ctx.settings.repeat_window_days,
    )
    async with ctx.uow() as uow:
        b = uow.kpis.base(scope, repeat=metric == "repeat_rate")
        query = drill_query(
            uow.kpis.tables, b, metric, qualifier, request.kpis.group_by, request.cell
        )
        if request.after is not None:
            query = query.where(b.c.complaint_id > request.after)
        if request.limit is not None:
            query = query.limit(request.limit)
        async for row in uow.kpis.stream(query):
            yield {name: row._mapping[name] for name in (*DRILL_COLUMNS, "counted")}

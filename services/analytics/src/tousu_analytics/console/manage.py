"""The console's manager pages: KPI overview with drill-down, alerts and PDCA actions."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from tousu_shared.auth import Principal
from tousu_shared.errors import ServiceError

from tousu_analytics.console import charts, web
from tousu_analytics.console.i18n import Words
from tousu_analytics.domain.alerts import Alert
from tousu_analytics.domain.periods import shift_month
from tousu_analytics.service_layer import management
from tousu_analytics.service_layer.context import AnalyticsContext
from tousu_analytics.service_layer.kpis import DrillRequest, KpiRequest, compute_kpis, drill

router = APIRouter(prefix="/console", include_in_schema=False)
EVIDENCE_DAYS = 28
DRILL_ROWS = 200


def _month_of(value: str | None, today: date) -> date:
    if value:
        try:
            return date.fromisoformat(f"{value}-01")
        except ValueError:
            raise web.Refused(422, "bad_figure") from None
    return today.replace(day=1)


def _overall_sla(totals: dict[str, Any]) -> float | None:
    compliant = sum(m["compliant"] for m in totals["sla_compliance"].values())
    decided = sum(m["decided"] for m in totals["sla_compliance"].values())
    return compliant / decided if decided else None


def _csat_mean(totals: dict[str, Any]) -> float | None:
    answers = sum(c["answers"] for c in totals["csat"].values())
    if not answers:
        return None
    return sum((c["mean"] or 0) * c["answers"] for c in totals["csat"].values()) / answers


def _headline(now: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
    pick = {
        "volume": lambda t: t["volume"],
        "sla_compliance": _overall_sla,
        "csat_mean": _csat_mean,
        "reopen_rate": lambda t: t["reopen_rate"],
        "complaint_rate_per_order": lambda t: t["complaint_rate_per_order"],
    }
    return [
        {"metric": key, "value": get(now["totals"]), "previous": get(before["totals"])}
        for key, get in pick.items()
    ]


def _bars(document: dict[str, Any], words: Words, drill_base: str) -> list[charts.Bar]:
    cells = sorted(document["cells"], key=lambda c: -c["volume"])
    group = document["group_by"]
    return [
        charts.Bar(
            words.value(c["cell"]),
            c["volume"],
            f"{drill_base}&metric=volume&group_by={group}&cell={c['cell']}",
        )
        for c in cells
    ]


@router.get("/kpis")
async def kpi_page(request: Request, month: str | None = None) -> Response:
    viewer = await web.viewer_of(request, "analytics:read")
    ctx = web.ctx_of(request)
    start = _month_of(month, ctx.clock().date())
    end, previous = shift_month(start, 1), shift_month(start, -1)
    scope = web.department_scope(viewer, None)
    now = await compute_kpis(ctx, KpiRequest(start, end, None, scope))
    before = await compute_kpis(ctx, KpiRequest(previous, start, None, scope))
    by_category = await compute_kpis(ctx, KpiRequest(start, end, "category", scope))
    by_channel = await compute_kpis(ctx, KpiRequest(start, end, "channel", scope))
    words = Words(viewer.lang)
    base = f"/console/drill?from={start.isoformat()}&to={end.isoformat()}"
    return web.render(
        request,
        "kpis.html",
        viewer,
        month=start.isoformat()[:7],
        previous_month=previous.isoformat()[:7],
        next_month=end.isoformat()[:7],
        headline=_headline(now, before),
        category_chart=charts.bar_chart(_bars(by_category, words, base), words.by_category),
        channel_chart=charts.bar_chart(_bars(by_channel, words, base), words.by_channel),
        sla=now["totals"]["sla_compliance"],
        drill_base=base,
    )


@router.get("/drill")
async def drill_page(
    request: Request,
    metric: str,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    group_by: str | None = None,
    cell: str | None = None,
) -> Response:
    viewer = await web.viewer_of(request, "analytics:read")
    kpis = KpiRequest(start, end, group_by, web.department_scope(viewer, None))
    try:
        rows = [
            row
            async for row in drill(
                web.ctx_of(request), DrillRequest(kpis, metric, cell, limit=DRILL_ROWS)
            )
        ]
    except ServiceError:
        raise web.Refused(422, "bad_figure") from None
    return web.render(request, "drill.html", viewer, rows=rows, metric=metric, cell=cell)


# ---- alerts and actions -------------------------------------------------------------------


def alert_visible(principal: Principal, alert: Alert) -> bool:
    """Principal's one visibility rule on the alert's department (none for a product-line
    series, which a department-bound viewer therefore does not see), as ``GET /v1/alerts``."""
    return principal.may_see_department(alert.series.department)


async def _evidence_chart(ctx: AnalyticsContext, alert: Alert, words: Words) -> Any:
    first = alert.last_day - timedelta(days=EVIDENCE_DAYS - 1)
    async with ctx.uow() as uow:
        fact = uow.tables.fact
        column = (
            fact.c.department if alert.series.kind == "category_department" else fact.c.product_line
        )
        counts: dict[date, int] = dict(
            (
                await uow.session.execute(
                    sa.select(fact.c.received_day, sa.func.count())
                    .where(
                        fact.c.category == alert.series.category,
                        column == alert.series.value,
                        fact.c.received_day >= first,
                        fact.c.received_day <= alert.last_day,
                    )
                    .group_by(fact.c.received_day)
                )
            ).all()
        )
    days = [(first + timedelta(days=i), 0) for i in range(EVIDENCE_DAYS)]
    days = [(day, int(counts.get(day, 0))) for day, _ in days]
    evidence = alert.evidence
    bands = {}
    if evidence.get("day"):
        bands[date.fromisoformat(evidence["day"])] = (
            float(evidence["expected"]),
            float(evidence["upper_bound"]),
        )
    title = f"{words.value(alert.series.category)} × {alert.series.value}"
    return charts.series_chart(days, bands, title)


@router.get("/alerts")
async def alerts_page(request: Request) -> Response:
    viewer = await web.viewer_of(request, "analytics:read")
    ctx = web.ctx_of(request)
    words = Words(viewer.lang)
    async with ctx.uow() as uow:
        alerts = list(
            await uow.alerts.list(
                state=None, after=None, limit=20, department=web.department_scope(viewer, None)
            )
        )
        actions = list(await uow.actions.list(after=None, limit=50))
    shown = [{"alert": a, "chart": await _evidence_chart(ctx, a, words)} for a in alerts]
    effects = {action.id: await management.action_effect(ctx, action) for action in actions}
    return web.render(
        request,
        "alerts.html",
        viewer,
        alerts=shown,
        actions=actions,
        effects=effects,
        may_decide=viewer.principal.can("cases:manage"),
    )


@router.post("/alerts/{alert_id}/{decision}")
async def decide(request: Request, alert_id: uuid.UUID, decision: str) -> Response:
    viewer = await web.viewer_of(request, "cases:manage")
    form = await web.checked_form(request, viewer)
    if decision not in ("acknowledge", "dismiss"):
        raise web.Refused(404, "not_found")
    ctx = web.ctx_of(request)
    async with ctx.uow() as uow:
        alert = await uow.alerts.get(alert_id)
    if alert is None or not alert_visible(viewer.principal, alert):
        raise web.Refused(404, "not_found")
    command = management.DecideAlert(alert_id, decision, reason=form.get("reason") or None)
    try:
        await management.decide_alert(ctx, viewer.principal, command)
    except ServiceError:
        raise web.Refused(409, "decision_refused") from None
    return RedirectResponse("/console/alerts", status_code=303)

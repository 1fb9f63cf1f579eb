"""HTTP API of the analytics service."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from tousu_shared.auth import Principal, require
from tousu_shared.errors import InvalidInput, NotFound
from tousu_shared.pagination import decode_cursor, encode_cursor
from tousu_shared.same_names import build

from tousu_analytics.adapters import rendering
from tousu_analytics.domain.actions import ImprovementAction, Target
from tousu_analytics.domain.alerts import Alert
from tousu_analytics.entrypoints.schemas import (
    ActionAdvance,
    ActionCreate,
    AlertDismiss,
    AlertLink,
    DenominatorPut,
)
from tousu_analytics.service_layer import management, reports
from tousu_analytics.service_layer.context import AnalyticsContext
from tousu_analytics.service_layer.kpis import DrillRequest, KpiRequest, compute_kpis, drill

Reader = Annotated[Principal, require("analytics:read")]
# Managers (and admins) decide on alerts, run actions and supply denominators.
Manager = Annotated[Principal, require("cases:manage")]
Format = Literal["json", "csv"]

kpis_router = APIRouter(prefix="/v1", tags=["kpis"])
management_router = APIRouter(prefix="/v1", tags=["alerts and improvement actions"])


def _ctx(request: Request) -> AnalyticsContext:
    return request.app.state.analytics


def _month(value: str, field: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}", value):
        raise InvalidInput("give the month as yyyy-mm", field=field)
    try:
        return date.fromisoformat(f"{value}-01")
    except ValueError as exc:
        raise InvalidInput("give the month as yyyy-mm", field=field) from exc


def _kpi_request(
    principal: Principal, start: date, end: date, group_by: str | None, department: str | None
) -> KpiRequest:
    return KpiRequest(start, end, group_by, principal.visible_department(department))


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, inner, out)
    elif isinstance(value, list):
        out[prefix] = "; ".join(f"{item['root_cause']}:{item['count']}" for item in value)
    else:
        out[prefix] = value


class _CsvRows:
    """Turns dict rows into CSV text one row at a time (the header from the first row)."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer: csv.DictWriter | None = None

    def line(self, row: dict[str, Any]) -> str:
        if self._writer is None:
            self._writer = csv.DictWriter(self._buffer, fieldnames=list(row))
            self._writer.writeheader()
        self._writer.writerow(row)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text


def _csv_lines(rows: Iterable[dict[str, Any]]) -> Iterable[str]:
    out = _CsvRows()
    return (out.line(row) for row in rows)


async def _csv_stream(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    out = _CsvRows()
    async for row in rows:
        yield out.line(row)


def kpi_table(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The KPI document as flat rows (totals first): the CSV export's and report's table."""
    rows = []
    for cell in [{"cell": "total", **document["totals"]}, *document["cells"]]:
        flat: dict[str, Any] = {}
        _flatten("", cell, flat)
        rows.append(flat)
    header = list(dict.fromkeys(key for row in rows for key in row))
    return [{key: row.get(key) for key in header} for row in rows]


@kpis_router.get("/kpis")
async def get_kpis(
    request: Request,
    principal: Reader,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to", description="exclusive")],
    group_by: str | None = None,
    department: str | None = None,
    format: Format = "json",
) -> Any:
    """Every KPI of complaints received in [from, to), in total and per ``group_by`` cell."""
    document = await compute_kpis(
        _ctx(request), _kpi_request(principal, start, end, group_by, department)
    )
    if format == "csv":
        return StreamingResponse(
            _csv_lines(kpi_table(document)),
            media_type="text/csv",
            headers={"Content-Disposition": "attachment; filename=kpis.csv"},
        )
    return document


@kpis_router.get("/kpis/drill")
async def drill_down(
    request: Request,
    principal: Reader,
    metric: str,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    group_by: str | None = None,
    cell: str | None = None,
    department: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: Format = "json",
) -> Any:
    """The complaints behind one figure (``metric`` as in the KPI document, e.g.
    ``resolution_rate``, ``sla_compliance.first_response``, ``csat.callback``), each with
    ``counted`` telling whether it is in the figure's numerator. CSV: every row, streamed."""
    kpis = _kpi_request(principal, start, end, group_by, department)
    if format == "csv":
        every = DrillRequest(kpis, metric, cell, limit=None)
        every.split()  # a bad metric is a 422 before the response starts, not a cut stream
        return StreamingResponse(
            _csv_stream(drill(_ctx(request), every)),
            media_type="text/csv",
            headers={"Content-Disposition": "attachment; filename=drill.csv"},
        )
    after = decode_cursor(cursor, uuid.UUID)[0] if cursor else None
    items = [
        item
        async for item in drill(_ctx(request), DrillRequest(kpis, metric, cell, after, limit + 1))
    ]
    next_cursor = (
        encode_cursor(str(items[limit - 1]["complaint_id"])) if len(items) > limit else None
    )
    return {"metric": metric, "cell": cell, "items": items[:limit], "next_cursor": next_cursor}


@kpis_router.put("/denominators/{month}", status_code=204)
async def put_denominator(
    request: Request, principal: Manager, month: str, body: DenominatorPut
) -> None:
    """Orders and customers of a month (optionally per product line), for complaint rates."""
    await management.put_denominator(
        _ctx(request),
        principal,
        management.PutDenominator(
            _month(month, "month"), body.product_line, body.orders, body.customers
        ),
    )


# ---- alerts -------------------------------------------------------------------------------


def alert_read(alert: Alert) -> dict[str, Any]:
    return {
        "id": str(alert.id),
        "series": alert.series.kind,
        "category": alert.series.category,
        "value": alert.series.value,
        "method": alert.method,
        "first_day": alert.first_day.isoformat(),
        "last_day": alert.last_day.isoformat(),
        "state": alert.state,
        "evidence": alert.evidence,
        "action_id": str(alert.action_id) if alert.action_id else None,
        "dismiss_reason": alert.dismiss_reason,
        "history": alert.history,
        "allowed_actions": list(alert.allowed_actions),
        "detected_at": alert.detected_at.isoformat(),
    }


@management_router.get("/alerts")
async def list_alerts(
    request: Request,
    principal: Reader,
    state: str | None = None,
    department: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Systemic-issue alerts, newest first. A department-bound caller sees the alerts of
    their department's series (a product line's series spans departments: not theirs)."""
    visible = principal.visible_department(department)
    after = None
    if cursor:
        after = decode_cursor(cursor, datetime, uuid.UUID)
    async with _ctx(request).uow() as uow:
        alerts = await uow.alerts.list(
            state=state, after=after, limit=limit + 1, department=visible
        )
    page = alerts[:limit]
    next_cursor = (
        encode_cursor(page[-1].detected_at, str(page[-1].id)) if len(alerts) > limit else None
    )
    return {"items": [alert_read(alert) for alert in page], "next_cursor": next_cursor}


@management_router.get("/alerts/{alert_id}")
async def get_alert(request: Request, principal: Reader, alert_id: uuid.UUID) -> dict[str, Any]:
    async with _ctx(request).uow() as uow:
        alert = await uow.alerts.get(alert_id)
    if alert is None or not principal.may_see_department(alert.series.department):
        raise NotFound("no such alert", field="alert_id")
    return alert_read(alert)


async def _decide(
    request: Request, principal: Principal, decision: management.DecideAlert
) -> dict[str, Any]:
    """One home for the three decision endpoints: they differ only in the decision."""
    return alert_read(await management.decide_alert(_ctx(request), principal, decision))


@management_router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge_alert(
    request: Request, principal: Manager, alert_id: uuid.UUID
) -> dict[str, Any]:
    return await _decide(request, principal, management.DecideAlert(alert_id, "acknowledge"))


@management_router.post("/alerts/{alert_id}/link")
async def link_alert(
    request: Request, principal: Manager, alert_id: uuid.UUID, body: AlertLink
) -> dict[str, Any]:
    decision = management.DecideAlert(alert_id, "link", body.action_id)
    return await _decide(request, principal, decision)


@management_router.post("/alerts/{alert_id}/dismiss")
async def dismiss_alert(
    request: Request, principal: Manager, alert_id: uuid.UUID, body: AlertDismiss
) -> dict[str, Any]:
    decision = management.DecideAlert(alert_id, "dismiss", reason=body.reason)
    return await _decide(request, principal, decision)


# ---- improvement actions ----------------------------------------------------------------


def action_read(action: ImprovementAction) -> dict[str, Any]:
    return {
        "id": str(action.id),
        "title": action.title,
        "target": action.target.as_json(),
        "plan": action.plan,
        "owner": action.owner,
        "starts_on": action.starts_on.isoformat(),
        "due_on": action.due_on.isoformat() if action.due_on else None,
        "target_rate": action.target_rate,
        "alert_id": str(action.alert_id) if action.alert_id else None,
        "root_cause": action.root_cause,
        "state": action.state,
        "allowed_next": list(action.allowed_next),
        "history": action.history,
        "version": action.version,
    }


@management_router.post("/improvement-actions", status_code=201)
async def create_action(request: Request, principal: Manager, body: ActionCreate) -> dict[str, Any]:
    """An improvement action in ``plan``, targeting a category, product line or unit."""
    action = await management.create_action(
        _ctx(request),
        principal,
        build(management.CreateAction, body, target=Target(**body.target.model_dump())),
    )
    return action_read(action)


@management_router.get("/improvement-actions/{action_id}")
async def get_action(
    request: Request,
    principal: Reader,
    action_id: uuid.UUID,
    months: Annotated[int, Query(ge=1, le=12)] = 1,
) -> dict[str, Any]:
    """An action with its before/after effect (rate ratio and confidence interval)."""
    ctx = _ctx(request)
    async with ctx.uow() as uow:
        action = await uow.actions.get(action_id)
    if action is None:
        raise NotFound("no such improvement action", field="action_id")
    return {**action_read(action), "effect": await management.action_effect(ctx, action, months)}


@management_router.post("/improvement-actions/{action_id}/advance")
async def advance_action(
    request: Request, principal: Manager, action_id: uuid.UUID, body: ActionAdvance
) -> dict[str, Any]:
    """Move the action along plan → do → check → act."""
    return action_read(
        await management.advance_action(
            _ctx(request), principal, action_id, body.to, body.on, body.note
        )
    )


# ---- the monthly report -----------------------------------------------------------------

reports_router = APIRouter(prefix="/v1/reports", tags=["reports"])
REPORT_FORMATS = {
    "json": "application/json",
    "csv": "text/csv",
    "html": "text/html",
    "pdf": "application/pdf",
}


def _report_format(requested: str | None, accept: str | None) -> str:
    if requested is not None:
        if requested not in REPORT_FORMATS:
            raise InvalidInput(
                f"format must be one of {', '.join(REPORT_FORMATS)}",
                field="format",
                allowed=list(REPORT_FORMATS),
            )
        return requested
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip()
        for name, media_type in REPORT_FORMATS.items():
            if media == media_type:
                return name
    return "json"


@reports_router.get("/monthly/{month}")
async def monthly_report(
    request: Request,
    principal: Reader,
    month: str,
    format: str | None = None,
    lang: Literal["zh", "en"] = "zh",
) -> Any:
    """The 工作简报 of a month: the archived one as it was sent, else built now (marked
    live). ``?format=json|csv|html|pdf`` or the Accept header; ``?lang=en`` for English."""
    chosen = _report_format(format, request.headers.get("accept"))
    first = _month(month, "month")
    ctx = _ctx(request)
    content = await reports.archived(ctx, first) or await reports.build_monthly(ctx, first)
    return await _rendered(content, chosen, lang, f"report-{month}")


@reports_router.post("/monthly/{month}", status_code=201)
async def archive_monthly_report(
    request: Request, principal: Manager, month: str
) -> dict[str, Any]:
    """Archive a month's report now (the worker does it on the first working day)."""
    return await reports.archive(_ctx(request), _month(month, "month"), principal.actor)


async def _rendered(content: dict[str, Any], chosen: str, lang: str, name: str) -> Any:
    if chosen == "json":
        return content
    # Charts and PDF layout are CPU work: off the event loop.
    if chosen == "pdf":
        body: str | bytes = await asyncio.to_thread(rendering.render_pdf, content, lang)
    elif chosen == "html":
        body = await asyncio.to_thread(rendering.render_html, content, lang)
    else:
        body = rendering.render_csv(content, lang)
    headers = {"Content-Disposition": f"inline; filename={name}.{chosen}"}
    return Response(body, media_type=REPORT_FORMATS[chosen], headers=headers)


routers = [kpis_router, management_router, reports_router]

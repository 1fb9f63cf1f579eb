"""Live stream of SLA events (server-sent events) for dashboards without Kafka access.

The stream reads the ``sla_event_log`` table, which every publisher appends to in the same
transaction as the outbox, so any API process streams what every scheduler and consumer
process published. Each SSE id is a stream position; a client that reconnects with
``Last-Event-ID`` resumes right after it, missing nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from tousu_shared.errors import InvalidInput

from tousu_sla.adapters.repository import STREAM_START, StreamPosition
from tousu_sla.entrypoints.dependencies import Context, Reader
from tousu_sla.service_layer import services

router = APIRouter(prefix="/v1", tags=["sla-monitor"])

BATCH = 500


@router.get("/sla-events/stream", response_class=EventSourceResponse)
async def sla_event_stream(
    request: Request,
    principal: Reader,
    ctx: Context,
    department: str | None = None,
    milestone: str | None = None,
    urgency: str | None = None,
    event_type: Annotated[list[str] | None, Query(description="repeat to allow several")] = None,
    from_start: Annotated[
        bool, Query(description="replay the retained log instead of starting at its end")
    ] = False,
    max_events: Annotated[
        int | None, Query(ge=1, description="close the stream after this many events")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """SLA events as they are published: SlaAtRisk, SlaBreached, SlaEscalated, SlaMet, …"""
    filters = {
        "department": principal.visible_department(department),
        "milestone": milestone,
        "urgency": urgency,
    }
    resume_from = None
    if last_event_id:
        try:
            resume_from = StreamPosition.decode(last_event_id)
        except ValueError as error:
            raise InvalidInput(
                "Last-Event-ID is not a position of this stream", field="Last-Event-ID"
            ) from error
    settings = request.app.state.runtime.settings

    async def events() -> AsyncIterator[ServerSentEvent]:
        position = resume_from
        if position is None:
            async with ctx.uow() as uow:
                position = STREAM_START if from_start else await services.stream_tail(uow)
        sent = 0
        while True:
            async with ctx.uow() as uow:
                entries = await services.stream_after(uow, position, limit=BATCH)
            for entry_position, entry in entries:
                # The position advances over entries the filters drop, too.
                position = entry_position
                if not _wanted(entry, filters, event_type):
                    continue
                yield ServerSentEvent(
                    data=orjson.dumps(entry["envelope"]).decode(),
                    event=entry["event_type"],
                    id=entry_position.encode(),
                )
                sent += 1
                if max_events is not None and sent >= max_events:
                    return
            if len(entries) < BATCH:
                await asyncio.sleep(settings.sse_poll_ms / 1000)

    return EventSourceResponse(events(), ping=settings.sse_ping_seconds)


def _wanted(
    entry: Mapping[str, Any],
    filters: Mapping[str, str | None],
    event_types: list[str] | None,
) -> bool:
    if event_types and entry["event_type"] not in event_types:
        return False
    return all(value is None or entry[name] == value for name, value in filters.items())

"""Live stream of SLA events (server-sent events) for dashboards without Kafka access.

The stream reads the ``sla_event_log`` table, which every publisher appends to in the same
transaction as the outbox, so any API process streams what every scheduler and consumer
process published. Each SSE id is a stream position; a client that reconnects with
``Last-Event-ID`` resumes right after it, missing nothing.

One poller per process reads the log for every connected stream (tousu_shared.streams) and
each stream filters the batches by its caller's visibility, so the database sees the same
reads for one dashboard as for a hundred.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from tousu_shared.errors import InvalidInput
from tousu_shared.schemas import ErrorBody
from tousu_shared.streams import Listener, Overflowed, Poller, StreamSlots, held, state_of

from tousu_sla.adapters.repository import STREAM_START, StreamPosition
from tousu_sla.entrypoints.dependencies import Context, Reader
from tousu_sla.service_layer import services
from tousu_sla.service_layer.context import SlaContext

router = APIRouter(prefix="/v1", tags=["sla-monitor"])

BATCH = 500


# The document says what a client reads: an event stream, each event's data one envelope.
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "Server-sent events: `event` is the event type, `id` a stream position for "
            "`Last-Event-ID`, `data` the event's envelope as JSON; comment lines keep the "
            "connection alive."
        ),
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "example": (
                    "event: SlaBreached\nid: 1732-42\n"
                    'data: {"type": "SlaBreached", "subject": "…", "data": {…}}\n\n'
                ),
            }
        },
    },
    429: {
        "model": ErrorBody,
        "description": "This credential already holds its allowed number of streams.",
    },
}


@router.get(
    "/sla-events/stream",
    response_class=EventSourceResponse,
    responses=STREAM_RESPONSES,
)
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
) -> Response:
    """SLA events as they are published: SlaAtRisk, SlaBreached, SlaEscalated, SlaMet, …

    A credential holds at most ``TOUSU_STREAM_MAX_PER_CREDENTIAL`` streams at once; the
    next one is a 429."""
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
    if from_start and resume_from is None:
        resume_from = STREAM_START
    settings = request.app.state.runtime.settings
    poller = event_log_poller(request)

    async def events() -> AsyncIterator[ServerSentEvent]:
        sent = 0
        async with poller.listen(None) as listener:
            # A resuming reader first reads what it missed from the log itself (once, up to
            # now), then follows the shared poll, skipping what it has already sent.
            position = resume_from
            batches = _catch_up(ctx, position) if position is not None else _nothing()
            try:
                async for batch in _then(batches, listener):
                    for entry_position, entry in batch:
                        if position is not None and _key(entry_position) <= _key(position):
                            continue
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
            except Overflowed:
                # Too far behind the shared poll: the client reconnects with Last-Event-ID.
                return

    return held(
        stream_slots(request),
        principal.key_id,
        lambda: EventSourceResponse(events(), ping=settings.sse_ping_seconds),
    )


Batch = list[tuple[StreamPosition, Mapping[str, Any]]]


def event_log_poller(request: Request) -> Poller[None, StreamPosition, Batch]:
    """The process's one reader of the event log, shared by every stream."""
    settings = request.app.state.runtime.settings
    ctx = request.app.state.sla

    async def start(_: None) -> StreamPosition:
        async with ctx.uow() as uow:
            return await services.stream_tail(uow)

    async def poll(_: None, position: StreamPosition) -> tuple[StreamPosition, Batch | None]:
        async with ctx.uow() as uow:
            entries = await services.stream_after(uow, position, limit=BATCH)
        return (entries[-1][0], entries) if entries else (position, None)

    return state_of(
        request.app.state,
        "sla_event_poller",
        lambda: Poller(
            "sla-events", start=start, poll=poll, interval=lambda: settings.sse_poll_ms / 1000
        ),
    )


def stream_slots(request: Request) -> StreamSlots:
    """The streams each credential holds open in this process."""
    settings = request.app.state.runtime.settings
    return state_of(
        request.app.state,
        "sla_stream_slots",
        lambda: StreamSlots("sla-events", lambda: settings.stream_max_per_credential),
    )


async def _catch_up(ctx: SlaContext, position: StreamPosition) -> AsyncIterator[Batch]:
    while True:
        async with ctx.uow() as uow:
            entries = await services.stream_after(uow, position, limit=BATCH)
        if entries:
            yield entries
            position = entries[-1][0]
        if len(entries) < BATCH:
            return


async def _nothing() -> AsyncIterator[Batch]:
    return
    yield


async def _then(first: AsyncIterator[Batch], listener: Listener[Batch]) -> AsyncIterator[Batch]:
    async for batch in first:
        yield batch
    while True:
        yield await listener.next()


def _key(position: StreamPosition) -> tuple[int, int]:
    return (position.xid, position.id)


def _wanted(
    entry: Mapping[str, Any],
    filters: Mapping[str, str | None],
    event_types: list[str] | None,
) -> bool:
    if event_types and entry["event_type"] not in event_types:
        return False
    return all(value is None or entry[name] == value for name, value in filters.items())

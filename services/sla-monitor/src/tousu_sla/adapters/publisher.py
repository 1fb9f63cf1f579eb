"""Publishes SLA events to the outbox (for Kafka) and the event log (for the live stream)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.contracts import Event
from tousu_shared.outbox import Outbox

from tousu_sla.adapters import orm


@dataclass(frozen=True)
class OutgoingEvent:
    """An SLA event and, for timer firings, the key that makes a second firing impossible."""

    event: Event
    firing_key: str | None = None


class SlaEventPublisher:
    """Writes SLA events in the caller's transaction; the relay and the stream read them."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def publish(self, session: AsyncSession, outgoing: Sequence[OutgoingEvent]) -> None:
        """Enqueue every event and append it to the event log, in order."""
        if not outgoing:
            return
        envelopes = await self._outbox.enqueue_many(
            session,
            [(item.event, None) for item in outgoing],
        )
        rows = []
        for item, envelope in zip(outgoing, envelopes, strict=True):
            data = item.event
            rows.append(
                {
                    "event_id": envelope.id,
                    "event_type": envelope.type,
                    "complaint_id": data.complaint_id,
                    "milestone": getattr(data, "milestone", None),
                    "department": getattr(data, "department", None),
                    "urgency": getattr(data, "urgency", None),
                    "firing_key": item.firing_key,
                    "envelope": orjson.loads(envelope.to_bytes()),
                }
            )
        # A repeated firing key violates the unique index and rolls the whole firing back.
        await session.execute(insert(orm.event_log), rows)

"""The SLA monitor's unit of work: its repository, and the live-stream rows of what it publishes."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tousu_shared.audit import AuditEntry, AuditLog
from tousu_shared.contracts import Envelope
from tousu_shared.outbox import Outbox
from tousu_shared.uow import OutgoingMessage, SqlUnitOfWork

from tousu_sla.adapters.repository import EVENT_LOG, CatalogCache, SlaRepository


class SlaUnitOfWork(SqlUnitOfWork):
    """One transaction of the SLA monitor (consumer, scheduler or API request).

    Every event it publishes is also appended to ``sla_event_log``, which the live stream
    reads. A timer firing is published with ``firing_key=...``: the key is unique in the
    log, so a second firing of the same threshold fails the commit and rolls the whole
    firing back (state, outbox rows and all).
    """

    sla: SlaRepository

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        audit_log: AuditLog,
        cache: CatalogCache,
    ) -> None:
        super().__init__(session_factory, outbox, audit_log)
        self._cache = cache

    def bind(self, session: AsyncSession) -> None:
        self.sla = SlaRepository(session, self._cache)

    async def flush(self) -> None:
        await self.sla.write_unsaved()
        await super().flush()

    async def _store(self, messages: list[OutgoingMessage], entries: list[AuditEntry]) -> None:
        await self.sla.write_unsaved()  # the held cases first, then their events
        await super()._store(messages, entries)

    async def _commit(self) -> None:
        await super()._commit()
        # The schedulers sleep on the outbox's commit signal, which the base class sends only
        # for published events; a timer can also move without one (a calendar edit makes its
        # cases due now, a policy's new warning keeps the due time), so send it for those.
        signal = self._outbox.signal
        if self.sla.timers_written and signal is not None:
            signal.poke()

    async def after_enqueue(
        self,
        messages: Sequence[OutgoingMessage],
        envelopes: Sequence[Envelope],
    ) -> None:
        rows = [
            {
                "event_id": envelope.id,
                "event_type": envelope.type,
                "complaint_id": message.event.complaint_id,
                "milestone": envelope.data.get("milestone"),
                "department": envelope.data.get("department"),
                "urgency": envelope.data.get("urgency"),
                "firing_key": message.meta.get("firing_key"),
                "envelope": orjson.Fragment(envelope.to_bytes()),
            }
            for message, envelope in zip(messages, envelopes, strict=True)
        ]
        await self.session.execute(EVENT_LOG.statement, EVENT_LOG.params(rows))

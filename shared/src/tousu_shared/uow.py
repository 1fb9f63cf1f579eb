"""The unit of work: one transaction that commits a service's state, its events and its audit
entries together, or none of them.

This is the platform's core promise in one place. A use case opens a unit of work, changes
aggregates through the repositories the service's subclass binds to it, and commits once.
On commit the unit of work drains the events that tracked aggregates collected (and any it
was handed directly) into the outbox, in the order they happened, writes the audit entries,
and commits the database transaction. Leaving the ``async with`` block without committing
rolls everything back.

Two implementations share the collecting logic:

- :class:`SqlUnitOfWork`, on the service's own Postgres schema (the only one in production);
- :class:`FakeUnitOfWork`, which keeps what would have been committed in lists, so use cases
  can be unit-tested without Kafka or Postgres (each service subclasses it with in-memory
  repositories, as it subclasses the SQL one with real ones).

The inbox consumer opens the same unit of work for every event it applies, so an event's
inbox row, its effect and the events that effect publishes commit together.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tousu_shared.audit import AuditEntry, AuditLog
from tousu_shared.auth import Principal
from tousu_shared.contracts import Envelope, Event
from tousu_shared.outbox import Outbox


@dataclass(frozen=True)
class OutgoingMessage:
    """An event to publish, the logical topic it goes to (None: the event's own) and any
    service-specific facts a subclass stores beside it (e.g. the SLA monitor's firing key)."""

    event: Event
    topic: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


class EventSource(Protocol):
    """An aggregate (or record) that collects the events its changes raise."""

    def pull_messages(self) -> Sequence[OutgoingMessage]:
        """Hand over and forget the events collected so far, oldest first."""
        ...


class UnitOfWorkPort(Protocol):
    """What use cases may call on a unit of work, SQL or fake alike.

    A service's own port extends it with the repositories it binds, e.g.
    ``class IntakeWork(UnitOfWorkPort, Protocol): complaints: ComplaintRepository``.
    """

    def track(self, source: EventSource) -> None: ...

    def publish(self, event: Event, topic: str | None = None, **meta: Any) -> None: ...

    def audit(
        self,
        principal: Principal,
        action: str,
        resource_type: str,
        resource_id: str | None = None,
        *,
        complaint_id: uuid.UUID | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class UnitOfWork:
    """Collects events and audit entries for one transaction; subclasses store and commit."""

    def __init__(self) -> None:
        self._messages: list[OutgoingMessage] = []
        self._audit: list[AuditEntry] = []
        self._sources: list[EventSource] = []
        self._committed = False

    # -- what use cases call ------------------------------------------------------------

    def track(self, source: EventSource) -> None:
        """Publish, at commit, the events this aggregate collects."""
        if not any(existing is source for existing in self._sources):
            self._sources.append(source)

    def publish(self, event: Event, topic: str | None = None, **meta: Any) -> None:
        """Publish one event with this transaction (after what tracked aggregates raised)."""
        self._drain_sources()
        self._messages.append(OutgoingMessage(event, topic, meta))

    def audit(
        self,
        principal: Principal,
        action: str,
        resource_type: str,
        resource_id: str | None = None,
        *,
        complaint_id: uuid.UUID | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an audit entry that commits with this transaction."""
        self._audit.append(
            AuditEntry(
                actor=principal.actor,
                role=principal.role,
                action=action,
                resource_type=resource_type,
                resource_id=resource_id,
                complaint_id=complaint_id,
                details=dict(details or {}),
            )
        )

    async def commit(self) -> None:
        """Store the collected events and audit entries, then commit, all at once."""
        self._drain_sources()
        messages, self._messages = self._messages, []
        entries, self._audit = self._audit, []
        await self._store(messages, entries)
        await self._commit()
        self._committed = True

    @property
    def committed(self) -> bool:
        """Whether :meth:`commit` completed."""
        return self._committed

    # -- context manager ------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._messages.clear()
        self._audit.clear()
        self._sources.clear()
        self._committed = False
        await self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed:
                await self._rollback()
        finally:
            self._messages.clear()
            self._audit.clear()
            self._sources.clear()
            await self._close()

    # -- what implementations provide -------------------------------------------------------

    def _drain_sources(self) -> None:
        for source in self._sources:
            self._messages.extend(source.pull_messages())

    async def _begin(self) -> None:
        raise NotImplementedError

    async def _store(self, messages: list[OutgoingMessage], entries: list[AuditEntry]) -> None:
        raise NotImplementedError

    async def _commit(self) -> None:
        raise NotImplementedError

    async def _rollback(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        """Release resources; nothing to release by default."""


class SqlUnitOfWork(UnitOfWork):
    """A unit of work on the service's own schema: one session, one transaction.

    Subclasses bind their repositories to the session in :meth:`bind`, and may store more
    beside each published event in :meth:`after_enqueue`.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        audit_log: AuditLog,
    ) -> None:
        super().__init__()
        self._session_factory = session_factory
        self._outbox = outbox
        self._audit_log = audit_log
        self._session: AsyncSession | None = None
        self._enqueued = False

    @property
    def session(self) -> AsyncSession:
        """The transaction's session, for repositories and the inbox."""
        if self._session is None:
            raise RuntimeError("the unit of work is used outside its 'async with' block")
        return self._session

    def bind(self, session: AsyncSession) -> None:
        """Create the service's repositories on the new session (nothing by default)."""

    async def after_enqueue(
        self,
        messages: Sequence[OutgoingMessage],
        envelopes: Sequence[Envelope],
    ) -> None:
        """Store service-specific rows beside the enqueued events (nothing by default)."""

    async def flush(self) -> None:
        """Send pending ORM changes, e.g. to see a constraint violation before commit."""
        await self.session.flush()

    async def _begin(self) -> None:
        self._session = self._session_factory()
        await self._session.begin()
        self.bind(self._session)

    async def _store(self, messages: list[OutgoingMessage], entries: list[AuditEntry]) -> None:
        session = self.session
        self._enqueued = bool(messages)
        if messages:
            envelopes = await self._outbox.enqueue_many(
                session,
                [(message.event, message.topic) for message in messages],
            )
            await self.after_enqueue(messages, envelopes)
        await self._audit_log.record_many(session, entries)

    async def _commit(self) -> None:
        await self.session.commit()
        if self._enqueued and self._outbox.signal is not None:
            self._outbox.signal.poke()

    async def _rollback(self) -> None:
        if self._session is not None:
            await self._session.rollback()

    async def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class FakeUnitOfWork(UnitOfWork):
    """A unit of work without a database: what it commits is kept for the test to read.

    ``published`` and ``audited`` hold what committed transactions stored, in order;
    ``commits`` counts them. Services subclass it and set their in-memory repositories in
    ``__init__``, so the state lives across units of work like a database's would.
    """

    def __init__(self) -> None:
        super().__init__()
        self.published: list[OutgoingMessage] = []
        self.audited: list[AuditEntry] = []
        self.commits = 0
        self._pending: tuple[list[OutgoingMessage], list[AuditEntry]] = ([], [])

    def events(self, event_type: type[Event] | None = None) -> list[Event]:
        """The committed events, optionally of one type."""
        return [
            message.event
            for message in self.published
            if event_type is None or isinstance(message.event, event_type)
        ]

    async def _begin(self) -> None:
        self._pending = ([], [])

    async def _store(self, messages: list[OutgoingMessage], entries: list[AuditEntry]) -> None:
        self._pending = (messages, entries)

    async def _commit(self) -> None:
        messages, entries = self._pending
        self.published.extend(messages)
        self.audited.extend(entries)
        self.commits += 1
        self._pending = ([], [])

    async def _rollback(self) -> None:
        self._pending = ([], [])


U = TypeVar("U", bound=SqlUnitOfWork)


def sql_unit_of_work_factory(
    cls: type[U],
    session_factory: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    audit_log: AuditLog,
) -> Callable[[], U]:
    """A factory that gives a new unit of work of the service's type per use."""

    def factory() -> U:
        return cls(session_factory, outbox, audit_log)

    return factory

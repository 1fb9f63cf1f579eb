"""What every SLA use case is given: the service's one context and a unit of work."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self

from tousu_shared.auth import Principal
from tousu_shared.clock import Clock, utc_now
from tousu_shared.contracts import Event

from tousu_sla.adapters.repository import CatalogCache, SlaRepository
from tousu_sla.domain import LATE_AFTER


class SlaUnitOfWork(Protocol):
    """One transaction: the SQL one in production, the fake one in unit tests."""

    sla: SlaRepository

    def publish(self, event: Event, topic: str | None = None, **meta: Any) -> None:
        """Publish an event with this transaction (``firing_key=`` for timer firings)."""
        ...

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
        """Record an audit entry with this transaction."""
        ...

    async def commit(self) -> None:
        """Commit state, events and audit entries together."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@dataclass
class SlaContext:
    """The one context of the SLA monitor process, shared by its API, consumer and scheduler."""

    uow: Callable[[], SlaUnitOfWork]
    clock: Clock = utc_now
    cache: CatalogCache = field(default_factory=CatalogCache)
    # A firing this long after its due time was caught up after downtime (`late=True`).
    late_after: dt.timedelta = LATE_AFTER


class EventNotApplicable(Exception):
    """The domain refused an event for good (e.g. out of order, or a broken calendar)."""


class SchedulingStalled(Exception):
    """Firing a case left a timer due, which would make the scheduler spin on it."""

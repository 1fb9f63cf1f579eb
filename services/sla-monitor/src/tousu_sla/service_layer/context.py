"""What every SLA use case is given: the service's one context and a unit of work."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from tousu_shared.clock import Clock, utc_now
from tousu_shared.uow import UnitOfWorkPort

from tousu_sla.adapters.repository import CatalogCache, SlaRepository
from tousu_sla.domain import LATE_AFTER


class SlaUnitOfWork(UnitOfWorkPort, Protocol):
    """One transaction: the SQL one in production, the fake one in unit tests. Timer
    firings are published with ``firing_key=`` (a second firing of one key rolls back)."""

    sla: SlaRepository


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

"""The one context every routing use case, event handler and endpoint gets (built in bootstrap)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tousu_shared.clock import Clock

from tousu_routing.service_layer.unit_of_work import RoutingWork

# Creates the routed-case topics of departments (the broker does not create topics itself).
DepartmentTopics = Callable[[Sequence[str]], Awaitable[None]]


@dataclass(frozen=True)
class RoutingContext:
    """What routing's use cases need beyond their arguments: units of work, time, topics."""

    uow: Callable[[], RoutingWork]
    clock: Clock
    department_topics: DepartmentTopics

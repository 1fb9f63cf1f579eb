"""Handlers of the events the routing service consumes."""

from __future__ import annotations

from tousu_shared.inbox import Handler
from tousu_shared.runtime import Runtime


def event_handlers(runtime: Runtime) -> dict[str, Handler]:
    """Event type → handler."""
    return {}

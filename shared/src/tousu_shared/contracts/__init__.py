"""Versioned event contracts shared by every service."""

from __future__ import annotations

from tousu_shared.contracts import analytics, case, complaint, feedback, platform, sla
from tousu_shared.contracts.base import CONTENT_TYPE, Envelope, Event

_MODULES = (complaint, case, sla, feedback, analytics, platform)

EVENT_TYPES: dict[tuple[str, int], type[Event]] = {
    (cls.event_type, cls.schema_version): cls
    for module in _MODULES
    for cls in vars(module).values()
    if isinstance(cls, type)
    and issubclass(cls, Event)
    and not cls.__name__.startswith("_")
    and cls.__module__ == module.__name__
}


class UnknownEventType(ValueError):
    """No contract is registered for an envelope's type and schema version."""


def decode(envelope: Envelope) -> Event:
    """The typed event inside an envelope; raises ``ValueError`` when it does not validate."""
    cls = EVENT_TYPES.get((envelope.type, envelope.schema_version))
    if cls is None:
        raise UnknownEventType(f"no contract for {envelope.type} v{envelope.schema_version}")
    return cls.model_validate({"complaint_id": envelope.subject, **envelope.data})


__all__ = ["CONTENT_TYPE", "EVENT_TYPES", "Envelope", "Event", "UnknownEventType", "decode"]

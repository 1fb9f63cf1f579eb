"""Test helpers shared by the SLA monitor's unit and integration tests (on pytest's
pythonpath, as intake_factories is): Shanghai wall times and milestone specs."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from tousu_sla.domain import MilestoneSpec

SHANGHAI = ZoneInfo("Asia/Shanghai")
H = dt.timedelta(hours=1)


def sh(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    """A Shanghai wall time as an aware datetime."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def milestone(
    key: str, target: dt.timedelta | None, stop_event: str, **fields: Any
) -> MilestoneSpec:
    """A milestone spec named after its key, started when the complaint is received and
    stopped by ``stop_event``, unless ``fields`` say otherwise."""
    values: dict[str, Any] = {
        "name": key.replace("_", " ").capitalize(),
        "start_event": "ComplaintReceived",
        "stop_events": (stop_event,),
        **fields,
    }
    return MilestoneSpec(key=key, target=target, **values)

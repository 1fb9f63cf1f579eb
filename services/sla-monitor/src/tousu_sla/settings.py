"""Settings of the sla-monitor service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from tousu_shared.settings import ServiceSettings


class SlaSettings(ServiceSettings):
    """Configuration from ``TOUSU_*`` environment variables."""

    service_name: str = "sla-monitor"
    db_schema: ClassVar[str] = "sla_monitor"
    http_port: int = 8003

    # The scheduler sleeps until the earliest stored timer. Every commit that writes timers
    # (the consumer's and the API's events, a calendar edit making its cases due) sends the
    # schema's commit signal, which wakes the scheduler (at most once per poll, so a busy
    # stack does not make it spin); it looks again after the fallback poll in any case (for
    # a writer outside this service), and polls every `scheduler_poll_ms` while it cannot
    # listen. A breach is seen well inside the 2 s budget.
    scheduler_poll_ms: int = Field(default=250, ge=10)
    scheduler_fallback_poll_ms: int = Field(default=30000, ge=10)
    scheduler_batch_size: int = Field(default=200, ge=1)
    # A case whose firing raised is retried after this long instead of blocking the queue.
    scheduler_retry_after_seconds: float = Field(default=30.0, gt=0)
    # A firing this long after its due time was caught up after downtime (`late=True`).
    late_after_seconds: float = Field(default=5.0, gt=0)
    sse_poll_ms: int = Field(default=250, ge=10)
    sse_ping_seconds: float = Field(default=15.0, ge=0)
    event_log_retention_hours: int = Field(default=24 * 7, ge=1)

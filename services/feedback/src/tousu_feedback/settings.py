"""Settings of the feedback service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from tousu_shared.settings import ServiceSettings


class FeedbackSettings(ServiceSettings):
    """Configuration from ``TOUSU_*`` environment variables."""

    service_name: str = "feedback"
    db_schema: ClassVar[str] = "feedback"
    http_port: int = 8004

    # Where customers open their answer link (this service's public address).
    public_base_url: str = "http://127.0.0.1:8004"
    # Intake's API, and feedback's own credential for it (needs pii:read and
    # complaints:write; deploy/run-services.sh issues one in development).
    intake_url: str = "http://127.0.0.1:8001"
    intake_api_key: SecretStr | None = None

    # The email channel; `make run` points it at the development mail sink.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_sender: str = "Tousu 回访 <feedback@tousu.local>"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_start_tls: bool = False

    # The topic an SMS/WeChat gateway consumes (logical name, namespaced like every topic).
    gateway_topic: str = "feedback.outbound"

    # The scheduler runs a round when feedback commits events (a survey scheduled, an
    # answer), at most once per poll; for what falls due with time alone (reminders,
    # expiries, offers held for the send window) it looks after the fallback poll, and every
    # poll while it cannot listen. At 1 s without listening it was a round a second per
    # idle process (issue #12).
    scheduler_poll_ms: int = Field(default=1000, ge=10)
    scheduler_fallback_poll_ms: int = Field(default=30000, ge=10)
    scheduler_batch_size: int = Field(default=20, ge=1)

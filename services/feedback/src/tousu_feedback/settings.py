"""Settings of the feedback service."""

from __future__ import annotations

from typing import ClassVar

from tousu_shared.settings import ServiceSettings


class FeedbackSettings(ServiceSettings):
    """Configuration from ``TOUSU_*`` environment variables."""

    service_name: str = "feedback"
    db_schema: ClassVar[str] = "feedback"
    http_port: int = 8004

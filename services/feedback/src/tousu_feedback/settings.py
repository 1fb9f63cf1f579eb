"""Settings of the feedback service."""

from __future__ import annotations

from tousu_shared.settings import ServiceSettings


class FeedbackSettings(ServiceSettings):
    """Configuration from ``TOUSU_*`` environment variables."""

    service_name: str = "feedback"
    db_schema: str = "feedback"
    http_port: int = 8004

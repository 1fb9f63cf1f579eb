"""Settings of the analytics service."""

from __future__ import annotations

from typing import ClassVar

from tousu_shared.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    """Configuration from ``TOUSU_*`` environment variables."""

    service_name: str = "analytics"
    db_schema: ClassVar[str] = "analytics"
    http_port: int = 8005

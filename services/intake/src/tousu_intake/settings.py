"""Settings of the intake service."""

from __future__ import annotations

from tousu_shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    """Configuration from ``TOUSU_*`` environment variables."""

    service_name: str = "intake"
    db_schema: str = "intake"
    http_port: int = 8001

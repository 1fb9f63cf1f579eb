"""Settings of the routing service."""

from __future__ import annotations

from typing import ClassVar

from tousu_shared.settings import ServiceSettings


class RoutingSettings(ServiceSettings):
    """Configuration from ``TOUSU_*`` environment variables."""

    service_name: str = "routing"
    db_schema: ClassVar[str] = "routing"
    http_port: int = 8002

"""Settings of the sla-monitor service."""

from __future__ import annotations

from tousu_shared.settings import ServiceSettings


class SlaSettings(ServiceSettings):
    """Configuration from ``TOUSU_*`` environment variables."""

    service_name: str = "sla-monitor"
    db_schema: str = "sla_monitor"
    http_port: int = 8003

"""Tables of the sla-monitor service's own schema."""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData(schema="sla_monitor")

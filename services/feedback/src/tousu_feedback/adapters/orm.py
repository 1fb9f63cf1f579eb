"""Tables of the feedback service's own schema."""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData(schema="feedback")

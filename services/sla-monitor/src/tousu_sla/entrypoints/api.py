"""HTTP API of the sla-monitor service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["sla-monitor"])

"""Settings of the intake service."""

from __future__ import annotations

import base64
import hashlib
from typing import ClassVar

from pydantic import Field, SecretStr
from tousu_shared.settings import ServiceSettings

# Development-only keys, derived from a fixed phrase so a fresh checkout runs without setup.
# Production sets TOUSU_ENCRYPTION_KEYS / TOUSU_BLIND_INDEX_KEY from its secret store.
_DEV_KEY = base64.b64encode(hashlib.sha256(b"tousu-development-only-key").digest()).decode()


class IntakeSettings(ServiceSettings):
    """Configuration from ``TOUSU_*`` environment variables."""

    service_name: str = "intake"
    db_schema: ClassVar[str] = "intake"
    http_port: int = 8001

    # key id → base64 AES-256 key; new rows use the active key, old rows keep theirs.
    encryption_keys: dict[str, SecretStr] = Field(default={"dev-1": SecretStr(_DEV_KEY)})
    encryption_active_key: str = "dev-1"
    blind_index_key: SecretStr = SecretStr(_DEV_KEY)

    public_base_url: str = "http://127.0.0.1:8001"
    max_batch_items: int = Field(default=500, ge=1)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    max_batch_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # The request edge's limit is the largest body any intake endpoint takes (a batch); each
    # endpoint then holds its own, smaller one.
    http_max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    repeat_window_days: int = Field(default=30, ge=1)
    duplicate_window_minutes: int = Field(default=10, ge=0)
    late_record_after_minutes: int = Field(default=120, ge=1)
    classifier_refresh_seconds: float = 2.0

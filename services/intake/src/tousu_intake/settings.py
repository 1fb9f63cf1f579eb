"""Settings of the intake service."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from tousu_shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    """Configuration from ``TOUSU_*`` environment variables."""

    service_name: str = "intake"
    db_schema: ClassVar[str] = "intake"
    http_port: int = 8001

    # No defaults: the keys come from the secret store (tousu_intake.keys says what happens
    # without them). key id → base64 AES-256 key; every key listed can be read, new rows are
    # written under the active one (None: the only key), and the rekey worker moves old rows.
    encryption_keys: dict[str, SecretStr] = Field(default_factory=dict)
    encryption_active_key: str | None = None
    # HMAC key of the blind indexes: a key of its own, never one of the encryption keys.
    blind_index_key: SecretStr | None = None
    # Development mode only (TOUSU_ENVIRONMENT=development): keys read from this file, which
    # is generated with random keys when missing.
    dev_keys_file: Path = Path(".data/intake-keys.env")
    # The rekey worker: rows re-encrypted per transaction, and its pause when none are left.
    rekey_batch_size: int = Field(default=200, ge=1)
    rekey_idle_seconds: float = Field(default=60.0, gt=0)

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
    # Records retention (domain §8): the retention worker anonymises complaints received
    # longer ago than this, in batches of one transaction each, then looks again every
    # interval.
    retention_years: int = Field(default=3, ge=1, le=100)
    retention_batch_size: int = Field(default=200, ge=1)
    retention_interval_seconds: float = Field(default=24 * 3600.0, gt=0)

"""Settings of the analytics service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from tousu_shared.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    """Configuration from ``TOUSU_*`` environment variables."""

    service_name: str = "analytics"
    db_schema: ClassVar[str] = "analytics"
    http_port: int = 8005

    # 投诉金字塔: complaints are the tip; about this many unhappy customers stand behind each.
    pyramid_ratio: float = Field(default=25.0, gt=0)
    # Repeat complaint: the same customer complained within this many days before.
    repeat_window_days: int = Field(default=30, ge=1)

    # Systemic-issue detector (see domain/detection.py and the README).
    detector_interval_seconds: float = Field(default=3600.0, gt=0)
    detector_alpha: float = Field(default=0.01, gt=0, lt=1)  # upper 99% prediction bound
    # Benjamini–Hochberg level across the series tested on one day; 0.005 keeps noise at
    # under one false alarm per 100 series-months (tests/unit/test_detection.py).
    detector_fdr: float = Field(default=0.005, gt=0, lt=1)
    detector_min_count: int = Field(default=5, ge=1)
    detector_history_days: int = Field(default=364, ge=28)

    # Monthly report worker: how often it checks whether a month's report is due.
    report_check_seconds: float = Field(default=3600.0, gt=0)

    # Ops console (/console): how long a sign-in lasts without use, and how often the live
    # board's stream looks at the read model for a change.
    console_session_minutes: int = Field(default=30, ge=1, le=24 * 60)
    console_stream_seconds: float = Field(default=1.0, gt=0)

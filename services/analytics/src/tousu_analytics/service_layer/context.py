"""The one context of the analytics service: its unit-of-work factory, clock and settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tousu_shared.clock import Clock

from tousu_analytics.service_layer.unit_of_work import AnalyticsUnitOfWork
from tousu_analytics.settings import AnalyticsSettings


@dataclass
class AnalyticsContext:
    """What every use case of the service gets."""

    uow: Callable[[], AnalyticsUnitOfWork]
    clock: Clock
    settings: AnalyticsSettings

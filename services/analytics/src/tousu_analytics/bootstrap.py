"""Composition root of the analytics service, used by its process, its API and its tests."""

from __future__ import annotations

from pathlib import Path

from tousu_shared.http import create_app
from tousu_shared.runtime import Runtime, Service, include_routers, session_handlers
from tousu_shared.uow import SqlUnitOfWork
from tousu_shared.topics import consumed_by

from tousu_analytics.entrypoints.api import router
from tousu_analytics.service_layer.handlers import event_handlers
from tousu_analytics.settings import AnalyticsSettings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def bootstrap(settings: AnalyticsSettings | None = None) -> Service:
    """Wire the analytics service; nothing connects until it runs."""
    settings = settings or AnalyticsSettings()
    runtime = Runtime.build(settings)
    app = create_app(
        runtime,
        title="Tousu analytics",
        description="Volumes, rates, SLA compliance and systemic issues.",
    )
    include_routers(app, [router])
    return Service(
        name=settings.service_name,
        runtime=runtime,
        app=app,
        uow=runtime.unit_of_work_factory(SqlUnitOfWork),
        handlers=session_handlers(event_handlers(runtime)),
        consumed_topics=consumed_by(settings.service_name),
        migrations_dir=MIGRATIONS_DIR,
    )

"""Composition root of the analytics service, used by its process, its API and its tests."""

from __future__ import annotations

from pathlib import Path

from tousu_shared.clock import Clock, utc_now
from tousu_shared.http import create_app
from tousu_shared.runtime import Runtime, Service, include_routers
from tousu_shared.topics import consumed_by

from tousu_analytics import console
from tousu_analytics.entrypoints import api
from tousu_analytics.entrypoints.workers import detector_worker, report_worker
from tousu_analytics.service_layer.context import AnalyticsContext
from tousu_analytics.service_layer.handlers import event_handlers
from tousu_analytics.service_layer.unit_of_work import analytics_uow_factory
from tousu_analytics.settings import AnalyticsSettings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def build_context(runtime: Runtime, settings: AnalyticsSettings, clock: Clock) -> AnalyticsContext:
    """The service's context on a runtime."""
    uow = analytics_uow_factory(runtime.session_factory, runtime.outbox, runtime.audit)
    return AnalyticsContext(uow=uow, clock=clock, settings=settings)


def bootstrap(settings: AnalyticsSettings | None = None, clock: Clock = utc_now) -> Service:
    """Wire the analytics service; nothing connects until it runs."""
    settings = settings or AnalyticsSettings()
    runtime = Runtime.build(settings)
    ctx = build_context(runtime, settings, clock)
    app = create_app(
        runtime,
        title="Tousu analytics",
        description="KPIs that drill down to complaints, systemic-issue alerts, PDCA actions "
        "and the monthly report.",
    )
    app.state.analytics = ctx
    include_routers(app, api.routers)
    console.install(app)
    return Service(
        name=settings.service_name,
        runtime=runtime,
        app=app,
        uow=ctx.uow,
        handlers=event_handlers(),
        consumed_topics=consumed_by(settings.service_name),
        migrations_dir=MIGRATIONS_DIR,
        workers={"detector": detector_worker(ctx), "reports": report_worker(ctx)},
    )

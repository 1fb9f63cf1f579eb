"""Composition root of the sla-monitor service, used by its process, its API and its tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tousu_shared.http import create_app
from tousu_shared.runtime import Runtime, Service, include_routers, session_handlers
from tousu_shared.topics import consumed_by
from tousu_shared.uow import SqlUnitOfWork

from tousu_sla.adapters.publisher import SlaEventPublisher
from tousu_sla.entrypoints import api, stream
from tousu_sla.entrypoints.scheduler import SlaScheduler
from tousu_sla.service_layer.handlers import event_handlers
from tousu_sla.service_layer.services import SlaContext
from tousu_sla.settings import SlaSettings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def bootstrap(settings: SlaSettings | None = None) -> Service:
    """Wire the sla-monitor service; nothing connects until it runs."""
    settings = settings or SlaSettings()
    runtime = Runtime.build(settings)
    ctx = SlaContext(
        publisher=SlaEventPublisher(runtime.outbox),
        late_after=dt.timedelta(seconds=settings.late_after_seconds),
    )
    app = create_app(
        runtime,
        title="Tousu sla-monitor",
        description="Every deadline of every case, with warnings and escalation.",
    )
    app.state.sla = ctx
    include_routers(app, [api.router, stream.router])
    scheduler = SlaScheduler(settings, runtime.session_factory, ctx)
    return Service(
        name=settings.service_name,
        runtime=runtime,
        app=app,
        uow=runtime.unit_of_work_factory(SqlUnitOfWork),
        handlers=session_handlers(event_handlers(ctx)),
        consumed_topics=consumed_by(settings.service_name),
        migrations_dir=MIGRATIONS_DIR,
        workers={"scheduler": scheduler.run},
    )

"""Composition root of the sla-monitor service, used by its process, its API and its tests."""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path

from tousu_shared.clock import utc_now
from tousu_shared.http import create_app
from tousu_shared.outbox import CommitListener
from tousu_shared.runtime import Runtime, Service, include_routers

from tousu_sla.adapters.repository import CatalogCache
from tousu_sla.adapters.unit_of_work import SlaUnitOfWork
from tousu_sla.entrypoints import api, catalog_api, stream
from tousu_sla.entrypoints.scheduler import SlaScheduler
from tousu_sla.service_layer.context import SlaContext
from tousu_sla.service_layer.handlers import batch_preparer, event_handlers
from tousu_sla.settings import SlaSettings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def bootstrap(settings: SlaSettings | None = None) -> Service:
    """Wire the sla-monitor service; nothing connects until it runs."""
    settings = settings or SlaSettings()
    runtime = Runtime.build(settings)
    cache = CatalogCache()  # parsed policy sets and calendars, shared by the whole process
    uow = partial(SlaUnitOfWork, runtime.session_factory, runtime.outbox, runtime.audit, cache)
    ctx = SlaContext(
        uow=uow,
        clock=utc_now,
        cache=cache,
        late_after=dt.timedelta(seconds=settings.late_after_seconds),
    )
    app = create_app(
        runtime,
        title="Tousu sla-monitor",
        description="Every deadline of every case, with warnings and escalation.",
    )
    app.state.sla = ctx
    include_routers(app, [api.router, catalog_api.router, stream.router])
    scheduler = SlaScheduler(settings, ctx, CommitListener(settings, runtime.engine))
    # The scheduler is runnable alone (`python -m tousu_sla scheduler`): an api+consumer
    # process needs none.
    return Service.of(
        runtime,
        app,
        uow,
        event_handlers(ctx),
        MIGRATIONS_DIR,
        workers={"scheduler": scheduler.run},
        prepare=batch_preparer(ctx),
    )

"""Composition root of the routing service, used by its process, its API and its tests.

It builds the runtime (infrastructure), the one ``RoutingContext`` every use case, event
handler and endpoint gets, and the ``Service`` the runner starts.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from tousu_shared.clock import utc_now
from tousu_shared.departments import Departments
from tousu_shared.http import create_app
from tousu_shared.runtime import Runtime, Service, include_routers

from tousu_routing.entrypoints.api import install_error_handlers, router
from tousu_routing.service_layer.context import RoutingContext
from tousu_routing.service_layer.departments import (
    announce_departments,
    create_department_topics,
    ensure_department_topics,
)
from tousu_routing.service_layer.handlers import event_handlers
from tousu_routing.service_layer.openings import prepare_openings
from tousu_routing.service_layer.unit_of_work import RoutingUnitOfWork
from tousu_routing.settings import RoutingSettings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def bootstrap(settings: RoutingSettings | None = None) -> Service:
    """Wire the routing service; nothing connects until it runs."""
    settings = settings or RoutingSettings()
    runtime = Runtime.build(settings)
    # Routing owns the departments: the admin API checks credentials against its own table.
    runtime.departments = Departments(runtime.session_factory, f"{settings.db_schema}.department")
    uow = runtime.unit_of_work_factory(RoutingUnitOfWork)
    ctx = RoutingContext(
        uow=uow,
        clock=utc_now,
        department_topics=functools.partial(create_department_topics, settings),
    )
    app = create_app(
        runtime,
        title="Tousu routing",
        description="Departments, routing rules and the case workflow.",
    )
    app.state.routing = ctx
    install_error_handlers(app)
    include_routers(app, [router])

    async def department_topics_exist(stop: asyncio.Event) -> None:
        # The broker does not create topics by itself: the seeded departments (and any whose
        # topic was lost) get theirs before the relay needs them. The runner stops the whole
        # process when a background task returns, so this one then waits for the stop.
        await ensure_department_topics(runtime)
        await stop.wait()

    async def departments_announced(stop: asyncio.Event) -> None:
        # The whole directory, once per start, for the other services' replicas (see
        # announce_departments for why at start rather than in a migration).
        await announce_departments(ctx)
        await stop.wait()

    return Service.of(
        runtime,
        app,
        uow,
        event_handlers(ctx),
        MIGRATIONS_DIR,
        relay_companions=[department_topics_exist, departments_announced],
        prepare=prepare_openings,
    )

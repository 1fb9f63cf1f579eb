"""Composition root of the intake service, used by its process, its API and its tests."""

from __future__ import annotations

import functools
from pathlib import Path

from tousu_shared.clock import Clock, utc_now
from tousu_shared.http import create_app
from tousu_shared.runtime import Runtime, Service, include_routers

from tousu_intake.adapters.rekey import rekey_worker
from tousu_intake.entrypoints import classifier_admin
from tousu_intake.entrypoints.api import router
from tousu_intake.keys import build_cipher
from tousu_intake.service_layer import privacy
from tousu_intake.service_layer.context import ClassifierCache, IntakeContext
from tousu_intake.service_layer.handlers import event_handlers
from tousu_intake.service_layer.unit_of_work import IntakeUnitOfWork
from tousu_intake.settings import IntakeSettings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def bootstrap(settings: IntakeSettings | None = None, *, clock: Clock = utc_now) -> Service:
    """Wire the intake service; nothing connects until it runs. Refuses (ConfigurationError)
    without its keys outside development."""
    settings = settings or IntakeSettings()
    cipher = build_cipher(settings)
    runtime = Runtime.build(settings)
    uow = functools.partial(
        IntakeUnitOfWork, runtime.session_factory, runtime.outbox, runtime.audit, cipher
    )
    # The one context: the API reads it from the app state, the consumer's handlers get the
    # same units of work.
    context = IntakeContext(
        settings=settings,
        uow=uow,
        clock=clock,
        cipher=cipher,
        classifiers=ClassifierCache(uow, settings.classifier_refresh_seconds),
    )
    app = create_app(
        runtime,
        title="Tousu intake",
        description="Every channel's complaints into one durable, classified record.",
    )
    app.state.intake = context
    include_routers(app, [router, classifier_admin.router])
    # rekey: moves contacts written under an older key to the active one (key rotation).
    workers = {
        "rekey": rekey_worker(runtime.session_factory, cipher, settings),
        # retention: anonymises complaints past the retention period (PIPL), then daily.
        "retention": privacy.retention_worker(context),
    }
    return Service.of(runtime, app, uow, event_handlers(), MIGRATIONS_DIR, workers=workers)

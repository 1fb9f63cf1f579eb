"""The stack the security probes attack: all five services, wired by their bootstraps to the
real Kafka and Postgres on a fresh topic namespace, their schemas emptied and the routing
and SLA defaults seeded, each with an admin key."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from tousu_analytics.bootstrap import bootstrap as analytics_bootstrap
from tousu_analytics.settings import AnalyticsSettings
from tousu_feedback.bootstrap import bootstrap as feedback_bootstrap
from tousu_feedback.settings import FeedbackSettings
from tousu_intake.bootstrap import bootstrap as intake_bootstrap
from tousu_intake.settings import IntakeSettings
from tousu_routing.bootstrap import bootstrap as routing_bootstrap
from tousu_routing.service_layer.defaults import ensure_defaults
from tousu_routing.settings import RoutingSettings
from tousu_shared.auth import new_api_key
from tousu_shared.runtime import Service
from tousu_shared.testing import (
    api_client,
    fresh_namespace,
    issue_credential,
    test_settings,
    truncate_schema,
)
from tousu_sla.bootstrap import bootstrap as sla_bootstrap
from tousu_sla.service_layer import catalog
from tousu_sla.settings import SlaSettings

ADMIN_KEY = new_api_key()[1]


@pytest.fixture(scope="module")
def admin_key() -> str:
    """The bootstrap admin key every service of ``stack`` accepts."""
    return ADMIN_KEY


@pytest.fixture(scope="module")
async def stack(kafka_topics: str) -> AsyncIterator[dict[str, Service]]:
    """The five services by name; nothing runs until a test starts an app."""
    namespace = await fresh_namespace("security-")
    common = {"bootstrap_admin_key": ADMIN_KEY, "topic_namespace": namespace}
    intake = intake_bootstrap(test_settings(IntakeSettings, **common))
    routing = routing_bootstrap(test_settings(RoutingSettings, **common))
    sla = sla_bootstrap(test_settings(SlaSettings, **common))
    analytics = analytics_bootstrap(test_settings(AnalyticsSettings, **common))
    for service, schema in [
        (intake, "intake"),
        (routing, "routing"),
        (sla, "sla_monitor"),
        (analytics, "analytics"),
    ]:
        await truncate_schema(service.runtime.engine, schema)
    async with api_client(intake.app, ADMIN_KEY, lifespan=False) as client:
        feedback_key = await issue_credential(client, "service", "feedback-service")
    feedback = feedback_bootstrap(
        test_settings(FeedbackSettings, **common, intake_api_key=feedback_key),
        intake_transport=httpx.ASGITransport(app=intake.app),
    )
    await truncate_schema(feedback.runtime.engine, "feedback")
    async with routing.runtime.session_factory() as session, session.begin():
        await ensure_defaults(db_session=session)
    sla_context = sla.app.state.sla
    async with sla_context.uow() as uow:
        await catalog.seed_defaults(uow, sla_context)
        await uow.commit()
    yield {
        "intake": intake,
        "routing": routing,
        "sla-monitor": sla,
        "feedback": feedback,
        "analytics": analytics,
    }


@pytest.fixture(scope="module")
async def http(
    stack: dict[str, Service], admin_key: str
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """An admin client per service, each app started (lifespan) for the module."""
    async with contextlib.AsyncExitStack() as clients:
        yield {
            name: await clients.enter_async_context(api_client(service.app, admin_key))
            for name, service in stack.items()
        }

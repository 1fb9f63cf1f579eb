"""Fixtures for intake tests against the real database and broker."""

from __future__ import annotations

import pytest
from intake_factories import ADMIN_KEY
from tousu_intake.bootstrap import bootstrap
from tousu_intake.settings import IntakeSettings
from tousu_shared.testing import api_client, test_settings, truncate_schema


@pytest.fixture
async def intake(kafka_topics):
    """The intake service on this run's topics, with an empty schema."""
    service = bootstrap(test_settings(IntakeSettings, bootstrap_admin_key=ADMIN_KEY))
    await truncate_schema(service.runtime.engine, "intake")
    yield service


@pytest.fixture
async def http(intake):
    """An HTTP client speaking to the intake app in-process (lifespan included)."""
    async with api_client(intake.app, ADMIN_KEY, base_url="http://intake") as client:
        yield client

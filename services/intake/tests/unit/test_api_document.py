"""Intake's OpenAPI document names every status its endpoints answer with."""

from __future__ import annotations

from tousu_intake.bootstrap import bootstrap
from tousu_intake.settings import IntakeSettings
from tousu_shared.testing import test_settings


def test_a_replayed_submission_is_a_documented_200():
    # Building the app connects to nothing; the document is made from the routes alone.
    document = bootstrap(test_settings(IntakeSettings)).app.openapi()
    responses = document["paths"]["/v1/complaints"]["post"]["responses"]
    assert {"200", "201"} <= set(responses)
    replay = responses["200"]["content"]["application/json"]["schema"]
    assert replay == responses["201"]["content"]["application/json"]["schema"]
    assert "Idempotency-Key" in responses["200"]["description"]

"""The live stream's OpenAPI entry says what a client reads: an event stream, not JSON."""

from __future__ import annotations

from tousu_shared.testing import test_settings
from tousu_sla.bootstrap import bootstrap
from tousu_sla.settings import SlaSettings


def test_the_stream_is_documented_as_server_sent_events():
    # Building the app connects to nothing; the document is made from the routes alone.
    document = bootstrap(test_settings(SlaSettings)).app.openapi()
    responses = document["paths"]["/v1/sla-events/stream"]["get"]["responses"]
    assert list(responses["200"]["content"]) == ["text/event-stream"]
    assert "Last-Event-ID" in responses["200"]["description"]
    refused = responses["429"]["content"]["application/json"]["schema"]
    assert refused == {"$ref": "#/components/schemas/ErrorBody"}

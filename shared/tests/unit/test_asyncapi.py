"""The committed AsyncAPI document matches the contracts."""

import json
from pathlib import Path

from tousu_shared.asyncapi import asyncapi_document
from tousu_shared.contracts import EVENT_TYPES

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.json"


def test_committed_document_is_current():
    assert json.loads(DOCUMENT.read_text()) == json.loads(json.dumps(asyncapi_document())), (
        "docs/asyncapi.json is stale: run `make asyncapi`"
    )


def test_every_event_has_a_message_and_a_channel():
    document = asyncapi_document()
    messages = document["components"]["messages"]
    assert len(messages) == len(EVENT_TYPES)
    listed = {ref for channel in document["channels"].values() for ref in channel["messages"]}
    assert set(messages) <= listed

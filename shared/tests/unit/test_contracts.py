"""Event contracts and the envelope."""

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from tousu_shared.contracts import EVENT_TYPES, Envelope, UnknownEventType, decode
from tousu_shared.contracts.complaint import CustomerMessageAdded
from tousu_shared.outbox import Outbox, lane_of
from tousu_shared.settings import ServiceSettings


class _Settings(ServiceSettings):
    db_schema = "intake"


def outbox() -> Outbox:
    return Outbox(_Settings(service_name="intake", http_port=1))


def test_envelope_round_trips_with_cloudevents_attribute_names():
    event = CustomerMessageAdded(
        complaint_id=uuid.uuid4(),
        message_id="m1",
        channel="email",
        added_at=datetime.now(UTC),
    )
    envelope = outbox().envelope(event)
    raw = orjson.loads(envelope.to_bytes())
    assert raw["specversion"] == "1.0"
    assert raw["subject"] == str(event.complaint_id)
    assert {"correlationid", "dataschemaversion", "datacontenttype", "source", "time"} <= set(raw)
    assert decode(Envelope.from_bytes(envelope.to_bytes())) == event


@pytest.mark.parametrize(
    ("event_type", "data", "error"),
    [
        pytest.param("Nope", {}, UnknownEventType, id="unknown-type-is-refused"),
        pytest.param(
            "CustomerMessageAdded", {"channel": "pigeon"}, ValueError, id="invalid-payload"
        ),
    ],
)
def test_an_envelope_that_is_no_valid_contract_does_not_decode(event_type, data, error):
    envelope = Envelope(
        source="x",
        type=event_type,
        subject=str(uuid.uuid4()),
        schema_version=1,
        correlation_id="c",
        data=data,
    )
    with pytest.raises(error):
        decode(envelope)


def test_every_contract_is_registered_once_per_version():
    assert ("ComplaintReceived", 1) in EVENT_TYPES
    assert len({cls.event_type for cls in EVENT_TYPES.values()}) == len(EVENT_TYPES)


def test_lane_is_stable_for_a_key():
    key = str(uuid.uuid4())
    assert lane_of(key) == lane_of(key)
    assert 0 <= lane_of(key) < 16

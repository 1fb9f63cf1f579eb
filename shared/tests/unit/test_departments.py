"""Department events, the topic they travel on, and the one rule about credential departments."""

from datetime import UTC, datetime

import pytest
from tousu_shared.contracts import EVENT_TYPES, Envelope, decode
from tousu_shared.contracts.platform import (
    DepartmentDeclared,
    DepartmentRetired,
    department_declared,
    department_retired,
    department_subject,
)
from tousu_shared.departments import Departments, require_department
from tousu_shared.errors import InvalidInput
from tousu_shared.testing import envelope_of
from tousu_shared.topics import TOPICS_BY_NAME, compacted_topic_names

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_department_events_are_keyed_by_their_code_and_round_trip():
    declared = department_declared("quality", "Quality desk", AT)
    assert declared.complaint_id == department_subject("quality")
    assert department_retired("quality", AT).subject == declared.subject
    assert department_subject("quality") != department_subject("billing")
    for event in (declared, department_retired("quality", AT)):
        envelope = Envelope.from_bytes(envelope_of(event).to_bytes())
        assert envelope.subject == declared.subject
        assert decode(envelope) == event
    assert {(DepartmentDeclared.event_type, 1), (DepartmentRetired.event_type, 1)} <= set(
        EVENT_TYPES
    )


def test_an_event_whose_subject_is_not_its_code_is_refused():
    envelope = envelope_of(department_declared("quality", "Quality desk", AT))
    forged = envelope.model_copy(update={"subject": str(department_subject("billing"))})
    with pytest.raises(ValueError, match="subject of their department code"):
        decode(forged)


def test_the_directory_topic_is_routings_compacted_state_stream():
    spec = TOPICS_BY_NAME["platform.departments"]
    assert spec.producer == "routing"
    assert set(spec.consumers) == {"intake", "sla-monitor", "feedback", "analytics"}
    assert compacted_topic_names() == ["platform.departments"]


class _Known(Departments):
    def __init__(self, *codes: str) -> None:
        self._known = sorted(codes)

    async def exists(self, code: str) -> bool:
        return code in self._known

    async def codes(self) -> list[str]:
        return self._known


async def test_an_unknown_department_is_refused_naming_the_field_and_the_known_ones():
    await require_department(_Known("general", "quality"), "quality")
    with pytest.raises(InvalidInput) as refused:
        await require_department(_Known("quality", "general"), "qualty")
    assert refused.value.status_code == 422
    assert refused.value.body() == {
        "error": "validation_failed",
        "message": "there is no department 'qualty'",
        "field": "department",
        "allowed": ["general", "quality"],
    }

"""Event contract base and the CloudEvents envelope that carries every event on Kafka."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field


class Event(BaseModel):
    """A fact that happened to one complaint; payloads never hold personal data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    # Logical topic name from the topic registry; the outbox may override it (department topics).
    topic: ClassVar[str]

    complaint_id: uuid.UUID

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_type" not in cls.__dict__:
            cls.event_type = cls.__name__

    @property
    def subject(self) -> str:
        """The Kafka key and CloudEvents subject: the complaint id."""
        return str(self.complaint_id)


class Envelope(BaseModel):
    """CloudEvents 1.0 structured-mode envelope plus correlation, causation and schema version."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    source: str
    type: str
    subject: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: Literal["application/json"] = "application/json"
    # CloudEvents extension attribute names are lower-case alphanumerics only.
    schema_version: int = Field(alias="dataschemaversion")
    correlation_id: str = Field(alias="correlationid")
    causation_id: str | None = Field(default=None, alias="causationid")
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        """Serialise as CloudEvents JSON."""
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        """Parse CloudEvents JSON; raises ``ValueError`` on anything malformed."""
        return cls.model_validate_json(raw)


CONTENT_TYPE = "application/cloudevents+json"

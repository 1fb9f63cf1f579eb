"""Platform events every service consumes: credentials (its own copy of who may call it) and
routing's department directory (which departments a credential may be bound to)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from tousu_shared.contracts.base import Event

# "service": another Tousu service calling an API (feedback reading contact details);
# "monitoring": a metrics scraper (Prometheus), which may read /metrics and nothing else.
Role = Literal[
    "channel_frontend",
    "agent",
    "manager",
    "ops",
    "analyst",
    "privacy_officer",
    "admin",
    "service",
    "monitoring",
]

# Credential events are not about a complaint; they share one subject so they stay ordered.
CREDENTIALS_SUBJECT = uuid.UUID(int=0)


class _CredentialEvent(Event):
    """A credential event; its issuer signs it (``tousu_shared.signing``) and every consumer
    refuses one whose signature is missing or wrong."""

    topic: ClassVar[str] = "platform.credentials"

    key_id: str
    # Hex HMAC-SHA256 over the other fields; optional in the schema so that an unsigned
    # event still decodes and is refused as unsigned, not as malformed.
    signature: str | None = None

    @field_validator("complaint_id")
    @classmethod
    def _fixed_subject(cls, value: uuid.UUID) -> uuid.UUID:
        if value != CREDENTIALS_SUBJECT:
            raise ValueError("credential events use the fixed credentials subject")
        return value


# The base under a public name, for the signer; the registry skips it (its class name is private).
CredentialEvent = _CredentialEvent


class CredentialIssued(_CredentialEvent):
    """A credential was issued; only the hash of its secret travels."""

    secret_sha256: str
    name: str
    role: Role
    department: str | None = None
    scopes: list[str]
    issued_at: datetime
    issued_by: str


class CredentialRevoked(_CredentialEvent):
    """A credential was revoked."""

    revoked_at: datetime
    revoked_by: str


# Department events are keyed by department code: their subject (the Kafka key, and the
# uuid field every event carries) is a name-based UUID of the code, so one department's
# events share a partition and an outbox lane (kept in order) and compaction keeps the
# latest state of each department.
DEPARTMENTS_NAMESPACE = uuid.UUID("5b8f2c1e-4d0a-4f3e-9c71-6a2d8e0b7f15")


def department_subject(code: str) -> uuid.UUID:
    """The subject (and Kafka key) of one department's events."""
    return uuid.uuid5(DEPARTMENTS_NAMESPACE, code)


class _DepartmentEvent(Event):
    """A change of routing's department directory, carrying the department's whole state,
    so applying it twice or out of turn is harmless (``as_of`` orders the states)."""

    topic: ClassVar[str] = "platform.departments"

    code: str = Field(min_length=1, max_length=64)
    # When routing made the change (its clock); a replica keeps the latest state it saw.
    as_of: datetime

    @model_validator(mode="after")
    def _subject_is_the_code(self) -> _DepartmentEvent:
        if self.complaint_id != department_subject(self.code):
            raise ValueError("department events use the subject of their department code")
        return self


class DepartmentDeclared(_DepartmentEvent):
    """A department exists (created, renamed, or announced by routing at start)."""

    name: str = Field(min_length=1, max_length=200)


class DepartmentRetired(_DepartmentEvent):
    """A department was deleted."""


def department_declared(code: str, name: str, as_of: datetime) -> DepartmentDeclared:
    """The event that declares a department's current state."""
    return DepartmentDeclared(
        complaint_id=department_subject(code), code=code, name=name, as_of=as_of
    )


def department_retired(code: str, as_of: datetime) -> DepartmentRetired:
    """The event that retires a department."""
    return DepartmentRetired(complaint_id=department_subject(code), code=code, as_of=as_of)

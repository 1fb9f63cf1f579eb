"""Credential events every service consumes to keep its own copy of who may call it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import field_validator

from tousu_shared.contracts.base import Event

# "service": another Tousu service calling an API (feedback reading contact details).
Role = Literal[
    "channel_frontend", "agent", "manager", "ops", "analyst", "privacy_officer", "admin", "service"
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

"""Signatures on credential events: only an issuer's key makes a credential that services accept.

Anyone who can write to ``platform.credentials`` could otherwise mint an admin key that
every service replicates. Each credential event therefore carries an HMAC-SHA256 over a
canonical encoding of its fields, keyed with ``TOUSU_CREDENTIAL_SIGNING_KEY``; every
service issues credentials, so every service holds the key (a symmetric key is enough:
there is no party that may verify without being allowed to issue). Consumers verify before
they apply an event and refuse one that is unsigned or whose signature does not match.

The canonical form is independent of how the event travelled: keys sorted, times in UTC
with microseconds, UUIDs as strings, and the event type in front, so a signature for a
revocation can never pass as one for an issue.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from tousu_shared.contracts.platform import CredentialEvent

_DOMAIN = b"tousu.credential-event.v1\n"
E = TypeVar("E", bound=CredentialEvent)


def _canonical_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_canonical_value(item) for item in value]
    return value


def canonical_form(event: CredentialEvent) -> bytes:
    """The bytes a credential event's signature covers: every field but the signature."""
    fields = {
        name: _canonical_value(value)
        for name, value in event.model_dump(exclude={"signature"}).items()
    }
    fields["event_type"] = event.event_type
    return _DOMAIN + orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)


class CredentialSigner:
    """Signs credential events and checks their signatures with one key."""

    def __init__(self, key: str) -> None:
        if len(key) < 32:
            raise ValueError("the credential signing key needs at least 32 characters")
        self._key = key.encode()

    def signature(self, event: CredentialEvent) -> str:
        """The hex HMAC-SHA256 of the event's canonical form."""
        return hmac.new(self._key, canonical_form(event), hashlib.sha256).hexdigest()

    def sign(self, event: E) -> E:
        """The event with its signature."""
        return event.model_copy(update={"signature": self.signature(event)})

    def verify(self, event: CredentialEvent) -> bool:
        """Whether the event carries this key's signature over its fields."""
        if not event.signature:
            return False
        return hmac.compare_digest(event.signature, self.signature(event))

"""Signatures on credential events: canonical form, and any change to a field breaks them."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from tousu_shared.auth import CredentialCreate, credential_issued_event, credential_revoked_event
from tousu_shared.contracts import Envelope, decode
from tousu_shared.contracts.platform import CredentialIssued
from tousu_shared.signing import CredentialSigner, canonical_form
from tousu_shared.testing import envelope_of

KEY = "k" * 32
SIGNER = CredentialSigner(KEY)


def issued() -> CredentialIssued:
    event, _ = credential_issued_event(
        CredentialCreate(name="desk", role="agent", department="quality"),
        issued_by="admin:root",
    )
    return SIGNER.sign(event)


def test_a_signed_event_verifies_after_travelling_through_its_envelope():
    event = issued()
    travelled = decode(Envelope.from_bytes(envelope_of(event).to_bytes()))
    assert isinstance(travelled, CredentialIssued)
    assert SIGNER.verify(travelled)


def test_the_canonical_form_does_not_depend_on_time_zone_or_key_order():
    event = issued()
    beijing = timezone(timedelta(hours=8))
    shifted = event.model_copy(update={"issued_at": event.issued_at.astimezone(beijing)})
    assert canonical_form(shifted) == canonical_form(event)
    assert SIGNER.verify(shifted)
    assert b'"event_type":"CredentialIssued"' in canonical_form(event)
    assert b"signature" not in canonical_form(event)


@pytest.mark.parametrize(
    "changes",
    [
        {"key_id": "0123456789ab"},
        {"secret_sha256": "0" * 64},
        {"name": "someone else"},
        {"role": "admin"},
        {"department": "billing"},
        {"department": None},
        {"scopes": ["credentials:admin"]},
        {"issued_at": datetime(2020, 1, 1, tzinfo=UTC)},
        {"issued_by": "admin:other"},
    ],
    ids=lambda changes: next(iter(changes)),
)
def test_changing_any_field_breaks_the_signature(changes):
    event = issued()
    assert not SIGNER.verify(event.model_copy(update=changes))


def test_unsigned_or_otherwise_keyed_events_are_refused():
    event = issued()
    assert not SIGNER.verify(event.model_copy(update={"signature": None}))
    assert not SIGNER.verify(event.model_copy(update={"signature": ""}))
    assert not CredentialSigner("x" * 32).verify(event)


def test_a_revocation_signature_covers_its_fields_and_type():
    revoked = SIGNER.sign(credential_revoked_event("abc123abc123", revoked_by="admin:root"))
    assert SIGNER.verify(revoked)
    assert not SIGNER.verify(revoked.model_copy(update={"key_id": "ffffffffffff"}))
    assert not SIGNER.verify(revoked.model_copy(update={"revoked_by": "ops:x"}))


def test_a_short_key_is_refused():
    with pytest.raises(ValueError):
        CredentialSigner("short")

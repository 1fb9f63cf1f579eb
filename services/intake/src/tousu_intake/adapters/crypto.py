"""Field encryption (AES-GCM, key id per row so keys rotate) and blind indexes (HMAC-SHA256)."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tousu_intake.domain.complaint import CustomerKeys

_NONCE_BYTES = 12


class UnknownKey(LookupError):
    """A row was encrypted with a key this process does not hold."""


class FieldCipher:
    """Encrypts personal data fields; the row and field name are bound in as associated data."""

    def __init__(self, keys: dict[str, bytes], active_key_id: str, index_key: bytes) -> None:
        if active_key_id not in keys:
            raise ValueError(f"active key {active_key_id!r} is not among the keys")
        for key_id, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"key {key_id!r} must be 32 bytes (AES-256)")
        self._aead = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active_key_id = active_key_id
        self._index_key = index_key

    def encrypt(self, plaintext: str | None, *, row_id: str, field: str) -> bytes | None:
        """Ciphertext (nonce + sealed bytes) under the active key, or None for no value."""
        if plaintext is None:
            return None
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[self.active_key_id].encrypt(
            nonce,
            plaintext.encode(),
            f"{row_id}:{field}".encode(),
        )
        return nonce + sealed

    def decrypt(
        self, ciphertext: bytes | None, *, key_id: str, row_id: str, field: str
    ) -> str | None:
        """The plaintext of a field encrypted under ``key_id``."""
        if ciphertext is None:
            return None
        aead = self._aead.get(key_id)
        if aead is None:
            raise UnknownKey(key_id)
        nonce, sealed = ciphertext[:_NONCE_BYTES], ciphertext[_NONCE_BYTES:]
        return aead.decrypt(nonce, sealed, f"{row_id}:{field}".encode()).decode()

    def blind_index(self, kind: str, normalised_value: str | None) -> bytes | None:
        """A keyed hash that finds equal values without decrypting (kind keeps phone ≠ email)."""
        if normalised_value is None:
            return None
        return hmac.new(
            self._index_key, f"{kind}:{normalised_value}".encode(), hashlib.sha256
        ).digest()

    def customer_keys(
        self,
        *,
        phone: str | None = None,
        email: str | None = None,
        address: str | None = None,
    ) -> CustomerKeys:
        """The blind indexes that find a customer's complaints (contacts already normalised)."""
        return CustomerKeys(
            phone=self.blind_index("phone", phone),
            email=self.blind_index("email", email),
            address=self.blind_index("address", address),
        )

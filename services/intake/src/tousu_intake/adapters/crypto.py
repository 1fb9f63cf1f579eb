"""Field encryption (AES-GCM, key id per row so keys rotate) and blind indexes (HMAC-SHA256).

The keys come from the configuration (tousu_intake.keys); none is in the code.
"""

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
            # One key for both would let whoever holds the index key decrypt, and the other
            # way round: each must be useless without the other.
            if hmac.compare_digest(key, index_key):
                raise ValueError(f"the blind-index key must differ from encryption key {key_id!r}")
        if len(index_key) < 32:
            raise ValueError("the blind-index key must be at least 32 bytes")
        self._aead = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active_key_id = active_key_id
        self.key_ids = frozenset(keys)
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

    def reencrypt(
        self, ciphertext: bytes | None, *, key_id: str, row_id: str, field: str
    ) -> bytes | None:
        """A field encrypted under ``key_id``, sealed again under the active key."""
        clear = self.decrypt(ciphertext, key_id=key_id, row_id=row_id, field=field)
        return self.encrypt(clear, row_id=row_id, field=field)

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

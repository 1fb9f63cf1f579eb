"""Intake's keys: from the settings (the secret store), or in development from a local file of
random keys, never from the code. Without them intake refuses to start.

``python -m tousu_intake.keys dev-file --file .data/intake-keys.env`` writes that file (mode
600, once) as shell ``export`` lines, which ``make run`` sources for intake;
``python -m tousu_intake.keys new-key`` prints a fresh key for a rotation.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values
from tousu_shared.settings import ConfigurationError

from tousu_intake.adapters.crypto import FieldCipher
from tousu_intake.settings import IntakeSettings

ENCRYPTION_KEYS = "TOUSU_ENCRYPTION_KEYS"
ACTIVE_KEY = "TOUSU_ENCRYPTION_ACTIVE_KEY"
BLIND_INDEX_KEY = "TOUSU_BLIND_INDEX_KEY"
_KEY_BYTES = 32


def new_key() -> str:
    """A random AES-256 / HMAC key, base64 as the settings take it."""
    return base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()


def new_key_env() -> dict[str, str]:
    """A complete set of fresh keys as environment variables (one encryption key, its own
    blind-index key)."""
    key_id = f"local-{secrets.token_hex(3)}"
    return {
        ENCRYPTION_KEYS: json.dumps({key_id: new_key()}),
        ACTIVE_KEY: key_id,
        BLIND_INDEX_KEY: new_key(),
    }


def build_cipher(settings: IntakeSettings) -> FieldCipher:
    """The field cipher of the configured keys; ConfigurationError names what is wrong."""
    if settings.encryption_keys or settings.blind_index_key is not None:
        return _cipher(
            {key_id: key.get_secret_value() for key_id, key in settings.encryption_keys.items()},
            settings.encryption_active_key,
            settings.blind_index_key.get_secret_value() if settings.blind_index_key else None,
        )
    if settings.environment == "development":
        values = dotenv_values(ensure_dev_file(settings.dev_keys_file))
        return _cipher(
            json.loads(values.get(ENCRYPTION_KEYS) or "{}"),
            values.get(ACTIVE_KEY),
            values.get(BLIND_INDEX_KEY),
        )
    raise ConfigurationError(
        f"{ENCRYPTION_KEYS} and {BLIND_INDEX_KEY} are not set: intake stores personal data "
        f"only under keys from the secret store ({ENCRYPTION_KEYS}: JSON object of key id to "
        f"base64 32-byte key; {BLIND_INDEX_KEY}: another such key). For local work set "
        "TOUSU_ENVIRONMENT=development to use generated keys instead."
    )


def _cipher(keys: Mapping[str, str], active: str | None, index_key: str | None) -> FieldCipher:
    if not keys:
        raise ConfigurationError(f"{ENCRYPTION_KEYS} is not set (or empty)")
    if index_key is None:
        raise ConfigurationError(f"{BLIND_INDEX_KEY} is not set")
    if not active:  # unset, or set empty (docker-compose passes an unset variable as "")
        if len(keys) > 1:
            raise ConfigurationError(
                f"{ACTIVE_KEY} is not set: with several keys in {ENCRYPTION_KEYS} it must name "
                "the one new rows are written under"
            )
        (active,) = keys
    if active not in keys:
        raise ConfigurationError(f"{ACTIVE_KEY}={active!r} is not a key id in {ENCRYPTION_KEYS}")
    decoded = {
        key_id: _decode(f"{ENCRYPTION_KEYS}[{key_id!r}]", key) for key_id, key in keys.items()
    }
    index = _decode(BLIND_INDEX_KEY, index_key)
    try:
        return FieldCipher(decoded, active, index)
    except ValueError as error:
        raise ConfigurationError(f"{BLIND_INDEX_KEY} / {ENCRYPTION_KEYS}: {error}") from error


def _decode(setting: str, value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ConfigurationError(f"{setting} is not base64") from error
    if len(key) != _KEY_BYTES:
        raise ConfigurationError(f"{setting} must be {_KEY_BYTES} bytes (base64 of {len(key)})")
    return key


def ensure_dev_file(path: Path) -> Path:
    """The local key file, written with fresh random keys (mode 600) if it does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            "# Intake's local keys, generated at random (never commit, never use in production).",
            *(f"export {name}='{value}'" for name, value in new_key_env().items()),
        ]
        # O_EXCL: two processes starting at once keep the first one's keys.
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m tousu_intake.keys``."""
    parser = argparse.ArgumentParser(prog="python -m tousu_intake.keys")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev-file", help="write the local key file unless it exists")
    dev.add_argument("--file", type=Path, required=True)
    commands.add_parser("new-key", help="print a fresh random key (base64, 32 bytes)")
    args = parser.parse_args(argv)
    if args.command == "dev-file":
        print(ensure_dev_file(args.file))
    else:
        print(new_key())


if __name__ == "__main__":
    main()

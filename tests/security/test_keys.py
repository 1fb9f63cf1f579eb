"""Issue #13, hole 3: personal data under a key that was in the source code.

The attack: take a plain dump of ``intake.complaint_contact`` and decrypt it with what the
code holds. Refused: there is no key in the code (intake refuses to start without configured
keys outside development), the blind-index key is a key of its own, and keys rotate.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tousu_intake
import tousu_shared
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from intake_factories import ADMIN_KEY, complaint_body
from sqlalchemy import text
from tousu_intake.adapters.rekey import rekey_contacts
from tousu_intake.bootstrap import bootstrap
from tousu_intake.keys import new_key
from tousu_intake.settings import IntakeSettings
from tousu_shared.runtime import Service
from tousu_shared.testing import api_client, test_settings, truncate_schema, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.security]

PHONE = "13800138000"  # complaint_body's phone, normalised


def intake_with(keys: dict[str, str], active: str, index_key: str, **overrides) -> Service:
    return bootstrap(
        test_settings(
            IntakeSettings,
            bootstrap_admin_key=ADMIN_KEY,
            encryption_keys=keys,
            encryption_active_key=active,
            blind_index_key=index_key,
            **overrides,
        )
    )


async def dump_contacts(service: Service) -> list[dict]:
    """What a pg_dump of the contact table holds."""
    async with service.runtime.engine.connect() as conn:
        rows = await conn.execute(text("SELECT * FROM intake.complaint_contact"))
        return [dict(row._mapping) for row in rows]


def key_candidates(source: str) -> Iterator[bytes]:
    """Every 32-byte value a module's literals could give as a key: the literal itself, its
    base64 decoding, and its SHA-256 (how the old development key came from a phrase)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            raw = node.value.encode() if isinstance(node.value, str) else node.value
            yield hashlib.sha256(raw).digest()
            if len(raw) == 32:
                yield raw
            try:
                decoded = base64.b64decode(raw, validate=True)
            except ValueError:
                continue
            if len(decoded) == 32:
                yield decoded


def code_key_candidates() -> set[bytes]:
    return {
        key
        for package in (tousu_intake, tousu_shared)
        for path in Path(package.__file__).parent.rglob("*.py")
        for key in key_candidates(path.read_text())
    }


# What intake's settings held before: the probe finds that key (so it would have won then).
OLD_SETTINGS = '_DEV_KEY = b64encode(hashlib.sha256(b"tousu-development-only-key").digest())'


async def test_a_dump_of_the_contacts_cannot_be_decrypted_with_anything_in_the_code(kafka_topics):
    service = bootstrap(test_settings(IntakeSettings, bootstrap_admin_key=ADMIN_KEY))
    await truncate_schema(service.runtime.engine, "intake")
    async with api_client(service.app, ADMIN_KEY, base_url="http://intake") as http:
        assert (await http.post("/v1/complaints", json=complaint_body())).status_code == 201
    (row,) = await dump_contacts(service)
    await service.runtime.close()
    assert PHONE.encode() not in row["phone_ct"]

    old_key = hashlib.sha256(b"tousu-development-only-key").digest()
    assert old_key in set(key_candidates(OLD_SETTINGS))
    candidates = code_key_candidates()
    assert old_key not in candidates
    for key in candidates:
        for field in ("name", "phone", "email"):
            sealed = row[f"{field}_ct"]
            with pytest.raises(InvalidTag):
                AESGCM(key).decrypt(
                    sealed[:12], sealed[12:], f"{row['complaint_id']}:{field}".encode()
                )


def start_intake(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("TOUSU_")}
    return subprocess.run(
        [sys.executable, "-m", "tousu_intake", "api"],
        env={**clean, "TOUSU_HTTP_PORT": "1", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_intake_refuses_to_start_without_keys_outside_development(tmp_path):
    result = start_intake({}, tmp_path)
    assert result.returncode != 0
    assert "refusing to start: TOUSU_ENCRYPTION_KEYS and TOUSU_BLIND_INDEX_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # and made no key file of its own


def test_intake_refuses_the_same_key_for_encryption_and_blind_index(tmp_path):
    key = new_key()
    result = start_intake(
        {"TOUSU_ENCRYPTION_KEYS": f'{{"k1": "{key}"}}', "TOUSU_BLIND_INDEX_KEY": key}, tmp_path
    )
    assert result.returncode != 0
    assert "blind-index key must differ from encryption key 'k1'" in result.stderr


async def contacts_read(service: Service, ids: list[str]) -> list[str]:
    async with api_client(service.app, ADMIN_KEY, base_url="http://intake") as http:
        replies = [await http.get(f"/v1/complaints/{i}?include=contact") for i in ids]
    assert all(reply.status_code == 200 for reply in replies), [r.text for r in replies]
    return [reply.json()["contact"]["phone"] for reply in replies]


async def test_keys_rotate_and_old_rows_move_to_the_new_key(kafka_topics):
    key_a, key_b, index_key = new_key(), new_key(), new_key()
    under_a = intake_with({"A": key_a}, "A", index_key)
    await truncate_schema(under_a.runtime.engine, "intake")
    async with api_client(under_a.app, ADMIN_KEY, base_url="http://intake") as http:
        ids = [
            (await http.post("/v1/complaints", json=complaint_body())).json()["id"]
            for _ in range(5)
        ]
    await under_a.runtime.close()

    # Rotation: B becomes active, A stays readable while the rekey role moves the rows.
    both = intake_with({"A": key_a, "B": key_b}, "B", index_key, rekey_batch_size=2)
    assert await contacts_read(both, ids) == [PHONE] * 5
    stop = asyncio.Event()
    worker = asyncio.create_task(both.workers["rekey"](stop))

    async def all_under_b() -> bool:
        return {row["key_id"] for row in await dump_contacts(both)} == {"B"}

    await wait_for(all_under_b)
    stop.set()
    await worker
    cipher = both.app.state.intake.cipher
    # Again: nothing left to move, nothing changes.
    before = await dump_contacts(both)
    assert await rekey_contacts(both.runtime.session_factory, cipher, 2) == 0
    assert await dump_contacts(both) == before
    assert await contacts_read(both, ids) == [PHONE] * 5
    await both.runtime.close()

    # A is gone from the configuration: everything still reads.
    only_b = intake_with({"B": key_b}, "B", index_key)
    assert await contacts_read(only_b, ids) == [PHONE] * 5
    await only_b.runtime.close()

"""Intake's keys: from the settings or a generated development file, never from the code."""

from __future__ import annotations

import json
import stat

import pytest
from tousu_intake.keys import build_cipher, new_key, new_key_env
from tousu_intake.settings import IntakeSettings
from tousu_shared.settings import ConfigurationError


@pytest.fixture(autouse=True)
def no_key_environment(monkeypatch):
    """Whatever the shell running the tests exports, these tests set the keys themselves."""
    for name in ("ENCRYPTION_KEYS", "ENCRYPTION_ACTIVE_KEY", "BLIND_INDEX_KEY", "ENVIRONMENT"):
        monkeypatch.delenv(f"TOUSU_{name}", raising=False)


def settings(**values) -> IntakeSettings:
    return IntakeSettings(**values)


def test_without_keys_outside_development_intake_refuses_naming_the_settings():
    with pytest.raises(ConfigurationError, match="TOUSU_ENCRYPTION_KEYS.*TOUSU_BLIND_INDEX_KEY"):
        build_cipher(settings())


def test_an_encryption_key_without_its_blind_index_key_is_refused():
    with pytest.raises(ConfigurationError, match="TOUSU_BLIND_INDEX_KEY is not set"):
        build_cipher(settings(encryption_keys={"a": new_key()}))


def test_the_blind_index_key_may_not_be_an_encryption_key():
    key = new_key()
    with pytest.raises(ConfigurationError, match="blind-index key must differ"):
        build_cipher(
            settings(
                encryption_keys={"a": new_key(), "b": key},
                blind_index_key=key,
                encryption_active_key="a",
            )
        )


@pytest.mark.parametrize(
    ("keys", "active", "message"),
    [
        ({"a": "not base64!"}, None, r"TOUSU_ENCRYPTION_KEYS\['a'\] is not base64"),
        ({"a": "c2hvcnQ="}, None, r"must be 32 bytes"),
        ({"a": new_key(), "b": new_key()}, None, "TOUSU_ENCRYPTION_ACTIVE_KEY is not set"),
        ({"a": new_key()}, "z", "'z' is not a key id"),
    ],
)
def test_malformed_keys_are_refused_by_name(keys, active, message):
    with pytest.raises(ConfigurationError, match=message):
        build_cipher(
            settings(encryption_keys=keys, encryption_active_key=active, blind_index_key=new_key())
        )


def test_several_keys_are_readable_and_the_active_one_writes():
    old, new = new_key(), new_key()
    index = new_key()
    before = build_cipher(settings(encryption_keys={"old": old}, blind_index_key=index))
    sealed = before.encrypt("王先生", row_id="r", field="name")
    after = build_cipher(
        settings(
            encryption_keys={"old": old, "new": new},
            encryption_active_key="new",
            blind_index_key=index,
        )
    )
    assert after.active_key_id == "new"
    assert after.decrypt(sealed, key_id="old", row_id="r", field="name") == "王先生"
    moved = after.reencrypt(sealed, key_id="old", row_id="r", field="name")
    assert after.decrypt(moved, key_id="new", row_id="r", field="name") == "王先生"


def test_development_mode_generates_a_private_key_file_once(tmp_path):
    path = tmp_path / "keys" / "intake-keys.env"
    dev = settings(environment="development", dev_keys_file=path)
    first = build_cipher(dev)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sealed = first.encrypt("13800138000", row_id="r", field="phone")
    second = build_cipher(dev)  # the next start reads the same keys
    assert second.decrypt(sealed, key_id=first.active_key_id, row_id="r", field="phone") == (
        "13800138000"
    )
    assert first.blind_index("phone", "x") == second.blind_index("phone", "x")


def test_fresh_keys_are_random_and_separate():
    one, two = new_key_env(), new_key_env()
    assert one != two
    (encryption_key,) = json.loads(one["TOUSU_ENCRYPTION_KEYS"]).values()
    assert encryption_key != one["TOUSU_BLIND_INDEX_KEY"]

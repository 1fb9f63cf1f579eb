"""Which roles a ``python -m tousu_<service>`` command starts (run-services.sh relies on it)."""

from tousu_shared.runner import roles_to_run

ROLES = ("api", "consumer", "relay", "rekey", "retention")


def test_all_starts_every_role() -> None:
    assert roles_to_run(ROLES, "all", []) == ROLES


def test_all_without_the_relay_leaves_it_to_a_process_of_its_own() -> None:
    assert roles_to_run(ROLES, "all", ["relay"]) == ("api", "consumer", "rekey", "retention")


def test_without_is_repeatable() -> None:
    assert roles_to_run(ROLES, "all", ["relay", "api"]) == ("consumer", "rekey", "retention")


def test_one_role_starts_just_that_role() -> None:
    assert roles_to_run(ROLES, "relay", []) == ("relay",)

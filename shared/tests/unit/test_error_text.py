"""What an error says where others read it (logs, dead-letter headers): a database error
never its text, which quotes the values the server refused."""

from __future__ import annotations

from asyncpg.exceptions import InvalidTextRepresentationError
from sqlalchemy.exc import DBAPIError
from tousu_shared.logging import describe_error


def test_a_database_error_is_described_by_its_type_and_sqlstate_only():
    secret = 'invalid input syntax for type integer: "13812345678 li@example.com"'
    error = DBAPIError("INSERT …", {"phone": "13812345678"}, InvalidTextRepresentationError(secret))
    described = describe_error(error)
    assert described == "DBAPIError: sqlstate=22P02 (text withheld)"
    assert "138" not in describe_error(InvalidTextRepresentationError(secret))


def test_any_other_error_keeps_its_message():
    assert describe_error(ValueError("no case for complaint 42")) == (
        "ValueError: no case for complaint 42"
    )

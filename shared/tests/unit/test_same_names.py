"""Values copied by the names two records share."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from tousu_shared.same_names import build, by_name, field_names


@dataclass
class Record:
    id: int
    name: str
    tags: list[str] = field(default_factory=list)
    note: str | None = None
    _private: list[str] = field(default_factory=list, repr=False)


def test_by_name_takes_keys_of_a_mapping_and_attributes_of_an_object() -> None:
    assert by_name(("id", "name"), {"id": 1, "name": "a", "other": 0}) == {"id": 1, "name": "a"}
    assert by_name(("id", "name"), SimpleNamespace(id=2, name="b")) == {"id": 2, "name": "b"}


def test_by_name_uses_the_given_values_instead_and_adds_given_names() -> None:
    source = {"id": 1, "name": "a"}
    assert by_name(("id", "name"), source, name="b", extra=3) == {"id": 1, "name": "b", "extra": 3}


def test_by_name_refuses_a_name_the_source_does_not_have() -> None:
    with pytest.raises(KeyError, match="'name'"):
        by_name(("id", "name"), {"id": 1})


def test_field_names_are_the_constructor_s_in_order_but_those_omitted() -> None:
    assert field_names(Record) == ("id", "name", "tags", "note", "_private")
    assert field_names(Record, omit=("_private", "tags")) == ("id", "name", "note")


def test_build_takes_same_named_values_and_keeps_defaults_for_the_rest() -> None:
    tags = ["x"]
    record = build(Record, {"id": 1, "name": "a", "tags": tags, "column": "ignored"}, note="n")
    assert record == Record(id=1, name="a", tags=tags, note="n")
    assert record.tags is tags  # passed as it is, not copied
    assert build(Record, SimpleNamespace(id=2, name="b")) == Record(id=2, name="b")


def test_build_without_a_required_field_is_the_dataclass_s_own_error() -> None:
    with pytest.raises(TypeError):
        build(Record, {"id": 1})

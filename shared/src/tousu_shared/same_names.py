"""Copying values between records by the names they share.

A repository reads a row into a domain record and writes the record back as column values;
a use case turns a command into an entity; an event carries what an entity holds. Where
the two sides name a value alike, spelling out ``name=source.name`` once per field writes
the field list a second (and third) time. These helpers take the shared names as they
are, so only the values that are renamed or converted are written out, beside the call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING = object()


def _value(source: object, name: str) -> Any:
    if isinstance(source, Mapping):
        return source.get(name, _MISSING)
    return getattr(source, name, _MISSING)


def by_name(names: Iterable[str], source: object, /, **given: Any) -> dict[str, Any]:
    """``{name: source's name}`` for each of ``names``, except those in ``given``, whose
    values are used instead (``given`` may also add names).

    ``source`` is a mapping (its keys) or any object (its attributes). Each name must be
    there: a missing one is a :class:`KeyError`, never silently left out.
    """
    values: dict[str, Any] = {}
    for name in names:
        if name in given:
            continue
        value = _value(source, name)
        if value is _MISSING:
            raise KeyError(f"{type(source).__name__} has no {name!r}")
        values[name] = value
    return {**values, **given}


def field_names(cls: type[Any], /, *, omit: Iterable[str] = ()) -> tuple[str, ...]:
    """The names a dataclass's constructor takes, in declaration order, but ``omit``."""
    left_out = set(omit)
    return tuple(f.name for f in dataclasses.fields(cls) if f.init and f.name not in left_out)


def build(cls: type[T], source: object, /, **given: Any) -> T:
    """A ``cls`` (a dataclass) whose fields come from ``given`` or else from the
    same-named keys (of a mapping) or attributes (of an object) of ``source``.

    A field with a default that neither has keeps its default; a field without one that
    neither has is the dataclass's own :class:`TypeError`. Unlike
    :func:`dataclasses.asdict` nothing is copied deeply: values are passed as they are.
    """
    values = dict(given)
    for name in field_names(cls):
        if name not in values:
            value = _value(source, name)
            if value is not _MISSING:
                values[name] = value
    return cls(**values)

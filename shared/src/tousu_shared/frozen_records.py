"""Bases whose subclasses are frozen dataclasses: commands, events and outcomes.

A domain declares many small immutable records (a routing command per use case, an event
per thing that happened, an SLA outcome per change of a milestone). Subclassing one of
these bases makes the class a dataclass exactly as the decorator would, so the choice
(frozen; keyword-only or not) is written once for the family instead of above every class:

- ``FrozenRecord``: ``@dataclass(frozen=True)``; fields may be given by position.
- ``KeywordRecord``: ``@dataclass(frozen=True, kw_only=True)``; fields by keyword only.

Every subclass, at any depth, is processed, so a subclass must not carry ``@dataclass``
itself. ``dataclasses.fields``, ``replace``, equality and hashing work as on any frozen
dataclass, and type checkers read the subclasses as dataclasses (PEP 681).
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field
from typing import Any, dataclass_transform


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
class FrozenRecord:
    """Every subclass is a ``@dataclass(frozen=True)``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(frozen=True)(cls)


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(field, Field))
class KeywordRecord:
    """Every subclass is a ``@dataclass(frozen=True, kw_only=True)``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(frozen=True, kw_only=True)(cls)

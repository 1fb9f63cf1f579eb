"""Departments and their members: who serves a department at each level of its chain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tousu_routing.domain.errors import InvalidDepartment
from tousu_routing.domain.vocabulary import Availability, HandlerLevel


@dataclass(frozen=True)
class Member:
    """A person who can handle cases, at one level of the management chain."""

    id: str
    name: str
    department: str
    level: HandlerLevel
    availability: Availability = Availability.AVAILABLE
    open_cases: int = 0
    manager_id: str | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise InvalidDepartment("a member needs an id")
        object.__setattr__(self, "level", HandlerLevel(self.level))
        object.__setattr__(self, "availability", Availability(self.availability))
        if self.open_cases < 0:
            raise InvalidDepartment(f"member {self.id!r} cannot have a negative case load")

    @property
    def is_available(self) -> bool:
        """True when the member can take a new case (not absent, not off shift)."""
        return self.availability is Availability.AVAILABLE


@dataclass(frozen=True)
class Department:
    """A unit that owns cases, with the members who serve it at each level of its chain.

    ``chain`` lists member ids per level (agent → department_manager → director →
    executive). A member may serve several departments (a director over two departments,
    one company executive), so the chain, not ``Member.department``, says who can take a
    department's cases.
    """

    code: str
    name: str
    chain: Mapping[HandlerLevel, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.code or not str(self.code).strip():
            raise InvalidDepartment("a department needs a code")
        normalised: dict[HandlerLevel, tuple[str, ...]] = {level: () for level in HandlerLevel}
        seen: dict[str, HandlerLevel] = {}
        for raw_level, member_ids in dict(self.chain).items():
            try:
                level = HandlerLevel(raw_level)
            except ValueError:
                raise InvalidDepartment(
                    f"department {self.code!r}: unknown level {raw_level!r}"
                ) from None
            ids = tuple(member_ids)
            for member_id in ids:
                if member_id in seen:
                    raise InvalidDepartment(
                        f"department {self.code!r}: member {member_id!r} is listed at both "
                        f"{seen[member_id]} and {level}"
                    )
                seen[member_id] = level
            normalised[level] = ids
        object.__setattr__(self, "chain", MappingProxyType(normalised))

    def members_at(self, level: HandlerLevel) -> tuple[str, ...]:
        """Ids of the members listed at exactly ``level``."""
        return self.chain[HandlerLevel(level)]

    def level_of(self, member_id: str) -> HandlerLevel | None:
        """The level at which the member serves this department, or None if they don't."""
        for level, ids in self.chain.items():
            if member_id in ids:
                return level
        return None

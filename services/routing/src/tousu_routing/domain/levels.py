"""Handler levels: the level a severity calls for, and what conflict of interest demands."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tousu_routing.domain.departments import Member
from tousu_routing.domain.rules import ComplaintSubject
from tousu_routing.domain.vocabulary import HandlerLevel, Severity, normalise, severity_of

SEVERITY_HANDLER_LEVEL: Mapping[Severity, HandlerLevel] = MappingProxyType(
    {
        Severity.MINOR: HandlerLevel.AGENT,
        Severity.GENERAL: HandlerLevel.AGENT,
        Severity.SERIOUS: HandlerLevel.DEPARTMENT_MANAGER,
        Severity.MAJOR: HandlerLevel.DIRECTOR,
    }
)


@dataclass(frozen=True)
class HandlerLevelDecision:
    """The level a severity calls for and whether management must be told."""

    level: HandlerLevel
    notify_management: bool
    reason: str


def handler_level_for(severity: Severity | str) -> HandlerLevelDecision:
    """Minor/general → agent, serious → department manager, major → director + notice."""
    severity = severity_of(severity)
    level = SEVERITY_HANDLER_LEVEL[severity]
    notify = severity is Severity.MAJOR
    reason = f"severity {severity} is handled at {level} level"
    if notify:
        reason += ", and management is notified"
    return HandlerLevelDecision(level=level, notify_management=notify, reason=reason)


@dataclass(frozen=True)
class ConflictCheck:
    """What the conflict-of-interest rule demands: a floor for the level and people to skip."""

    minimum_level: HandlerLevel | None
    excluded_member_ids: frozenset[str]
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        """All reasons in one sentence, or a note that there is no conflict."""
        return "; ".join(self.reasons) if self.reasons else "no conflict of interest"

    def apply_to(self, level: HandlerLevel) -> HandlerLevel:
        """The higher of ``level`` and the conflict's minimum level."""
        if self.minimum_level is None:
            return level
        return max(level, self.minimum_level)


def check_conflict_of_interest(
    subject: ComplaintSubject,
    routed_department: str,
    members: Iterable[Member],
) -> ConflictCheck:
    """Work out what a complaint about a staff member or unit demands of routing.

    Member subject (``subject.member_id``), wherever the case is routed:
      * the member is never assigned the case (excluded);
      * the handler level is at least their manager's level: the level of the member named
        by ``manager_id`` if that member is known, and in any case at least one level above
        the subject's own (bad roster data must not let a peer handle it). A subject not in
        ``members`` is treated as an agent, so the floor is department_manager. An
        executive subject leaves the floor at executive: another executive handles it.
    Unit subject (``subject.department_code``):
      * if the case is routed to that same department, the handler level is at least
        department_manager (the unit's manager), so the unit's agents never handle a
        complaint about their own unit;
      * if it is routed elsewhere, there is no conflict.
    Both may apply; the higher floor wins.
    """
    by_id = {m.id: m for m in members}
    floor: HandlerLevel | None = None
    excluded: set[str] = set()
    reasons: list[str] = []

    if subject.member_id is not None:
        excluded.add(subject.member_id)
        person = by_id.get(subject.member_id)
        own_level = person.level if person else HandlerLevel.AGENT
        manager = by_id.get(person.manager_id) if person and person.manager_id else None
        manager_level = max(own_level.one_up(), manager.level) if manager else own_level.one_up()
        floor = manager_level
        reasons.append(
            f"complaint is about member {subject.member_id}: they are excluded and the case "
            f"is handled at {manager_level} level or above"
        )

    if subject.department_code is not None and normalise(subject.department_code) == normalise(
        routed_department
    ):
        unit_floor = HandlerLevel.DEPARTMENT_MANAGER
        floor = unit_floor if floor is None else max(floor, unit_floor)
        reasons.append(
            f"complaint is about unit {routed_department}, which handles it: the case is "
            f"handled at {unit_floor} level or above"
        )

    return ConflictCheck(
        minimum_level=floor, excluded_member_ids=frozenset(excluded), reasons=tuple(reasons)
    )

"""Assignment: the least-loaded available member at a level, and the whole routing plan."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tousu_routing.domain.departments import Department, Member
from tousu_routing.domain.errors import UnknownDepartment
from tousu_routing.domain.levels import (
    ConflictCheck,
    check_conflict_of_interest,
    handler_level_for,
)
from tousu_routing.domain.rules import RoutingDecision, RoutingFacts, RuleSet
from tousu_routing.domain.vocabulary import HandlerLevel


@dataclass(frozen=True)
class AssignmentDecision:
    """Who gets the case, or that it waits in the department's queue at that level."""

    department: str
    level: HandlerLevel
    assignee_id: str | None
    reason: str
    # (member id, why they were passed over), for the audit trail and the dry run.
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def is_queued(self) -> bool:
        """True when nobody qualified and the case waits in the department queue."""
        return self.assignee_id is None


def choose_assignee(
    department: Department,
    level: HandlerLevel,
    members: Iterable[Member],
    conflicted_ids: Iterable[str] = (),
) -> AssignmentDecision:
    """Pick the least-loaded available member serving ``department`` at exactly ``level``.

    Candidates are the members listed in the department's chain at that level whose own
    ``level`` is that level too. Absent, off-shift and conflicted members are skipped, and
    so are listed ids with no ``Member`` record. Ties on load go to the smallest member id,
    so the choice is deterministic. If nobody qualifies, ``assignee_id`` is None: the case
    waits in the department queue at that level, and ``reason`` says why.
    """
    level = HandlerLevel(level)
    by_id = {m.id: m for m in members}
    conflicted = frozenset(conflicted_ids)
    candidates: list[Member] = []
    skipped: list[tuple[str, str]] = []
    for member_id in sorted(department.members_at(level)):
        member = by_id.get(member_id)
        if member is None:
            skipped.append((member_id, "no member record"))
        elif member_id in conflicted:
            skipped.append((member_id, "conflict of interest"))
        elif member.level != level:
            skipped.append((member_id, f"their level is {member.level}"))
        elif not member.is_available:
            skipped.append((member_id, str(member.availability)))
        else:
            candidates.append(member)

    if candidates:
        chosen = min(candidates, key=lambda m: (m.open_cases, m.id))
        reason = (
            f"assigned to {chosen.id}: least loaded available {level} in {department.code} "
            f"({chosen.open_cases} open case(s))"
        )
        return AssignmentDecision(department.code, level, chosen.id, reason, tuple(skipped))

    if skipped:
        why = "; ".join(f"{member_id}: {what}" for member_id, what in skipped)
        reason = f"no available {level} in {department.code} ({why})"
    else:
        reason = f"nobody serves {department.code} at {level} level"
    reason += f"; the case waits in the {department.code} queue at {level} level"
    return AssignmentDecision(department.code, level, None, reason, tuple(skipped))


@dataclass(frozen=True)
class RoutingPlan:
    """Everything routing decided for a new case, with the reasons, before the case exists."""

    decision: RoutingDecision
    handler_level: HandlerLevel
    notify_management: bool
    conflict: ConflictCheck
    assignment: AssignmentDecision

    @property
    def department(self) -> str:
        """The department the case goes to."""
        return self.decision.department

    @property
    def reason(self) -> str:
        """The whole explanation: rule, level, conflict of interest and assignment."""
        parts = [self.decision.reason, f"handler level {self.handler_level}"]
        if self.conflict.reasons:
            parts.append(self.conflict.reason)
        parts.append(self.assignment.reason)
        return "; ".join(parts)


def plan_routing(
    facts: RoutingFacts,
    rule_set: RuleSet,
    departments: Mapping[str, Department],
    members: Iterable[Member],
) -> RoutingPlan:
    """Route a complaint: department by rules, level by severity and conflict, then a person."""
    members = tuple(members)
    decision = rule_set.route(facts)
    department = departments.get(decision.department)
    if department is None:
        raise UnknownDepartment(decision.department)
    by_severity = handler_level_for(facts.severity)
    conflict = check_conflict_of_interest(facts.subject, department.code, members)
    level = conflict.apply_to(by_severity.level)
    assignment = choose_assignee(department, level, members, conflict.excluded_member_ids)
    return RoutingPlan(
        decision=decision,
        handler_level=level,
        notify_management=by_severity.notify_management,
        conflict=conflict,
        assignment=assignment,
    )

"""Routing domain: departments, routing rules, handler levels, assignment, and the Case aggregate.

Pure Python, no I/O: callers pass in the current time (``now``) and every fact the domain
needs. The ``Case`` aggregate enforces the workflow (``TRANSITIONS``) and collects the
domain events it produced in ``case.events`` for the service layer to publish.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from tousu_routing.domain import events
from tousu_routing.domain.errors import (
    ConflictOfInterest,
    IllegalTransition,
    InvalidCommand,
    InvalidDepartment,
    InvalidOccurredAt,
    InvalidRule,
    MissingResolutionDetails,
    UnknownDepartment,
    VersionConflict,
)

# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------


class HandlerLevel(StrEnum):
    """A rung of a department's management chain, ordered from agent up to executive."""

    AGENT = "agent"
    DEPARTMENT_MANAGER = "department_manager"
    DIRECTOR = "director"
    EXECUTIVE = "executive"

    @property
    def rank(self) -> int:
        """Position in the chain: agent is 0, executive is 3."""
        return _LEVEL_ORDER.index(self)

    @property
    def is_top(self) -> bool:
        """True for the highest level, which escalation cannot go beyond."""
        return self is _LEVEL_ORDER[-1]

    def one_up(self) -> HandlerLevel:
        """The next level up the chain; the top level stays where it is."""
        return _LEVEL_ORDER[min(self.rank + 1, len(_LEVEL_ORDER) - 1)]

    # StrEnum would otherwise compare alphabetically ("director" < "agent" is False, but
    # "executive" < "director" is False too); levels must compare by rank.
    def __lt__(self, other: object) -> bool:
        if not isinstance(other, HandlerLevel):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, HandlerLevel):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, HandlerLevel):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, HandlerLevel):
            return NotImplemented
        return self.rank >= other.rank


_LEVEL_ORDER: tuple[HandlerLevel, ...] = tuple(HandlerLevel)


class Severity(StrEnum):
    """How bad the complaint is; decides the handler level."""

    MINOR = "minor"
    GENERAL = "general"
    SERIOUS = "serious"
    MAJOR = "major"


class Availability(StrEnum):
    """Whether a member can take new cases right now."""

    AVAILABLE = "available"
    ABSENT = "absent"
    OFF_SHIFT = "off_shift"


class CaseState(StrEnum):
    """Where a case rests in the workflow.

    There is no resting ``reopened`` state: reopening is recorded as a ``reopen``
    transition in the history and the case goes straight back to ``investigating``.
    ``received`` belongs to intake; a case starts life ``routed``.
    """

    ROUTED = "routed"
    ACKNOWLEDGED = "acknowledged"
    INVESTIGATING = "investigating"
    SOLUTION_PROPOSED = "solution_proposed"
    RESOLVED = "resolved"
    CLOSED = "closed"


class CaseAction(StrEnum):
    """Something done to a case; every history entry names one."""

    ROUTE = "route"
    ACKNOWLEDGE = "acknowledge"
    RESPOND_TO_CUSTOMER = "respond_to_customer"
    START_INVESTIGATION = "start_investigation"
    RECORD_ROOT_CAUSE = "record_root_cause"
    PROPOSE_SOLUTION = "propose_solution"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    TRANSFER = "transfer"
    ESCALATE = "escalate"
    ADD_NOTE = "add_note"
    ASSIGN = "assign"


class EscalationReason(StrEnum):
    """Why a case was escalated."""

    SLA_BREACH = "sla_breach"
    MANUAL = "manual"
    # A person raised the severity, and the new severity calls for a higher level.
    RECLASSIFICATION = "reclassification"


class ClosureReason(StrEnum):
    """Why a case was closed (matches the shared ``CaseClosed.close_reason``)."""

    CUSTOMER_CONFIRMED = "customer_confirmed"
    NO_RESPONSE = "no_response"
    MANUAL = "manual"


# Closed vocabularies from domain.md §1-2: a rule naming anything else is a typo that would
# silently never match, so rule validation refuses it. Facts are not checked: an unknown
# value simply matches no specific rule and falls through to the default queue.
CATEGORIES = frozenset(
    {
        "product_quality",
        "service_attitude",
        "price_dispute",
        "delivery_delay",
        "after_sales",
        "handling_timeliness",
        "information_accuracy",
        "policy_execution",
        "other",
    }
)
CHANNELS = frozenset(
    {
        "phone",
        "email",
        "web_form",
        "online_chat",
        "social_media",
        "letter",
        "on_site",
        "survey",
        "app",
    }
)
CUSTOMER_TIERS = frozenset({"vip", "regular"})
RISK_FLAGS = frozenset({"safety", "fraud", "data_leak", "legal", "media"})
SEVERITIES = frozenset(s.value for s in Severity)


def _normalise(value: object) -> str | None:
    """Trim and case-fold a code so 'East ' and 'east' match; blank becomes None."""
    if value is None:
        return None
    text = str(value).strip().casefold()
    return text or None


def _require_text(value: str | None, what: str) -> str:
    """Return the stripped text, refusing a missing or blank value."""
    if value is None or not str(value).strip():
        raise InvalidCommand(f"{what} is required")
    return str(value).strip()


# --------------------------------------------------------------------------------------
# Departments and members
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Routing rules
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComplaintSubject:
    """The staff member and/or unit (department code) the complaint is about, if any."""

    member_id: str | None = None
    department_code: str | None = None

    @property
    def is_empty(self) -> bool:
        """True when the complaint is not about anyone in particular."""
        return self.member_id is None and self.department_code is None


@dataclass(frozen=True)
class RoutingFacts:
    """What routing knows about a complaint: its classification and what it is about.

    Codes are trimmed and case-folded on construction so that rules match regardless of
    spelling case.
    """

    severity: Severity
    category: str | None = None
    product_line: str | None = None
    region: str | None = None
    channel: str | None = None
    customer_tier: str | None = None
    risk_flags: frozenset[str] = frozenset()
    subject: ComplaintSubject = ComplaintSubject()

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "severity", Severity(_normalise(self.severity)))
        except ValueError:
            raise InvalidCommand(
                f"unknown severity {self.severity!r}; expected one of {sorted(SEVERITIES)}"
            ) from None
        for name in ("category", "product_line", "region", "channel", "customer_tier"):
            object.__setattr__(self, name, _normalise(getattr(self, name)))
        flags = frozenset(f for f in (_normalise(x) for x in self.risk_flags) if f)
        object.__setattr__(self, "risk_flags", flags)
        if self.subject is None:
            object.__setattr__(self, "subject", ComplaintSubject())


# Each criterion: the facts field it reads and, where the vocabulary is closed, the values
# a rule may name.
_SCALAR_CRITERIA: dict[str, frozenset[str] | None] = {
    "category": CATEGORIES,
    "product_line": None,
    "region": None,
    "channel": CHANNELS,
    "severity": SEVERITIES,
    "customer_tier": CUSTOMER_TIERS,
}
CRITERIA_FIELDS: tuple[str, ...] = (*_SCALAR_CRITERIA, "risk_flags")


@dataclass(frozen=True)
class RuleCriteria:
    """What a rule matches on; each criterion is an optional list of accepted values.

    ``None`` means "any value". A list means the fact must be one of the values; for
    ``risk_flags`` the complaint must carry at least one of the listed flags (any-of).
    An empty list is refused: it would match nothing, which is never what an editor means.
    All given criteria must hold for the rule to match.
    """

    category: frozenset[str] | None = None
    product_line: frozenset[str] | None = None
    region: frozenset[str] | None = None
    channel: frozenset[str] | None = None
    severity: frozenset[str] | None = None
    customer_tier: frozenset[str] | None = None
    risk_flags: frozenset[str] | None = None

    def __post_init__(self) -> None:
        vocabularies = {**_SCALAR_CRITERIA, "risk_flags": RISK_FLAGS}
        for name, vocabulary in vocabularies.items():
            raw = getattr(self, name)
            if raw is None:
                continue
            if isinstance(raw, str):
                # A bare string would otherwise be split into characters.
                raw = [raw]
            values = frozenset(v for v in (_normalise(x) for x in raw) if v)
            if not values:
                raise InvalidRule(
                    f"criterion {name!r} is an empty list; leave it out to match any value"
                )
            if vocabulary is not None and not values <= vocabulary:
                unknown = sorted(values - vocabulary)
                raise InvalidRule(
                    f"criterion {name!r} names unknown value(s) {unknown}; "
                    f"expected some of {sorted(vocabulary)}"
                )
            object.__setattr__(self, name, values)

    @property
    def is_empty(self) -> bool:
        """True when no criterion is set, i.e. the rule matches every complaint."""
        return all(getattr(self, name) is None for name in CRITERIA_FIELDS)


@dataclass(frozen=True)
class RuleEvaluation:
    """How one rule fared against a complaint: which criteria held and which did not."""

    rule: RoutingRule
    matched: tuple[str, ...]
    failed: tuple[str, ...]

    @property
    def is_match(self) -> bool:
        """True when the rule is enabled and every criterion it sets held."""
        return self.rule.enabled and not self.failed


@dataclass(frozen=True)
class RoutingRule:
    """One ordered routing rule: if the criteria match, the case goes to ``target_department``."""

    id: str
    order: int
    name: str
    target_department: str
    criteria: RuleCriteria = RuleCriteria()
    enabled: bool = True

    def __post_init__(self) -> None:
        for what in ("id", "name", "target_department"):
            if not str(getattr(self, what) or "").strip():
                raise InvalidRule(f"a routing rule needs a {what}")
        if isinstance(self.order, bool) or not isinstance(self.order, int):
            raise InvalidRule(f"rule {self.id!r}: order must be an integer")

    @property
    def is_catch_all(self) -> bool:
        """True when the rule sets no criteria: it is a default queue."""
        return self.criteria.is_empty

    def evaluate(self, facts: RoutingFacts) -> RuleEvaluation:
        """Check every criterion against the facts, keeping a readable note for each."""
        matched: list[str] = []
        failed: list[str] = []
        for name in _SCALAR_CRITERIA:
            accepted = getattr(self.criteria, name)
            if accepted is None:
                continue
            value = getattr(facts, name)
            value = value.value if isinstance(value, Severity) else value
            note = f"{name}={value if value is not None else '(none)'}"
            (matched if value in accepted else failed).append(note)
        if self.criteria.risk_flags is not None:
            common = sorted(facts.risk_flags & self.criteria.risk_flags)
            if common:
                matched.append(f"risk_flags include {','.join(common)}")
            else:
                failed.append(
                    f"risk_flags has none of {','.join(sorted(self.criteria.risk_flags))}"
                )
        return RuleEvaluation(rule=self, matched=tuple(matched), failed=tuple(failed))


@dataclass(frozen=True)
class RoutingDecision:
    """The department a complaint goes to, the rule that chose it, and why."""

    department: str
    rule_id: str
    rule_name: str
    matched_criteria: tuple[str, ...]
    reason: str


class RuleSet:
    """The ordered routing rules; first enabled match by ``order`` wins.

    Invariants checked on construction: rule ids and orders are unique (two rules with the
    same order would make precedence ambiguous) and at least one enabled catch-all rule
    exists, so every complaint lands somewhere (the default queue).
    """

    def __init__(self, rules: Iterable[RoutingRule]) -> None:
        ordered = tuple(sorted(rules, key=lambda r: r.order))
        ids = [r.id for r in ordered]
        duplicate_ids = sorted({i for i in ids if ids.count(i) > 1})
        if duplicate_ids:
            raise InvalidRule(f"duplicate rule id(s): {duplicate_ids}")
        orders = [r.order for r in ordered]
        duplicate_orders = sorted({o for o in orders if orders.count(o) > 1})
        if duplicate_orders:
            raise InvalidRule(f"several rules share order {duplicate_orders}; orders must differ")
        if not any(r.enabled and r.is_catch_all for r in ordered):
            raise InvalidRule(
                "the rule set needs an enabled default rule with no criteria (the default queue)"
            )
        self._rules = ordered

    @property
    def rules(self) -> tuple[RoutingRule, ...]:
        """All rules, enabled or not, by order."""
        return self._rules

    @property
    def default_rule(self) -> RoutingRule:
        """The first enabled catch-all rule: where unmatched complaints go."""
        return next(r for r in self._rules if r.enabled and r.is_catch_all)

    def get(self, rule_id: str) -> RoutingRule:
        """The rule with this id; raises ``KeyError`` if there is none."""
        for rule in self._rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def with_rule(self, rule: RoutingRule) -> RuleSet:
        """A new rule set with the rule added, or replacing the one with the same id."""
        return RuleSet([*(r for r in self._rules if r.id != rule.id), rule])

    def without_rule(self, rule_id: str) -> RuleSet:
        """A new rule set without the rule; refused if it would remove the last default."""
        self.get(rule_id)
        return RuleSet(r for r in self._rules if r.id != rule_id)

    def unreachable_rules(self) -> tuple[RoutingRule, ...]:
        """Enabled rules ordered after the default rule, which can therefore never match."""
        cut = self.default_rule.order
        return tuple(r for r in self._rules if r.enabled and r.order > cut)

    def check_targets(self, department_codes: Iterable[str]) -> None:
        """Raise ``UnknownDepartment`` if a rule sends cases to a department not listed."""
        known = set(department_codes)
        for rule in self._rules:
            if rule.target_department not in known:
                raise UnknownDepartment(rule.target_department)

    def explain(self, facts: RoutingFacts) -> tuple[RuleEvaluation, ...]:
        """Every rule's evaluation against the facts, by order (for a dry run)."""
        return tuple(rule.evaluate(facts) for rule in self._rules)

    def route(self, facts: RoutingFacts) -> RoutingDecision:
        """Pick the department: the first enabled rule by order whose criteria all hold."""
        for rule in self._rules:
            if not rule.enabled:
                continue
            evaluation = rule.evaluate(facts)
            if evaluation.is_match:
                if rule.is_catch_all:
                    why = "no criteria (default queue)"
                else:
                    why = "matched " + ", ".join(evaluation.matched)
                reason = (
                    f"rule {rule.id!r} ({rule.name}, order {rule.order}) sent the case to "
                    f"{rule.target_department}: {why}"
                )
                return RoutingDecision(
                    department=rule.target_department,
                    rule_id=rule.id,
                    rule_name=rule.name,
                    matched_criteria=evaluation.matched,
                    reason=reason,
                )
        # Unreachable: the constructor guarantees an enabled catch-all.
        raise AssertionError("rule set without default rule")


# --------------------------------------------------------------------------------------
# Handler level and conflict of interest
# --------------------------------------------------------------------------------------


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
    severity = Severity(_normalise(severity))
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

    if subject.department_code is not None and _normalise(subject.department_code) == _normalise(
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


# --------------------------------------------------------------------------------------
# Assignment
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Case workflow
# --------------------------------------------------------------------------------------

_S = CaseState
_A = CaseAction
_NOT_CLOSED = tuple(s for s in CaseState if s is not CaseState.CLOSED)
_BEFORE_RESOLUTION = (_S.ROUTED, _S.ACKNOWLEDGED, _S.INVESTIGATING, _S.SOLUTION_PROPOSED)

TRANSITIONS: Mapping[CaseAction, Mapping[CaseState, CaseState]] = MappingProxyType(
    {
        _A.ACKNOWLEDGE: {_S.ROUTED: _S.ACKNOWLEDGED},
        _A.RESPOND_TO_CUSTOMER: {
            _S.ACKNOWLEDGED: _S.ACKNOWLEDGED,
            _S.INVESTIGATING: _S.INVESTIGATING,
        },
        _A.START_INVESTIGATION: {_S.ACKNOWLEDGED: _S.INVESTIGATING},
        _A.RECORD_ROOT_CAUSE: {_S.INVESTIGATING: _S.INVESTIGATING},
        # A proposal may be revised before it is carried out.
        _A.PROPOSE_SOLUTION: {
            _S.INVESTIGATING: _S.SOLUTION_PROPOSED,
            _S.SOLUTION_PROPOSED: _S.SOLUTION_PROPOSED,
        },
        _A.RESOLVE: {_S.SOLUTION_PROPOSED: _S.RESOLVED},
        _A.CLOSE: {_S.RESOLVED: _S.CLOSED},
        _A.REOPEN: {_S.RESOLVED: _S.INVESTIGATING, _S.CLOSED: _S.INVESTIGATING},
        _A.TRANSFER: {state: _S.ROUTED for state in _BEFORE_RESOLUTION},
        _A.ESCALATE: {state: state for state in _NOT_CLOSED},
        _A.ADD_NOTE: {state: state for state in _NOT_CLOSED},
        _A.ASSIGN: {state: state for state in _NOT_CLOSED},
    }
)
"""The workflow as data: action → {state it is allowed in: state it leads to}.

``route`` is absent: it creates the case (``Case.open``) rather than moving one.
"""

WORKFLOW_ACTIONS: tuple[CaseAction, ...] = tuple(TRANSITIONS)


def allowed_actions(state: CaseState) -> tuple[CaseAction, ...]:
    """The actions the workflow allows in ``state``, in declaration order."""
    return tuple(action for action, moves in TRANSITIONS.items() if state in moves)


@dataclass(frozen=True)
class Transition:
    """One entry of a case's history: what was done, by whom, when it happened and was logged."""

    action: CaseAction
    from_state: CaseState | None
    to_state: CaseState
    actor: str
    occurred_at: datetime
    recorded_at: datetime
    version: int
    note: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)


def _require_aware(value: datetime, what: str) -> None:
    """Refuse naive datetimes: comparing them with aware ones is a bug waiting to happen."""
    if value.tzinfo is None or value.utcoffset() is None:
        error = InvalidOccurredAt if what == "occurred_at" else InvalidCommand
        raise error(f"{what} must carry a time zone, got {value.isoformat()}")


class Case:
    """The routed case of one complaint: department, handler, workflow state and history.

    Every successful action checks the transition table, validates ``occurred_at``,
    appends a ``Transition`` to ``history``, bumps ``version`` by one and appends a domain
    event to ``events``. Failed actions change nothing.

    ``occurred_at`` (when the work really happened, for work logged afterwards) defaults
    to ``now`` (when it is recorded) and must be: timezone-aware, not after ``now``, not
    before the complaint was received, and not before the previous transition's
    ``occurred_at`` (history stays in order).
    """

    def __init__(
        self,
        *,
        case_id: str,
        complaint_id: str,
        complaint_received_at: datetime,
        department: str,
        handler_level: HandlerLevel,
        state: CaseState,
        version: int = 0,
        assignee_id: str | None = None,
        history: Iterable[Transition] = (),
        rule_id: str | None = None,
        routing_reason: str | None = None,
        notify_management: bool = False,
        excluded_member_ids: Iterable[str] = (),
        root_cause: str | None = None,
        responsible_person: str | None = None,
        solution: str | None = None,
        resolution: str | None = None,
        escalation_level: int = 0,
        reopen_count: int = 0,
        acknowledged_at: datetime | None = None,
        first_response_at: datetime | None = None,
        resolved_at: datetime | None = None,
        closed_at: datetime | None = None,
        close_reason: ClosureReason | None = None,
    ) -> None:
        _require_aware(complaint_received_at, "complaint_received_at")
        self.case_id = case_id
        self.complaint_id = complaint_id
        self.complaint_received_at = complaint_received_at
        self.department = department
        self.handler_level = HandlerLevel(handler_level)
        self.state = CaseState(state)
        self.version = version
        self.assignee_id = assignee_id
        self.history: list[Transition] = list(history)
        self.rule_id = rule_id
        self.routing_reason = routing_reason
        self.notify_management = notify_management
        # People the complaint is about: never assigned, whatever happens to the case.
        self.excluded_member_ids = frozenset(excluded_member_ids)
        self.root_cause = root_cause
        self.responsible_person = responsible_person
        self.solution = solution
        self.resolution = resolution
        # How many escalation steps were recorded (capped ones included).
        self.escalation_level = escalation_level
        self.reopen_count = reopen_count
        self.acknowledged_at = acknowledged_at
        self.first_response_at = first_response_at
        self.resolved_at = resolved_at
        self.closed_at = closed_at
        self.close_reason = ClosureReason(close_reason) if close_reason else None
        self.events: list[events.CaseEvent] = []

    def __repr__(self) -> str:
        return (
            f"<Case {self.case_id} {self.state} in {self.department} at {self.handler_level}"
            f" v{self.version}>"
        )

    # ---- creation -----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        *,
        case_id: str,
        complaint_id: str,
        complaint_received_at: datetime,
        department: str,
        handler_level: HandlerLevel,
        rule_id: str,
        routing_reason: str,
        actor: str,
        now: datetime,
        assignee_id: str | None = None,
        queued_reason: str | None = None,
        notify_management: bool = False,
        excluded_member_ids: Iterable[str] = (),
        occurred_at: datetime | None = None,
    ) -> Case:
        """Create a case in state ``routed`` (version 1) and record ``CaseRouted``."""
        case = cls(
            case_id=case_id,
            complaint_id=complaint_id,
            complaint_received_at=complaint_received_at,
            department=department,
            handler_level=handler_level,
            state=CaseState.ROUTED,
            rule_id=rule_id,
            routing_reason=routing_reason,
            notify_management=notify_management,
            excluded_member_ids=excluded_member_ids,
        )
        if assignee_id is not None and assignee_id in case.excluded_member_ids:
            raise ConflictOfInterest(f"{assignee_id} is the subject of the complaint")
        _require_text(actor, "actor")
        when = case._validate_times(now, occurred_at)
        case.assignee_id = assignee_id
        case._record(
            CaseAction.ROUTE,
            None,
            CaseState.ROUTED,
            actor,
            when,
            now,
            routing_reason,
            {"rule_id": rule_id, "handler_level": str(case.handler_level)},
        )
        case._emit(
            events.CaseRouted,
            actor,
            when,
            now,
            routing_reason,
            rule_id=rule_id,
            rule_reason=routing_reason,
            handler_level=str(case.handler_level),
            assignee=assignee_id,
            queued_reason=queued_reason,
            notify_management=notify_management,
        )
        return case

    @classmethod
    def open_from_plan(
        cls,
        plan: RoutingPlan,
        *,
        case_id: str,
        complaint_id: str,
        complaint_received_at: datetime,
        actor: str,
        now: datetime,
        occurred_at: datetime | None = None,
    ) -> Case:
        """Create a case from a ``plan_routing`` result."""
        return cls.open(
            case_id=case_id,
            complaint_id=complaint_id,
            complaint_received_at=complaint_received_at,
            department=plan.department,
            handler_level=plan.handler_level,
            rule_id=plan.decision.rule_id,
            routing_reason=plan.reason,
            actor=actor,
            now=now,
            assignee_id=plan.assignment.assignee_id,
            queued_reason=None if plan.assignment.assignee_id else plan.assignment.reason,
            notify_management=plan.notify_management,
            excluded_member_ids=plan.conflict.excluded_member_ids,
            occurred_at=occurred_at,
        )

    # ---- queries ------------------------------------------------------------------------

    @property
    def allowed_actions(self) -> tuple[CaseAction, ...]:
        """The actions the workflow allows in the current state."""
        return allowed_actions(self.state)

    def can(self, action: CaseAction) -> bool:
        """True when ``action`` is allowed in the current state."""
        return self.state in TRANSITIONS.get(CaseAction(action), {})

    def expect_version(self, expected: int) -> None:
        """Raise ``VersionConflict`` unless the case is at ``expected`` (optimistic locking)."""
        if expected != self.version:
            raise VersionConflict(expected=expected, actual=self.version)

    # ---- workflow actions ---------------------------------------------------------------

    def acknowledge(
        self,
        *,
        actor: str,
        now: datetime,
        occurred_at: datetime | None = None,
        note: str | None = None,
    ) -> None:
        """The department takes the case: routed → acknowledged."""
        when = self._begin(actor, CaseAction.ACKNOWLEDGE, now, occurred_at)
        self.acknowledged_at = when
        self._commit(CaseAction.ACKNOWLEDGE, actor, when, now, note)
        self._emit(events.CaseAcknowledged, actor, when, now, note, assignee=self.assignee_id)

    def respond_to_customer(
        self,
        *,
        actor: str,
        now: datetime,
        occurred_at: datetime | None = None,
        note: str | None = None,
    ) -> None:
        """Record a response to the customer; the first one sets ``first_response_at``.

        The first response emits ``FirstResponseSent``; later ones emit
        ``CustomerResponseSent`` and leave ``first_response_at`` unchanged.
        """
        when = self._begin(actor, CaseAction.RESPOND_TO_CUSTOMER, now, occurred_at)
        first = self.first_response_at is None
        if first:
            self.first_response_at = when
        self._commit(
            CaseAction.RESPOND_TO_CUSTOMER, actor, when, now, note, {"first": str(first).lower()}
        )
        event = events.FirstResponseSent if first else events.CustomerResponseSent
        self._emit(event, actor, when, now, note)

    def start_investigation(
        self,
        *,
        actor: str,
        now: datetime,
        occurred_at: datetime | None = None,
        note: str | None = None,
    ) -> None:
        """Start verifying and investigating: acknowledged → investigating."""
        when = self._begin(actor, CaseAction.START_INVESTIGATION, now, occurred_at)
        self._commit(CaseAction.START_INVESTIGATION, actor, when, now, note)
        self._emit(events.InvestigationStarted, actor, when, now, note)

    def record_root_cause(
        self,
        *,
        root_cause: str,
        actor: str,
        now: datetime,
        responsible_person: str | None = None,
        occurred_at: datetime | None = None,
        note: str | None = None,
    ) -> None:
        """Record the root cause (and optionally who is responsible) while investigating.

        Recording again replaces the earlier finding; the history keeps both. A responsible
        person left out keeps any earlier one.
        """
        when = self._begin(actor, CaseAction.RECORD_ROOT_CAUSE, now, occurred_at)
        cause = _require_text(root_cause, "root_cause")
        person = _optional_text(responsible_person) or self.responsible_person
        self.root_cause = cause
        self.responsible_person = person
        details = {"root_cause": cause}
        if person:
            details["responsible_person"] = person
        self._commit(CaseAction.RECORD_ROOT_CAUSE, actor, when, now, note, details)
        self._emit(
            events.RootCauseRecorded,
            actor,
            when,
            now,
            note,
            root_cause=cause,
            responsible_person=person,
        )

    def propose_solution(
        self,
        *,
        solution: str,
        actor: str,
        now: datetime,
        occurred_at: datetime | None = None,
        note: str | None = None,
    ) -> None:
        """Propose (or revise) a solution: investigating/solution_proposed → solution_proposed."""
        when = self._begin(actor, CaseAction.PROPOSE_SOLUTION, now, occurred_at)
        text = _require_text(solution, "solution")
        self.solution = text
        self._commit(CaseAction.PROPOSE_SOLUTION, actor, when, now, note, {"solution": text})
        self._emit(events.SolutionProposed, actor, when, now, note, solution=text)

    def resolve(
        self,
        *,
        resolution: str,
        actor: str,
        now: datetime,
        root_cause: str | None = None,
        responsible_person: str | None = None,
        occurred_at: datetime | None = None,
        note: str | None = None,
    ) -> None:
        """Carry out the solution: solution_proposed → resolved.

        Root cause and responsible person must be known: recorded earlier or given here
        (given values replace earlier ones). Otherwise ``MissingResolutionDetails``.
        """
        when = self._begin(actor, CaseAction.RESOLVE, now, occurred_at)
        text = _require_text(resolution, "resolution")
        cause = _optional_text(root_cause) or self.root_cause
        person = _optional_text(responsible_person) or self.responsible_person
        missing = [
            name
            for name, value in (("root_cause", cause), ("responsible_person", person))
            if not value
        ]
        if missing:
            raise MissingResolutionDetails(
                f"cannot resolve without {' and '.join(missing)}: record them first or "
                "give them with resolve"
            )
        assert cause is not None and person is not None  # narrowed by the check above
        self.root_cause, self.responsible_person = cause, person
        self.resolution = text
        self.resolved_at = when
        details = {"resolution": text, "root_cause": cause, "responsible_person": person}
        self._commit(CaseAction.RESOLVE, actor, when, now, note, details)
        self._emit(
            events.CaseResolved,
            actor,
            when,
            now,
            note,
            resolution=text,
            root_cause=cause,
            responsible_person=person,
        )

    def close(
        self,
        *,
        actor: str,
        now: datetime,
        close_reason: ClosureReason | str = ClosureReason.CUSTOMER_CONFIRMED,
        occurred_at: datetime | None = None,
        note: str | None = None,
    ) -> None:
        """Close a resolved case once the customer confirmed (or never answered): → closed."""
        when = self._begin(actor, CaseAction.CLOSE, now, occurred_at)
        try:
            reason = ClosureReason(close_reason)
        except ValueError:
            raise InvalidCommand(
                f"unknown close_reason {close_reason!r}; "
                f"expected one of {[r.value for r in ClosureReason]}"
            ) from None
        self.closed_at = when
        self.close_reason = reason
        self._commit(CaseAction.CLOSE, actor, when, now, note, {"close_reason": str(reason)})
        self._emit(events.CaseClosed, actor, when, now, note, close_reason=str(reason))

    def reopen(
        self,
        *,
        comment: str,
        actor: str,
        now: datetime,
        occurred_at: datetime | None = None,
    ) -> None:
        """The customer is not satisfied: resolved/closed → investigating, same department.

        The history records a ``reopen`` transition carrying the customer's comment;
        there is no resting ``reopened`` state. The resolution, resolution time and
        closure are cleared (the history keeps them); root cause, responsible person,
        assignee and first response time stay.
        """
        from_state = self.state
        when = self._begin(actor, CaseAction.REOPEN, now, occurred_at)
        text = _require_text(comment, "comment")
        self.reopen_count += 1
        self.resolution = None
        self.resolved_at = None
        self.closed_at = None
        self.close_reason = None
        self._commit(CaseAction.REOPEN, actor, when, now, text)
        self._emit(
            events.CaseReopened,
            actor,
            when,
            now,
            text,
            reason=text,
            from_state=str(from_state),
            reopen_count=self.reopen_count,
        )

    def transfer(
        self,
        *,
        to_department: str,
        reason: str,
        actor: str,
        now: datetime,
        handler_level: HandlerLevel | str | None = None,
        assignee_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> None:
        """Move the case to another department; it goes back to ``routed`` there.

        History, findings and escalation count are kept; the acknowledgement is cleared
        because the new department must acknowledge it. The handler level stays unless
        one is given (the service recomputes conflict-of-interest floors for the new
        department). ``assignee_id`` None means the case waits in the new department's
        queue.
        """
        when = self._begin(actor, CaseAction.TRANSFER, now, occurred_at)
        target = _require_text(to_department, "to_department")
        why = _require_text(reason, "reason")
        if target == self.department:
            raise InvalidCommand(f"the case is already in {target}")
        level = HandlerLevel(handler_level) if handler_level else self.handler_level
        self._refuse_conflicted(assignee_id)
        from_department = self.department
        self.department = target
        self.handler_level = level
        self.assignee_id = assignee_id
        self.acknowledged_at = None
        details = {
            "from_department": from_department,
            "to_department": target,
            "handler_level": str(level),
        }
        self._commit(CaseAction.TRANSFER, actor, when, now, why, details)
        self._emit(
            events.CaseTransferred,
            actor,
            when,
            now,
            why,
            from_department=from_department,
            reason=why,
            handler_level=str(level),
            assignee=assignee_id,
        )

    def escalate(
        self,
        *,
        actor: str,
        now: datetime,
        reason: EscalationReason | str = EscalationReason.MANUAL,
        assignee_id: str | None = None,
        occurred_at: datetime | None = None,
        note: str | None = None,
    ) -> None:
        """Raise the handler level one step (agent → … → executive); the state is unchanged.

        Below the top, the case goes to ``assignee_id`` at the new level, or waits in the
        queue at that level when None. At the top (executive) the escalation is still
        recorded, with ``capped=True`` on the event, but the level and (unless
        ``assignee_id`` is given) the assignee stay: an SLA breach keeps escalating while
        the case is overdue, and refusing would only make the breach handler fail.
        """
        when = self._begin(actor, CaseAction.ESCALATE, now, occurred_at)
        try:
            trigger = EscalationReason(reason)
        except ValueError:
            raise InvalidCommand(
                f"unknown escalation reason {reason!r}; "
                f"expected one of {[r.value for r in EscalationReason]}"
            ) from None
        self._refuse_conflicted(assignee_id)
        from_level = self.handler_level
        capped = from_level.is_top
        if capped:
            if assignee_id is not None:
                self.assignee_id = assignee_id
        else:
            self.handler_level = from_level.one_up()
            self.assignee_id = assignee_id
        self.escalation_level += 1
        details = {
            "from_level": str(from_level),
            "to_level": str(self.handler_level),
            "reason": str(trigger),
            "capped": str(capped).lower(),
        }
        self._commit(CaseAction.ESCALATE, actor, when, now, note, details)
        self._emit(
            events.CaseEscalated,
            actor,
            when,
            now,
            note,
            from_level=str(from_level),
            to_level=str(self.handler_level),
            reason=str(trigger),
            capped=capped,
            escalation_level=self.escalation_level,
            assignee=self.assignee_id,
        )

    def add_note(
        self,
        *,
        note: str,
        actor: str,
        now: datetime,
        occurred_at: datetime | None = None,
    ) -> None:
        """Add a note without changing state (any state but closed)."""
        when = self._begin(actor, CaseAction.ADD_NOTE, now, occurred_at)
        text = _require_text(note, "note")
        self._commit(CaseAction.ADD_NOTE, actor, when, now, text)
        self._emit(events.CaseNoteAdded, actor, when, now, text)

    def assign(
        self,
        *,
        assignee_id: str | None,
        actor: str,
        now: datetime,
        occurred_at: datetime | None = None,
        note: str | None = None,
    ) -> None:
        """Give the case to a person at its level, or back to the queue with None.

        Used when someone picks a queued case and when the assignee is marked absent.
        Never to a member the complaint is about (``ConflictOfInterest``).
        """
        when = self._begin(actor, CaseAction.ASSIGN, now, occurred_at)
        self._refuse_conflicted(assignee_id)
        previous = self.assignee_id
        if assignee_id == previous:
            raise InvalidCommand(f"the case is already assigned to {previous or 'the queue'}")
        self.assignee_id = assignee_id
        details = {"from_assignee": previous or "", "assignee": assignee_id or ""}
        self._commit(CaseAction.ASSIGN, actor, when, now, note, details)
        self._emit(
            events.CaseAssigned,
            actor,
            when,
            now,
            note,
            from_assignee=previous,
            assignee=assignee_id,
            handler_level=str(self.handler_level),
        )

    # ---- internals ----------------------------------------------------------------------

    def _begin(
        self, actor: str, action: CaseAction, now: datetime, occurred_at: datetime | None
    ) -> datetime:
        """Check the action is allowed now, by someone, at a sane time; return when it happened."""
        if self.state not in TRANSITIONS[action]:
            raise IllegalTransition(action, self.state, self.allowed_actions)
        _require_text(actor, "actor")
        return self._validate_times(now, occurred_at)

    def _validate_times(self, now: datetime, occurred_at: datetime | None) -> datetime:
        """Return when the action happened, refusing times in the future or out of order."""
        _require_aware(now, "now")
        when = now if occurred_at is None else occurred_at
        _require_aware(when, "occurred_at")
        if when > now:
            raise InvalidOccurredAt(
                f"occurred_at {when.isoformat()} is in the future (now is {now.isoformat()})"
            )
        if when < self.complaint_received_at:
            raise InvalidOccurredAt(
                f"occurred_at {when.isoformat()} is before the complaint was received "
                f"({self.complaint_received_at.isoformat()})"
            )
        if self.history and when < self.history[-1].occurred_at:
            last = self.history[-1]
            raise InvalidOccurredAt(
                f"occurred_at {when.isoformat()} is before the previous step "
                f"({last.action} at {last.occurred_at.isoformat()})"
            )
        return when

    def _refuse_conflicted(self, assignee_id: str | None) -> None:
        """Raise ``ConflictOfInterest`` if the would-be assignee is the complaint's subject."""
        if assignee_id is not None and assignee_id in self.excluded_member_ids:
            raise ConflictOfInterest(
                f"{assignee_id} is the subject of the complaint and cannot handle it"
            )

    def _commit(
        self,
        action: CaseAction,
        actor: str,
        when: datetime,
        now: datetime,
        note: str | None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        """Move to the action's target state and record the transition."""
        from_state = self.state
        to_state = TRANSITIONS[action][from_state]
        self._record(action, from_state, to_state, actor, when, now, note, details or {})

    def _record(
        self,
        action: CaseAction,
        from_state: CaseState | None,
        to_state: CaseState,
        actor: str,
        when: datetime,
        now: datetime,
        note: str | None,
        details: Mapping[str, str],
    ) -> None:
        """Append the history entry, set the state and bump the version."""
        self.state = to_state
        self.version += 1
        self.history.append(
            Transition(
                action=action,
                from_state=from_state,
                to_state=to_state,
                actor=actor,
                occurred_at=when,
                recorded_at=now,
                version=self.version,
                note=_optional_text(note),
                details=dict(details),
            )
        )

    def _emit(
        self,
        event_type: type[events.CaseEvent],
        actor: str,
        when: datetime,
        now: datetime,
        note: str | None,
        **fields: object,
    ) -> None:
        """Append a domain event stamped with the case's identity and new version."""
        self.events.append(
            event_type(
                case_id=self.case_id,
                complaint_id=self.complaint_id,
                department=self.department,
                version=self.version,
                actor=actor,
                occurred_at=when,
                recorded_at=now,
                note=_optional_text(note),
                **fields,
            )
        )


def _optional_text(value: str | None) -> str | None:
    """Stripped text, or None for missing or blank."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None

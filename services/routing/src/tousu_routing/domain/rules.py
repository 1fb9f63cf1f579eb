"""Routing rules as data: ordered criteria, first enabled match wins, a default queue."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from tousu_routing.domain.errors import InvalidRule, UnknownDepartment
from tousu_routing.domain.vocabulary import (
    CATEGORIES,
    CHANNELS,
    CUSTOMER_TIERS,
    RISK_FLAGS,
    SEVERITIES,
    Severity,
    normalise,
    severity_of,
)


@dataclass(frozen=True)
class ComplaintSubject:
    """The staff member and/or unit (department code) the complaint is about, if any."""

    member_id: str | None = None
    department_code: str | None = None

    @property
    def is_empty(self) -> bool:
        """True when the complaint is not about anyone in particular."""
        return self.member_id is None and self.department_code is None


class ComplaintProfile(Protocol):
    """A complaint's facts under the names routing stores and receives them by: a case's
    profile, a dry run's sample complaint."""

    @property
    def severity(self) -> str: ...
    @property
    def category(self) -> str | None: ...
    @property
    def product_line(self) -> str | None: ...
    @property
    def region(self) -> str | None: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def customer_tier(self) -> str | None: ...
    @property
    def risk_flags(self) -> Iterable[str]: ...
    @property
    def subject_staff_ref(self) -> str | None: ...
    @property
    def subject_unit(self) -> str | None: ...


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
        object.__setattr__(self, "severity", severity_of(self.severity))
        for name in ("category", "product_line", "region", "channel", "customer_tier"):
            object.__setattr__(self, name, normalise(getattr(self, name)))
        flags = frozenset(f for f in (normalise(x) for x in self.risk_flags) if f)
        object.__setattr__(self, "risk_flags", flags)
        if self.subject is None:
            object.__setattr__(self, "subject", ComplaintSubject())

    @classmethod
    def of(cls, profile: ComplaintProfile) -> RoutingFacts:
        """What the rules look at in a stored case's profile or a dry run's sample."""
        return cls(
            severity=severity_of(profile.severity),
            category=profile.category,
            product_line=profile.product_line,
            region=profile.region,
            channel=profile.channel,
            customer_tier=profile.customer_tier,
            risk_flags=frozenset(profile.risk_flags),
            subject=ComplaintSubject(
                member_id=profile.subject_staff_ref, department_code=profile.subject_unit
            ),
        )


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
            values = frozenset(v for v in (normalise(x) for x in raw) if v)
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

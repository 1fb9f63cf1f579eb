"""Use cases for the routing rules: edit, reorder, and try them on a sample complaint.

Edits lock the rule table and validate the whole rule set (unique orders, a default queue,
targets that exist) before anything is written; every edit bumps the rule's version and
keeps a revision.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tousu_shared.auth import Principal
from tousu_shared.errors import Conflict, InvalidInput, NotFound, PreconditionFailed

from tousu_routing.adapters.rule_repository import RuleRecord, RuleRepository, rule_snapshot
from tousu_routing.domain import (
    InvalidRule,
    RoutingFacts,
    RoutingPlan,
    RoutingRule,
    RuleCriteria,
    RuleEvaluation,
    RuleSet,
    plan_routing,
)
from tousu_routing.service_layer.context import RoutingContext
from tousu_routing.service_layer.roster import Roster
from tousu_routing.service_layer.unit_of_work import RoutingWork

ORDER_STEP = 10


def criteria_from(values: Mapping[str, Sequence[str] | None] | None) -> RuleCriteria:
    """Domain criteria from the API's lists (unset or None means any value)."""
    given = {k: frozenset(v) for k, v in (values or {}).items() if v is not None}
    return RuleCriteria(**given)


async def list_rules(uow: RoutingWork) -> tuple[list[RuleRecord], set[str]]:
    """Every rule by order, and the ids of enabled rules that can never match."""
    records = await uow.rules.all()
    unreachable = {r.id for r in RuleSet(r.rule for r in records).unreachable_rules()}
    return records, unreachable


async def get_rule(uow: RoutingWork, rule_id: str) -> RuleRecord:
    """One rule."""
    record = await uow.rules.get(rule_id)
    if record is None:
        raise NotFound(f"no routing rule {rule_id!r}", field="rule_id")
    return record


async def rule_revisions(uow: RoutingWork, rule_id: str) -> list[dict[str, Any]]:
    """Every revision of a rule, deleted ones included."""
    revisions = await uow.rules.revisions(rule_id)
    if not revisions:
        raise NotFound(f"no routing rule {rule_id!r}", field="rule_id")
    return revisions


async def _validated(uow: RoutingWork, rule_set: RuleSet) -> RuleSet:
    rule_set.check_targets(await uow.departments.codes())
    return rule_set


def _next_order(rule_set: RuleSet) -> int:
    """A free order just before the default queue, so a new rule can match at all."""
    default = rule_set.default_rule.order
    before = [r.order for r in rule_set.rules if r.order < default]
    order = (max(before) if before else 0) + ORDER_STEP
    if order >= default:
        raise InvalidInput(
            "no free order before the default rule; give one explicitly", field="order"
        )
    return order


async def create_rule(
    ctx: RoutingContext,
    uow: RoutingWork,
    principal: Principal,
    *,
    name: str,
    target_department: str,
    criteria: Mapping[str, Sequence[str] | None] | None = None,
    order: int | None = None,
    enabled: bool = True,
    rule_id: str | None = None,
) -> RuleRecord:
    """Add a rule (by default just before the default queue)."""
    now = ctx.clock()
    repository = uow.rules
    await repository.lock_for_edit()
    rule_set, _ = await repository.rule_set()
    rule_id = rule_id or f"rule-{uuid.uuid4().hex[:8]}"
    if rule_id in {r.id for r in rule_set.rules}:
        raise Conflict(f"routing rule {rule_id!r} already exists", field="id")
    rule = RoutingRule(
        id=rule_id,
        order=order if order is not None else _next_order(rule_set),
        name=name,
        target_department=target_department,
        criteria=criteria_from(criteria),
        enabled=enabled,
    )
    await _validated(uow, rule_set.with_rule(rule))
    version = await repository.add(rule, principal.actor, now)
    return await _audited(uow, principal, "routing_rule.create", rule, version)


async def _audited(
    uow: RoutingWork, principal: Principal, action: str, rule: RoutingRule, version: int
) -> RuleRecord:
    """Audit a rule just written (its new version and snapshot) and read it back as stored."""
    uow.audit(
        principal,
        action,
        "routing_rule",
        rule.id,
        details={"version": version, **rule_snapshot(rule)},
    )
    return await get_rule(uow, rule.id)


async def _locked_rule(
    rule_id: str, expected_version: int | None, repository: RuleRepository
) -> RuleRecord:
    await repository.lock_for_edit()
    record = await repository.get(rule_id)
    if record is None:
        raise NotFound(f"no routing rule {rule_id!r}", field="rule_id")
    if expected_version is not None and expected_version != record.version:
        raise PreconditionFailed(
            f"rule {rule_id} is at version {record.version}, not {expected_version}",
            current_version=record.version,
        )
    return record


async def update_rule(
    ctx: RoutingContext,
    uow: RoutingWork,
    principal: Principal,
    rule_id: str,
    changes: Mapping[str, Any],
    *,
    expected_version: int | None = None,
) -> RuleRecord:
    """Change a rule's name, order, target, criteria or enabled flag (only the given ones)."""
    now = ctx.clock()
    repository = uow.rules
    record = await _locked_rule(rule_id, expected_version, repository)
    fields = dict(changes)
    if "criteria" in fields:
        fields["criteria"] = criteria_from(fields["criteria"])
    rule = dataclasses.replace(record.rule, **fields)
    rule_set, _ = await repository.rule_set()
    await _validated(uow, rule_set.with_rule(rule))
    version = await repository.update(rule, "updated", principal.actor, now)
    return await _audited(uow, principal, "routing_rule.update", rule, version)


async def delete_rule(
    ctx: RoutingContext,
    uow: RoutingWork,
    principal: Principal,
    rule_id: str,
    *,
    expected_version: int | None = None,
) -> None:
    """Remove a rule; the last default rule cannot go."""
    now = ctx.clock()
    repository = uow.rules
    record = await _locked_rule(rule_id, expected_version, repository)
    rule_set, _ = await repository.rule_set()
    try:
        rule_set.without_rule(rule_id)
    except InvalidRule as exc:
        raise Conflict(str(exc), field="rule_id") from exc
    await repository.remove(record, principal.actor, now)
    uow.audit(
        principal,
        "routing_rule.delete",
        "routing_rule",
        rule_id,
        details={"version": record.version + 1},
    )


async def reorder_rules(
    ctx: RoutingContext,
    uow: RoutingWork,
    principal: Principal,
    rule_ids: Sequence[str],
) -> list[RuleRecord]:
    """Put every rule in the given order (orders become 10, 20, 30, …)."""
    now = ctx.clock()
    repository = uow.rules
    await repository.lock_for_edit()
    rule_set, _ = await repository.rule_set()
    current = {r.id: r for r in rule_set.rules}
    if len(set(rule_ids)) != len(rule_ids) or set(rule_ids) != set(current):
        raise InvalidInput(
            f"list every rule exactly once; the rules are {sorted(current)}",
            field="rule_ids",
        )
    reordered = [
        dataclasses.replace(current[rule_id], order=(i + 1) * ORDER_STEP)
        for i, rule_id in enumerate(rule_ids)
    ]
    RuleSet(reordered)
    for rule in reordered:
        if rule.order != current[rule.id].order:
            await repository.update(rule, "reordered", principal.actor, now)
    uow.audit(
        principal,
        "routing_rule.reorder",
        "routing_rule",
        None,
        details={"rule_ids": list(rule_ids)},
    )
    return await repository.all()


@dataclass(frozen=True)
class DryRun:
    """What routing would do with a sample complaint, and how each rule fared."""

    plan: RoutingPlan
    evaluations: tuple[RuleEvaluation, ...]
    unreachable_rule_ids: tuple[str, ...]


async def dry_run(
    uow: RoutingWork,
    facts: RoutingFacts,
    candidate_rules: Sequence[RoutingRule] = (),
) -> DryRun:
    """Route a sample complaint with the saved rules plus candidates (new or replacing by id).

    Nothing is written: no case, no assignment, no event.
    """
    rule_set, _ = await uow.rules.rule_set()
    for candidate in candidate_rules:
        rule_set = rule_set.with_rule(candidate)
    await _validated(uow, rule_set)
    target = rule_set.route(facts).department
    roster = await Roster.load(uow, [target], subjects=[facts.subject], assigning=False)
    plan = plan_routing(facts, rule_set, roster.departments, roster.members.values())
    return DryRun(
        plan=plan,
        evaluations=rule_set.explain(facts),
        unreachable_rule_ids=tuple(r.id for r in rule_set.unreachable_rules()),
    )

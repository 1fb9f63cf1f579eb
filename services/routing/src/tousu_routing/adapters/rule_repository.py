"""The ordered routing rules and their revision history.

Repositories never commit: the unit of work does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from tousu_routing.adapters.orm import (
    routing_rule,
    routing_rule_revision,
)
from tousu_routing.domain import (
    RoutingRule,
    RuleCriteria,
    RuleSet,
)
from tousu_routing.domain.rules import CRITERIA_FIELDS

# ---- routing rules --------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleRecord:
    """A routing rule with its edit version and timestamps."""

    rule: RoutingRule
    version: int
    updated_by: str
    created_at: datetime
    updated_at: datetime


def criteria_to_json(criteria: RuleCriteria) -> dict[str, list[str]]:
    """Criteria as stored: only the criteria that are set, values sorted."""
    return {
        name: sorted(getattr(criteria, name))
        for name in CRITERIA_FIELDS
        if getattr(criteria, name) is not None
    }


def rule_snapshot(rule: RoutingRule) -> dict[str, Any]:
    """A rule as its revision history and the audit log keep it."""
    return {
        "order": rule.order,
        "name": rule.name,
        "target_department": rule.target_department,
        "criteria": criteria_to_json(rule.criteria),
        "enabled": rule.enabled,
    }


def _rule_from_row(row: RowMapping) -> RuleRecord:
    rule = RoutingRule(
        id=row["id"],
        order=row["position"],
        name=row["name"],
        target_department=row["target_department"],
        criteria=RuleCriteria(**{k: frozenset(v) for k, v in row["criteria"].items()}),
        enabled=row["enabled"],
    )
    return RuleRecord(
        rule=rule,
        version=row["version"],
        updated_by=row["updated_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class RuleRepository:
    """The ordered routing rules and their revision history."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_for_edit(self) -> None:
        """Serialise rule edits: the rule set is validated as a whole, so edits must not interleave.

        Readers (routing a complaint) are not blocked.
        """
        await self._session.execute(
            sa.text("LOCK TABLE routing.routing_rule IN SHARE ROW EXCLUSIVE MODE")
        )

    async def all(self) -> list[RuleRecord]:
        """Every rule by order."""
        rows = (
            (await self._session.execute(sa.select(routing_rule).order_by(routing_rule.c.position)))
            .mappings()
            .all()
        )
        return [_rule_from_row(row) for row in rows]

    async def rule_set(self) -> tuple[RuleSet, dict[str, int]]:
        """The rule set and each rule's version."""
        records = await self.all()
        return RuleSet(r.rule for r in records), {r.rule.id: r.version for r in records}

    async def get(self, rule_id: str) -> RuleRecord | None:
        """One rule."""
        row = (
            (
                await self._session.execute(
                    sa.select(routing_rule).where(routing_rule.c.id == rule_id)
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else _rule_from_row(row)

    async def add(self, rule: RoutingRule, actor: str, now: datetime) -> int:
        """Insert a rule and its first revision; returns its version.

        A rule id used before (and deleted) continues its old revision numbering.
        """
        version: int = (
            await self._session.scalar(
                sa.select(
                    sa.func.coalesce(sa.func.max(routing_rule_revision.c.version), 0) + 1
                ).where(routing_rule_revision.c.rule_id == rule.id)
            )
            or 1
        )
        await self._session.execute(
            sa.insert(routing_rule).values(
                id=rule.id,
                position=rule.order,
                name=rule.name,
                target_department=rule.target_department,
                criteria=criteria_to_json(rule.criteria),
                enabled=rule.enabled,
                version=version,
                updated_by=actor,
                created_at=now,
                updated_at=now,
            )
        )
        await self._revise(rule.id, version, "created", rule_snapshot(rule), actor, now)
        return version

    async def update(self, rule: RoutingRule, change: str, actor: str, now: datetime) -> int:
        """Write a rule, bump its version and keep the revision; returns the new version."""
        version = await self._session.scalar(
            sa.update(routing_rule)
            .where(routing_rule.c.id == rule.id)
            .values(
                position=rule.order,
                name=rule.name,
                target_department=rule.target_department,
                criteria=criteria_to_json(rule.criteria),
                enabled=rule.enabled,
                version=routing_rule.c.version + 1,
                updated_by=actor,
                updated_at=now,
            )
            .returning(routing_rule.c.version)
        )
        await self._revise(rule.id, version, change, rule_snapshot(rule), actor, now)
        return version

    async def remove(self, record: RuleRecord, actor: str, now: datetime) -> None:
        """Delete a rule; its revisions keep a tombstone."""
        await self._session.execute(
            sa.delete(routing_rule).where(routing_rule.c.id == record.rule.id)
        )
        await self._revise(
            record.rule.id, record.version + 1, "deleted", rule_snapshot(record.rule), actor, now
        )

    async def revisions(self, rule_id: str) -> list[dict[str, Any]]:
        """Every revision of a rule, oldest first."""
        rows = (
            (
                await self._session.execute(
                    sa.select(routing_rule_revision)
                    .where(routing_rule_revision.c.rule_id == rule_id)
                    .order_by(routing_rule_revision.c.version)
                )
            )
            .mappings()
            .all()
        )
        return [dict(row) for row in rows]

    async def targets(self, code: str) -> list[str]:
        """Ids of the rules that send cases to a department."""
        return list(
            (
                await self._session.execute(
                    sa.select(routing_rule.c.id)
                    .where(routing_rule.c.target_department == code)
                    .order_by(routing_rule.c.position)
                )
            ).scalars()
        )

    async def _revise(
        self,
        rule_id: str,
        version: int,
        change: str,
        snapshot: dict[str, Any],
        actor: str,
        now: datetime,
    ) -> None:
        await self._session.execute(
            sa.insert(routing_rule_revision).values(
                rule_id=rule_id,
                version=version,
                change=change,
                snapshot=snapshot,
                changed_by=actor,
                changed_at=now,
            )
        )

"""Use cases a manager performs: denominators, alert decisions, improvement actions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from tousu_shared.auth import Principal
from tousu_shared.errors import InvalidInput, NotFound
from tousu_shared.same_names import build

from tousu_analytics.domain.actions import ActionTerms, ImprovementAction
from tousu_analytics.domain.alerts import Alert
from tousu_analytics.domain.effect import Effect, Period, rate_ratio
from tousu_analytics.domain.periods import months_between, shift_month
from tousu_analytics.service_layer.context import AnalyticsContext


@dataclass(frozen=True)
class PutDenominator:
    month: date
    product_line: str | None
    orders: int | None
    customers: int | None


async def put_denominator(
    ctx: AnalyticsContext, principal: Principal, command: PutDenominator
) -> None:
    async with ctx.uow() as uow:
        await uow.denominators.put(
            command.month,
            command.product_line or "",
            command.orders,
            command.customers,
            principal.actor,
            ctx.clock(),
        )
        uow.audit(
            principal,
            "denominator.put",
            "denominator",
            command.month.isoformat(),
            details={
                "product_line": command.product_line,
                "orders": command.orders,
                "customers": command.customers,
            },
        )
        await uow.commit()


@dataclass(frozen=True)
class DecideAlert:
    alert_id: uuid.UUID
    decision: str  # acknowledge | link | dismiss
    action_id: uuid.UUID | None = None
    reason: str | None = None


async def decide_alert(ctx: AnalyticsContext, principal: Principal, command: DecideAlert) -> Alert:
    async with ctx.uow() as uow:
        alert = await uow.alerts.get(command.alert_id, lock=True)
        if alert is None:
            raise NotFound("no such alert", field="alert_id")
        now = ctx.clock()
        if command.decision == "acknowledge":
            alert.acknowledge(principal.actor, now)
        elif command.decision == "link":
            assert command.action_id is not None
            if await uow.actions.get(command.action_id) is None:
                raise InvalidInput("no such improvement action", field="action_id")
            alert.link(command.action_id, principal.actor, now)
        else:
            assert command.reason is not None
            alert.dismiss(command.reason, principal.actor, now)
        await uow.alerts.save(alert)
        uow.audit(principal, f"alert.{command.decision}", "alert", str(alert.id))
        await uow.commit()
    return alert


@dataclass(kw_only=True)
class CreateAction(ActionTerms):
    """A new improvement action, in ``plan``: its terms, all of them the manager's."""


async def create_action(
    ctx: AnalyticsContext, principal: Principal, command: CreateAction
) -> ImprovementAction:
    async with ctx.uow() as uow:
        if command.alert_id is not None and await uow.alerts.get(command.alert_id) is None:
            raise InvalidInput("no such alert", field="alert_id")
        action = build(ImprovementAction, command, id=uuid.uuid4(), created_at=ctx.clock())
        await uow.actions.save(action)
        uow.audit(principal, "improvement_action.create", "improvement_action", str(action.id))
        await uow.commit()
    return action


async def advance_action(
    ctx: AnalyticsContext,
    principal: Principal,
    action_id: uuid.UUID,
    to: str,
    on: date | None,
    note: str | None,
) -> ImprovementAction:
    async with ctx.uow() as uow:
        action = await uow.actions.get(action_id, lock=True)
        if action is None:
            raise NotFound("no such improvement action", field="action_id")
        now = ctx.clock()
        action.advance(to, principal.actor, on or now.date(), note, now)
        await uow.actions.save(action)
        uow.audit(principal, f"improvement_action.{to}", "improvement_action", str(action.id))
        await uow.commit()
    return action


async def action_effect(
    ctx: AnalyticsContext, action: ImprovementAction, months: int = 1
) -> dict[str, Any] | None:
    """Complaint rate in the ``months`` whole months before and after the action started.

    Exposure is the business's monthly orders (of the targeted product line when it gave
    them per line), else the days of the month.
    """
    start = action.started_on.replace(day=1)
    before = months_between(shift_month(start, -months), start)
    after = months_between(start, shift_month(start, months))
    target = action.target
    async with ctx.uow() as uow:
        fact = uow.tables.fact
        denominators = await uow.kpis.denominators(before[0], shift_month(start, months))
        periods = []
        for month in [*before, *after]:
            query = sa.select(sa.func.count()).where(
                fact.c.received_day >= month, fact.c.received_day < shift_month(month, 1)
            )
            if target.category:
                query = query.where(fact.c.category == target.category)
            if target.product_line:
                query = query.where(fact.c.product_line == target.product_line)
            if target.unit:
                query = query.where(fact.c.subject_unit == target.unit)
            count = int(await uow.session.scalar(query) or 0)
            row = denominators.get((month, target.product_line or "")) or denominators.get(
                (month, "")
            )
            exposure = float(row.orders) if row is not None and row.orders else None
            periods.append((month, count, exposure))
    per_order = all(exposure is not None for _, _, exposure in periods)
    effect: Effect | None = rate_ratio(
        [
            Period(
                month.isoformat()[:7],
                count,
                exposure if per_order and exposure else float((shift_month(month, 1) - month).days),
                month >= start,
            )
            for month, count, exposure in periods
        ]
    )
    return {
        "started_on": action.started_on.isoformat(),
        "exposure": "orders" if per_order else "days",
        "periods": [
            {"month": m.isoformat()[:7], "complaints": c, "exposure": e, "after": m >= start}
            for m, c, e in periods
        ],
        "effect": effect.as_json() if effect else None,
        "target_rate": action.target_rate,
        "target_met": (
            effect.rate_after <= action.target_rate
            if effect and action.target_rate is not None and per_order
            else None
        ),
    }

"""Repositories of the service's own state: denominators, alerts, actions, reports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, ClassVar, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.db import upsert
from tousu_shared.same_names import build, by_name

from tousu_analytics.adapters.orm import alert, denominator, improvement_action, report
from tousu_analytics.domain.actions import ImprovementAction, Target
from tousu_analytics.domain.alerts import DEPARTMENT_SERIES, Alert, Series

T = TypeVar("T")


class _StoredById(Generic[T]):
    """A repository of one table whose rows are keyed by ``id`` and read and written whole."""

    table: ClassVar[sa.Table]

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @staticmethod
    def _read(row: sa.Row) -> T:
        raise NotImplementedError

    @staticmethod
    def _values(item: T) -> dict[str, Any]:
        raise NotImplementedError

    async def get(self, item_id: uuid.UUID, *, lock: bool = False) -> T | None:
        query = sa.select(self.table).where(self.table.c.id == item_id)
        row = (await self._session.execute(query.with_for_update() if lock else query)).first()
        return self._read(row) if row else None

    async def save(self, item: T) -> None:
        await self._session.execute(upsert(self.table, self._values(item), key=("id",)))


class DenominatorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def put(
        self,
        month: date,
        product_line: str,
        orders: int | None,
        customers: int | None,
        actor: str,
        now: datetime,
    ) -> None:
        values = {
            "month": month,
            "product_line": product_line,
            "orders": orders,
            "customers": customers,
            "updated_by": actor,
            "updated_at": now,
        }
        await self._session.execute(upsert(denominator, values, key=("month", "product_line")))


def _alert_row(item: Alert) -> dict[str, Any]:
    series = item.series
    return by_name(
        alert.c.keys(),
        item,
        series_kind=series.kind,
        category=series.category,
        series_value=series.value,
    )


def _alert(row: sa.Row) -> Alert:
    return build(
        Alert,
        row._mapping,
        series=Series(row.series_kind, row.category, row.series_value),
        history=list(row.history),
    )


class AlertRepository(_StoredById[Alert]):
    table = alert
    _read = staticmethod(_alert)
    _values = staticmethod(_alert_row)

    async def latest_for(self, series: Series) -> Alert | None:
        """The series' most recent alert, whatever its state."""
        row = (
            await self._session.execute(
                sa.select(alert)
                .where(
                    alert.c.series_kind == series.kind,
                    alert.c.category == series.category,
                    alert.c.series_value == series.value,
                )
                .order_by(alert.c.last_day.desc())
                .limit(1)
                .with_for_update()
            )
        ).first()
        return _alert(row) if row else None

    async def list(
        self,
        *,
        state: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
        department: str | None = None,
    ) -> Sequence[Alert]:
        """Newest first; ``department`` keeps the alerts of that department's series."""
        query = sa.select(alert).order_by(alert.c.detected_at.desc(), alert.c.id.desc())
        if state:
            query = query.where(alert.c.state == state)
        if department is not None:
            query = query.where(
                alert.c.series_kind == DEPARTMENT_SERIES, alert.c.series_value == department
            )
        if after:
            query = query.where(sa.tuple_(alert.c.detected_at, alert.c.id) < sa.tuple_(*after))
        rows = (await self._session.execute(query.limit(limit))).all()
        return [_alert(row) for row in rows]

    async def in_month(self, first: date, last: date) -> Sequence[Alert]:
        rows = (
            await self._session.execute(
                sa.select(alert)
                .where(alert.c.last_day >= first, alert.c.first_day <= last)
                .order_by(alert.c.first_day)
            )
        ).all()
        return [_alert(row) for row in rows]


def _action_row(item: ImprovementAction) -> dict[str, Any]:
    return by_name(improvement_action.c.keys(), item, target=item.target.as_json())


def _action(row: sa.Row) -> ImprovementAction:
    return build(
        ImprovementAction,
        row._mapping,
        target=Target(**row.target),
        history=list(row.history),
    )


class ActionRepository(_StoredById[ImprovementAction]):
    table = improvement_action
    _read = staticmethod(_action)
    _values = staticmethod(_action_row)

    async def active_during(self, first: date, last: date) -> Sequence[ImprovementAction]:
        """The actions under way at some time in ``[first, last]``, earliest start first.

        Actions are few (people create them), so the rule is applied to every one of them
        in :meth:`ImprovementAction.active_during` rather than restated in SQL.
        """
        rows = (await self._session.execute(sa.select(improvement_action))).all()
        actions = [_action(row) for row in rows]
        return sorted(
            (action for action in actions if action.active_during(first, last)),
            key=lambda action: (action.began_on, action.title, str(action.id)),
        )

    async def list(
        self, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[ImprovementAction]:
        query = sa.select(improvement_action).order_by(
            improvement_action.c.created_at.desc(), improvement_action.c.id.desc()
        )
        if after:
            query = query.where(
                sa.tuple_(improvement_action.c.created_at, improvement_action.c.id)
                < sa.tuple_(*after)
            )
        rows = (await self._session.execute(query.limit(limit))).all()
        return [_action(row) for row in rows]


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def for_month(self, month: date) -> sa.Row | None:
        return (
            await self._session.execute(sa.select(report).where(report.c.month == month))
        ).first()

    async def archive(
        self,
        *,
        month: date,
        content: dict[str, Any],
        position: dict[str, Any],
        actor: str,
        now: datetime,
    ) -> uuid.UUID:
        report_id = uuid.uuid4()
        stmt = insert(report).values(
            id=report_id,
            month=month,
            generated_at=now,
            generated_by=actor,
            position=position,
            content=content,
        )
        inserted = (
            await self._session.execute(
                stmt.on_conflict_do_nothing(index_elements=["month"]).returning(report.c.id)
            )
        ).scalar()
        return inserted or report_id

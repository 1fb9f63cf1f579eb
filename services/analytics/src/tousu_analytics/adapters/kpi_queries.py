"""KPI queries over the read model: every figure is an aggregate of one ``base`` relation,
so a figure and its drill-down (the complaints behind it) are the same predicate.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import FrameClause, FrameClauseType

from tousu_analytics.adapters.orm import ReadModelTables, denominator

HOUR = 3600.0
SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")
NO_VALUE = "(none)"
TOTAL = "(total)"  # the key of the totals among the cells
# The waits whose spread the KPIs report: the prefix of base's ``<wait>_hours`` column (and
# of the core query's ``<wait>_<percentile>`` columns) → the KPI's name.
WAITS = {
    "fr": "first_response_hours",
    "fr_business": "first_response_business_hours",
    "res": "resolution_hours",
    "res_business": "resolution_business_hours",
}
PERCENTILES = {"median": 0.5, "p90": 0.9}


@dataclass(frozen=True)
class Scope:
    """Which complaints a query counts: received in [start, end), optionally one department."""

    start: date
    end: date
    department: str | None = None
    repeat_days: int = 30  # a repeat complaint: the same customer within this many days


def scoped(tables: ReadModelTables, scope: Scope) -> sa.Subquery:
    """The complaints in scope, with the fact's own columns only (what the SLA, CSAT, root
    cause and correction figures need: cheaper than :func:`base`)."""
    f = tables.fact
    query = sa.select(f).where(f.c.received_day >= scope.start, f.c.received_day < scope.end)
    if scope.department is not None:
        query = query.where(f.c.department == scope.department)
    return query.subquery("base")


def base(tables: ReadModelTables, scope: Scope, *, repeat: bool = True) -> sa.Subquery:
    """One row per complaint in scope with the derived columns every KPI uses; with
    ``repeat``, also whether it is a repeat complaint (``is_repeat``).

    A complaint is a repeat when the same customer complained in the ``repeat_days``
    before it (strictly earlier, any department). That is a window over the customer's
    complaints ordered by time, counting the rows in ``[received_at - repeat_days,
    received_at)``: one sort of the period and its lead-in instead of an index probe per
    complaint. It is the dearest column, so only the queries that count it ask for it.
    """
    f = tables.fact
    source: Any = f
    if repeat:
        window = FrameClause(
            sa.literal(timedelta(days=scope.repeat_days), sa.Interval),
            sa.literal(timedelta(microseconds=1), sa.Interval),
            FrameClauseType.PRECEDING,
            FrameClauseType.PRECEDING,
        )
        priors = sa.func.count().over(
            partition_by=f.c.customer_ref, order_by=f.c.received_at, range_=window
        )
        # The lead-in: a day more than the window, since received_day is the local day.
        lead_in = scope.start - timedelta(days=scope.repeat_days + 1)
        source = (
            sa.select(f, priors.label("priors"))
            .where(f.c.received_day >= lead_in, f.c.received_day < scope.end)
            .subquery("windowed")
        )
    c = source.c
    derived = [
        (sa.extract("epoch", c.first_response_at - c.received_at) / HOUR).label("fr_hours"),
        (c.first_response_business_seconds / HOUR).label("fr_business_hours"),
        (sa.extract("epoch", c.resolved_at - c.received_at) / HOUR).label("res_hours"),
        (c.resolution_business_seconds / HOUR).label("res_business_hours"),
    ]
    if repeat:
        derived.append(sa.and_(c.customer_ref.is_not(None), c.priors > 0).label("is_repeat"))
    query = sa.select(*(c[column.name] for column in f.columns), *derived).where(
        c.received_day >= scope.start, c.received_day < scope.end
    )
    if scope.department is not None:
        query = query.where(c.department == scope.department)
    return query.subquery("base")


def outcomes(b: sa.Subquery) -> dict[str, sa.ColumnElement[bool]]:
    """The per-complaint outcomes that rates count: one definition for figure and drill."""
    resolved = b.c.resolved_at.is_not(None)
    counted = {
        "all": sa.true(),
        "resolved": resolved,
        "fcr": b.c.fcr.is_(True),
        "reopened": sa.and_(b.c.reopened_at.is_not(None), resolved),
        "responded": b.c.first_response_at.is_not(None),
    }
    if "is_repeat" in b.c:
        counted["repeat"] = b.c.is_repeat
    return counted


def dimension(b: sa.Subquery, group_by: str | None) -> sa.ColumnElement[Any]:
    """The grouping expression of a dimension (a constant for the totals)."""
    if group_by is None:
        return sa.literal("total")
    time_unit = {"week": "week", "month": "month"}
    if group_by in time_unit:
        return sa.cast(sa.func.date_trunc(time_unit[group_by], b.c.received_day), sa.Date)
    column = {"day": "received_day"}.get(group_by, group_by)
    return b.c[column]


@dataclass(frozen=True)
class _Cells:
    """The cell column of a query and how it groups: every cell and the total in one pass
    (GROUPING SETS), or only the total when there is no dimension."""

    expression: sa.ColumnElement[Any] | None

    @classmethod
    def of(cls, b: sa.Subquery, group_by: str | None) -> _Cells:
        return cls(None if group_by is None else dimension(b, group_by))

    def columns(self) -> list[sa.ColumnElement[Any]]:
        if self.expression is None:
            return [sa.literal(TOTAL).label("cell"), sa.literal(1).label("is_total")]
        return [self.expression.label("cell"), sa.func.grouping(self.expression).label("is_total")]

    def group_by(self, *extra: sa.ColumnElement[Any]) -> list[Any]:
        if self.expression is None:
            return list(extra)
        return [sa.func.grouping_sets(sa.tuple_(self.expression, *extra), sa.tuple_(*extra))]


def _key(row: sa.Row) -> str:
    return TOTAL if row.is_total else cell_key(row.cell)


def cell_key(value: Any) -> str:
    if value is None:
        return NO_VALUE
    return value.isoformat() if isinstance(value, date) else str(value)


def _count(row: sa.Row) -> int:
    return int(row.n)


def _pct(column: sa.ColumnElement[Any], fraction: float) -> sa.ColumnElement[Any]:
    return sa.func.percentile_cont(fraction).within_group(column)


class KpiQueries:
    """Aggregates per cell of one dimension."""

    def __init__(self, session: AsyncSession, tables: ReadModelTables) -> None:
        self._session = session
        self.tables = tables

    def base(self, scope: Scope, *, repeat: bool = True) -> sa.Subquery:
        return base(self.tables, scope, repeat=repeat)

    async def export_snapshot(self) -> str:
        """Start a repeatable-read transaction and export its snapshot, so that queries on
        other connections (:meth:`import_snapshot`) see exactly the same rows."""
        await self._session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        return str(await self._session.scalar(sa.text("SELECT pg_export_snapshot()")))

    async def import_snapshot(self, snapshot: str) -> None:
        if not SNAPSHOT_ID.fullmatch(snapshot):
            raise ValueError(f"not a snapshot id: {snapshot!r}")
        await self._session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        # A utility statement: it takes no parameters, hence the check above.
        await self._session.execute(sa.text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))

    async def _rows(self, query: sa.Select) -> list[sa.Row]:
        return list((await self._session.execute(query)).all())

    async def core(
        self, scope: Scope, group_by: str | None, *, durations: bool = True
    ) -> dict[str, dict[str, Any]]:
        """Volume and outcome counts per cell, and (``durations``) the median and p90 of
        the first-response and resolution times. Repeats are counted by :meth:`repeats`."""
        b = self.base(scope, repeat=False)
        cells = _Cells.of(b, group_by)
        counted = outcomes(b)
        query = sa.select(
            *cells.columns(),
            sa.func.count().label("volume"),
            *(
                sa.func.count().filter(counted[name]).label(name)
                for name in ("resolved", "fcr", "reopened")
            ),
            *(self._durations(b) if durations else ()),
        ).group_by(*cells.group_by())
        return {_key(row): row._asdict() for row in await self._rows(query)}

    async def repeats(self, scope: Scope, group_by: str | None) -> dict[str, int]:
        """Repeat complaints per cell (every cell with a complaint, zero included)."""
        b = self.base(scope)
        cells = _Cells.of(b, group_by)
        query = sa.select(
            *cells.columns(), sa.func.count().filter(b.c.is_repeat).label("repeat")
        ).group_by(*cells.group_by())
        return {_key(row): row.repeat for row in await self._rows(query)}

    @staticmethod
    def _durations(b: sa.Subquery) -> list[sa.ColumnElement[Any]]:
        return [
            _pct(b.c[f"{wait}_hours"], fraction).label(f"{wait}_{percentile}")
            for wait in WAITS
            for percentile, fraction in PERCENTILES.items()
        ]

    async def _per_cell_and(
        self,
        b: sa.Subquery,
        group_by: str | None,
        inner: sa.ColumnElement[Any],
        *aggregates: sa.ColumnElement[Any],
        joined: sa.Table | None = None,
        where: sa.ColumnElement[bool] | None = None,
        value: Callable[[sa.Row], Any] = sa.Row._asdict,
    ) -> dict[str, dict[str, Any]]:
        """Aggregates per cell and per value of one more column, ``inner`` (a milestone, a
        survey source, a root cause, a corrected dimension), over ``b`` or over ``b``
        joined to one of the complaint's tables: cell key → inner value → ``value(row)``
        (the row's figures by name unless told otherwise)."""
        cells = _Cells.of(b, group_by)
        source = b if joined is None else b.join(joined, joined.c.complaint_id == b.c.complaint_id)
        query = sa.select(*cells.columns(), inner, *aggregates).select_from(source)
        if where is not None:
            query = query.where(where)
        query = query.group_by(*cells.group_by(inner))
        out: dict[str, dict[str, Any]] = {}
        for row in await self._rows(query):
            out.setdefault(_key(row), {})[cell_key(row._mapping[inner])] = value(row)
        return out

    async def sla(self, scope: Scope, group_by: str | None) -> dict[str, dict[str, Any]]:
        b, m = scoped(self.tables, scope), self.tables.milestone
        decided = sa.or_(m.c.met_at.is_not(None), m.c.breached_at.is_not(None))
        compliant = sa.or_(
            m.c.within_target.is_(True),
            sa.and_(
                m.c.within_target.is_(None), m.c.met_at.is_not(None), m.c.breached_at.is_(None)
            ),
        )
        return await self._per_cell_and(
            b,
            group_by,
            m.c.milestone,
            sa.func.count().filter(decided).label("decided"),
            sa.func.count().filter(sa.and_(decided, compliant)).label("compliant"),
            joined=m,
        )

    async def csat(self, scope: Scope, group_by: str | None) -> dict[str, dict[str, Any]]:
        b, s = scoped(self.tables, scope), self.tables.survey
        return await self._per_cell_and(
            b,
            group_by,
            s.c.source,
            sa.func.count().label("surveys"),
            sa.func.count(s.c.satisfaction).label("answers"),
            sa.func.avg(s.c.satisfaction).label("mean"),
            sa.func.count().filter(s.c.satisfaction >= 4).label("satisfied"),
            sa.func.count().filter(s.c.confirmed.is_(True)).label("confirmed"),
            joined=s,
        )

    async def root_causes(self, scope: Scope, group_by: str | None) -> dict[str, dict[str, int]]:
        b = scoped(self.tables, scope)
        return await self._per_cell_and(
            b,
            group_by,
            b.c.root_cause,
            sa.func.count().label("n"),
            where=b.c.root_cause.is_not(None),
            value=_count,
        )

    async def corrections(self, scope: Scope, group_by: str | None) -> dict[str, dict[str, int]]:
        b, c = scoped(self.tables, scope), self.tables.correction
        return await self._per_cell_and(
            b,
            group_by,
            c.c.dimension,
            sa.func.count(sa.distinct(c.c.complaint_id)).label("n"),
            joined=c,
            value=_count,
        )

    async def denominators(self, start: date, end: date) -> Mapping[tuple[date, str], sa.Row]:
        first = start.replace(day=1)
        rows = await self._rows(
            sa.select(denominator).where(denominator.c.month >= first, denominator.c.month < end)
        )
        return {(row.month, row.product_line): row for row in rows}

    async def daily_counts(
        self, start: date, end: date, series_column: str, department: str | None = None
    ) -> list[sa.Row]:
        """Complaints per local day, category and product line (or department)."""
        f = self.tables.fact
        value = f.c[series_column]
        query = (
            sa.select(
                f.c.received_day.label("day"),
                f.c.category,
                value.label("value"),
                sa.func.count().label("n"),
            )
            .where(
                f.c.received_day >= start,
                f.c.received_day < end,
                f.c.category.is_not(None),
                value.is_not(None),
            )
            .group_by(f.c.received_day, f.c.category, value)
        )
        if department is not None:
            query = query.where(f.c.department == department)
        return await self._rows(query)

    async def stream(self, query: sa.Select) -> AsyncIterator[sa.Row]:
        """Rows of a query through a server-side cursor: no row cap, bounded memory."""
        result = await self._session.stream(query.execution_options(yield_per=2000))
        async for row in result:
            yield row


# metric → (population, counted) among the outcomes above; the figure is counted/population.
OUTCOME_METRICS: dict[str, tuple[str, str]] = {
    "volume": ("all", "all"),
    "unhappy_estimate": ("all", "all"),
    "resolution_rate": ("all", "resolved"),
    "fcr_rate": ("all", "fcr"),
    "reopen_rate": ("resolved", "reopened"),
    "repeat_rate": ("all", "repeat"),
    "first_response_time": ("responded", "responded"),
    "resolution_time": ("resolved", "resolved"),
}
# metric → what follows its dot: sla_compliance.first_response, csat.link, …
QUALIFIED_METRICS = ("sla_compliance", "csat", "confirmed", "root_cause", "corrections")
# The fact's columns that describe a complaint: a figure may be grouped by each of them (and
# by more), and a drilled complaint shows each.
DESCRIBED_BY = ("category", "channel", "department", "product_line", "region", "severity")
DRILL_COLUMNS = ("complaint_id", "received_at", *DESCRIBED_BY, "root_cause")


def _qualified(
    tables: ReadModelTables, b: sa.Subquery, metric: str, qualifier: str
) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    m, s, c = tables.milestone, tables.survey, tables.correction
    if metric == "sla_compliance":
        mine = sa.and_(
            m.c.complaint_id == b.c.complaint_id,
            m.c.milestone == qualifier,
            sa.or_(m.c.met_at.is_not(None), m.c.breached_at.is_not(None)),
        )
        compliant = sa.or_(
            m.c.within_target.is_(True),
            sa.and_(m.c.within_target.is_(None), m.c.breached_at.is_(None)),
        )
        return sa.exists().where(mine), sa.exists().where(mine, compliant)
    if metric in ("csat", "confirmed"):
        mine = sa.and_(s.c.complaint_id == b.c.complaint_id, s.c.source == qualifier)
        good = s.c.satisfaction >= 4 if metric == "csat" else s.c.confirmed.is_(True)
        return sa.exists().where(mine), sa.exists().where(mine, good)
    if metric == "root_cause":
        same = b.c.root_cause == qualifier
        return same, same
    corrected = sa.exists().where(c.c.complaint_id == b.c.complaint_id, c.c.dimension == qualifier)
    return corrected, corrected


def drill_query(
    tables: ReadModelTables,
    b: sa.Subquery,
    metric: str,
    qualifier: str | None,
    group_by: str | None,
    cell: str | None,
) -> sa.Select:
    """The complaints behind one figure: its population, each flagged whether it counted."""
    if metric in OUTCOME_METRICS:
        population_name, counted_name = OUTCOME_METRICS[metric]
        counted_by = outcomes(b)
        population, counted = counted_by[population_name], counted_by[counted_name]
    else:
        assert qualifier is not None, "qualified metrics are validated by the service layer"
        population, counted = _qualified(tables, b, metric, qualifier)
    query = (
        sa.select(*(b.c[name] for name in DRILL_COLUMNS), counted.label("counted"))
        .where(population)
        .order_by(b.c.complaint_id)
    )
    if group_by is not None and cell is not None:
        expression = dimension(b, group_by)
        if cell == NO_VALUE:
            query = query.where(expression.is_(None))
        elif group_by in ("day", "week", "month"):
            query = query.where(expression == date.fromisoformat(cell))
        else:
            query = query.where(expression == cell)
    return query

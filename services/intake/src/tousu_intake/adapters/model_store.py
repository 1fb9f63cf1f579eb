"""The classifier model registry (table intake.classifier_model, migration 0003).

Every trained candidate is stored with its metrics and artefact; the newest ``promoted`` row
is the model intake classifies with (the shipped artefact when there is none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tousu_intake.domain.classification.textmodel import TextModel

# The registry's own table object (adapters/orm.py is the complaint tables' home).
classifier_model = sa.Table(
    "classifier_model",
    sa.MetaData(schema="intake"),
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("trained_on_hash", sa.Text, nullable=False),
    sa.Column("trained_on_size", sa.Integer, nullable=False),
    sa.Column("metrics", pg.JSONB, nullable=False),
    sa.Column("artefact", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("promoted_at", sa.DateTime(timezone=True)),
    sa.Column("promoted_by", sa.Text),
)

STATUSES = ("candidate", "promoted", "rejected")


@dataclass(frozen=True)
class ModelRecord:
    """One registry row, without the artefact unless it was asked for."""

    version: str
    created_at: datetime
    trained_on_hash: str
    trained_on_size: int
    metrics: dict[str, Any]
    status: str
    reason: str | None
    promoted_at: datetime | None
    promoted_by: str | None
    artefact: bytes | None = None


class SqlModelRegistry:
    """The registry on one session; the caller owns the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, record: ModelRecord) -> None:
        """Store a trained model (candidate, promoted or rejected)."""
        if record.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        if record.artefact is None:
            raise ValueError("a stored model needs its artefact")
        await self._session.execute(
            classifier_model.insert().values(
                version=record.version,
                created_at=record.created_at,
                trained_on_hash=record.trained_on_hash,
                trained_on_size=record.trained_on_size,
                metrics=record.metrics,
                artefact=record.artefact,
                status=record.status,
                reason=record.reason,
                promoted_at=record.promoted_at,
                promoted_by=record.promoted_by,
            )
        )

    async def promoted(self) -> ModelRecord | None:
        """The newest promoted model, with its artefact."""
        row = (
            await self._session.execute(
                sa.select(classifier_model)
                .where(classifier_model.c.status == "promoted")
                .order_by(classifier_model.c.promoted_at.desc(), classifier_model.c.version.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else _record(row._mapping, with_artefact=True)

    async def promoted_version(self) -> str | None:
        """The newest promoted model's version only: the cheap check a cache polls."""
        return await self._session.scalar(
            sa.select(classifier_model.c.version)
            .where(classifier_model.c.status == "promoted")
            .order_by(classifier_model.c.promoted_at.desc(), classifier_model.c.version.desc())
            .limit(1)
        )

    async def promoted_model(self) -> TextModel | None:
        """The newest promoted model, loaded (None: classify with the shipped artefact)."""
        record = await self.promoted()
        if record is None or record.artefact is None:
            return None
        return TextModel.from_bytes(record.artefact)

    async def history(self, limit: int = 20) -> list[ModelRecord]:
        """The newest registry rows, without artefacts."""
        columns = [c for c in classifier_model.c if c.name != "artefact"]
        rows = (
            await self._session.execute(
                sa.select(*columns).order_by(classifier_model.c.created_at.desc()).limit(limit)
            )
        ).all()
        return [_record(row._mapping, with_artefact=False) for row in rows]


class SessionModelRegistry:
    """The registry for long-running callers: each write in its own short transaction.

    Retraining takes seconds of CPU; holding a database transaction open meanwhile would
    pin a pooled connection for nothing.
    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory

    async def add(self, record: ModelRecord) -> None:
        """Store a trained model in its own transaction."""
        async with self._session_factory() as session, session.begin():
            await SqlModelRegistry(session).add(record)


def _record(row: Any, *, with_artefact: bool) -> ModelRecord:
    return ModelRecord(
        version=row["version"],
        created_at=row["created_at"],
        trained_on_hash=row["trained_on_hash"],
        trained_on_size=row["trained_on_size"],
        metrics=row["metrics"],
        status=row["status"],
        reason=row["reason"],
        promoted_at=row["promoted_at"],
        promoted_by=row["promoted_by"],
        artefact=bytes(row["artefact"]) if with_artefact else None,
    )


async def load_promoted_model(session: AsyncSession) -> TextModel | None:
    """The model to classify with, from the registry (None: use the shipped artefact)."""
    return await SqlModelRegistry(session).promoted_model()

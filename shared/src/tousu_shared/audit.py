"""The append-only audit log: every privileged action and every read of personal data."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tousu_shared.logging import correlation_id_var


@dataclass(frozen=True)
class AuditEntry:
    """One audit entry, as a unit of work collects it before commit."""

    actor: str
    role: str
    action: str
    resource_type: str
    resource_id: str | None = None
    complaint_id: uuid.UUID | None = None
    details: dict[str, Any] = field(default_factory=dict)


class AuditLog:
    """Writes audit entries in the caller's transaction."""

    def __init__(self, schema: str) -> None:
        self._insert = text(
            f"INSERT INTO {schema}.audit_log (actor, actor_role, action, resource_type, "
            "resource_id, complaint_id, correlation_id, details) VALUES (:actor, :role, "
            ":action, :resource_type, :resource_id, :complaint_id, :correlation_id, "
            "CAST(:details AS jsonb))"
        )
        self._select = text(
            f"SELECT id, at, actor, actor_role, action, resource_type, resource_id, complaint_id, "
            f"correlation_id, details FROM {schema}.audit_log "
            "WHERE (CAST(:complaint_id AS uuid) IS NULL "
            "       OR complaint_id = CAST(:complaint_id AS uuid)) "
            "AND id > :after ORDER BY id LIMIT :limit"
        )

    async def record_many(self, session: AsyncSession, entries: Sequence[AuditEntry]) -> None:
        """Append entries in order; they commit with the caller's transaction."""
        if not entries:
            return
        correlation_id = correlation_id_var.get()
        await session.execute(
            self._insert,
            [
                {
                    "actor": entry.actor,
                    "role": entry.role,
                    "action": entry.action,
                    "resource_type": entry.resource_type,
                    "resource_id": entry.resource_id,
                    "complaint_id": entry.complaint_id,
                    "correlation_id": correlation_id,
                    "details": orjson.dumps(entry.details).decode(),
                }
                for entry in entries
            ],
        )

    async def entries(
        self,
        session: AsyncSession,
        *,
        complaint_id: uuid.UUID | None,
        after: int,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Entries in order, optionally for one complaint."""
        rows = await session.execute(
            self._select,
            {
                "complaint_id": str(complaint_id) if complaint_id else None,
                "after": after,
                "limit": limit,
            },
        )
        return [dict(row._mapping) for row in rows]

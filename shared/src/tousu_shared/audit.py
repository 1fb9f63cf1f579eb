"""The append-only audit log: every privileged action and every read of personal data.

The service role may only append and read (deploy/postgres/harden.sql), and the entries form
a hash chain (tousu_shared.migrations.add_audit_hash_chain) that :func:`verify_chain` checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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


@dataclass(frozen=True)
class ChainReport:
    """What a walk along one schema's audit chain found."""

    schema: str
    entries: int
    head: bytes | None
    broken_id: int | None = None
    broken_position: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_id is None

    def summary(self) -> str:
        """One line for an operator; the head hash is worth keeping outside the database,
        since entries removed from the end leave a shorter chain that is still whole."""
        where = f"{self.schema}.audit_log: {self.entries} entries"
        if self.intact:
            head = self.head.hex() if self.head else "none"
            return f"{where}, chain intact, head {head}"
        return (
            f"{where}, chain BROKEN at entry id {self.broken_id} "
            f"(position {self.broken_position}): {self.reason}"
        )


def _verify_query(schema: str) -> Any:
    # One statement, so one snapshot: the walk sees the chain as it was at one instant.
    return text(
        f"""
        WITH chain AS (
            SELECT id, chain_seq, entry_hash,
                   entry_hash = {schema}.audit_log_digest(a) AS intact,
                   prev_hash = coalesce(lag(entry_hash) OVER w, decode(repeat('00', 32), 'hex'))
                       AS linked,
                   chain_seq = coalesce(lag(chain_seq) OVER w, 0) + 1 AS contiguous
            FROM {schema}.audit_log a
            WINDOW w AS (ORDER BY chain_seq)
        )
        SELECT (SELECT count(*) FROM chain) AS entries,
               (SELECT entry_hash FROM chain ORDER BY chain_seq DESC LIMIT 1) AS head,
               broken.*
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL (
            SELECT id, chain_seq, intact, linked, contiguous FROM chain
            WHERE NOT coalesce(intact AND linked AND contiguous, false)
            ORDER BY chain_seq LIMIT 1
        ) AS broken ON true
        """
    )


async def verify_chain(connection: AsyncConnection, schema: str) -> ChainReport:
    """Recompute every entry's hash and link in chain order; report the first that fails."""
    row = (await connection.execute(_verify_query(schema))).one()
    head = bytes(row.head) if row.head is not None else None
    if row.id is None:
        return ChainReport(schema, row.entries, head)
    if not row.intact:
        reason = "its content no longer matches its hash (the entry was changed)"
    elif not row.linked:
        reason = "it does not follow the entry before it (an entry was removed or re-hashed)"
    else:
        reason = "the chain skips positions before it (entries were removed)"
    return ChainReport(schema, row.entries, head, row.id, row.chain_seq, reason)

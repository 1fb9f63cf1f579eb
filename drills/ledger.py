"""The ledger: what the load driver was told, checked against every service's own tables.

The checker reads each service's schema as that service's role, read-only; it never writes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from drills.stack import PG_PORT, SCHEMAS


@dataclass
class Ledger:
    """The ledger's totals for one drill; ``problems`` lists every check that failed."""

    acknowledged: int = 0
    # in intake, with one case in routing, one SLA record and one row in analytics' read model
    present: int = 0
    lost: int = 0
    doubled: int = 0
    detail: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"acknowledged {self.acknowledged}, present {self.present}, lost {self.lost}, "
            f"doubled {self.doubled}"
        )


class Checker:
    """Read-only queries over the drill database, one engine per service role."""

    def __init__(self) -> None:
        self.engines: dict[str, AsyncEngine] = {
            schema: create_async_engine(
                f"postgresql+asyncpg://{schema}:{schema}@127.0.0.1:{PG_PORT}/tousu",
                pool_size=1,
                max_overflow=0,
                pool_pre_ping=True,
                # Read-only sessions: a checker that wrote would change what it checks.
                connect_args={"server_settings": {"default_transaction_read_only": "on"}},
            )
            for schema in SCHEMAS.values()
        }

    async def close(self) -> None:
        for engine in self.engines.values():
            await engine.dispose()

    async def rows(self, schema: str, query: str, **params: object) -> list[sa.Row]:
        async with self.engines[schema].connect() as conn:
            return list((await conn.execute(sa.text(query), params)).all())

    async def backlog(self, ids: list[uuid.UUID]) -> int:
        """Unsent outbox rows everywhere plus acknowledged complaints not yet fully applied."""
        unsent = 0
        for schema in self.engines:
            rows = await self.rows(
                schema, f"SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL"
            )
            unsent += rows[0][0]
        cases = await self.rows(
            "routing",
            "SELECT count(*) FROM routing.routed_case WHERE complaint_id = ANY(:ids)",
            ids=ids,
        )
        slas = await self.rows(
            "sla_monitor",
            "SELECT count(*) FROM sla_monitor.sla_case WHERE case_id = ANY(:ids)",
            ids=ids,
        )
        facts = await self.rows(
            "analytics",
            "SELECT count(*) FROM analytics.fact WHERE complaint_id = ANY(:ids)",
            ids=ids,
        )
        return unsent + 3 * len(ids) - cases[0][0] - slas[0][0] - facts[0][0]

    async def check(
        self,
        acknowledged: dict[str, str],
        *,
        key_prefix: str,
        since: datetime,
        poison_ids: set[uuid.UUID],
    ) -> Ledger:
        """Every acknowledged complaint once in intake, one case, one SLA record, one read-model
        row (the fact table's primary key is the complaint id); no complaint
        beyond those acknowledged; each Idempotency-Key bound to the id it answered; no event
        but a poison one dead-lettered during the drill."""
        ledger = Ledger(acknowledged=len(set(acknowledged.values())))
        ids = [uuid.UUID(value) for value in set(acknowledged.values())]
        if len(ids) != len(acknowledged):
            ledger.problems.append("two Idempotency-Keys were answered with the same id")
        in_intake = {
            row[0]
            for row in await self.rows(
                "intake", "SELECT id FROM intake.complaint WHERE id = ANY(:ids)", ids=ids
            )
        }
        cases: dict[uuid.UUID, int] = {
            row[0]: row[1]
            for row in await self.rows(
                "routing",
                "SELECT complaint_id, count(*) FROM routing.routed_case "
                "WHERE complaint_id = ANY(:ids) GROUP BY complaint_id",
                ids=ids,
            )
        }
        slas = {
            row[0]
            for row in await self.rows(
                "sla_monitor",
                "SELECT case_id FROM sla_monitor.sla_case WHERE case_id = ANY(:ids)",
                ids=ids,
            )
        }
        facts = {
            row[0]
            for row in await self.rows(
                "analytics",
                "SELECT complaint_id FROM analytics.fact WHERE complaint_id = ANY(:ids)",
                ids=ids,
            )
        }
        # Complaints recorded during the drill that no 201 acknowledged: a request applied
        # twice under two ids (the drill database holds only the drills' complaints).
        extra = await self.rows(
            "intake",
            "SELECT id FROM intake.complaint WHERE received_at >= :since AND id <> ALL(:ids)",
            since=since,
            ids=ids,
        )
        keys = await self.rows(
            "intake",
            "SELECT key, complaint_id FROM intake.idempotency_key WHERE key LIKE :prefix",
            prefix=f"{key_prefix}-%",
        )
        wrong_keys = [
            key
            for key, complaint_id in keys
            if key in acknowledged and str(complaint_id) != acknowledged[key]
        ]
        unacknowledged_keys = [key for key, _ in keys if key not in acknowledged]
        ledger.present = sum(
            1 for i in ids if i in in_intake and cases.get(i) == 1 and i in slas and i in facts
        )
        ledger.detail = {
            "missing in intake": sum(1 for i in ids if i not in in_intake),
            "without case": sum(1 for i in ids if i not in cases),
            "without SLA record": sum(1 for i in ids if i not in slas),
            "without a row in analytics' read model": sum(1 for i in ids if i not in facts),
            "more than one case": sum(1 for n in cases.values() if n > 1),
            "complaints no 201 acknowledged": len(extra),
            "keys bound to another id": len(wrong_keys),
            "keys committed, never answered": len(unacknowledged_keys),
        }
        ledger.lost = len(ids) - ledger.present
        ledger.doubled = (
            ledger.detail["more than one case"]
            + ledger.detail["complaints no 201 acknowledged"]
            + ledger.detail["keys bound to another id"]
        )
        for what, count in ledger.detail.items():
            if count:
                ledger.problems.append(f"{count} {what}")
        await self._check_inboxes(ledger, poison_ids, since)
        return ledger

    async def _check_inboxes(
        self, ledger: Ledger, poison_ids: set[uuid.UUID], since: datetime
    ) -> None:
        """No valid event this drill's consumers processed was dead-lettered. (An event id
        cannot be in one consumer's inbox twice: (consumer, event_id) is its primary key.)"""
        for schema in self.engines:
            dead = await self.rows(
                schema,
                f"SELECT consumer, event_id, event_type FROM {schema}.inbox "
                "WHERE outcome = 'dead_lettered' AND processed_at >= :since",
                since=since,
            )
            valid = [row for row in dead if row[1] not in poison_ids]
            applied = await self.rows(
                schema,
                f"SELECT consumer, event_id FROM {schema}.inbox "
                "WHERE event_id = ANY(:ids) AND outcome <> 'dead_lettered'",
                ids=list(poison_ids),
            )
            if applied:
                ledger.problems.append(f"{schema}: {len(applied)} poison events applied")
            if valid:
                ledger.problems.append(
                    f"{schema}: {len(valid)} valid events dead-lettered, e.g. {valid[:3]}"
                )

    async def now(self) -> datetime:
        return (await self.rows("intake", "SELECT now()"))[0][0]

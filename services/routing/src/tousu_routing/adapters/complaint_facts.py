"""The complaint facts routing keeps from ``ComplaintReceived`` until the case is opened.

Repositories never commit: the unit of work does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tousu_routing.adapters.orm import complaint_fact


@dataclass(frozen=True)
class ComplaintFacts:
    """What intake told routing about a complaint when it was received."""

    complaint_id: uuid.UUID
    tracking_code: str
    channel: str
    contact_at: datetime
    received_at: datetime
    customer_tier: str
    product_line: str | None
    region: str | None
    subject_staff_ref: str | None
    subject_unit: str | None
    contact_details_url: str


class ComplaintFactRepository:
    """Complaint facts kept from ``ComplaintReceived`` until the case is opened.

    Within a transaction the repository remembers what it read (``load`` reads many at
    once), and the facts of complaints it knows about are written at commit
    (``write_unsaved``): a complaint received and routed in the same consumed batch is
    then never written at all, and the others in one insert and one delete per batch.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # complaint → its stored facts (None: none), as far as this transaction knows.
        self._known: dict[uuid.UUID, ComplaintFacts | None] = {}
        self._unwritten: dict[uuid.UUID, ComplaintFacts] = {}
        self._removed: set[uuid.UUID] = set()

    async def load(self, complaint_ids: Iterable[uuid.UUID]) -> None:
        """Read the stored facts of these complaints in one statement."""
        wanted = sorted(set(complaint_ids) - self._known.keys())
        if not wanted:
            return
        rows = (
            (
                await self._session.execute(
                    sa.select(complaint_fact).where(complaint_fact.c.complaint_id.in_(wanted))
                )
            )
            .mappings()
            .all()
        )
        self._known.update(dict.fromkeys(wanted))
        self._known.update({row["complaint_id"]: _facts_from_row(row) for row in rows})

    async def add(self, facts: ComplaintFacts) -> None:
        """Store facts; the first copy of a complaint wins."""
        complaint_id = facts.complaint_id
        if complaint_id not in self._known:
            await self._session.execute(
                insert(complaint_fact).values(**vars(facts)).on_conflict_do_nothing()
            )
        elif self._known[complaint_id] is None:
            self._known[complaint_id] = self._unwritten[complaint_id] = facts

    async def get(self, complaint_id: uuid.UUID) -> ComplaintFacts | None:
        """The stored facts of a complaint, if any."""
        if complaint_id not in self._known:
            await self.load([complaint_id])
        return self._known[complaint_id]

    async def remove(self, complaint_id: uuid.UUID) -> None:
        """Forget the facts once the case holds what it needs."""
        if self._unwritten.pop(complaint_id, None) is None:
            self._removed.add(complaint_id)
        self._known[complaint_id] = None

    async def write_unsaved(self) -> None:
        """Write the removals, then the additions, this transaction kept back."""
        removed, self._removed = sorted(self._removed), set()
        unwritten, self._unwritten = list(self._unwritten.values()), {}
        if removed:
            await self._session.execute(
                sa.delete(complaint_fact).where(complaint_fact.c.complaint_id.in_(removed))
            )
        if unwritten:
            await self._session.execute(
                insert(complaint_fact).on_conflict_do_nothing(),
                [vars(facts) for facts in unwritten],
            )


def _facts_from_row(row: RowMapping) -> ComplaintFacts:
    return ComplaintFacts(**{k: v for k, v in row.items() if k != "stored_at"})

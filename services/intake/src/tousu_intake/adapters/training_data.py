"""Manual corrections as training data: what a person set beside the automatic result.

Only the dimensions a person actually corrected become labels (an untouched dimension
would only teach the model its own guess back). Anonymised complaints are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tousu_intake.adapters.orm import complaint
from tousu_intake.domain.classification.model import ComplaintFacts
from tousu_intake.domain.classification.training import Example

CORRECTABLE = ("category", "severity", "urgency", "risk_flags", "emotion")


@dataclass(frozen=True)
class Correction:
    """One complaint a person reclassified: its facts and the corrected dimensions."""

    complaint_id: str
    corrected_at: datetime
    facts: ComplaintFacts
    labels: dict[str, Any]  # only the corrected dimensions

    def example(self) -> Example:
        """A training example that labels only the heads the correction speaks for."""
        flags = self.labels.get("risk_flags")
        severity = self.labels.get("severity")
        return Example(
            text=self.facts.description,
            category=self.labels.get("category"),
            emotion=self.labels.get("emotion"),
            risk_flags=None if flags is None else tuple(flags),
            minor=None if severity is None else severity == "minor",
            source="correction",
        )


def correction_from_row(row: Any) -> Correction | None:
    """A correction from a complaint row, None if nothing usable was corrected."""
    manual = row["manual_classification"] or {}
    labels = {k: manual[k] for k in CORRECTABLE if manual.get(k) is not None}
    if not labels or not row["description"]:
        return None
    amount = row["amount"]
    facts = ComplaintFacts(
        description=row["description"],
        channel=row["channel"],
        customer_tier=row["customer_tier"],
        amount=None if amount is None else Decimal(amount),
        affected_customers=row["affected_customers"],
    )
    return Correction(str(row["id"]), row["manual_classified_at"], facts, labels)


class SqlCorrections:
    """Reads corrections from intake.complaint (the table is the complaint service's; read only)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def corrections(self, limit: int = 20_000) -> list[Correction]:
        """Corrected complaints, oldest correction first."""
        rows = (
            await self._session.execute(
                sa.select(
                    complaint.c.id,
                    complaint.c.description,
                    complaint.c.channel,
                    complaint.c.customer_tier,
                    complaint.c.amount,
                    complaint.c.affected_customers,
                    complaint.c.manual_classification,
                    complaint.c.manual_classified_at,
                )
                .where(
                    complaint.c.manual_classification.is_not(None),
                    complaint.c.anonymized_at.is_(None),
                )
                .order_by(complaint.c.manual_classified_at.asc(), complaint.c.id)
                .limit(limit)
            )
        ).all()
        found = (correction_from_row(row._mapping) for row in rows)
        return [c for c in found if c is not None]

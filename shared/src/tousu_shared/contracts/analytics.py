"""Events the analytics service publishes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import ClassVar, Literal

from tousu_shared.contracts.base import Event


class SystemicIssueDetected(Event):
    """One daily complaint series rose above what its baseline allows (a systemic issue).

    An alert is about many complaints, so its subject (``complaint_id``, the Kafka key) is the
    alert's id, repeated in ``alert_id``; the complaints behind it are in ``complaint_ids``.
    ``expected`` and ``upper_bound`` come from the negative-binomial baseline
    (``farrington_nb``) or, for a series with under four weeks of history, EARS C2
    (``ears_c2``); ``shared`` names what most of the complaints have in common (region,
    product_ref as the batch, subject_unit, tag) with the value they share.
    """

    topic: ClassVar[str] = "analytics.events"

    alert_id: uuid.UUID
    series: Literal["category_product_line", "category_department"]
    category: str
    product_line: str | None = None
    department: str | None = None
    method: Literal["farrington_nb", "ears_c2"]
    day: date
    first_day: date
    observed: int
    expected: float
    upper_bound: float
    p_value: float
    complaint_ids: list[uuid.UUID]
    shared: dict[str, str] = {}
    detected_at: datetime

"""A systemic-issue alert: what the detector found in one series, and what a manager did.

States: ``open → acknowledged → linked`` (to an improvement action), or ``dismissed`` with a
reason from open or acknowledged. A series that keeps alarming on the following days
extends its open alert instead of raising a new one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from tousu_shared.contracts.analytics import SystemicIssueDetected
from tousu_shared.errors import Conflict
from tousu_shared.same_names import by_name, field_names
from tousu_shared.uow import OutgoingMessage

# state → the actions allowed from it (the refusal lists them).
ALLOWED: dict[str, tuple[str, ...]] = {
    "open": ("acknowledge", "link", "dismiss"),
    "acknowledged": ("link", "dismiss"),
    "linked": (),
    "dismissed": (),
}
ACTIVE_STATES = ("open", "acknowledged", "linked")
DEPARTMENT_SERIES = "category_department"


@dataclass(frozen=True)
class Series:
    """One daily count series: a category crossed with a product line or a department."""

    kind: str  # "category_product_line" | "category_department"
    category: str
    value: str

    @property
    def department(self) -> str | None:
        """The department the series belongs to; a product line's series spans them all."""
        return self.value if self.kind == DEPARTMENT_SERIES else None


@dataclass(frozen=True)
class Evidence:
    """What the detector saw on the day it alarmed."""

    day: date
    first_day: date
    method: str
    observed: int
    expected: float
    upper_bound: float
    p_value: float
    complaint_ids: tuple[uuid.UUID, ...]
    shared: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "first_day": self.first_day.isoformat(),
            "method": self.method,
            "observed": self.observed,
            "expected": round(self.expected, 4),
            "upper_bound": round(self.upper_bound, 4),
            "p_value": self.p_value,
            "complaint_ids": [str(cid) for cid in self.complaint_ids],
            "shared": self.shared,
        }


@dataclass
class Alert:
    id: uuid.UUID
    series: Series
    method: str
    first_day: date
    last_day: date
    state: str
    evidence: dict[str, Any]
    detected_at: datetime
    updated_at: datetime
    action_id: uuid.UUID | None = None
    dismiss_reason: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    _messages: list[OutgoingMessage] = field(default_factory=list, repr=False)

    @classmethod
    def raise_for(cls, series: Series, evidence: Evidence, now: datetime) -> Alert:
        alert = cls(
            id=uuid.uuid4(),
            series=series,
            method=evidence.method,
            first_day=evidence.first_day,
            last_day=evidence.day,
            state="open",
            evidence=evidence.as_json(),
            detected_at=now,
            updated_at=now,
        )
        alert._record("detected", "system:analytics", now, day=evidence.day.isoformat())
        alert._announce(evidence, now)
        return alert

    def extend(self, evidence: Evidence, now: datetime) -> None:
        """The series alarmed again on a later day: the same issue, more evidence."""
        earlier = {str(cid) for cid in self.evidence.get("complaint_ids", [])}
        merged = sorted(earlier | {str(cid) for cid in evidence.complaint_ids})
        self.evidence = {
            **evidence.as_json(),
            "complaint_ids": merged,
            "first_day": self.first_day.isoformat(),
        }
        self.last_day = evidence.day
        self.updated_at = now
        self._record("extended", "system:analytics", now, day=evidence.day.isoformat())

    def acknowledge(self, actor: str, now: datetime) -> None:
        self._allow("acknowledge")
        self.state = "acknowledged"
        self._record("acknowledged", actor, now)

    def link(self, action_id: uuid.UUID, actor: str, now: datetime) -> None:
        self._allow("link")
        self.state, self.action_id = "linked", action_id
        self._record("linked", actor, now, action_id=str(action_id))

    def dismiss(self, reason: str, actor: str, now: datetime) -> None:
        self._allow("dismiss")
        self.state, self.dismiss_reason = "dismissed", reason
        self._record("dismissed", actor, now, reason=reason)

    @property
    def allowed_actions(self) -> Sequence[str]:
        return ALLOWED[self.state]

    def pull_messages(self) -> list[OutgoingMessage]:
        messages, self._messages = self._messages, []
        return messages

    def _allow(self, action: str) -> None:
        if action not in ALLOWED[self.state]:
            raise Conflict(
                f"an alert in state {self.state} cannot be {action}d",
                field="state",
                state=self.state,
                allowed_actions=list(ALLOWED[self.state]),
            )

    def _record(self, what: str, actor: str, now: datetime, **details: str) -> None:
        self.history.append({"what": what, "actor": actor, "at": now.isoformat(), **details})
        self.updated_at = now

    def _announce(self, evidence: Evidence, now: datetime) -> None:
        by_kind = {"category_product_line": "product_line", "category_department": "department"}
        self._messages.append(
            OutgoingMessage(
                SystemicIssueDetected(
                    complaint_id=self.id,
                    alert_id=self.id,
                    series=self.series.kind,
                    category=self.series.category,
                    **{by_kind[self.series.kind]: self.series.value},
                    # The evidence, every field of it, as the detector saw it.
                    **by_name(
                        field_names(Evidence), evidence, complaint_ids=list(evidence.complaint_ids)
                    ),
                    detected_at=now,
                )
            )
        )

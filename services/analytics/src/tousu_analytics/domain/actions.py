"""An improvement action run as a PDCA cycle: plan → do → check → act.

After ``act`` a new cycle may begin (``act → plan``) when the check showed it did not work.
The effect is measured from the day the action entered ``do`` (or its planned start).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from tousu_shared.errors import Conflict, InvalidInput

NEXT_STATES: dict[str, tuple[str, ...]] = {
    "plan": ("do",),
    "do": ("check",),
    "check": ("act", "do"),  # back to do when the check says keep going
    "act": ("plan",),  # a new cycle
}


@dataclass(frozen=True)
class Target:
    """What an action targets; at least one of the three."""

    category: str | None = None
    product_line: str | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        if not (self.category or self.product_line or self.unit):
            raise InvalidInput("name a category, product line or unit", field="target")

    def as_json(self) -> dict[str, str | None]:
        return {"category": self.category, "product_line": self.product_line, "unit": self.unit}


@dataclass(kw_only=True)
class ActionTerms:
    """What a manager decides in creating an action; the command carries these terms and
    the action keeps them."""

    title: str
    target: Target
    plan: str
    owner: str
    starts_on: date
    due_on: date | None
    target_rate: float | None
    alert_id: uuid.UUID | None
    root_cause: str | None


@dataclass(kw_only=True)
class ImprovementAction(ActionTerms):
    id: uuid.UUID
    created_at: datetime
    state: str = "plan"
    version: int = 1
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def started_on(self) -> date:
        """When the action took effect: the day it entered ``do``, else its planned start."""
        for step in self.history:
            if step.get("to") == "do":
                return date.fromisoformat(step["on"])
        return self.starts_on

    @property
    def began_on(self) -> date:
        """The first day the action was under way: its planned start, or the day it
        entered ``do`` when that came earlier."""
        return min(self.starts_on, self.started_on)

    @property
    def ended_on(self) -> date | None:
        """The day the cycle closed (it entered ``act`` and is still there); None while it
        runs. A new cycle (``act → plan``) makes it run again."""
        if self.state != "act":
            return None
        for step in reversed(self.history):
            if step.get("to") == "act":
                return date.fromisoformat(step["on"])
        return None

    def active_during(self, first: date, last: date) -> bool:
        """Whether the action was under way on some day of ``[first, last]``."""
        ended = self.ended_on
        return self.began_on <= last and (ended is None or ended >= first)

    @property
    def allowed_next(self) -> tuple[str, ...]:
        return NEXT_STATES[self.state]

    def advance(self, to: str, actor: str, on: date, note: str | None, now: datetime) -> None:
        if to not in NEXT_STATES[self.state]:
            raise Conflict(
                f"an action in {self.state} cannot move to {to}",
                field="to",
                state=self.state,
                allowed_next=list(self.allowed_next),
            )
        self.history.append(
            {
                "from": self.state,
                "to": to,
                "actor": actor,
                "on": on.isoformat(),
                "note": note,
                "at": now.isoformat(),
            }
        )
        self.state = to
        self.version += 1

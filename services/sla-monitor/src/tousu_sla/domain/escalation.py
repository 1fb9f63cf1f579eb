"""The one breach-escalation rule (domain.md §4): which level a case must now be handled at.

A case rises one level up the management chain when it *becomes* overdue (a milestone is
breached while none was overdue), and one more level per escalation interval while any
milestone stays overdue. Two milestones falling due at the same moment raise it once: the
second breach finds the case already overdue. It never rises past the top level, and the
overdue spell ends when no milestone is overdue any more (the next breach starts a new one).

The starting level is the case's real handler level, learnt from routing's events; the
interval is policy data (each milestone's ``escalation_interval``, counted on that
milestone's clock, so a business-hours milestone does not escalate a case overnight).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tousu_shared.contracts.vocabulary import HandlerLevel

from .calendar import to_utc
from .clock import Firing, MilestoneClock

# Routing's events that say which level the case is handled at, and the payload field.
LEVEL_FIELDS: Mapping[str, str] = {
    "CaseRouted": "handler_level",
    "CaseAssigned": "handler_level",
    "CaseEscalated": "to_level",
}


@dataclass(frozen=True)
class Escalated:
    """SlaEscalated: the case must now be handled at ``level``."""

    milestone_key: str  # the milestone that made the case overdue, or keeps it so
    level: HandlerLevel
    from_level: HandlerLevel
    overdue: tuple[str, ...]
    scheduled_for: dt.datetime
    fired_at: dt.datetime
    late: bool
    repeat: int  # 0 when the case became overdue, then 1, 2, … per interval
    spell_started_at: dt.datetime

    @property
    def firing_key_suffix(self) -> str:
        """Unique per overdue spell and step: a second publication of it cannot commit."""
        return f"escalation:{self.spell_started_at.isoformat()}:{self.repeat}"


class CaseEscalation:
    """The handler level of one case and its current overdue spell."""

    def __init__(self, level: HandlerLevel = HandlerLevel.AGENT) -> None:
        self.level = level
        self.overdue_since: dt.datetime | None = None
        self.last_raised_at: dt.datetime | None = None
        self.repeat = 0

    def learn_level(self, payload: Mapping[str, Any], event_type: str) -> None:
        """Adopt the level routing says the case is handled at (routing is the truth)."""
        field = LEVEL_FIELDS.get(event_type)
        if field is not None and payload.get(field) is not None:
            self.level = HandlerLevel(payload[field])

    def on_breach(
        self, firing: Firing, overdue: Sequence[MilestoneClock], *, late_after: dt.timedelta
    ) -> list[Escalated]:
        """A milestone was breached: one level up if this makes the case overdue."""
        if self.overdue_since is not None:
            return []  # already overdue: a further breach is no reason for a second level
        self.overdue_since = self.last_raised_at = firing.scheduled_for
        self.repeat = 0
        return self._raise(
            firing.milestone_key, firing.scheduled_for, firing.fired_at, overdue, late_after
        )

    def fire(
        self,
        now: dt.datetime,
        until: dt.datetime,
        overdue: Sequence[MilestoneClock],
        *,
        late_after: dt.timedelta,
    ) -> list[Escalated]:
        """Every interval step of the overdue spell that fell due by `until`, in order."""
        raised: list[Escalated] = []
        while (step := self.next_step(overdue)) is not None and step[0] <= until:
            at, clock = step
            self.repeat += 1
            self.last_raised_at = at
            raised += self._raise(clock.key, at, now, overdue, late_after)
        return raised

    def next_step(
        self, overdue: Sequence[MilestoneClock]
    ) -> tuple[dt.datetime, MilestoneClock] | None:
        """When the next interval step falls due, and the overdue milestone that sets it."""
        if self.last_raised_at is None or self.level.is_top:
            return None
        steps = [
            (clock.instant_after(self.last_raised_at, clock.spec.escalation_interval), clock)
            for clock in overdue
            if clock.spec.escalation_interval is not None
        ]
        return min(steps, key=lambda step: step[0], default=None)

    def settle(self, overdue: Sequence[MilestoneClock]) -> None:
        """Milestones were met or cancelled: with none overdue, the spell is over."""
        if not overdue:
            self.overdue_since = self.last_raised_at = None
            self.repeat = 0

    def _raise(
        self,
        milestone_key: str,
        at: dt.datetime,
        now: dt.datetime,
        overdue: Sequence[MilestoneClock],
        late_after: dt.timedelta,
    ) -> list[Escalated]:
        if self.level.is_top or self.overdue_since is None:
            return []
        previous, self.level = self.level, self.level.one_up()
        return [
            Escalated(
                milestone_key=milestone_key,
                level=self.level,
                from_level=previous,
                overdue=tuple(clock.key for clock in overdue),
                scheduled_for=at,
                fired_at=now,
                late=now - at > late_after,
                repeat=self.repeat,
                spell_started_at=self.overdue_since,
            )
        ]

    # -- memento (persistence) -------------------------------------------------------

    def to_memento(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "level": self.level.value,
            "overdue_since": _iso(self.overdue_since),
            "last_raised_at": _iso(self.last_raised_at),
            "repeat": self.repeat,
        }

    @classmethod
    def from_memento(cls, memento: Mapping[str, Any]) -> CaseEscalation:
        """Rebuild what `to_memento` saved."""
        escalation = cls(HandlerLevel(memento["level"]))
        escalation.overdue_since = _from_iso(memento["overdue_since"])
        escalation.last_raised_at = _from_iso(memento["last_raised_at"])
        escalation.repeat = memento["repeat"]
        return escalation


def _iso(instant: dt.datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


def _from_iso(text: str | None) -> dt.datetime | None:
    return None if text is None else to_utc(dt.datetime.fromisoformat(text))

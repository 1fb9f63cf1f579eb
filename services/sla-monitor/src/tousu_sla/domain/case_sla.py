"""The case SLA aggregate: applies case events to every milestone of the case's policy.

Classification facts are read from flat payload keys named like CaseAttributes fields
(urgency, severity, customer_tier, category, channel, department) on ATTRIBUTE_EVENTS.
Events are kept, so a milestone that starts late (new policy, stop seen before start)
is replayed from history. Before an event stops, pauses or cancels a milestone, what
fell due before it is fired first, so nothing is missed after downtime.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .calendar import WALL_CLOCK, BusinessCalendar, TimeKeeper, to_utc
from .clock import LATE_AFTER, EscalationLevel, Firing, MilestoneClock, MilestoneView
from .policy import CaseAttributes, ClockKind, EventType, MilestoneSpec, PolicySet, SlaPolicy

# Events whose payload may carry classification facts (flat keys named like CaseAttributes).
ATTRIBUTE_EVENTS = frozenset(
    {
        EventType.COMPLAINT_RECEIVED,
        EventType.COMPLAINT_CLASSIFIED,
        EventType.COMPLAINT_RECLASSIFIED,
        EventType.CASE_ROUTED,
        EventType.CASE_TRANSFERRED,
    }
)
_ATTRIBUTE_FIELDS = tuple(CaseAttributes.model_fields)
_JUST_BEFORE = dt.timedelta(microseconds=1)


class UnknownCalendar(KeyError):
    """Raised when a milestone names a calendar that is not registered."""


@dataclass(frozen=True)
class CaseEvent:
    """An incoming complaint/case/feedback event, reduced to what the SLA core needs."""

    type: str
    occurred_at: dt.datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    actor: str | None = None


@dataclass(frozen=True)
class MilestoneStarted:
    """SlaMilestoneStarted."""

    milestone_key: str
    started_at: dt.datetime
    due_at: dt.datetime | None


@dataclass(frozen=True)
class MilestoneMet:
    """SlaMet, with the elapsed counted time."""

    milestone_key: str
    met_at: dt.datetime
    elapsed: dt.timedelta
    within_target: bool


@dataclass(frozen=True)
class MilestonePaused:
    """The clock stopped counting."""

    milestone_key: str
    paused_at: dt.datetime
    paused_by: str
    reason: str


@dataclass(frozen=True)
class MilestoneResumed:
    """The clock counts again; the due time moved."""

    milestone_key: str
    resumed_at: dt.datetime
    due_at: dt.datetime | None


@dataclass(frozen=True)
class MilestoneRetargeted:
    """A new policy applies; the due time is recomputed from the original start."""

    milestone_key: str
    policy_name: str
    due_at: dt.datetime | None


@dataclass(frozen=True)
class MilestoneCancelled:
    """The deadline no longer applies."""

    milestone_key: str
    cancelled_at: dt.datetime


@dataclass(frozen=True)
class CalendarDataMissing:
    """Dates a calendar had no holiday data for and counted by the weekend rule."""

    calendar_name: str
    dates: frozenset[dt.date]

    @property
    def years(self) -> frozenset[int]:
        """The years lacking data."""
        return frozenset(day.year for day in self.dates)


SlaOutcome = (
    MilestoneStarted
    | MilestoneMet
    | MilestonePaused
    | MilestoneResumed
    | MilestoneRetargeted
    | MilestoneCancelled
    | Firing
    | CalendarDataMissing
)


def _as_instant(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return to_utc(value)
    if isinstance(value, str):
        return to_utc(dt.datetime.fromisoformat(value))
    raise ValueError(f"not a timestamp: {value!r}")


class CaseSla:
    """All SLA clocks of one case; events in, SLA outcomes out (no I/O)."""

    def __init__(
        self,
        case_id: str,
        policy_set: PolicySet,
        calendars: Mapping[str, BusinessCalendar],
        *,
        attributes: CaseAttributes = CaseAttributes(),
        escalation_level: EscalationLevel = EscalationLevel.AGENT,
        late_after: dt.timedelta = LATE_AFTER,
    ) -> None:
        self.case_id = case_id
        self.policy_set = policy_set
        self.calendars = dict(calendars)
        self.attributes = attributes
        self.policy: SlaPolicy = policy_set.select(attributes)
        self.clocks: dict[str, MilestoneClock] = {}
        self.finished_cycles: list[MilestoneClock] = []  # earlier cycles of repeatable milestones
        self.events: list[CaseEvent] = []  # kept so milestones added later can be replayed
        self._starting_level = escalation_level
        self._late_after = late_after
        self._reported_gaps: dict[str, set[dt.date]] = {}

    # -- queries -------------------------------------------------------------------

    @property
    def escalation_level(self) -> EscalationLevel:
        """The highest level any milestone has escalated the case to."""
        levels = [self._starting_level, *(clock.escalation_level for clock in self.clocks.values())]
        return max(levels, key=lambda level: level.rank)

    def next_fire_at(self) -> dt.datetime | None:
        """The earliest instant any milestone needs the scheduler."""
        instants = [
            at for clock in self.clocks.values() if (at := clock.next_fire_at()) is not None
        ]
        return min(instants, default=None)

    def views(self, now: dt.datetime) -> list[MilestoneView]:
        """Every milestone at once, in policy order, for the API."""
        return [clock.view(now) for clock in self.clocks.values()]

    def timekeeper_for(self, spec: MilestoneSpec) -> TimeKeeper:
        """The wall clock or the named business calendar of a milestone."""
        if spec.clock is ClockKind.CALENDAR:
            return WALL_CLOCK
        try:
            return self.calendars[spec.calendar]
        except KeyError:
            raise UnknownCalendar(spec.calendar) from None

    # -- commands ------------------------------------------------------------------

    def apply(self, event: CaseEvent, now: dt.datetime | None = None) -> list[SlaOutcome]:
        """Apply one event; `now` (default: its time) decides whether catch-up firings are late."""
        event = CaseEvent(event.type, to_utc(event.occurred_at), event.payload, event.actor)
        now = event.occurred_at if now is None else to_utc(now)
        self.events.append(event)
        outcomes: list[SlaOutcome] = []
        clocks_before = dict(self.clocks)
        if event.type in ATTRIBUTE_EVENTS:
            changes = {
                name: event.payload[name]
                for name in _ATTRIBUTE_FIELDS
                if event.payload.get(name) is not None
            }
            if changes:
                outcomes += self.reclassify(
                    self.attributes.model_copy(update=changes), event.occurred_at, now
                )
        # Clocks a policy change just started have already replayed this event.
        replayed = {
            key for key, clock in self.clocks.items() if clocks_before.get(key) is not clock
        }
        for spec in self.policy.milestones:
            if spec.key in replayed:
                continue
            clock = self.clocks.get(spec.key)
            if event.type == spec.start_event and self._may_start(spec, clock):
                outcomes += self._start(spec, event, now)
            elif clock is not None and not clock.is_finished:
                outcomes += self._advance_clock(clock, event, now)
        return outcomes + self._new_calendar_gaps()

    def fire(self, now: dt.datetime) -> list[SlaOutcome]:
        """Everything that fell due by `now`, across milestones, in due order."""
        firings = [
            firing
            for clock in self.clocks.values()
            for firing in clock.fire(now, late_after=self._late_after)
        ]
        firings.sort(key=lambda firing: firing.scheduled_for)
        return [*firings, *self._new_calendar_gaps()]

    def reclassify(
        self, attributes: CaseAttributes, at: dt.datetime, now: dt.datetime | None = None
    ) -> list[SlaOutcome]:
        """Adopt new case facts; if another policy matches, retarget from the original starts."""
        self.attributes = attributes
        return self._adopt_policy(self.policy_set.select(attributes), to_utc(at), now)

    def use_policy_set(self, policy_set: PolicySet, at: dt.datetime) -> list[SlaOutcome]:
        """Operators published a new policy version: re-evaluate this case against it."""
        self.policy_set = policy_set
        return self._adopt_policy(policy_set.select(self.attributes), to_utc(at), None, force=True)

    def use_calendars(self, calendars: Mapping[str, BusinessCalendar]) -> list[SlaOutcome]:
        """Operators edited calendars: recompute every open due time."""
        self.calendars = dict(calendars)
        self._reported_gaps.clear()  # report again whatever is still missing
        outcomes: list[SlaOutcome] = []
        for clock in self.clocks.values():
            clock.calendar_gaps.clear()
            clock.rebind_timekeeper(self.timekeeper_for(clock.spec))
            if not clock.is_finished:
                outcomes.append(MilestoneRetargeted(clock.key, self.policy.name, clock.due_at))
        return outcomes + self._new_calendar_gaps()

    # -- memento (persistence) -------------------------------------------------------

    def to_memento(self) -> dict[str, Any]:
        """Everything needed to rebuild this case exactly, as JSON-ready data.

        The policy set and calendars are not included: the caller stores which policy-set
        version the case uses and passes it (and the current calendars) back on restore.
        """
        return {
            "case_id": self.case_id,
            "attributes": self.attributes.model_dump(mode="json"),
            "policy": self.policy.name,
            "starting_level": self._starting_level.value,
            "events": [_event_to_data(event) for event in self.events],
            "clocks": [self._clock_memento(clock) for clock in self.clocks.values()],
            "finished_cycles": [self._clock_memento(clock) for clock in self.finished_cycles],
            "reported_gaps": {
                name: sorted(day.isoformat() for day in days)
                for name, days in sorted(self._reported_gaps.items())
            },
        }

    @classmethod
    def from_memento(
        cls,
        memento: dict[str, Any],
        policy_set: PolicySet,
        calendars: Mapping[str, BusinessCalendar],
        *,
        late_after: dt.timedelta = LATE_AFTER,
    ) -> CaseSla:
        """Rebuild a case saved by `to_memento` under the policy set it was saved with."""
        case = cls(
            memento["case_id"],
            policy_set,
            calendars,
            attributes=CaseAttributes.model_validate(memento["attributes"]),
            escalation_level=EscalationLevel(memento["starting_level"]),
            late_after=late_after,
        )
        case.policy = policy_set.policy(memento["policy"])
        case.events = [_event_from_data(data) for data in memento["events"]]
        case.clocks = {data["key"]: case._restore_clock(data) for data in memento["clocks"]}
        case.finished_cycles = [case._restore_clock(data) for data in memento["finished_cycles"]]
        case._reported_gaps = {
            name: {dt.date.fromisoformat(day) for day in days}
            for name, days in memento["reported_gaps"].items()
        }
        return case

    def _clock_memento(self, clock: MilestoneClock) -> dict[str, Any]:
        # A spec the case's policy holds unchanged is not repeated: it keeps each case small.
        return clock.to_memento(include_spec=self.policy.milestone(clock.key) != clock.spec)

    def _restore_clock(self, memento: dict[str, Any]) -> MilestoneClock:
        if memento["spec"] is not None:
            spec = MilestoneSpec.model_validate(memento["spec"])
        else:
            spec = self.policy.milestone(memento["key"])
            if spec is None:
                raise ValueError(f"policy {self.policy.name!r} lost milestone {memento['key']!r}")
        return MilestoneClock.from_memento(memento, spec, self.timekeeper_for(spec))

    # -- internals -----------------------------------------------------------------

    @staticmethod
    def _may_start(spec: MilestoneSpec, clock: MilestoneClock | None) -> bool:
        return clock is None or (spec.repeatable and clock.is_finished)

    def _start(
        self, spec: MilestoneSpec, start_event: CaseEvent, now: dt.datetime
    ) -> list[SlaOutcome]:
        started_at = start_event.occurred_at
        if spec.start_at_field and start_event.payload.get(spec.start_at_field) is not None:
            started_at = _as_instant(start_event.payload[spec.start_at_field])
        previous = self.clocks.get(spec.key)
        if previous is not None:
            self.finished_cycles.append(previous)
        clock = MilestoneClock(
            spec, self.timekeeper_for(spec), started_at, escalation_level=self._starting_level
        )
        self.clocks[spec.key] = clock
        outcomes: list[SlaOutcome] = [MilestoneStarted(spec.key, clock.started_at, clock.due_at)]
        # Replay what already happened from the start on: covers stop events that share the
        # start event (record milestone) and milestones that a new policy brings in late.
        for past in sorted(self.events, key=lambda known: known.occurred_at):
            if clock.is_finished:
                break
            if past is start_event:
                if spec.start_event in spec.stop_events:
                    outcomes += self._advance_clock(clock, past, now)
            elif past.occurred_at >= started_at:
                outcomes += self._advance_clock(clock, past, now)
        return outcomes

    def _advance_clock(
        self, clock: MilestoneClock, event: CaseEvent, now: dt.datetime
    ) -> list[SlaOutcome]:
        spec, at = clock.spec, event.occurred_at
        touches = event.type in (
            *spec.stop_events,
            *spec.pause_events,
            *spec.resume_events,
            *spec.cancel_events,
        )
        if not touches:
            return []
        # Whatever fell due before this event must be announced first, or a restarted
        # monitor that sees the stop event before its scheduler runs would miss a breach.
        # Strictly before: a milestone met exactly at its due time is met, not breached.
        until = at - _JUST_BEFORE if event.type in spec.stop_events else at
        outcomes: list[SlaOutcome] = list(clock.fire(now, until=until, late_after=self._late_after))
        if event.type in spec.stop_events:
            elapsed = clock.meet(at)
            outcomes.append(
                MilestoneMet(clock.key, clock.met_at, elapsed, bool(clock.within_target))
            )
        elif event.type in spec.cancel_events:
            if clock.cancel(at):
                outcomes.append(MilestoneCancelled(clock.key, clock.cancelled_at))
        elif event.type in spec.pause_events:
            reason = str(event.payload.get("reason", event.type))
            if clock.pause(at, by=event.actor or "system", why=reason):
                outcomes.append(MilestonePaused(clock.key, at, event.actor or "system", reason))
        elif event.type in spec.resume_events:
            if clock.resume(at, by=event.actor):
                outcomes.append(MilestoneResumed(clock.key, at, clock.due_at))
        return outcomes

    def _adopt_policy(
        self, policy: SlaPolicy, at: dt.datetime, now: dt.datetime | None, *, force: bool = False
    ) -> list[SlaOutcome]:
        if policy == self.policy and not force:
            return []
        self.policy = policy
        now = at if now is None else now
        outcomes: list[SlaOutcome] = []
        for key, clock in list(self.clocks.items()):
            spec = policy.milestone(key)
            if spec is None:
                if clock.cancel(at):
                    outcomes.append(MilestoneCancelled(key, clock.cancelled_at))
                continue
            clock.retarget(spec, self.timekeeper_for(spec))
            if not clock.is_finished:
                outcomes.append(MilestoneRetargeted(key, policy.name, clock.due_at))
        for spec in policy.milestones:
            if spec.key in self.clocks:
                continue
            # A milestone new to this case counts from its start event if that already happened.
            starts = sorted(
                (past for past in self.events if past.type == spec.start_event),
                key=lambda e: e.occurred_at,
            )
            if starts:
                # A repeatable milestone belongs to its latest cycle; others to the first start.
                outcomes += self._start(spec, starts[-1] if spec.repeatable else starts[0], now)
        # Keep clocks in policy order so views list milestones the way the policy does.
        order = {spec.key: index for index, spec in enumerate(policy.milestones)}
        self.clocks = dict(
            sorted(self.clocks.items(), key=lambda item: order.get(item[0], len(order)))
        )
        return outcomes

    def _new_calendar_gaps(self) -> list[SlaOutcome]:
        found: dict[str, set[dt.date]] = {}
        for clock in [*self.clocks.values()]:
            if clock.calendar_gaps:
                found.setdefault(clock.timekeeper.name, set()).update(clock.calendar_gaps)
        outcomes: list[SlaOutcome] = []
        for calendar_name, dates in sorted(found.items()):
            reported = self._reported_gaps.setdefault(calendar_name, set())
            new = dates - reported
            if new:
                reported.update(new)
                outcomes.append(CalendarDataMissing(calendar_name, frozenset(new)))
        return outcomes


def _event_to_data(event: CaseEvent) -> dict[str, Any]:
    return {
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "payload": dict(event.payload),
        "actor": event.actor,
    }


def _event_from_data(data: dict[str, Any]) -> CaseEvent:
    return CaseEvent(
        type=data["type"],
        occurred_at=dt.datetime.fromisoformat(data["occurred_at"]),
        payload=data["payload"],
        actor=data["actor"],
    )

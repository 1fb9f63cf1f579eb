"""The case SLA aggregate: applies case events to every milestone of the case's policy.

Classification facts are read from flat payload keys named like CaseAttributes fields
(urgency, severity, customer_tier, category, channel, department) on ATTRIBUTE_EVENTS.
The first and the latest event of each type are kept (a bounded history, whatever the
case's length), so a milestone that starts late (new policy, stop seen before start) is
replayed from them. Before an event stops, pauses or cancels a milestone, what fell due
before it is fired first, so nothing is missed after downtime. Breaches escalate the case
by the one rule in ``escalation.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import field
from typing import Any

from tousu_shared.contracts.vocabulary import HandlerLevel
from tousu_shared.frozen_records import FrozenRecord

from .calendar import WALL_CLOCK, BusinessCalendar, TimeKeeper, to_utc
from .clock import LATE_AFTER, Firing, FiringKind, MilestoneClock, MilestoneView
from .escalation import CaseEscalation, Escalated
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


class CaseEvent(FrozenRecord):
    """An incoming complaint/case/feedback event, reduced to what the SLA core needs."""

    type: str
    occurred_at: dt.datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    actor: str | None = None


class MilestoneStarted(FrozenRecord):
    """SlaMilestoneStarted."""

    milestone_key: str
    started_at: dt.datetime
    due_at: dt.datetime | None


class MilestoneMet(FrozenRecord):
    """SlaMet, with the elapsed counted time."""

    milestone_key: str
    met_at: dt.datetime
    elapsed: dt.timedelta
    within_target: bool


class MilestonePaused(FrozenRecord):
    """The clock stopped counting."""

    milestone_key: str
    paused_at: dt.datetime
    paused_by: str
    reason: str


class MilestoneResumed(FrozenRecord):
    """The clock counts again; the due time moved."""

    milestone_key: str
    resumed_at: dt.datetime
    due_at: dt.datetime | None


class MilestoneRetargeted(FrozenRecord):
    """A new policy applies; the due time is recomputed from the original start."""

    milestone_key: str
    policy_name: str
    due_at: dt.datetime | None


class MilestoneCancelled(FrozenRecord):
    """The deadline no longer applies."""

    milestone_key: str
    cancelled_at: dt.datetime


class CalendarDataMissing(FrozenRecord):
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
    | Escalated
    | CalendarDataMissing
)
MEMENTO_VERSION = 2


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
        level: HandlerLevel = HandlerLevel.AGENT,
        late_after: dt.timedelta = LATE_AFTER,
    ) -> None:
        self.case_id = case_id
        self.policy_set = policy_set
        self.calendars = dict(calendars)
        self.attributes = attributes
        self.policy: SlaPolicy = policy_set.select(attributes)
        self.clocks: dict[str, MilestoneClock] = {}
        self.escalation = CaseEscalation(level)
        # Finished earlier cycles of repeatable milestones, counted (not kept).
        self.cycles: dict[str, int] = {}
        # The first and the latest event of each type: what replaying a late start needs.
        self.history: dict[str, list[CaseEvent]] = {}
        self._late_after = late_after
        self._reported_gaps: dict[str, set[dt.date]] = {}

    # -- queries -------------------------------------------------------------------

    @property
    def escalation_level(self) -> HandlerLevel:
        """The level the case is handled at (learnt from routing, raised by breaches)."""
        return self.escalation.level

    @property
    def events(self) -> list[CaseEvent]:
        """The kept events, oldest first."""
        return sorted(
            (event for kept in self.history.values() for event in kept),
            key=lambda event: event.occurred_at,
        )

    def overdue(self) -> list[MilestoneClock]:
        """The milestones breached and neither met nor cancelled, in policy order."""
        return [clock for clock in self.clocks.values() if clock.is_overdue]

    def next_fire_at(self) -> dt.datetime | None:
        """The earliest instant the case needs the scheduler."""
        instants = [
            at for key in self.clocks if (at := self.milestone_next_fire_at(key)) is not None
        ]
        return min(instants, default=None)

    def milestone_next_fire_at(self, key: str) -> dt.datetime | None:
        """When one milestone needs the scheduler: its own timers, or the next escalation
        step when this overdue milestone is the one that sets it."""
        own = self.clocks[key].next_fire_at()
        step = self.escalation.next_step(self.overdue())
        if step is None or step[1].key != key:
            return own
        return step[0] if own is None else min(own, step[0])

    def views(self, now: dt.datetime) -> list[MilestoneView]:
        """Every milestone at once, in policy order, for the API."""
        return [clock.view(now, self.escalation_level) for clock in self.clocks.values()]

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
        self._remember(event)
        self.escalation.learn_level(event.payload, event.type)
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
        self.escalation.settle(self.overdue())
        return outcomes + self._new_calendar_gaps()

    def fire(self, now: dt.datetime) -> list[SlaOutcome]:
        """Everything that fell due by `now`, across milestones, in due order."""
        return [*self._fire_until(to_utc(now), to_utc(now)), *self._new_calendar_gaps()]

    def reclassify(
        self, attributes: CaseAttributes, at: dt.datetime, now: dt.datetime | None = None
    ) -> list[SlaOutcome]:
        """Adopt new case facts; if another policy matches, retarget from the original starts."""
        self.attributes = attributes
        return self._adopt_policy(self.policy_set.select(attributes), to_utc(at), now)

    def use_policy_set(self, policy_set: PolicySet, at: dt.datetime) -> list[SlaOutcome]:
        """Operators published a new policy version: re-evaluate this case against it."""
        self.policy_set = policy_set
        outcomes = self._adopt_policy(
            policy_set.select(self.attributes), to_utc(at), None, force=True
        )
        self.escalation.settle(self.overdue())
        return outcomes

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
            "version": MEMENTO_VERSION,
            "case_id": self.case_id,
            "attributes": self.attributes.model_dump(mode="json"),
            "policy": self.policy.name,
            "escalation": self.escalation.to_memento(),
            "history": [_event_to_data(event) for event in self.events],
            "clocks": [self._clock_memento(clock) for clock in self.clocks.values()],
            "cycles": dict(sorted(self.cycles.items())),
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
        memento = _upgraded(memento)
        case = cls(
            memento["case_id"],
            policy_set,
            calendars,
            attributes=CaseAttributes.model_validate(memento["attributes"]),
            late_after=late_after,
        )
        case.escalation = CaseEscalation.from_memento(memento["escalation"])
        case.policy = policy_set.policy(memento["policy"])
        for data in memento["history"]:
            case._remember(_event_from_data(data))
        case.clocks = {data["key"]: case._restore_clock(data) for data in memento["clocks"]}
        case.cycles = dict(memento["cycles"])
        case._reported_gaps = {
            name: {dt.date.fromisoformat(day) for day in days}
            for name, days in memento["reported_gaps"].items()
        }
        return case

    def _clock_memento(self, clock: MilestoneClock) -> dict[str, Any]:
        # A spec the case's policy holds unchanged is not repeated: it keeps each case small.
        return clock.to_memento(include_spec=self.policy.milestone(clock.key) != clock.spec)

    def _restore_clock(self, memento: dict[str, Any]) -> MilestoneClock:
        spec = (
            MilestoneSpec.model_validate(memento["spec"])
            if memento["spec"] is not None
            else self.policy.milestone(memento["key"])
        )
        if spec is None:
            raise ValueError(f"policy {self.policy.name!r} lost milestone {memento['key']!r}")
        return MilestoneClock.from_memento(memento, spec, self.timekeeper_for(spec))

    # -- internals -----------------------------------------------------------------

    def _remember(self, event: CaseEvent) -> None:
        kept = sorted([*self.history.get(event.type, []), event], key=lambda e: e.occurred_at)
        self.history[event.type] = [kept[0], kept[-1]] if len(kept) > 1 else kept

    def _fire_until(self, now: dt.datetime, until: dt.datetime) -> list[SlaOutcome]:
        """Every threshold due by `until`, in due order, with the escalations they cause."""
        firings = sorted(
            (
                firing
                for clock in self.clocks.values()
                for firing in clock.fire(now, until=until, late_after=self._late_after)
            ),
            key=lambda firing: firing.scheduled_for,
        )
        breaches = [firing for firing in firings if firing.kind is FiringKind.BREACH]
        breaching = {firing.milestone_key for firing in breaches}
        before = [clock for clock in self.overdue() if clock.key not in breaching]

        def overdue_by(at: dt.datetime) -> list[MilestoneClock]:
            # Overdue before this round, or breached in it by `at` (together: all at once).
            late = [self.clocks[f.milestone_key] for f in breaches if f.scheduled_for <= at]
            return before + late

        outcomes: list[SlaOutcome] = []
        for firing in firings:
            at = firing.scheduled_for
            outcomes += self.escalation.fire(
                now, at, overdue_by(at - _JUST_BEFORE), late_after=self._late_after
            )
            outcomes.append(firing)
            if firing.kind is FiringKind.BREACH:
                outcomes += self.escalation.on_breach(
                    firing, overdue_by(at), late_after=self._late_after
                )
        outcomes += self.escalation.fire(now, until, overdue_by(until), late_after=self._late_after)
        return outcomes

    @staticmethod
    def _may_start(spec: MilestoneSpec, clock: MilestoneClock | None) -> bool:
        return clock is None or (spec.repeatable and clock.is_finished)

    def _start(
        self, spec: MilestoneSpec, start_event: CaseEvent, now: dt.datetime
    ) -> list[SlaOutcome]:
        started_at = start_event.occurred_at
        if spec.start_at_field and start_event.payload.get(spec.start_at_field) is not None:
            started_at = _as_instant(start_event.payload[spec.start_at_field])
        if spec.key in self.clocks:
            self.cycles[spec.key] = self.cycles.get(spec.key, 0) + 1
        clock = MilestoneClock(spec, self.timekeeper_for(spec), started_at)
        self.clocks[spec.key] = clock
        outcomes: list[SlaOutcome] = [MilestoneStarted(spec.key, clock.started_at, clock.due_at)]
        # Replay what already happened from the start on: covers stop events that share the
        # start event (record milestone) and milestones that a new policy brings in late.
        for past in self.events:
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
        outcomes = self._fire_until(now, until)
        if event.type in spec.stop_events:
            elapsed = clock.meet(at)
            assert clock.met_at is not None, "just met"
            outcomes.append(
                MilestoneMet(clock.key, clock.met_at, elapsed, bool(clock.within_target))
            )
        elif event.type in spec.cancel_events:
            if (cancelled_at := clock.cancel(at)) is not None:
                outcomes.append(MilestoneCancelled(clock.key, cancelled_at))
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
                if (cancelled_at := clock.cancel(at)) is not None:
                    outcomes.append(MilestoneCancelled(key, cancelled_at))
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


def _upgraded(memento: dict[str, Any]) -> dict[str, Any]:
    """A memento written before the bounded history and the one escalation rule, in the
    current form: the events become the first and latest per type, cycles a count, and the
    case's level the highest any of its milestones had reached."""
    if memento.get("version") == MEMENTO_VERSION:
        return memento
    levels = [memento["starting_level"], *(c["escalation_level"] for c in memento["clocks"])]
    counts: dict[str, int] = {}
    for finished in memento["finished_cycles"]:
        counts[finished["key"]] = counts.get(finished["key"], 0) + 1
    return {
        **memento,
        "escalation": {
            "level": max((HandlerLevel(level) for level in levels), key=lambda lv: lv.rank),
            "overdue_since": None,
            "last_raised_at": None,
            "repeat": 0,
        },
        "history": memento["events"],
        "cycles": counts,
    }


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

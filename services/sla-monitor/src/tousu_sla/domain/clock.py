"""The per-milestone clock of a case: due time, pauses, warnings and the breach.

Every timer is a threshold of counted (elapsed) time: warnings at fraction × target and
the breach at the target. Elapsed time is wall or business time minus pauses, so pauses
and nights shift every timer alike. Each threshold fires once (keyed, so retargeting
never repeats one). What a breach does to the case's handler level is not the clock's
business: the one escalation rule lives in ``escalation.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tousu_shared.contracts.vocabulary import HandlerLevel

from .calendar import TimeKeeper, to_utc
from .policy import MilestoneSpec

# Detection budget is 2 s; a firing later than this means the monitor was not running.
LATE_AFTER = dt.timedelta(seconds=5)


class MilestoneState(StrEnum):
    """Where a milestone stands; `cancelled` is for deadlines made moot (e.g. case closed)."""

    RUNNING = "running"
    PAUSED = "paused"
    AT_RISK = "at_risk"
    MET = "met"
    BREACHED = "breached"
    CANCELLED = "cancelled"


class FiringKind(StrEnum):
    """What a timer firing announces."""

    WARNING = "warning"  # SlaAtRisk
    BREACH = "breach"  # SlaBreached (the escalation rule decides what it does to the case)


@dataclass(frozen=True)
class PauseInterval:
    """A stretch during which the clock did not count, with who paused it and why."""

    started_at: dt.datetime
    paused_by: str
    reason: str
    ended_at: dt.datetime | None = None
    resumed_by: str | None = None

    @property
    def is_open(self) -> bool:
        """Still paused."""
        return self.ended_at is None


@dataclass(frozen=True)
class Firing:
    """One warning or breach that fell due; `late` when caught up after downtime."""

    milestone_key: str
    kind: FiringKind
    scheduled_for: dt.datetime
    fired_at: dt.datetime
    late: bool
    elapsed_threshold: dt.timedelta
    warn_fraction: float | None = None

    @property
    def lateness(self) -> dt.timedelta:
        """How long after its due instant it fired."""
        return self.fired_at - self.scheduled_for

    @property
    def threshold_key(self) -> str:
        """The identity of the threshold that fired (unique within one milestone cycle)."""
        if self.kind is FiringKind.WARNING:
            return f"warning:{self.warn_fraction}"
        return "breach"


@dataclass(frozen=True)
class _Threshold:
    key: str  # identity for exactly-once: survives retargeting
    kind: FiringKind
    elapsed: dt.timedelta
    warn_fraction: float | None = None


@dataclass(frozen=True)
class MilestoneView:
    """Everything the API shows about one milestone at a moment."""

    key: str
    name: str
    clock: str
    calendar: str
    started_at: dt.datetime
    target: dt.timedelta
    due_at: dt.datetime | None
    elapsed: dt.timedelta
    paused_time: dt.timedelta
    pauses: tuple[PauseInterval, ...]
    state: MilestoneState
    met_at: dt.datetime | None
    within_target: bool | None
    escalation_level: HandlerLevel
    warning_times: dict[float, dt.datetime | None]
    next_fire_at: dt.datetime | None


class MilestoneFinished(ValueError):
    """Raised when pausing or resuming a milestone that is already met or cancelled."""


_InstantKey = tuple[dt.datetime, tuple["PauseInterval", ...], dt.timedelta]
_MAX_INSTANTS = 64  # per clock; a clock asks for a handful of distinct instants


class MilestoneClock:
    """One running deadline of one case, counted on a timekeeper (wall clock or calendar)."""

    def __init__(
        self,
        spec: MilestoneSpec,
        timekeeper: TimeKeeper,
        started_at: dt.datetime,
    ) -> None:
        self.spec = spec
        self.timekeeper = timekeeper
        self.started_at = to_utc(started_at)
        self.pauses: list[PauseInterval] = []
        self.met_at: dt.datetime | None = None
        self.elapsed_when_met: dt.timedelta | None = None
        self.cancelled_at: dt.datetime | None = None
        self.fired: dict[str, Firing] = {}
        self.calendar_gaps: set[dt.date] = set()  # dates counted by the weekend rule
        self.target = spec.resolve_target(timekeeper)
        # Instants already computed, by (start, pauses, elapsed), on `_instants_keeper`:
        # the calendar arithmetic is pure, and one event asks for the same due time several
        # times (schedule, outcome, event, stored row). Each entry keeps the calendar gaps its
        # computation noted, so a hit notes them again exactly as a recomputation would.
        self._instants: dict[_InstantKey, tuple[dt.datetime | None, frozenset[dt.date]]] = {}
        self._instants_keeper: TimeKeeper = timekeeper
        self._schedule: list[tuple[_Threshold, dt.datetime | None]] = []
        self._reschedule()

    # -- queries -------------------------------------------------------------------

    @property
    def key(self) -> str:
        """The milestone key from the spec."""
        return self.spec.key

    @property
    def is_met(self) -> bool:
        """Whether the stop event has happened."""
        return self.met_at is not None

    @property
    def is_cancelled(self) -> bool:
        """Whether the deadline was made moot."""
        return self.cancelled_at is not None

    @property
    def is_finished(self) -> bool:
        """Met or cancelled: nothing more will fire."""
        return self.is_met or self.is_cancelled

    @property
    def breached_at(self) -> dt.datetime | None:
        """When the breach fell due, once it has fired."""
        breach = self.fired.get("breach")
        return None if breach is None else breach.scheduled_for

    @property
    def is_overdue(self) -> bool:
        """Breached and still neither met nor cancelled."""
        return self.breached_at is not None and not self.is_finished

    @property
    def is_paused(self) -> bool:
        """Whether a pause is open."""
        return bool(self.pauses) and self.pauses[-1].is_open

    @property
    def within_target(self) -> bool | None:
        """For a met milestone, whether it was met by its target; None while open."""
        if self.elapsed_when_met is None:
            return None
        return self.elapsed_when_met <= self.target

    @property
    def due_at(self) -> dt.datetime | None:
        """When elapsed time reaches the target; None while paused short of it."""
        return self._instant_for_elapsed(self.target)

    def warning_times(self) -> dict[float, dt.datetime | None]:
        """The instant each warn fraction is reached (None while paused short of it)."""
        return {
            threshold.warn_fraction: at
            for threshold, at in self._schedule
            if threshold.kind is FiringKind.WARNING and threshold.warn_fraction is not None
        }

    def next_fire_at(self) -> dt.datetime | None:
        """The earliest unfired warning or breach; None if nothing can fire."""
        if self.is_finished:
            return None
        for threshold, at in self._schedule:
            if threshold.key not in self.fired:
                return at
        return None

    def elapsed(self, at: dt.datetime) -> dt.timedelta:
        """Counted time from start to `at` (or to when met), pauses excluded."""
        until = to_utc(at)
        if self.met_at is not None:
            until = min(until, self.met_at)
        total = dt.timedelta(0)
        for segment_start, segment_end in self._active_segments():
            if segment_start >= until:
                break
            end = until if segment_end is None else min(segment_end, until)
            total += self._measure(segment_start, end)
        return total

    def paused_time(self, at: dt.datetime) -> dt.timedelta:
        """Counted time spent paused up to `at` (on this milestone's clock)."""
        until = to_utc(at)
        total = dt.timedelta(0)
        for pause in self.pauses:
            if pause.started_at >= until:
                break
            end = until if pause.ended_at is None else min(pause.ended_at, until)
            total += self._measure(pause.started_at, end)
        return total

    @property
    def state(self) -> MilestoneState:
        """The state as recorded by what has happened and fired so far."""
        if self.is_cancelled:
            return MilestoneState.CANCELLED
        if self.is_met:
            return MilestoneState.MET
        if any(firing.kind is FiringKind.BREACH for firing in self.fired.values()):
            return MilestoneState.BREACHED
        if self.is_paused:
            return MilestoneState.PAUSED
        if any(
            firing.kind is FiringKind.WARNING
            and (firing.warn_fraction or 0) >= self.spec.at_risk_fraction
            for firing in self.fired.values()
        ):
            return MilestoneState.AT_RISK
        return MilestoneState.RUNNING

    def state_at(self, now: dt.datetime) -> MilestoneState:
        """The state computed purely from time, whatever has been fired."""
        if self.is_cancelled:
            return MilestoneState.CANCELLED
        if self.is_met:
            return MilestoneState.MET
        elapsed = self.elapsed(now)
        if elapsed >= self.target:
            return MilestoneState.BREACHED
        if self.is_paused and self.pauses[-1].started_at <= to_utc(now):
            return MilestoneState.PAUSED
        if elapsed >= self.target * self.spec.at_risk_fraction:
            return MilestoneState.AT_RISK
        return MilestoneState.RUNNING

    def view(self, now: dt.datetime, escalation_level: HandlerLevel) -> MilestoneView:
        """A snapshot for the API; the level is the case's (one level per case)."""
        return MilestoneView(
            key=self.key,
            name=self.spec.name,
            clock=self.spec.clock.value,
            calendar=self.timekeeper.name,
            started_at=self.started_at,
            target=self.target,
            due_at=self.due_at,
            elapsed=self.elapsed(now),
            paused_time=self.paused_time(now),
            pauses=tuple(self.pauses),
            state=self.state_at(now),
            met_at=self.met_at,
            within_target=self.within_target,
            escalation_level=escalation_level,
            warning_times=self.warning_times(),
            next_fire_at=self.next_fire_at(),
        )

    # -- commands ------------------------------------------------------------------

    def pause(self, at: dt.datetime, by: str, why: str) -> bool:
        """Stop counting from `at`; False if already paused."""
        at = self._not_before_last_change(at)
        if self.is_finished:
            raise MilestoneFinished(f"milestone {self.key!r} is finished and cannot be paused")
        if self.is_paused:
            return False
        self.pauses.append(PauseInterval(started_at=at, paused_by=by, reason=why))
        self._reschedule()
        return True

    def resume(self, at: dt.datetime, by: str | None = None) -> bool:
        """Count again from `at`; False if not paused."""
        at = self._not_before_last_change(at)
        if self.is_finished:
            raise MilestoneFinished(f"milestone {self.key!r} is finished and cannot be resumed")
        if not self.is_paused:
            return False
        self._close_open_pause(at, by)
        self._reschedule()
        return True

    def meet(self, at: dt.datetime) -> dt.timedelta:
        """Record the stop event and return the elapsed counted time (idempotent; `met_at`
        is then set)."""
        if self.elapsed_when_met is not None:
            return self.elapsed_when_met
        if self.is_cancelled:
            raise MilestoneFinished(f"milestone {self.key!r} was cancelled")
        at = max(to_utc(at), self.started_at)  # a stop seen before its start took no time
        if self.is_paused:
            self._close_open_pause(max(at, self.pauses[-1].started_at), None)
        self.met_at = at
        self.elapsed_when_met = self.elapsed(at)
        return self.elapsed_when_met

    def cancel(self, at: dt.datetime) -> dt.datetime | None:
        """Drop the deadline (the case no longer needs it): when it was cancelled, or None if
        it had already finished."""
        if self.is_finished:
            return None
        self.cancelled_at = cancelled_at = max(to_utc(at), self.started_at)
        return cancelled_at

    def retarget(self, spec: MilestoneSpec, timekeeper: TimeKeeper | None = None) -> None:
        """Adopt a new spec (e.g. after reclassification), counting from the original start.

        Met milestones stay met, and thresholds that already fired never fire again.
        """
        if spec.key != self.spec.key:
            raise ValueError(f"cannot retarget milestone {self.key!r} to {spec.key!r}")
        self.spec = spec
        if timekeeper is not None:
            self.timekeeper = timekeeper
        self.target = spec.resolve_target(self.timekeeper)
        self._reschedule()

    def rebind_timekeeper(self, timekeeper: TimeKeeper) -> None:
        """Recompute after the calendar was edited (e.g. an operator filled a missing year)."""
        self.retarget(self.spec, timekeeper)

    def fire(
        self,
        now: dt.datetime,
        *,
        until: dt.datetime | None = None,
        late_after: dt.timedelta = LATE_AFTER,
    ) -> list[Firing]:
        """Fire every unfired threshold due by `until` (default `now`), each once, in order."""
        if self.is_finished:
            return []
        now = to_utc(now)
        until = now if until is None else to_utc(until)
        fired_now: list[Firing] = []
        for threshold, at in self._schedule:
            if threshold.key in self.fired:
                continue
            if at is None or at > until:
                break  # thresholds are ordered by elapsed time, so later ones are later too
            firing = Firing(
                milestone_key=self.key,
                kind=threshold.kind,
                scheduled_for=at,
                fired_at=now,
                late=now - at > late_after,
                elapsed_threshold=threshold.elapsed,
                warn_fraction=threshold.warn_fraction,
            )
            self.fired[threshold.key] = firing
            fired_now.append(firing)
        return fired_now

    # -- memento (persistence) -------------------------------------------------------

    def to_memento(self, *, include_spec: bool = True) -> dict[str, Any]:
        """Everything needed to rebuild this clock exactly, as JSON-ready data."""
        return {
            "key": self.key,
            "spec": self.spec.model_dump(mode="json") if include_spec else None,
            "started_at": self.started_at.isoformat(),
            "pauses": [_pause_to_data(pause) for pause in self.pauses],
            "met_at": _iso(self.met_at),
            "elapsed_when_met_us": _micros(self.elapsed_when_met),
            "cancelled_at": _iso(self.cancelled_at),
            "fired": {key: _firing_to_data(firing) for key, firing in self.fired.items()},
            "calendar_gaps": sorted(day.isoformat() for day in self.calendar_gaps),
        }

    @classmethod
    def from_memento(
        cls, memento: dict[str, Any], spec: MilestoneSpec, timekeeper: TimeKeeper
    ) -> MilestoneClock:
        """Rebuild a clock saved by `to_memento`, counting on the given (current) timekeeper."""
        clock = cls(spec, timekeeper, dt.datetime.fromisoformat(memento["started_at"]))
        clock.pauses = [_pause_from_data(data) for data in memento["pauses"]]
        clock.met_at = _from_iso(memento["met_at"])
        clock.elapsed_when_met = _from_micros(memento["elapsed_when_met_us"])
        clock.cancelled_at = _from_iso(memento["cancelled_at"])
        # Mementos written before the one escalation rule also hold per-milestone re-fires.
        clock.fired = {
            key: _firing_from_data(data)
            for key, data in memento["fired"].items()
            if data["kind"] in {kind.value for kind in FiringKind}
        }
        clock.calendar_gaps.update(dt.date.fromisoformat(day) for day in memento["calendar_gaps"])
        if clock.pauses:
            clock._reschedule()  # the constructor scheduled without the pauses
        return clock

    # -- internals -----------------------------------------------------------------

    def _thresholds(self) -> list[_Threshold]:
        thresholds = [
            _Threshold(
                f"warning:{fraction}",
                FiringKind.WARNING,
                self.target * fraction,
                warn_fraction=fraction,
            )
            for fraction in self.spec.warn_fractions
        ]
        thresholds.append(_Threshold("breach", FiringKind.BREACH, self.target))
        return sorted(thresholds, key=lambda threshold: threshold.elapsed)

    def _reschedule(self) -> None:
        self._schedule = [
            (threshold, self._instant_for_elapsed(threshold.elapsed))
            for threshold in self._thresholds()
        ]

    def _active_segments(self) -> Iterator[tuple[dt.datetime, dt.datetime | None]]:
        cursor = self.started_at
        for pause in self.pauses:
            if pause.started_at > cursor:
                yield cursor, pause.started_at
            if pause.ended_at is None:
                return
            cursor = max(cursor, pause.ended_at)
        yield cursor, None

    def _instant_for_elapsed(self, elapsed: dt.timedelta) -> dt.datetime | None:
        if self._instants_keeper is not self.timekeeper or len(self._instants) >= _MAX_INSTANTS:
            self._instants = {}
            self._instants_keeper = self.timekeeper
        key = (self.started_at, tuple(self.pauses), elapsed)
        known = self._instants.get(key)
        if known is not None:
            self.calendar_gaps.update(known[1])
            return known[0]
        noted, self.calendar_gaps = self.calendar_gaps, set()
        try:
            instant = self._compute_instant_for_elapsed(elapsed)
        finally:
            gaps, self.calendar_gaps = self.calendar_gaps, noted
            noted.update(gaps)
        self._instants[key] = (instant, frozenset(gaps))
        return instant

    def _compute_instant_for_elapsed(self, elapsed: dt.timedelta) -> dt.datetime | None:
        consumed = dt.timedelta(0)
        for segment_start, segment_end in self._active_segments():
            remaining = elapsed - consumed
            if segment_end is None:
                return self._advance(segment_start, remaining)
            available = self._measure(segment_start, segment_end)
            if remaining <= available:
                return self._advance(segment_start, remaining)
            consumed += available
        return None  # paused before reaching it: unknown until resumed

    def instant_after(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        """`start` plus `duration` counted on this milestone's clock (pauses not applied)."""
        return self._advance(to_utc(start), duration)

    def _advance(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        result = self.timekeeper.add_business_time(start, duration)
        self.calendar_gaps.update(result.missing_dates)
        return result.at

    def _measure(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        result = self.timekeeper.business_time_between(start, end)
        self.calendar_gaps.update(result.missing_dates)
        return result.duration

    def _close_open_pause(self, at: dt.datetime, by: str | None) -> None:
        open_pause = self.pauses[-1]
        self.pauses[-1] = PauseInterval(
            started_at=open_pause.started_at,
            paused_by=open_pause.paused_by,
            reason=open_pause.reason,
            ended_at=at,
            resumed_by=by,
        )

    def _not_before_last_change(self, at: dt.datetime) -> dt.datetime:
        at = to_utc(at)
        last_change = self.started_at
        if self.pauses:
            last = self.pauses[-1]
            last_change = last.started_at if last.ended_at is None else last.ended_at
        if at < last_change:
            raise ValueError(
                f"milestone {self.key!r}: {at.isoformat()} is before "
                f"its last change {last_change.isoformat()}"
            )
        return at


def _iso(instant: dt.datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


def _from_iso(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def _micros(duration: dt.timedelta | None) -> int | None:
    # Whole microseconds keep durations exact through JSON (floats would round).
    return None if duration is None else duration // dt.timedelta(microseconds=1)


def _from_micros(micros: int | None) -> dt.timedelta | None:
    return None if micros is None else dt.timedelta(microseconds=micros)


def _pause_to_data(pause: PauseInterval) -> dict[str, Any]:
    return {
        "started_at": pause.started_at.isoformat(),
        "paused_by": pause.paused_by,
        "reason": pause.reason,
        "ended_at": _iso(pause.ended_at),
        "resumed_by": pause.resumed_by,
    }


def _pause_from_data(data: dict[str, Any]) -> PauseInterval:
    return PauseInterval(
        started_at=dt.datetime.fromisoformat(data["started_at"]),
        paused_by=data["paused_by"],
        reason=data["reason"],
        ended_at=_from_iso(data["ended_at"]),
        resumed_by=data["resumed_by"],
    )


def _firing_to_data(firing: Firing) -> dict[str, Any]:
    return {
        "milestone_key": firing.milestone_key,
        "kind": firing.kind.value,
        "scheduled_for": firing.scheduled_for.isoformat(),
        "fired_at": firing.fired_at.isoformat(),
        "late": firing.late,
        "elapsed_threshold_us": _micros(firing.elapsed_threshold),
        "warn_fraction": firing.warn_fraction,
    }


def _firing_from_data(data: dict[str, Any]) -> Firing:
    return Firing(
        milestone_key=data["milestone_key"],
        kind=FiringKind(data["kind"]),
        scheduled_for=dt.datetime.fromisoformat(data["scheduled_for"]),
        fired_at=dt.datetime.fromisoformat(data["fired_at"]),
        late=data["late"],
        elapsed_threshold=dt.timedelta(microseconds=data["elapsed_threshold_us"]),
        warn_fraction=data["warn_fraction"],
    )

"""Domain outcomes of one case, turned into the SLA contract events the monitor publishes."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tousu_shared.contracts import Event
from tousu_shared.contracts import sla as contracts

from tousu_sla import domain


@dataclass(frozen=True)
class OutgoingEvent:
    """An SLA event and, for timer firings, the key that makes a second firing impossible."""

    event: Event
    firing_key: str | None = None


def due_times(case: domain.CaseSla) -> dict[str, dt.datetime | None]:
    """Every milestone's due time now, to tell real retargets from unchanged ones later."""
    return {key: clock.due_at for key, clock in case.clocks.items()}


def contract_events(
    case: domain.CaseSla,
    outcomes: Iterable[domain.SlaOutcome],
    *,
    previous_due: Mapping[str, dt.datetime | None],
) -> list[OutgoingEvent]:
    """The events to publish for what just happened to a case, in order."""
    translator = _Translator(case, previous_due)
    return [event for outcome in outcomes for event in translator.translate(outcome)]


class _Translator:
    def __init__(
        self, case: domain.CaseSla, previous_due: Mapping[str, dt.datetime | None]
    ) -> None:
        self.case = case
        self.previous_due = previous_due
        self.complaint_id = uuid.UUID(case.case_id)
        self.context = {
            "policy": case.policy.name,
            "department": case.attributes.department,
            "urgency": case.attributes.urgency,
        }

    def translate(self, outcome: domain.SlaOutcome) -> list[OutgoingEvent]:
        if isinstance(outcome, domain.Firing):
            return self._firing(outcome)
        if isinstance(outcome, domain.Escalated):
            return self._escalated(outcome)
        if isinstance(outcome, domain.MilestoneStarted):
            clock = self.case.clocks[outcome.milestone_key]
            return [
                OutgoingEvent(
                    contracts.SlaMilestoneStarted(
                        milestone=outcome.milestone_key,
                        due_at=outcome.due_at or self._due(clock),
                        started_at=outcome.started_at,
                        target_seconds=clock.target.total_seconds(),
                        calendar=(
                            clock.timekeeper.name
                            if isinstance(clock.timekeeper, domain.BusinessCalendar)
                            else None
                        ),
                        **self._common(),
                    )
                )
            ]
        if isinstance(outcome, domain.MilestoneMet):
            clock = self.case.clocks[outcome.milestone_key]
            return [
                OutgoingEvent(
                    contracts.SlaMet(
                        milestone=outcome.milestone_key,
                        due_at=self._due(clock),
                        met_at=outcome.met_at,
                        elapsed_seconds=outcome.elapsed.total_seconds(),
                        within_target=outcome.within_target,
                        **self._common(),
                    )
                )
            ]
        if isinstance(outcome, domain.MilestonePaused):
            return [
                OutgoingEvent(
                    contracts.SlaMilestonePaused(
                        milestone=outcome.milestone_key,
                        due_at=None,
                        paused_at=outcome.paused_at,
                        paused_by=outcome.paused_by,
                        reason=outcome.reason,
                        **self._common(),
                    )
                )
            ]
        if isinstance(outcome, domain.MilestoneResumed):
            clock = self.case.clocks[outcome.milestone_key]
            resumed_by = clock.pauses[-1].resumed_by if clock.pauses else None
            return [
                OutgoingEvent(
                    contracts.SlaMilestoneResumed(
                        milestone=outcome.milestone_key,
                        due_at=outcome.due_at,
                        resumed_at=outcome.resumed_at,
                        resumed_by=resumed_by,
                        **self._common(),
                    )
                )
            ]
        if isinstance(outcome, domain.MilestoneRetargeted):
            previous = self.previous_due.get(outcome.milestone_key)
            if outcome.milestone_key in self.previous_due and previous == outcome.due_at:
                return []  # re-evaluated, but the deadline did not move: nothing to tell
            return [
                OutgoingEvent(
                    contracts.SlaMilestoneRetargeted(
                        milestone=outcome.milestone_key,
                        due_at=outcome.due_at,
                        previous_due_at=previous,
                        **self._common(),
                    )
                )
            ]
        if isinstance(outcome, domain.MilestoneCancelled):
            return [
                OutgoingEvent(
                    contracts.SlaMilestoneCancelled(
                        milestone=outcome.milestone_key,
                        due_at=self.case.clocks[outcome.milestone_key].due_at,
                        cancelled_at=outcome.cancelled_at,
                        **self._common(),
                    )
                )
            ]
        if isinstance(outcome, domain.CalendarDataMissing):
            return self._calendar_gap(outcome)
        raise TypeError(f"no SLA event for outcome {outcome!r}")

    def _common(self) -> dict[str, object]:
        return {"complaint_id": self.complaint_id, **self.context}

    @staticmethod
    def _due(clock: domain.MilestoneClock) -> dt.datetime:
        # Only a paused clock lacks a due time, and none of these outcomes leaves one paused.
        due = clock.due_at
        if due is None:
            raise ValueError(f"milestone {clock.key!r} has no due time")
        return due

    def _firing(self, firing: domain.Firing) -> list[OutgoingEvent]:
        clock = self.case.clocks[firing.milestone_key]
        key = f"{self.case.case_id}:{clock.key}:{clock.started_at.isoformat()}:"
        timing = {
            "milestone": firing.milestone_key,
            "due_at": self._due(clock),
            "late": firing.late,
            "scheduled_for": firing.scheduled_for,
            "notify_at": self._notify_at(clock, firing.fired_at),
            **self._common(),
        }
        if firing.kind is domain.FiringKind.WARNING:
            return [
                OutgoingEvent(
                    contracts.SlaAtRisk(fraction=firing.warn_fraction or 0.0, **timing),
                    key + firing.threshold_key,
                )
            ]
        # Informational, per milestone: escalating the case is SlaEscalated's job alone.
        return [OutgoingEvent(contracts.SlaBreached(**timing), key + firing.threshold_key)]

    def _escalated(self, escalated: domain.Escalated) -> list[OutgoingEvent]:
        clock = self.case.clocks[escalated.milestone_key]
        event = contracts.SlaEscalated(
            milestone=escalated.milestone_key,
            due_at=self._due(clock),
            level=escalated.level,
            from_level=escalated.from_level,
            overdue_milestones=list(escalated.overdue),
            late=escalated.late,
            scheduled_for=escalated.scheduled_for,
            notify_at=self._notify_at(clock, escalated.fired_at),
            repeat=escalated.repeat,
            **self._common(),
        )
        return [OutgoingEvent(event, f"{self.case.case_id}:{escalated.firing_key_suffix}")]

    def _notify_at(self, clock: domain.MilestoneClock, fired_at: dt.datetime) -> dt.datetime:
        # People are told in working time (no 3 a.m. pages) unless the case is immediate.
        timekeeper = clock.timekeeper
        calendar = (
            timekeeper
            if isinstance(timekeeper, domain.BusinessCalendar)
            else self.case.calendars.get(domain.DEFAULT_CALENDAR)
        )
        if calendar is None:
            return fired_at
        return domain.next_notification_time(fired_at, self.case.attributes.urgency, calendar).at

    def _calendar_gap(self, gap: domain.CalendarDataMissing) -> list[OutgoingEvent]:
        clocks = [
            clock
            for clock in self.case.clocks.values()
            if clock.timekeeper.name == gap.calendar_name
        ]
        clocks.sort(key=lambda clock: clock.is_finished)  # prefer a running milestone
        if not clocks:
            return []
        clock = clocks[0]
        return [
            OutgoingEvent(
                contracts.CalendarDataMissing(
                    milestone=clock.key,
                    due_at=clock.due_at or clock.started_at,
                    calendar=gap.calendar_name,
                    missing_dates=sorted(day.isoformat() for day in gap.dates),
                    **self._common(),
                )
            )
        ]

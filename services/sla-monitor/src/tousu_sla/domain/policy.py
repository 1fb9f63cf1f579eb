"""SLA policies as data: ordered policies (first match wins) made of milestone specs."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .calendar import TimeKeeper

DEFAULT_CALENDAR = "cn-statutory"
DEFAULT_WARN_FRACTIONS = (0.5, 0.75, 0.9)


class EventType(StrEnum):
    """Event types the SLA monitor reacts to (specs hold plain strings, so others work too)."""

    COMPLAINT_RECEIVED = "ComplaintReceived"
    COMPLAINT_CLASSIFIED = "ComplaintClassified"
    COMPLAINT_RECLASSIFIED = "ComplaintReclassified"
    CASE_ROUTED = "CaseRouted"
    CASE_ACKNOWLEDGED = "CaseAcknowledged"
    FIRST_RESPONSE_SENT = "FirstResponseSent"
    INVESTIGATION_STARTED = "InvestigationStarted"
    ROOT_CAUSE_RECORDED = "RootCauseRecorded"
    SOLUTION_PROPOSED = "SolutionProposed"
    CASE_RESOLVED = "CaseResolved"
    CASE_CLOSED = "CaseClosed"
    CASE_REOPENED = "CaseReopened"
    CASE_TRANSFERRED = "CaseTransferred"
    CASE_ESCALATED = "CaseEscalated"
    CASE_ASSIGNED = "CaseAssigned"
    SURVEY_SCHEDULED = "SurveyScheduled"
    # The feedback service told the customer the result: the follow-up milestone is met.
    CUSTOMER_INFORMED = "CustomerInformed"
    SURVEY_ANSWERED = "SurveyAnswered"
    CUSTOMER_CONFIRMED = "CustomerConfirmed"
    CUSTOMER_DISSATISFIED = "CustomerDissatisfied"
    SURVEY_EXPIRED = "SurveyExpired"
    # Recorded through the API (POST/DELETE …/sla/customer-wait); policies name them.
    CUSTOMER_WAIT_STARTED = "CustomerWaitStarted"
    CUSTOMER_WAIT_ENDED = "CustomerWaitEnded"


class ClockKind(StrEnum):
    """Whether a milestone counts every second or only working time on its calendar."""

    CALENDAR = "calendar"
    BUSINESS = "business"


class CaseAttributes(BaseModel):
    """The case facts that policies match on (None: not known yet)."""

    model_config = ConfigDict(frozen=True)

    urgency: str | None = None
    severity: str | None = None
    customer_tier: str | None = None
    category: str | None = None
    channel: str | None = None
    department: str | None = None


class MatchCriteria(BaseModel):
    """Each given list must contain the case's value; an omitted list matches anything."""

    model_config = ConfigDict(frozen=True)

    urgency: tuple[str, ...] | None = None
    severity: tuple[str, ...] | None = None
    customer_tier: tuple[str, ...] | None = None
    category: tuple[str, ...] | None = None
    channel: tuple[str, ...] | None = None
    department: tuple[str, ...] | None = None

    @property
    def is_catch_all(self) -> bool:
        """True when no criterion is set."""
        return all(getattr(self, field) is None for field in type(self).model_fields)

    def matches(self, attributes: CaseAttributes) -> bool:
        """Whether every set criterion contains the case's value (unknown values never match)."""
        for field in type(self).model_fields:
            allowed = getattr(self, field)
            if allowed is not None and getattr(attributes, field) not in allowed:
                return False
        return True


class MilestoneSpec(BaseModel):
    """One deadline: what starts, meets, pauses and resumes it, and how long it may take."""

    model_config = ConfigDict(frozen=True)

    key: str
    name: str
    start_event: str
    # Payload field carrying the real start when it precedes the event (e.g. contact_at).
    start_at_field: str | None = None
    stop_events: tuple[str, ...]
    pause_events: tuple[str, ...] = ()
    resume_events: tuple[str, ...] = ()
    # Events after which the deadline no longer applies (e.g. the case was closed).
    cancel_events: tuple[str, ...] = (EventType.CASE_CLOSED,)
    target: dt.timedelta | None = None
    # Alternative to `target`: N working days of the milestone's calendar (business clock).
    target_working_days: float | None = None
    clock: ClockKind = ClockKind.CALENDAR
    calendar: str = DEFAULT_CALENDAR
    warn_fractions: tuple[float, ...] = DEFAULT_WARN_FRACTIONS
    at_risk_fraction: float = 0.75
    # While this milestone is overdue the case rises one more level per interval (the one
    # escalation rule, escalation.py); None: it never re-escalates the case.
    escalation_interval: dt.timedelta | None = dt.timedelta(hours=4)
    # A repeatable milestone starts a new cycle when its start event recurs after it ended.
    repeatable: bool = False

    @field_validator("warn_fractions")
    @classmethod
    def _fractions_inside_target(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < fraction < 1 for fraction in value):
            raise ValueError("warn fractions must lie strictly between 0 and 1")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _one_positive_target(self) -> MilestoneSpec:
        if (self.target is None) == (self.target_working_days is None):
            raise ValueError(
                f"milestone {self.key!r}: give exactly one of target, target_working_days"
            )
        if self.target is not None and self.target <= dt.timedelta(0):
            raise ValueError(f"milestone {self.key!r}: target must be positive")
        if self.target_working_days is not None:
            if self.target_working_days <= 0:
                raise ValueError(f"milestone {self.key!r}: target_working_days must be positive")
            if self.clock is not ClockKind.BUSINESS:
                raise ValueError(
                    f"milestone {self.key!r}: working-day targets need the business clock"
                )
        if not self.stop_events:
            raise ValueError(f"milestone {self.key!r}: needs at least one stop event")
        if self.escalation_interval is not None and self.escalation_interval <= dt.timedelta(0):
            raise ValueError(f"milestone {self.key!r}: escalation interval must be positive")
        if not 0 < self.at_risk_fraction <= 1:
            raise ValueError(f"milestone {self.key!r}: at_risk_fraction must be in (0, 1]")
        return self

    def resolve_target(self, timekeeper: TimeKeeper) -> dt.timedelta:
        """The target as counted time on the given timekeeper."""
        if self.target is not None:
            return self.target
        assert self.target_working_days is not None, "validated: one of the two is set"
        return timekeeper.working_day_length * self.target_working_days


class SlaPolicy(BaseModel):
    """A named set of milestones applied to the cases its criteria match."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    match: MatchCriteria = MatchCriteria()
    milestones: tuple[MilestoneSpec, ...]

    @field_validator("milestones")
    @classmethod
    def _some_milestones_with_unique_keys(
        cls, value: tuple[MilestoneSpec, ...], info: ValidationInfo
    ) -> tuple[MilestoneSpec, ...]:
        if not value:
            # It would leave every case it matches without a deadline (and cancel open ones).
            raise ValueError(
                f"policy {info.data.get('name', '')!r} has no milestones: "
                "the cases it matches would have no deadlines"
            )
        keys = [spec.key for spec in value]
        duplicates = {key for key in keys if keys.count(key) > 1}
        if duplicates:
            raise ValueError(f"duplicate milestone keys: {sorted(duplicates)}")
        return value

    def milestone(self, key: str) -> MilestoneSpec | None:
        """The milestone with this key, if the policy has one."""
        return next((spec for spec in self.milestones if spec.key == key), None)


class PolicySet(BaseModel):
    """Ordered policies, first match wins; the last one must be the catch-all default."""

    model_config = ConfigDict(frozen=True)

    version: int = 1
    policies: tuple[SlaPolicy, ...]

    @model_validator(mode="after")
    def _ends_with_single_catch_all(self) -> PolicySet:
        if not self.policies or not self.policies[-1].match.is_catch_all:
            raise ValueError("the last policy must be a catch-all default (no match criteria)")
        # A catch-all earlier in the list would make every later policy unreachable.
        for policy in self.policies[:-1]:
            if policy.match.is_catch_all:
                raise ValueError(
                    f"policy {policy.name!r} matches everything, so later policies are unreachable"
                )
        names = [policy.name for policy in self.policies]
        if len(names) != len(set(names)):
            raise ValueError("policy names must be unique")
        return self

    def select(self, attributes: CaseAttributes) -> SlaPolicy:
        """The first policy whose criteria match the case."""
        return next(policy for policy in self.policies if policy.match.matches(attributes))

    def policy(self, name: str) -> SlaPolicy:
        """The policy with this name."""
        return next(policy for policy in self.policies if policy.name == name)


# Later stages imply the earlier ones happened, so they also meet earlier milestones;
# otherwise a skipped stage (e.g. resolved on the spot) would leave a clock running.
_CONFIRMED = (
    EventType.INVESTIGATION_STARTED,
    EventType.ROOT_CAUSE_RECORDED,
    EventType.SOLUTION_PROPOSED,
    EventType.CASE_RESOLVED,
)
_ROOT_CAUSE = (EventType.ROOT_CAUSE_RECORDED, EventType.SOLUTION_PROPOSED, EventType.CASE_RESOLVED)
_SOLUTION = (EventType.SOLUTION_PROPOSED, EventType.CASE_RESOLVED)
_CUSTOMER_WAIT = {
    "pause_events": (EventType.CUSTOMER_WAIT_STARTED,),
    "resume_events": (EventType.CUSTOMER_WAIT_ENDED,),
}


def _record(target: dt.timedelta) -> MilestoneSpec:
    return MilestoneSpec(
        key="record",
        name="Recorded after first contact (接收)",
        start_event=EventType.COMPLAINT_RECEIVED,
        start_at_field="contact_at",
        stop_events=(EventType.COMPLAINT_RECEIVED,),
        target=target,
    )


def _follow_up(target: dt.timedelta) -> MilestoneSpec:
    return MilestoneSpec(
        key="follow_up",
        name="Follow-up after resolution (反馈跟进)",
        start_event=EventType.CASE_RESOLVED,
        stop_events=(EventType.CUSTOMER_INFORMED,),
        cancel_events=(EventType.CASE_CLOSED, EventType.CASE_REOPENED),
        target=target,
        repeatable=True,  # a reopened and re-resolved case gets a fresh follow-up
    )


def _standard_milestones(solution_working_days: int) -> tuple[MilestoneSpec, ...]:
    received = EventType.COMPLAINT_RECEIVED
    return (
        _record(dt.timedelta(hours=2)),
        MilestoneSpec(
            key="first_response",
            name="First response to the customer (首次回应)",
            start_event=received,
            stop_events=(EventType.FIRST_RESPONSE_SENT,),
            target=dt.timedelta(hours=24),
        ),
        MilestoneSpec(
            key="confirm",
            name="Complaint confirmed and verified (确认核实)",
            start_event=received,
            stop_events=_CONFIRMED,
            target=dt.timedelta(hours=24),
        ),
        MilestoneSpec(
            key="root_cause",
            name="Root cause analysed (分析)",
            start_event=received,
            stop_events=_ROOT_CAUSE,
            target_working_days=2,
            clock=ClockKind.BUSINESS,
            **_CUSTOMER_WAIT,
        ),
        MilestoneSpec(
            key="initial_solution",
            name="Initial solution proposed (初步方案)",
            start_event=received,
            stop_events=_SOLUTION,
            target_working_days=solution_working_days,
            clock=ClockKind.BUSINESS,
            **_CUSTOMER_WAIT,
        ),
        MilestoneSpec(
            key="resolve",
            name="Resolved (完成处理)",
            start_event=received,
            stop_events=(EventType.CASE_RESOLVED,),
            target_working_days=7,
            clock=ClockKind.BUSINESS,
            **_CUSTOMER_WAIT,
        ),
        _follow_up(dt.timedelta(hours=24)),
    )


# The seed's worked case: apology 1 h, on-site check 6 h, problem confirmed and plan 12 h,
# refund and compensation done 18 h; all wall-clock hours, escalating hourly.
_IMMEDIATE_TARGETS: tuple[tuple[str, str, tuple[str, ...], int], ...] = (
    (
        "first_response",
        "Apology and first response (首次回应)",
        (EventType.FIRST_RESPONSE_SENT,),
        1,
    ),
    ("confirm", "On-site check, complaint verified (确认核实)", _CONFIRMED, 6),
    ("root_cause", "Problem confirmed (分析)", _ROOT_CAUSE, 12),
    ("initial_solution", "Solution decided (初步方案)", _SOLUTION, 12),
    ("resolve", "Refund and compensation done (完成处理)", (EventType.CASE_RESOLVED,), 18),
)


def _immediate_milestones() -> tuple[MilestoneSpec, ...]:
    hourly = dt.timedelta(hours=1)
    return (
        _record(dt.timedelta(hours=2)),
        *(
            MilestoneSpec(
                key=key,
                name=name,
                start_event=EventType.COMPLAINT_RECEIVED,
                stop_events=stop_events,
                target=dt.timedelta(hours=hours),
                escalation_interval=hourly,
            )
            for key, name, stop_events, hours in _IMMEDIATE_TARGETS
        ),
        _follow_up(dt.timedelta(hours=24)),
    )


def default_policy_set() -> PolicySet:
    """domain.md §4 defaults: `immediate`, then complex (serious/major severity), then standard."""
    return PolicySet(
        version=1,
        policies=(
            SlaPolicy(
                name="immediate",
                match=MatchCriteria(urgency=("immediate",)),
                milestones=_immediate_milestones(),
            ),
            SlaPolicy(
                name="complex",
                match=MatchCriteria(severity=("serious", "major")),
                milestones=_standard_milestones(solution_working_days=5),
            ),
            SlaPolicy(name="standard", milestones=_standard_milestones(solution_working_days=3)),
        ),
    )

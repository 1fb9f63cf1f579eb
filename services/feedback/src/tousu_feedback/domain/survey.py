"""The survey aggregate: one resolution of one case, from scheduled to its outcome.

``scheduled → offered → reminded → answered | expired | cancelled``. Every transition
records who, when and why in the history and raises the event that says so; the unit of
work publishes them with the state change. The aggregate never talks to a channel or to
intake: the service layer does that and tells it what happened.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tousu_shared.contracts import feedback as events
from tousu_shared.contracts.base import Event
from tousu_shared.uow import OutgoingMessage

from tousu_feedback.domain.answer import Answer, AnswerSource, Outcome
from tousu_feedback.domain.channels import OutboundChannel
from tousu_feedback.domain.policy import SurveyPolicy

SYSTEM = "system:feedback"


class SurveyState(StrEnum):
    SCHEDULED = "scheduled"
    OFFERED = "offered"
    REMINDED = "reminded"
    ANSWERED = "answered"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        return self in (SurveyState.SCHEDULED, SurveyState.OFFERED, SurveyState.REMINDED)


class Step(StrEnum):
    """What the scheduler does to a survey when it falls due."""

    OFFER = "offer"
    REMIND = "remind"
    EXPIRE = "expire"
    FILE_NEW_ISSUE = "file_new_issue"


FAILED_CALLBACK_OUTCOMES = frozenset({"no_answer", "busy", "wrong_number", "refused"})


class SurveyRefused(Exception):
    """A transition the survey's state does not allow (a 409 listing what is allowed)."""

    def __init__(self, message: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


@dataclass
class TokenRecord:
    """One answer link's stored form: the digest, never the token."""

    digest: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None = None
    is_new: bool = False
    changed: bool = False


@dataclass(frozen=True)
class HistoryEntry:
    kind: str
    at: dt.datetime
    actor: str
    details: dict[str, Any]


@dataclass(frozen=True)
class CallbackAttempt:
    attempt: int
    outcome: str
    at: dt.datetime
    agent: str
    note: str | None
    call_ref: str | None


@dataclass
class Survey:
    """One survey; built by :meth:`schedule` or loaded by the repository."""

    id: uuid.UUID
    complaint_id: uuid.UUID
    resolution_version: int
    department: str
    urgency: str | None
    resolution: str
    resolved_at: dt.datetime
    policy_version: int
    offer_at: dt.datetime
    due_at: dt.datetime
    expires_at: dt.datetime
    state: SurveyState = SurveyState.SCHEDULED
    channel: OutboundChannel | None = None
    informed_at: dt.datetime | None = None
    offered_at: dt.datetime | None = None
    reminders_sent: int = 0
    failed_attempts: int = 0
    attempts: int = 0
    answer: Answer | None = None
    answered_at: dt.datetime | None = None
    answer_source: AnswerSource | None = None
    answered_by: str | None = None
    call_ref: str | None = None
    # When the new complaint an answer raised is (next) to be filed at intake.
    new_issue_due_at: dt.datetime | None = None
    new_complaint_id: uuid.UUID | None = None
    closed_reason: str | None = None
    version: int = 0
    tokens: list[TokenRecord] = field(default_factory=list)
    new_history: list[HistoryEntry] = field(default_factory=list)
    new_attempts: list[CallbackAttempt] = field(default_factory=list)
    _events: list[Event] = field(default_factory=list, repr=False)

    # -- creation -----------------------------------------------------------------------

    @classmethod
    def schedule(
        cls,
        *,
        complaint_id: uuid.UUID,
        resolution_version: int,
        department: str,
        urgency: str | None,
        resolution: str,
        resolved_at: dt.datetime,
        policy: SurveyPolicy,
        policy_version: int,
        now: dt.datetime,
    ) -> Survey:
        """A survey for one resolution, offered when the policy says."""
        # An event handled late is still subject to the send window at the time it is handled.
        offer_at = policy.send_time(max(resolved_at + policy.offer_delay, now), urgency)
        survey = cls(
            id=uuid.uuid4(),
            complaint_id=complaint_id,
            resolution_version=resolution_version,
            department=department,
            urgency=urgency,
            resolution=resolution,
            resolved_at=resolved_at,
            policy_version=policy_version,
            offer_at=offer_at,
            due_at=offer_at + policy.callback_due_after,
            expires_at=offer_at + policy.expiry,
        )
        survey._record("scheduled", now, SYSTEM, offer_at=offer_at.isoformat())
        survey._raise(
            events.SurveyScheduled,
            due_at=survey.due_at,
            offer_at=offer_at,
            expires_at=survey.expires_at,
            resolution_version=resolution_version,
            policy_version=policy_version,
        )
        return survey

    # -- what falls due -----------------------------------------------------------------

    def next_action_at(self, policy: SurveyPolicy) -> dt.datetime | None:
        """When the scheduler next has something to do with this survey (None: nothing)."""
        if self.state is SurveyState.SCHEDULED:
            return self.offer_at
        if self.state.is_open:
            reminder = self._next_reminder_at(policy)
            return min(reminder, self.expires_at) if reminder else self.expires_at
        return self.new_issue_due_at

    def due_step(self, now: dt.datetime, policy: SurveyPolicy) -> Step | None:
        """The step due at ``now``, if any."""
        if self.state is SurveyState.SCHEDULED:
            return Step.OFFER if now >= self.offer_at else None
        if self.state.is_open:
            if now >= self.expires_at:
                return Step.EXPIRE
            reminder = self._next_reminder_at(policy)
            return Step.REMIND if reminder is not None and now >= reminder else None
        if self.new_issue_due_at is not None and now >= self.new_issue_due_at:
            return Step.FILE_NEW_ISSUE
        return None

    def _next_reminder_at(self, policy: SurveyPolicy) -> dt.datetime | None:
        if self.channel is None or not self.channel.sends_link or self.offered_at is None:
            return None
        if self.reminders_sent >= len(policy.reminders):
            return None
        wanted = self.offered_at + policy.reminders[self.reminders_sent]
        return policy.send_time(wanted, self.urgency)

    # -- transitions ----------------------------------------------------------------------

    def offer(
        self,
        *,
        channel: OutboundChannel,
        at: dt.datetime,
        token: TokenRecord | None,
        message_id: uuid.UUID | None,
        policy: SurveyPolicy,
    ) -> None:
        """The result (and the answer link) went out, or the survey waits for a callback."""
        self._require({SurveyState.SCHEDULED}, "offer")
        self.state = SurveyState.OFFERED
        self.channel = channel
        self.offered_at = at
        self.expires_at = at + policy.expiry
        self.due_at = at if not channel.sends_link else max(self.due_at, at)
        if token is not None:
            token.is_new = True
            self.tokens.append(token)
        self._record("offered", at, SYSTEM, channel=channel.value)
        if channel.sends_link:
            self._inform(channel.value, at, message_id)
        self._raise(
            events.SurveyOffered, channel=channel.value, offered_at=at, expires_at=self.expires_at
        )

    def postpone_offer(self, until: dt.datetime, reason: str, at: dt.datetime) -> None:
        """Sending failed (or may not happen now): try again later."""
        self._require({SurveyState.SCHEDULED}, "offer")
        self.offer_at = until
        self._record("offer_postponed", at, SYSTEM, until=until.isoformat(), reason=reason)

    def remind(
        self, *, at: dt.datetime, token: TokenRecord | None, message_id: uuid.UUID | None
    ) -> None:
        """A reminder (with a fresh link; earlier links stay valid) went out."""
        self._require({SurveyState.OFFERED, SurveyState.REMINDED}, "remind")
        assert self.channel is not None
        self.state = SurveyState.REMINDED
        self.reminders_sent += 1
        if token is not None:
            token.is_new = True
            self.tokens.append(token)
        self._record("reminded", at, SYSTEM, reminder=self.reminders_sent)
        self._raise(
            events.SurveyReminded,
            channel=self.channel.value,
            reminded_at=at,
            reminder=self.reminders_sent,
        )

    def skip_reminder(self, reason: str, at: dt.datetime) -> None:
        """A reminder that could not go out is not retried forever."""
        self.reminders_sent += 1
        self._record("reminder_skipped", at, SYSTEM, reason=reason)

    def record_attempt(
        self,
        *,
        outcome: str,
        at: dt.datetime,
        agent: str,
        note: str | None,
        call_ref: str | None,
        policy: SurveyPolicy,
    ) -> None:
        """A callback agent tried to reach the customer; the last failed attempt expires it."""
        self._require({SurveyState.OFFERED, SurveyState.REMINDED}, "record_callback_attempt")
        self.attempts += 1
        attempt = CallbackAttempt(self.attempts, outcome, at, agent, note, call_ref)
        self.new_attempts.append(attempt)
        self._record("callback_attempt", at, agent, outcome=outcome, attempt=self.attempts)
        self._raise(
            events.CallbackAttempted,
            actor=agent,
            attempt=self.attempts,
            outcome=outcome,
            attempted_at=at,
            call_ref=call_ref,
        )
        if outcome in FAILED_CALLBACK_OUTCOMES:
            self.failed_attempts += 1
            if self.failed_attempts >= policy.callback_attempts:
                self.expire(at, reason=f"{self.failed_attempts} callback attempts without answer")

    def answer_with(
        self,
        answer: Answer,
        *,
        source: AnswerSource,
        at: dt.datetime,
        actor: str,
        call_ref: str | None = None,
    ) -> Outcome:
        """The customer answered; the outcome event tells routing to close or reopen."""
        self._require({SurveyState.OFFERED, SurveyState.REMINDED}, "answer")
        if source is AnswerSource.CALLBACK and self.informed_at is None:
            # The agent told the customer the result on the call.
            self._inform(OutboundChannel.CALLBACK.value, at, None)
        self.state = SurveyState.ANSWERED
        self.answer = answer
        self.answered_at = at
        self.answer_source = source
        self.answered_by = actor
        self.call_ref = call_ref
        self.new_issue_due_at = at if answer.new_issue else None
        self._revoke_tokens(at)
        outcome = answer.outcome
        self._record("answered", at, actor, source=source.value, outcome=outcome.value)
        self._raise(
            events.SurveyAnswered,
            actor=actor,
            solved=answer.solved,
            satisfaction=answer.satisfaction,
            answered_at=at,
            source=source.value,
            confirmed=answer.confirmed,
            reason_codes=list(answer.reason_codes),
        )
        if outcome is Outcome.CONFIRMED:
            self._raise(
                events.CustomerConfirmed,
                actor=actor,
                confirmed_at=at,
                satisfaction=answer.satisfaction,
                source=source.value,
            )
        else:
            self._raise(
                events.CustomerDissatisfied,
                actor=actor,
                comment=answer.complaint_comment,
                satisfaction=answer.satisfaction,
                source=source.value,
                reason_codes=list(answer.reason_codes),
            )
        return outcome

    def expire(self, at: dt.datetime, *, reason: str = "no answer before the expiry") -> None:
        """No answer: routing closes the case as ``no_response``."""
        self._require({SurveyState.OFFERED, SurveyState.REMINDED}, "expire")
        self.state = SurveyState.EXPIRED
        self.closed_reason = reason
        self._revoke_tokens(at)
        self._record("expired", at, SYSTEM, reason=reason, attempts=self.attempts)
        self._raise(events.SurveyExpired, attempts=self.attempts)

    def cancel(self, reason: str, at: dt.datetime, actor: str = SYSTEM) -> None:
        """The case reopened or closed otherwise: the survey and its links end."""
        self._require({SurveyState.SCHEDULED, SurveyState.OFFERED, SurveyState.REMINDED}, "cancel")
        self.state = SurveyState.CANCELLED
        self.closed_reason = reason
        self._revoke_tokens(at)
        self._record("cancelled", at, actor, reason=reason)
        self._raise(events.SurveyCancelled, actor=actor, reason=reason, cancelled_at=at)

    def new_issue_filed(self, complaint_id: uuid.UUID, at: dt.datetime) -> None:
        """Intake recorded the new complaint the customer raised in their answer."""
        self.new_issue_due_at = None
        self.new_complaint_id = complaint_id
        self._record("new_complaint_filed", at, SYSTEM, complaint_id=str(complaint_id))

    def new_issue_failed(self, reason: str, at: dt.datetime, retry_at: dt.datetime) -> None:
        """Intake could not take the new complaint now: try again later."""
        self.new_issue_due_at = retry_at
        self._record("new_complaint_deferred", at, SYSTEM, reason=reason)

    def moved_to(self, department: str) -> None:
        """The case was transferred; the survey follows it."""
        self.department = department

    # -- the answer link --------------------------------------------------------------------

    def token_state(self, digest: str, now: dt.datetime) -> str:
        """``valid``, ``answered``, ``expired`` or ``revoked`` for one of this survey's links."""
        token = next(t for t in self.tokens if t.digest == digest)
        if self.state is SurveyState.ANSWERED:
            return "answered"
        if self.state is SurveyState.EXPIRED or now >= token.expires_at:
            return "expired"
        if token.revoked_at is not None or not self.state.is_open:
            return "revoked"
        return "valid"

    def allowed_actions(self) -> tuple[str, ...]:
        """What may be done to the survey now (listed in refusals)."""
        if self.state is SurveyState.SCHEDULED:
            return ("cancel",)
        if self.state.is_open:
            return ("answer", "record_callback_attempt", "remind", "expire", "cancel")
        return ()

    # -- events ---------------------------------------------------------------------------

    def pull_messages(self) -> list[OutgoingMessage]:
        """Hand the collected events to the unit of work."""
        raised, self._events = self._events, []
        return [OutgoingMessage(event) for event in raised]

    def _inform(self, channel: str, at: dt.datetime, message_id: uuid.UUID | None) -> None:
        self.informed_at = at
        self._raise(
            events.CustomerInformed,
            channel=channel,
            informed_at=at,
            message_id=str(message_id) if message_id else None,
        )

    def _raise(self, cls: type[events._FeedbackEvent], **fields: Any) -> None:
        fields.setdefault("actor", SYSTEM)
        self._events.append(
            cls(
                complaint_id=self.complaint_id,
                survey_id=str(self.id),
                department=self.department,
                **fields,
            )
        )

    def _record(self, kind: str, at: dt.datetime, actor: str, **details: Any) -> None:
        self.new_history.append(HistoryEntry(kind, at, actor, details))

    def _require(self, states: set[SurveyState], action: str) -> None:
        if self.state not in states:
            raise SurveyRefused(
                f"a survey that is {self.state.value} cannot {action.replace('_', ' ')}",
                self.allowed_actions(),
            )

    def _revoke_tokens(self, at: dt.datetime) -> None:
        for token in self.tokens:
            if token.revoked_at is None:
                token.revoked_at = at
                token.changed = True

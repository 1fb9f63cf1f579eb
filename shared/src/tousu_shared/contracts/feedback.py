"""Events the feedback service publishes on ``feedback.events``.

A survey follows one resolution of one case: ``scheduled → offered → reminded → answered |
expired | cancelled``; each transition is an event with who (``actor``), when and why.
``CustomerInformed`` says the customer was told the result (it meets the SLA follow-up
milestone); ``CustomerConfirmed`` / ``CustomerDissatisfied`` / ``SurveyExpired`` are the
outcomes routing acts on (close / reopen / close as no response).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from tousu_shared.contracts.base import Event

AnswerSource = Literal["link", "callback"]
CallbackOutcome = Literal["no_answer", "busy", "wrong_number", "answered", "refused"]


class _FeedbackEvent(Event):
    topic: ClassVar[str] = "feedback.events"

    survey_id: str
    # Appended, optional: who made the transition (a person or "system:feedback").
    actor: str = "system:feedback"
    department: str | None = None


class SurveyScheduled(_FeedbackEvent):
    """A survey was created for one resolution of the case; it is offered at ``offer_at``."""

    due_at: datetime
    offer_at: datetime | None = None
    expires_at: datetime | None = None
    resolution_version: int | None = None
    policy_version: int | None = None


class CustomerInformed(_FeedbackEvent):
    """The customer was told the result through a channel (the follow-up milestone)."""

    channel: str
    informed_at: datetime
    message_id: str | None = None


class SurveyOffered(_FeedbackEvent):
    """The survey (with its answer link) was sent to the customer."""

    channel: str
    offered_at: datetime
    expires_at: datetime


class SurveyReminded(_FeedbackEvent):
    """A reminder was sent."""

    channel: str
    reminded_at: datetime
    reminder: int


class CallbackAttempted(_FeedbackEvent):
    """A callback agent tried to reach the customer by phone."""

    attempt: int
    outcome: CallbackOutcome
    attempted_at: datetime
    call_ref: str | None = None


class SurveyAnswered(_FeedbackEvent):
    """The customer answered the survey, through the link or on a callback."""

    solved: bool
    satisfaction: int
    answered_at: datetime
    source: AnswerSource = "link"
    confirmed: bool = False
    reason_codes: list[str] = []


class CustomerConfirmed(_FeedbackEvent):
    """The customer confirmed the result; routing closes the case."""

    confirmed_at: datetime
    satisfaction: int | None = None
    source: AnswerSource = "link"


class CustomerDissatisfied(_FeedbackEvent):
    """The problem was not solved or the result not confirmed; routing reopens the case."""

    comment: str
    satisfaction: int
    source: AnswerSource = "link"
    reason_codes: list[str] = []


class SurveyExpired(_FeedbackEvent):
    """No answer after the configured attempts and the expiry; routing closes the case."""

    attempts: int


class SurveyCancelled(_FeedbackEvent):
    """The survey was cancelled (the case reopened or closed otherwise)."""

    reason: str
    cancelled_at: datetime

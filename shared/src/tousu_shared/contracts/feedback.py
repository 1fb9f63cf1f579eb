"""Events the feedback service publishes."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from tousu_shared.contracts.base import Event


class _FeedbackEvent(Event):
    topic: ClassVar[str] = "feedback.events"

    survey_id: str


class SurveyScheduled(_FeedbackEvent):
    """A callback survey was scheduled after resolution."""

    due_at: datetime


class SurveyAnswered(_FeedbackEvent):
    """The customer answered the survey."""

    solved: bool
    satisfaction: int
    answered_at: datetime


class CustomerConfirmed(_FeedbackEvent):
    """The customer confirmed the result."""

    confirmed_at: datetime


class CustomerDissatisfied(_FeedbackEvent):
    """The customer was not satisfied; the comment goes back to the department."""

    comment: str
    satisfaction: int


class SurveyExpired(_FeedbackEvent):
    """No answer after the configured attempts."""

    attempts: int

"""HTTP schemas of the feedback API (translated to commands; never passed inward)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from tousu_shared.errors import InvalidInput

from tousu_feedback.domain.answer import Answer, InvalidAnswer, ReasonCode
from tousu_feedback.domain.policy import SurveyPolicy


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AnswerCreate(_Strict):
    """The survey's questions (domain.md §5)."""

    solved: bool = Field(description="Was the problem solved? / 问题是否已解决")
    satisfaction: int = Field(ge=1, le=5, description="1 (very unhappy) … 5 (very happy)")
    reason_codes: list[ReasonCode] = Field(default_factory=list, max_length=7)
    reason_text: str | None = Field(default=None, max_length=2000)
    comment: str | None = Field(default=None, max_length=5000)
    confirmed: bool = Field(description="The customer confirms the result / 客户确认处理结果")
    new_issue: str | None = Field(
        default=None,
        min_length=5,
        max_length=5000,
        description="Something new, not this case: becomes a complaint of its own",
    )

    def to_answer(self) -> Answer:
        return Answer(
            solved=self.solved,
            satisfaction=self.satisfaction,
            confirmed=self.confirmed,
            reason_codes=tuple(self.reason_codes),
            reason_text=self.reason_text or None,
            comment=self.comment or None,
            new_issue=self.new_issue or None,
        )


def to_answer(body: AnswerCreate, *, prefix: str = "body") -> Answer:
    """The domain answer, or a 422 naming the question that breaks a survey rule."""
    try:
        return body.to_answer()
    except InvalidAnswer as exc:
        raise InvalidInput(str(exc), field=f"{prefix}.{exc.field}") from exc


class CallbackAttemptCreate(_Strict):
    outcome: Literal["no_answer", "busy", "wrong_number", "refused"]
    note: str | None = Field(default=None, max_length=2000)
    call_ref: str | None = Field(default=None, min_length=1, max_length=200)


class CallbackAnswerCreate(_Strict):
    answer: AnswerCreate
    call_ref: str = Field(min_length=1, max_length=200, description="the telephony call id")
    note: str | None = Field(default=None, max_length=2000)


class SurveyListItem(BaseModel):
    id: uuid.UUID
    complaint_id: uuid.UUID
    department: str
    state: str
    channel: str | None
    offer_at: dt.datetime
    due_at: dt.datetime
    expires_at: dt.datetime
    attempts: int
    answer_source: str | None
    answered_at: dt.datetime | None
    overdue: bool


class SurveyPage(BaseModel):
    items: list[SurveyListItem]
    next_cursor: str | None


class SurveyRead(BaseModel):
    """One survey for staff: no token, no contact details."""

    id: uuid.UUID
    complaint_id: uuid.UUID
    resolution_version: int
    department: str
    urgency: str | None
    resolution: str
    resolved_at: dt.datetime
    policy_version: int
    state: str
    channel: str | None
    offer_at: dt.datetime
    due_at: dt.datetime
    expires_at: dt.datetime
    informed_at: dt.datetime | None
    offered_at: dt.datetime | None
    reminders_sent: int
    attempts: int
    answer: dict[str, Any] | None
    answered_at: dt.datetime | None
    answer_source: str | None
    answered_by: str | None
    call_ref: str | None
    new_complaint_id: uuid.UUID | None
    closed_reason: str | None
    history: list[dict[str, Any]]
    callback_attempts: list[dict[str, Any]]
    messages: list[dict[str, Any]]


class PolicyRead(BaseModel):
    version: int
    policy: SurveyPolicy


class PolicyUpdate(_Strict):
    policy: SurveyPolicy
    based_on_version: int = Field(ge=0)
    comment: str = Field(min_length=1, max_length=500)


class LinkRead(BaseModel):
    """What the customer's link shows (JSON form of the page)."""

    resolution: str
    expires_at: str
    questions: list[dict[str, Any]]

"""Answering: through the public link (token) or recorded by a callback agent.

The link's replies never reveal whether a complaint exists: an unknown or forged token is
404 like a malformed one; an expired or revoked one 410; an answered one 409.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tousu_shared.auth import Principal
from tousu_shared.errors import Conflict, NotFound, ServiceError

from tousu_feedback.domain.answer import Answer, AnswerSource, Outcome, token_digest
from tousu_feedback.domain.survey import Survey, SurveyRefused
from tousu_feedback.service_layer.context import FeedbackContext
from tousu_feedback.service_layer.unit_of_work import FeedbackUnitOfWorkBase


class LinkGone(ServiceError):
    status_code = 410
    code = "link_expired"


@dataclass(frozen=True)
class AnswerByLink:
    token: str
    answer: Answer


@dataclass(frozen=True)
class CallbackAnswer:
    survey_id: uuid.UUID
    answer: Answer
    call_ref: str
    note: str | None = None


@dataclass(frozen=True)
class CallbackAttemptCommand:
    survey_id: uuid.UUID
    outcome: str
    note: str | None
    call_ref: str | None


@dataclass(frozen=True)
class LinkView:
    """What the page behind a link shows: no personal data, no internal identifiers."""

    resolution: str
    expires_at: str


def _unknown() -> NotFound:
    return NotFound("this link is not valid", field="token")


async def _survey_of_link(uow: FeedbackUnitOfWorkBase, ctx: FeedbackContext, token: str) -> Survey:
    if not token or len(token) > 100:
        raise _unknown()
    digest = token_digest(token)
    survey = await uow.surveys.by_token(digest)
    if survey is None:
        raise _unknown()
    state = survey.token_state(digest, ctx.clock())
    if state == "answered":
        raise Conflict("this survey was already answered, thank you", field="token", allowed=[])
    if state in ("expired", "revoked"):
        raise LinkGone("this link is no longer valid", field="token")
    return survey


async def view_link(ctx: FeedbackContext, token: str) -> LinkView:
    """The survey behind a valid link."""
    async with ctx.uow() as uow:
        survey = await _survey_of_link(uow, ctx, token)
        return LinkView(resolution=survey.resolution, expires_at=survey.expires_at.isoformat())


async def answer_by_link(ctx: FeedbackContext, command: AnswerByLink) -> Outcome:
    """The customer's own answer; the token is used up."""
    async with ctx.uow() as uow:
        survey = await _survey_of_link(uow, ctx, command.token)
        outcome = _answer(survey, command.answer, AnswerSource.LINK, ctx, actor="customer")
        await _store(uow, survey)
        await uow.commit()
        return outcome


async def answer_by_callback(
    ctx: FeedbackContext, command: CallbackAnswer, principal: Principal
) -> Survey:
    """The answer a customer gave on a callback, entered by the agent (who and the call)."""
    async with ctx.uow() as uow:
        survey = await _visible_survey(uow, command.survey_id, principal)
        policy = await uow.policies.get(survey.policy_version)
        now = ctx.clock()
        try:
            survey.record_attempt(
                outcome="answered",
                at=now,
                agent=principal.actor,
                note=command.note,
                call_ref=command.call_ref,
                policy=policy,
            )
        except SurveyRefused as exc:
            raise Conflict(str(exc), allowed=list(exc.allowed)) from exc
        _answer(
            survey,
            command.answer,
            AnswerSource.CALLBACK,
            ctx,
            actor=principal.actor,
            call_ref=command.call_ref,
        )
        await _store(uow, survey)
        uow.audit(
            principal,
            "survey.callback_answer",
            "survey",
            str(survey.id),
            complaint_id=survey.complaint_id,
            details={"call_ref": command.call_ref},
        )
        await uow.commit()
        return survey


async def record_callback_attempt(
    ctx: FeedbackContext, command: CallbackAttemptCommand, principal: Principal
) -> Survey:
    """A callback that did not reach the customer (the last allowed one expires the survey)."""
    async with ctx.uow() as uow:
        survey = await _visible_survey(uow, command.survey_id, principal)
        policy = await uow.policies.get(survey.policy_version)
        try:
            survey.record_attempt(
                outcome=command.outcome,
                at=ctx.clock(),
                agent=principal.actor,
                note=command.note,
                call_ref=command.call_ref,
                policy=policy,
            )
        except SurveyRefused as exc:
            raise Conflict(str(exc), allowed=list(exc.allowed)) from exc
        await _store(uow, survey)
        uow.audit(
            principal,
            "survey.callback_attempt",
            "survey",
            str(survey.id),
            complaint_id=survey.complaint_id,
            details={"outcome": command.outcome},
        )
        await uow.commit()
        return survey


async def _visible_survey(
    uow: FeedbackUnitOfWorkBase, survey_id: uuid.UUID, principal: Principal
) -> Survey:
    survey = await uow.surveys.get(survey_id)
    if survey is None or not principal.may_see_department(survey.department):
        raise NotFound(f"no survey {survey_id}", field="survey_id")
    return survey


def _answer(
    survey: Survey,
    answer: Answer,
    source: AnswerSource,
    ctx: FeedbackContext,
    *,
    actor: str,
    call_ref: str | None = None,
) -> Outcome:
    try:
        return survey.answer_with(
            answer, source=source, at=ctx.clock(), actor=actor, call_ref=call_ref
        )
    except SurveyRefused as exc:
        raise Conflict(str(exc), allowed=list(exc.allowed)) from exc


async def _store(uow: FeedbackUnitOfWorkBase, survey: Survey) -> None:
    uow.track(survey)
    await uow.surveys.save(survey, await uow.policies.get(survey.policy_version))

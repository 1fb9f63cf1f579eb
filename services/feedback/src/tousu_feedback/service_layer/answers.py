"""Answering: through the public link (token) or recorded by a callback agent.

The link's replies never reveal whether a complaint exists: an unknown or forged token is
404 like a malformed one; an expired or revoked one 410; an answered one 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tousu_shared.auth import Principal
from tousu_shared.errors import Conflict, NotFound, ServiceError

from tousu_feedback.domain.answer import Answer, AnswerSource, Outcome, token_digest
from tousu_feedback.domain.survey import Survey, SurveyRefused
from tousu_feedback.service_layer.context import FeedbackContext
from tousu_feedback.service_layer.unit_of_work import FeedbackUnitOfWorkBase


class LinkGone(ServiceError, status=410, code="link_expired"):
    """An expired or revoked answer link."""


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
    return await _log_call(
        ctx,
        principal,
        command.survey_id,
        "answered",
        command.note,
        command.call_ref,
        command.answer,
    )


async def record_callback_attempt(
    ctx: FeedbackContext, command: CallbackAttemptCommand, principal: Principal
) -> Survey:
    """A callback that did not reach the customer (the last allowed one expires the survey)."""
    return await _log_call(
        ctx, principal, command.survey_id, command.outcome, command.note, command.call_ref
    )


async def _log_call(
    ctx: FeedbackContext,
    principal: Principal,
    survey_id: uuid.UUID,
    outcome: str,
    note: str | None,
    call_ref: str | None,
    answer: Answer | None = None,
) -> Survey:
    """Record one callback by the caller on their survey, with the answer it brought if any.

    Audited as ``survey.callback_answer`` (with the call) or ``survey.callback_attempt``
    (with the outcome); one commit.
    """
    async with ctx.uow() as uow:
        survey = await _visible_survey(uow, survey_id, principal)
        policy = await uow.policies.get(survey.policy_version)
        with _refused_as_conflict():
            survey.record_attempt(
                outcome=outcome,
                at=ctx.clock(),
                agent=principal.actor,
                note=note,
                call_ref=call_ref,
                policy=policy,
            )
        details: dict[str, str | None]
        if answer is None:
            action, details = "survey.callback_attempt", {"outcome": outcome}
        else:
            _answer(
                survey, answer, AnswerSource.CALLBACK, ctx, actor=principal.actor, call_ref=call_ref
            )
            action, details = "survey.callback_answer", {"call_ref": call_ref}
        await _store(uow, survey)
        uow.audit(
            principal,
            action,
            "survey",
            str(survey.id),
            complaint_id=survey.complaint_id,
            details=details,
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
    with _refused_as_conflict():
        return survey.answer_with(
            answer, source=source, at=ctx.clock(), actor=actor, call_ref=call_ref
        )


@contextmanager
def _refused_as_conflict() -> Iterator[None]:
    """A survey's refusal is the caller's 409, naming what is allowed instead."""
    try:
        yield
    except SurveyRefused as exc:
        raise Conflict(str(exc), allowed=list(exc.allowed)) from exc


async def _store(uow: FeedbackUnitOfWorkBase, survey: Survey) -> None:
    uow.track(survey)
    await uow.surveys.save(survey, await uow.policies.get(survey.policy_version))

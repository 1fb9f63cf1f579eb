"""The survey state machine through its use cases, on the fake unit of work."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from contract_events import case_event
from tousu_feedback.domain.answer import Answer, InvalidAnswer, ReasonCode
from tousu_feedback.domain.survey import SurveyState
from tousu_feedback.service_layer import answers, delivery, handlers
from tousu_shared.auth import ROLE_SCOPES, Principal
from tousu_shared.contracts import feedback as fb
from tousu_shared.contracts.case import CaseClosed, CaseReopened
from tousu_shared.errors import Conflict, NotFound

AGENT = Principal("k1", "li", "agent", "quality", ROLE_SCOPES["agent"])
OTHER_AGENT = Principal("k2", "zhao", "agent", "billing", ROLE_SCOPES["agent"])
HAPPY = Answer(solved=True, satisfaction=5, confirmed=True)


async def resolve(world, complaint_id=None, **routed):  # type: ignore[no-untyped-def]
    complaint_id = complaint_id or uuid.uuid4()
    async with world.uow as uow:
        await handlers.remember_case(uow, world.routed(complaint_id, **routed))
        survey = await handlers.schedule_survey(uow, world.resolved(complaint_id), world.ctx)
        await uow.commit()
    return complaint_id, survey


def token_of(delivery_text: str) -> str:
    return delivery_text.split("https://feedback.test/s/")[1].split()[0]


async def test_resolution_schedules_one_survey_even_when_redelivered(world):
    complaint_id, survey = await resolve(world)
    assert survey is not None and survey.state is SurveyState.SCHEDULED
    async with world.uow as uow:
        again = await handlers.schedule_survey(uow, world.resolved(complaint_id), world.ctx)
        await uow.commit()
    assert again is None
    assert len(world.uow.surveys.rows) == 1
    assert [type(e) for e in world.uow.events()] == [fb.SurveyScheduled]


async def test_offer_sends_the_result_with_a_link_and_informs_the_customer(world):
    complaint_id, survey = await resolve(world)
    assert await delivery.run_due(world.ctx, limit=10) == 1
    (sent,) = world.email.sent
    assert sent.to == "wang@example.com" and "refund paid" in sent.text
    token = token_of(sent.text)
    assert len(token) >= 43  # 256 bits, URL-safe base64
    stored = world.uow.surveys.rows[survey.id]
    assert stored.state is SurveyState.OFFERED
    assert token not in repr(stored) and all(t.digest != token for t in stored.tokens)
    assert token not in world.uow.messages.rows[0].body
    kinds = [type(e) for e in world.uow.events()]
    assert fb.CustomerInformed in kinds and fb.SurveyOffered in kinds


async def test_answer_by_link_confirms_once_then_409(world):
    _, survey = await resolve(world)
    await delivery.run_due(world.ctx, limit=10)
    token = token_of(world.email.sent[0].text)
    outcome = await answers.answer_by_link(world.ctx, answers.AnswerByLink(token, HAPPY))
    assert outcome.value == "confirmed"
    (confirmed,) = world.uow.events(fb.CustomerConfirmed)
    assert confirmed.satisfaction == 5 and confirmed.source == "link"
    with pytest.raises(Conflict):
        await answers.answer_by_link(world.ctx, answers.AnswerByLink(token, HAPPY))


async def test_forged_and_expired_links(world):
    await resolve(world)
    await delivery.run_due(world.ctx, limit=10)
    token = token_of(world.email.sent[0].text)
    with pytest.raises(NotFound):
        await answers.view_link(world.ctx, token[:-2] + "xx")
    world.clock.advance(dt.timedelta(days=8))
    with pytest.raises(answers.LinkGone):
        await answers.view_link(world.ctx, token)


async def test_dissatisfied_answer_carries_reasons_and_comment(world):
    await resolve(world)
    await delivery.run_due(world.ctx, limit=10)
    token = token_of(world.email.sent[0].text)
    answer = Answer(
        solved=False,
        satisfaction=2,
        confirmed=False,
        reason_codes=(ReasonCode.NOT_SOLVED,),
        comment="screen still flickers",
    )
    await answers.answer_by_link(world.ctx, answers.AnswerByLink(token, answer))
    (unhappy,) = world.uow.events(fb.CustomerDissatisfied)
    assert "screen still flickers" in unhappy.comment and unhappy.reason_codes == ["not_solved"]


def test_low_rating_needs_reasons():
    with pytest.raises(InvalidAnswer) as refused:
        Answer(solved=True, satisfaction=3, confirmed=True)
    assert refused.value.field == "reason_codes"


async def test_send_window_holds_routine_messages_until_nine_beijing(world):
    world.clock.at = dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC)  # 22:00 Beijing
    _, survey = await resolve(world)
    assert survey.offer_at == dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.UTC)  # 09:00 next day
    assert await delivery.run_due(world.ctx, limit=10) == 0
    world.clock.at = dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.UTC)
    assert await delivery.run_due(world.ctx, limit=10) == 1
    assert len(world.email.sent) == 1


async def test_immediate_cases_are_told_at_night(world):
    world.clock.at = dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC)
    _, survey = await resolve(world, urgency="immediate")
    assert survey.offer_at == world.clock()


async def test_reminder_then_expiry_without_answer(world):
    _, survey = await resolve(world)
    await delivery.run_due(world.ctx, limit=10)
    world.clock.advance(dt.timedelta(hours=48))
    await delivery.run_due(world.ctx, limit=10)
    assert len(world.email.sent) == 2 and world.uow.events(fb.SurveyReminded)
    world.clock.advance(dt.timedelta(days=5))
    await delivery.run_due(world.ctx, limit=10)
    assert world.uow.surveys.rows[survey.id].state is SurveyState.EXPIRED
    (expired,) = world.uow.events(fb.SurveyExpired)
    assert expired.attempts == 0


async def test_failed_callback_attempts_expire_the_survey(world):
    _, survey = await resolve(world)
    await delivery.run_due(world.ctx, limit=10)
    for outcome in ("no_answer", "busy", "no_answer"):
        command = answers.CallbackAttemptCommand(survey.id, outcome, None, "call-1")
        await answers.record_callback_attempt(world.ctx, command, AGENT)
    assert world.uow.surveys.rows[survey.id].state is SurveyState.EXPIRED
    assert len(world.uow.events(fb.CallbackAttempted)) == 3
    (expired,) = world.uow.events(fb.SurveyExpired)
    assert expired.attempts == 3


async def test_callback_answer_records_who_and_the_call(world):
    _, survey = await resolve(world)
    await delivery.run_due(world.ctx, limit=10)
    command = answers.CallbackAnswer(survey.id, HAPPY, call_ref="CALL-9")
    await answers.answer_by_callback(world.ctx, command, AGENT)
    stored = world.uow.surveys.rows[survey.id]
    assert (stored.answer_source.value, stored.answered_by, stored.call_ref) == (
        "callback",
        "agent:li",
        "CALL-9",
    )
    with pytest.raises(NotFound):
        await answers.answer_by_callback(world.ctx, command, OTHER_AGENT)


async def case_changed(world, cls, complaint_id, actor, **fields):  # type: ignore[no-untyped-def]
    """Routing's later case event (version 9, now) through the handler that cancels an open
    survey, in one unit of work."""
    event = case_event(cls, complaint_id, world.clock(), actor=actor, case_version=9, **fields)
    async with world.uow as uow:
        await handlers.cancel_open_survey(uow, event, world.ctx)
        await uow.commit()


async def test_reopen_cancels_the_open_survey_and_revokes_its_link(world):
    complaint_id, survey = await resolve(world)
    await delivery.run_due(world.ctx, limit=10)
    token = token_of(world.email.sent[0].text)
    await case_changed(world, CaseReopened, complaint_id, "manager:zhao", reason="new evidence")
    assert world.uow.surveys.rows[survey.id].state is SurveyState.CANCELLED
    (cancelled,) = world.uow.events(fb.SurveyCancelled)
    assert cancelled.actor == "manager:zhao"
    with pytest.raises(answers.LinkGone):
        await answers.view_link(world.ctx, token)


async def test_close_after_confirmation_leaves_the_answered_survey_alone(world):
    complaint_id, survey = await resolve(world)
    await delivery.run_due(world.ctx, limit=10)
    token = token_of(world.email.sent[0].text)
    await answers.answer_by_link(world.ctx, answers.AnswerByLink(token, HAPPY))
    await case_changed(
        world, CaseClosed, complaint_id, "system:routing", close_reason="customer_confirmed"
    )
    assert world.uow.surveys.rows[survey.id].state is SurveyState.ANSWERED


async def test_failed_send_is_retried_later(world):
    _, survey = await resolve(world)
    world.email.failing = True
    await delivery.run_due(world.ctx, limit=10)
    assert world.uow.surveys.rows[survey.id].state is SurveyState.SCHEDULED
    assert world.uow.messages.rows[0].status.value == "failed"
    assert not world.uow.events(fb.CustomerInformed)
    world.email.failing = False
    world.clock.advance(dt.timedelta(minutes=5))
    await delivery.run_due(world.ctx, limit=10)
    assert world.uow.surveys.rows[survey.id].state is SurveyState.OFFERED


async def test_new_issue_becomes_one_complaint(world):
    _, survey = await resolve(world)
    await delivery.run_due(world.ctx, limit=10)
    token = token_of(world.email.sent[0].text)
    answer = Answer(solved=True, satisfaction=5, confirmed=True, new_issue="charger is missing")
    await answers.answer_by_link(world.ctx, answers.AnswerByLink(token, answer))
    await delivery.run_due(world.ctx, limit=10)
    stored = world.uow.surveys.rows[survey.id]
    assert stored.new_complaint_id == world.intake.filed[f"survey-{survey.id}-new-issue"]
    assert await delivery.run_due(world.ctx, limit=10) == 0

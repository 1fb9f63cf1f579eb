"""The scheduler's steps: tell the customer the result with the answer link, remind them,
expire the survey, and file the new complaint an answer raised.

Each due survey is handled in a unit of work of its own (claimed ``FOR UPDATE SKIP
LOCKED``). A message goes out before the transaction commits, so a crash between the two
may send it twice, never lose it (at-least-once, like every delivery channel).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from tousu_feedback.domain.answer import AnswerToken
from tousu_feedback.domain.channels import OutboundChannel
from tousu_feedback.domain.messages import render
from tousu_feedback.domain.policy import SurveyPolicy
from tousu_feedback.domain.records import DeliveryStatus, MessageKind, OutboundMessage
from tousu_feedback.domain.survey import Step, Survey, TokenRecord
from tousu_feedback.service_layer.context import FeedbackContext
from tousu_feedback.service_layer.ports import (
    Contact,
    Delivery,
    DeliveryFailed,
    IntakeUnavailable,
)
from tousu_feedback.service_layer.unit_of_work import FeedbackUnitOfWorkBase

log = logging.getLogger(__name__)


async def run_due(ctx: FeedbackContext, *, limit: int) -> int:
    """Handle up to ``limit`` due surveys, one transaction each; returns how many."""
    handled = 0
    while handled < limit:
        async with ctx.uow() as uow:
            now = ctx.clock()
            claimed = await uow.surveys.claim_due(now, 1)
            if not claimed:
                return handled
            survey = claimed[0]
            policy = await uow.policies.get(survey.policy_version)
            await run_step(uow, ctx, survey, policy, now)
            uow.track(survey)
            await uow.surveys.save(survey, policy)
            await uow.commit()
        handled += 1
    return handled


async def run_step(
    uow: FeedbackUnitOfWorkBase,
    ctx: FeedbackContext,
    survey: Survey,
    policy: SurveyPolicy,
    now: dt.datetime,
) -> Step | None:
    """Do what is due for one survey (nothing when nothing is)."""
    step = survey.due_step(now, policy)
    if step is Step.EXPIRE:
        survey.expire(now)
    elif step is Step.OFFER:
        await _offer(uow, ctx, survey, policy, now)
    elif step is Step.REMIND:
        await _remind(uow, ctx, survey, policy, now)
    elif step is Step.FILE_NEW_ISSUE:
        await _file_new_issue(uow, ctx, survey, policy, now)
    return step


def reachable_channel(preferred: OutboundChannel, contact: Contact) -> OutboundChannel:
    """The preferred channel if the customer can be reached on it, else the next best."""
    for channel in (preferred, OutboundChannel.EMAIL, OutboundChannel.SMS):
        if _address(channel, contact):
            return channel
    return OutboundChannel.CALLBACK


def _address(channel: OutboundChannel, contact: Contact) -> str | None:
    if channel is OutboundChannel.EMAIL:
        return contact.email
    if channel in (OutboundChannel.SMS, OutboundChannel.WECHAT):
        # A WeChat gateway finds the customer's account by the phone number.
        return contact.phone
    return None


async def _contact(uow: FeedbackUnitOfWorkBase, ctx: FeedbackContext, survey: Survey) -> Contact:
    case = await uow.cases.get(survey.complaint_id)
    if case is None:
        raise IntakeUnavailable("the case's contact details URL is unknown")
    return await ctx.intake.contact(case.contact_details_url)


async def _offer(
    uow: FeedbackUnitOfWorkBase,
    ctx: FeedbackContext,
    survey: Survey,
    policy: SurveyPolicy,
    now: dt.datetime,
) -> None:
    try:
        contact = await _contact(uow, ctx, survey)
    except IntakeUnavailable as exc:
        survey.postpone_offer(now + policy.retry_failed_send_after, str(exc), now)
        return
    channel = reachable_channel(policy.channel_for(contact.channel), contact)
    if not channel.sends_link:
        survey.offer(channel=channel, at=now, token=None, message_id=None, policy=policy)
        return
    expires_at = now + policy.expiry
    sent = await _send(
        uow, ctx, survey, contact, channel, MessageKind.RESULT_AND_SURVEY, expires_at, now
    )
    if sent is None:
        survey.postpone_offer(now + policy.retry_failed_send_after, "sending failed", now)
        return
    message_id, token = sent
    survey.offer(channel=channel, at=now, token=token, message_id=message_id, policy=policy)


async def _remind(
    uow: FeedbackUnitOfWorkBase,
    ctx: FeedbackContext,
    survey: Survey,
    policy: SurveyPolicy,
    now: dt.datetime,
) -> None:
    assert survey.channel is not None
    try:
        contact = await _contact(uow, ctx, survey)
    except IntakeUnavailable as exc:
        survey.skip_reminder(str(exc), now)
        return
    sent = await _send(
        uow, ctx, survey, contact, survey.channel, MessageKind.REMINDER, survey.expires_at, now
    )
    if sent is None:
        survey.skip_reminder("sending failed", now)
        return
    message_id, token = sent
    survey.remind(at=now, token=token, message_id=message_id)


async def _send(
    uow: FeedbackUnitOfWorkBase,
    ctx: FeedbackContext,
    survey: Survey,
    contact: Contact,
    channel: OutboundChannel,
    kind: MessageKind,
    expires_at: dt.datetime,
    now: dt.datetime,
) -> tuple[uuid.UUID, TokenRecord] | None:
    """Send one message with a fresh answer link; records it either way."""
    token = AnswerToken.new()
    link = ctx.answer_link(token.secret)
    rendered = render(
        kind,
        tracking_code=contact.tracking_code,
        resolution=survey.resolution,
        link=link,
        expires_at=expires_at,
    )
    message_id = uuid.uuid4()
    address = _address(channel, contact)
    assert address is not None
    adapter = ctx.channels[channel]
    provider_ref: str | None = None
    error: str | None = None
    try:
        provider_ref = await adapter.send(
            Delivery(
                message_id=message_id,
                complaint_id=survey.complaint_id,
                to=address,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
            )
        )
    except DeliveryFailed as exc:
        error = str(exc)
        log.warning("a survey message could not be sent: %s", error)
    stored = rendered.redacted(link)
    await uow.messages.add(
        OutboundMessage(
            id=message_id,
            survey_id=survey.id,
            complaint_id=survey.complaint_id,
            channel=channel.value,
            kind=kind,
            subject=stored.subject,
            body=stored.text,
            status=DeliveryStatus.FAILED if error else DeliveryStatus.SENT,
            created_at=now,
            sent_at=None if error else now,
            provider_ref=provider_ref,
            error=error,
        )
    )
    if error:
        return None
    return message_id, TokenRecord(token.digest, issued_at=now, expires_at=expires_at)


async def _file_new_issue(
    uow: FeedbackUnitOfWorkBase,
    ctx: FeedbackContext,
    survey: Survey,
    policy: SurveyPolicy,
    now: dt.datetime,
) -> None:
    """The answer raised something new: a complaint of its own, idempotently."""
    assert survey.answer is not None and survey.answer.new_issue
    try:
        contact = await _contact(uow, ctx, survey)
        complaint_id = await ctx.intake.file_complaint(
            idempotency_key=f"survey-{survey.id}-new-issue",
            contact=contact,
            description=survey.answer.new_issue,
        )
    except IntakeUnavailable as exc:
        survey.new_issue_failed(str(exc), now, retry_at=now + policy.retry_failed_send_after)
        return
    survey.new_issue_filed(complaint_id, now)

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
from dataclasses import dataclass

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


class _NotSent(Exception):
    """The message to the customer could not go out (it is recorded as failed)."""


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
    due = _DueSurvey(uow, ctx, survey, policy, now)
    if step is Step.EXPIRE:
        survey.expire(now)
    elif step is Step.OFFER:
        await due.offer()
    elif step is Step.REMIND:
        await due.remind()
    elif step is Step.FILE_NEW_ISSUE:
        await due.file_new_issue()
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


@dataclass(frozen=True)
class _DueSurvey:
    """One claimed survey, in its unit of work, at the time its step is done."""

    uow: FeedbackUnitOfWorkBase
    ctx: FeedbackContext
    survey: Survey
    policy: SurveyPolicy
    now: dt.datetime

    async def offer(self) -> None:
        """Tell the customer the result, with an answer link where the channel takes one."""
        survey, policy, now = self.survey, self.policy, self.now
        try:
            contact = await self._contact()
            channel = reachable_channel(policy.channel_for(contact.channel), contact)
            if not channel.sends_link:
                survey.offer(channel=channel, at=now, token=None, message_id=None, policy=policy)
                return
            expires_at = now + policy.expiry
            message_id, token = await self._send(
                contact, channel, MessageKind.RESULT_AND_SURVEY, expires_at
            )
        except (IntakeUnavailable, _NotSent) as exc:
            survey.postpone_offer(now + policy.retry_failed_send_after, str(exc), now)
            return
        survey.offer(channel=channel, at=now, token=token, message_id=message_id, policy=policy)

    async def remind(self) -> None:
        """Send the reminder with a fresh link on the channel the offer went by."""
        survey = self.survey
        assert survey.channel is not None
        try:
            contact = await self._contact()
            message_id, token = await self._send(
                contact, survey.channel, MessageKind.REMINDER, survey.expires_at
            )
        except (IntakeUnavailable, _NotSent) as exc:
            survey.skip_reminder(str(exc), self.now)
            return
        survey.remind(at=self.now, token=token, message_id=message_id)

    async def file_new_issue(self) -> None:
        """The answer raised something new: a complaint of its own, idempotently."""
        survey, now = self.survey, self.now
        assert survey.answer is not None and survey.answer.new_issue
        try:
            contact = await self._contact()
            complaint_id = await self.ctx.intake.file_complaint(
                idempotency_key=f"survey-{survey.id}-new-issue",
                contact=contact,
                description=survey.answer.new_issue,
            )
        except IntakeUnavailable as exc:
            retry_at = now + self.policy.retry_failed_send_after
            survey.new_issue_failed(str(exc), now, retry_at=retry_at)
            return
        survey.new_issue_filed(complaint_id, now)

    async def _contact(self) -> Contact:
        case = await self.uow.cases.get(self.survey.complaint_id)
        if case is None:
            raise IntakeUnavailable("the case's contact details URL is unknown")
        return await self.ctx.intake.contact(case.contact_details_url)

    async def _send(
        self,
        contact: Contact,
        channel: OutboundChannel,
        kind: MessageKind,
        expires_at: dt.datetime,
    ) -> tuple[uuid.UUID, TokenRecord]:
        """Send one message with a fresh answer link; records it either way.

        Raises ``_NotSent`` ("sending failed") when the channel refused it.
        """
        token = AnswerToken.new()
        link = self.ctx.answer_link(token.secret)
        rendered = render(
            kind,
            tracking_code=contact.tracking_code,
            resolution=self.survey.resolution,
            link=link,
            expires_at=expires_at,
        )
        message_id = uuid.uuid4()
        address = _address(channel, contact)
        assert address is not None
        adapter = self.ctx.channels[channel]
        provider_ref: str | None = None
        error: str | None = None
        try:
            provider_ref = await adapter.send(
                Delivery(
                    message_id=message_id,
                    complaint_id=self.survey.complaint_id,
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
        await self.uow.messages.add(
            OutboundMessage(
                id=message_id,
                survey_id=self.survey.id,
                complaint_id=self.survey.complaint_id,
                channel=channel.value,
                kind=kind,
                subject=stored.subject,
                body=stored.text,
                status=DeliveryStatus.FAILED if error else DeliveryStatus.SENT,
                created_at=self.now,
                sent_at=None if error else self.now,
                provider_ref=provider_ref,
                error=error,
            )
        )
        if error:
            raise _NotSent("sending failed")
        return message_id, TokenRecord(token.digest, issued_at=self.now, expires_at=expires_at)

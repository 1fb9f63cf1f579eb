"""Handlers of routing's case events: the survey state machine's inputs.

Each runs in the inbox's unit of work (the inbox row, the effect and the events it raises
commit together) and never commits. A redelivered event is stopped by the inbox; a second
``CaseResolved`` for the same resolution finds its survey and does nothing.
"""

from __future__ import annotations

from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts.case import (
    CaseClosed,
    CaseReopened,
    CaseResolved,
    CaseRouted,
    CaseTransferred,
)
from tousu_shared.inbox import Handler, PermanentFailure

from tousu_feedback.domain.records import CaseRef
from tousu_feedback.domain.survey import Survey
from tousu_feedback.service_layer.context import FeedbackContext
from tousu_feedback.service_layer.unit_of_work import FeedbackUnitOfWorkBase


async def remember_case(uow: FeedbackUnitOfWorkBase, event: CaseRouted) -> None:
    """Where the case's contact details live, its department and urgency."""
    await uow.cases.save(
        CaseRef(
            complaint_id=event.complaint_id,
            department=event.department,
            urgency=event.urgency,
            contact_details_url=event.contact_details_url,
        )
    )


async def follow_transfer(uow: FeedbackUnitOfWorkBase, event: CaseTransferred) -> None:
    """The case and its open survey move to the new department."""
    case = await uow.cases.get(event.complaint_id)
    if case is not None:
        case.department = event.department
        await uow.cases.save(case)
    survey = await uow.surveys.open_for(event.complaint_id)
    if survey is not None:
        survey.moved_to(event.department)
        await uow.surveys.save(survey, await uow.policies.get(survey.policy_version))


async def schedule_survey(
    uow: FeedbackUnitOfWorkBase, event: CaseResolved, ctx: FeedbackContext
) -> Survey | None:
    """One survey per resolution (the resolution is the case version that resolved it)."""
    if await uow.surveys.for_resolution(event.complaint_id, event.case_version):
        return None
    case = await uow.cases.get(event.complaint_id)
    if case is None:
        # CaseRouted comes first on the same partition: without it there is nobody to ask.
        raise PermanentFailure(f"case of complaint {event.complaint_id} was never routed")
    previous = await uow.surveys.open_for(event.complaint_id)
    if previous is not None:
        previous.cancel("superseded by a new resolution", ctx.clock())
        uow.track(previous)
        await uow.surveys.save(previous, await uow.policies.get(previous.policy_version))
    version, policy = await uow.policies.current()
    survey = Survey.schedule(
        complaint_id=event.complaint_id,
        resolution_version=event.case_version,
        department=event.department,
        urgency=case.urgency,
        resolution=event.resolution,
        resolved_at=event.occurred_at,
        policy=policy,
        policy_version=version,
        now=ctx.clock(),
    )
    uow.track(survey)
    await uow.surveys.add(survey, policy)
    return survey


async def cancel_open_survey(
    uow: FeedbackUnitOfWorkBase, event: CaseReopened | CaseClosed, ctx: FeedbackContext
) -> None:
    """A reopened case, or one closed otherwise, ends the open survey and revokes its link."""
    if isinstance(event, CaseClosed) and event.close_reason != "manual":
        return  # closed because of this survey's own outcome: it is already over
    survey = await uow.surveys.open_for(event.complaint_id)
    if survey is None:
        return
    reason = "case reopened" if isinstance(event, CaseReopened) else "case closed manually"
    survey.cancel(reason, ctx.clock(), actor=event.actor)
    uow.track(survey)
    await uow.surveys.save(survey, await uow.policies.get(survey.policy_version))


def event_handlers(ctx: FeedbackContext) -> dict[str, Handler]:
    """Event type → handler."""

    async def on_routed(uow: FeedbackUnitOfWorkBase, event: Event, envelope: Envelope) -> None:
        assert isinstance(event, CaseRouted)
        await remember_case(uow, event)

    async def on_transferred(uow: FeedbackUnitOfWorkBase, event: Event, envelope: Envelope) -> None:
        assert isinstance(event, CaseTransferred)
        await follow_transfer(uow, event)

    async def on_resolved(uow: FeedbackUnitOfWorkBase, event: Event, envelope: Envelope) -> None:
        assert isinstance(event, CaseResolved)
        await schedule_survey(uow, event, ctx)

    async def on_reopened_or_closed(
        uow: FeedbackUnitOfWorkBase, event: Event, envelope: Envelope
    ) -> None:
        assert isinstance(event, CaseReopened | CaseClosed)
        await cancel_open_survey(uow, event, ctx)

    return {
        CaseRouted.event_type: on_routed,
        CaseTransferred.event_type: on_transferred,
        CaseResolved.event_type: on_resolved,
        CaseReopened.event_type: on_reopened_or_closed,
        CaseClosed.event_type: on_reopened_or_closed,
    }

"""Handlers of the events the routing service consumes.

Each runs inside the inbox's transaction (the inbox row and the effect commit together), so
none of them commits. An event that can never apply raises ``PermanentFailure`` and goes to
the dead-letter topic at once.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts.complaint import (
    ComplaintClassified,
    ComplaintReceived,
    ComplaintReclassified,
)
from tousu_shared.contracts.feedback import CustomerConfirmed, CustomerDissatisfied, SurveyExpired
from tousu_shared.contracts.sla import SlaBreached, SlaEscalated
from tousu_shared.inbox import Handler, PermanentFailure
from tousu_shared.runtime import Runtime

from tousu_routing.domain import ClosureReason
from tousu_routing.service_layer import cases


def _dead_letter_when_unknown(handler: Handler) -> Handler:
    """An event about a complaint or case routing never saw can never apply."""

    async def wrapped(session: AsyncSession, event: Event, envelope: Envelope) -> None:
        try:
            await handler(session, event, envelope)
        except (cases.ComplaintNotReceived, cases.CaseNotOpened) as exc:
            # One complaint's events share a partition, so what is missing was dead-lettered
            # or never sent; waiting would not bring it.
            raise PermanentFailure(str(exc)) from exc

    return wrapped


def event_handlers(runtime: Runtime) -> dict[str, Handler]:
    """Event type → handler."""

    async def on_complaint_received(
        session: AsyncSession, event: Event, envelope: Envelope,
    ) -> None:
        assert isinstance(event, ComplaintReceived)
        await cases.remember_complaint(event, db_session=session)

    async def on_complaint_classified(
        session: AsyncSession, event: Event, envelope: Envelope,
    ) -> None:
        assert isinstance(event, ComplaintClassified)
        await cases.open_case(runtime, event.complaint_id, event.classification,
                              db_session=session)

    async def on_complaint_reclassified(
        session: AsyncSession, event: Event, envelope: Envelope,
    ) -> None:
        assert isinstance(event, ComplaintReclassified)
        await cases.apply_reclassification(
            runtime, event.complaint_id, event.classification, reason=event.reason,
            corrected_by=event.corrected_by, db_session=session,
        )

    async def on_sla_overdue(session: AsyncSession, event: Event, envelope: Envelope) -> None:
        assert isinstance(event, SlaBreached | SlaEscalated)
        # An SlaEscalated with repeat 0 comes with the SlaBreached that already raised the
        # case one level; later repeats mean it is still overdue.
        if isinstance(event, SlaEscalated) and event.repeat == 0:
            return
        await cases.escalate_for_breach(
            runtime, event.complaint_id, milestone=event.milestone, policy=event.policy,
            due_at=event.due_at, db_session=session,
        )

    async def on_customer_dissatisfied(
        session: AsyncSession, event: Event, envelope: Envelope,
    ) -> None:
        assert isinstance(event, CustomerDissatisfied)
        await cases.reopen_for_dissatisfaction(
            runtime, event.complaint_id, comment=event.comment,
            satisfaction=event.satisfaction, db_session=session,
        )

    async def on_customer_confirmed(
        session: AsyncSession, event: Event, envelope: Envelope,
    ) -> None:
        assert isinstance(event, CustomerConfirmed)
        await cases.close_after_feedback(
            runtime, event.complaint_id, reason=ClosureReason.CUSTOMER_CONFIRMED,
            happened_at=event.confirmed_at, db_session=session,
        )

    async def on_survey_expired(session: AsyncSession, event: Event, envelope: Envelope) -> None:
        assert isinstance(event, SurveyExpired)
        await cases.close_after_feedback(
            runtime, event.complaint_id, reason=ClosureReason.NO_RESPONSE,
            happened_at=None, db_session=session,
        )

    handlers: dict[str, Handler] = {
        ComplaintReceived.event_type: on_complaint_received,
        ComplaintClassified.event_type: on_complaint_classified,
        ComplaintReclassified.event_type: on_complaint_reclassified,
        SlaBreached.event_type: on_sla_overdue,
        SlaEscalated.event_type: on_sla_overdue,
        CustomerDissatisfied.event_type: on_customer_dissatisfied,
        CustomerConfirmed.event_type: on_customer_confirmed,
        SurveyExpired.event_type: on_survey_expired,
    }
    return {event_type: _dead_letter_when_unknown(h) for event_type, h in handlers.items()}

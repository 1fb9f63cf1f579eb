"""Handlers of the events the routing service consumes: ``(uow, event, envelope)``.

Each runs in the unit of work the inbox consumer opened for the event (the inbox row, the
effect and the events it publishes commit together), so none of them commits. An event that
can never apply raises ``PermanentFailure`` and goes to the dead-letter topic at once.

``SlaBreached`` is not consumed: a breach escalates a case only through the ``SlaEscalated``
the SLA monitor sends with it (the one escalation trigger).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts.complaint import (
    ComplaintClassified,
    ComplaintReceived,
    ComplaintReclassified,
)
from tousu_shared.contracts.feedback import CustomerConfirmed, CustomerDissatisfied, SurveyExpired
from tousu_shared.contracts.sla import SlaEscalated
from tousu_shared.inbox import Handler, PermanentFailure

from tousu_routing.domain import ClosureReason
from tousu_routing.service_layer import cases, reactions
from tousu_routing.service_layer.context import RoutingContext
from tousu_routing.service_layer.unit_of_work import RoutingWork

E = TypeVar("E", bound=Event)


def _handler(
    kind: type[E], react: Callable[[RoutingWork, E], Awaitable[object]]
) -> tuple[str, Handler]:
    """``kind``'s entry in the handler table: its type name and a consumer handler that
    narrows the event to ``kind`` and reacts; an event about a complaint or case routing
    never saw is a dead letter."""

    async def handle(uow: RoutingWork, event: Event, envelope: Envelope) -> None:
        # The inbox parsed the event by the type it is registered under.
        assert isinstance(event, kind)
        try:
            await react(uow, event)
        except (cases.ComplaintNotReceived, reactions.CaseNotOpened) as exc:
            # One complaint's events share a partition, so what is missing was dead-lettered
            # or never sent; waiting would not bring it.
            raise PermanentFailure(str(exc)) from exc

    return kind.event_type, handle


def event_handlers(ctx: RoutingContext) -> dict[str, Handler]:
    """Event type → handler."""

    async def received(uow: RoutingWork, event: ComplaintReceived) -> None:
        await cases.remember_complaint(ctx, uow, event)

    async def classified(uow: RoutingWork, event: ComplaintClassified) -> None:
        await cases.open_case(ctx, uow, event.complaint_id, event.classification)

    async def reclassified(uow: RoutingWork, event: ComplaintReclassified) -> None:
        await reactions.apply_reclassification(
            ctx,
            uow,
            event.complaint_id,
            event.classification,
            reason=event.reason,
            corrected_by=event.corrected_by,
        )

    async def escalated(uow: RoutingWork, event: SlaEscalated) -> None:
        await reactions.escalate_for_sla(ctx, uow, event)

    async def dissatisfied(uow: RoutingWork, event: CustomerDissatisfied) -> None:
        await reactions.reopen_for_dissatisfaction(
            ctx, uow, event.complaint_id, comment=event.comment, satisfaction=event.satisfaction
        )

    async def confirmed(uow: RoutingWork, event: CustomerConfirmed) -> None:
        await reactions.close_after_feedback(
            ctx,
            uow,
            event.complaint_id,
            reason=ClosureReason.CUSTOMER_CONFIRMED,
            happened_at=event.confirmed_at,
        )

    async def expired(uow: RoutingWork, event: SurveyExpired) -> None:
        await reactions.close_after_feedback(
            ctx, uow, event.complaint_id, reason=ClosureReason.NO_RESPONSE, happened_at=None
        )

    return dict(
        [
            _handler(ComplaintReceived, received),
            _handler(ComplaintClassified, classified),
            _handler(ComplaintReclassified, reclassified),
            _handler(SlaEscalated, escalated),
            _handler(CustomerDissatisfied, dissatisfied),
            _handler(CustomerConfirmed, confirmed),
            _handler(SurveyExpired, expired),
        ]
    )

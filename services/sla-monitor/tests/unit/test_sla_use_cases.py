"""The SLA use cases and event handlers on the fake unit of work (no Kafka, no Postgres)."""

import datetime as dt
import uuid

import pytest
from contract_events import case_event, case_routed, complaint_received
from tousu_shared.contracts import Event
from tousu_shared.contracts.case import CaseResolved
from tousu_shared.contracts.feedback import CustomerInformed
from tousu_shared.contracts.sla import SlaEscalated, SlaMet, SlaMilestonePaused
from tousu_shared.errors import InvalidInput, NotFound
from tousu_shared.testing import envelope_of
from tousu_sla.domain import SlaPolicy
from tousu_sla.service_layer import catalog, services
from tousu_sla.service_layer.handlers import event_handlers

H = dt.timedelta(hours=1)
TIMERS = {"SlaAtRisk", "SlaBreached", "SlaEscalated"}


async def consume(ctx, *events: Event) -> None:
    """What the inbox consumer does: one unit of work per event, the handler, commit."""
    handlers = event_handlers(ctx)
    for event in events:
        async with ctx.uow() as uow:
            await handlers[event.event_type](uow, event, envelope_of(event))
            await uow.commit()


async def fire(ctx, at: dt.datetime) -> services.FiredBatch:
    """What one scheduler round does."""
    async with ctx.uow() as uow:
        due = await services.claim_due_cases(uow, now=at, limit=100)
        batch = await services.fire_due_cases(uow, ctx, due, now=at)
        await uow.commit()
    return batch


async def test_a_received_complaint_starts_its_milestones_on_the_seeded_defaults(ctx, uow, clock):
    complaint_id = uuid.uuid4()
    await consume(ctx, complaint_received(complaint_id, clock()))
    started = {m.event.milestone for m in uow.published if m.event.event_type.endswith("Started")}
    assert started == {
        "record",
        "first_response",
        "confirm",
        "root_cause",
        "initial_solution",
        "resolve",
    }
    assert uow.published_types(TIMERS) == []
    assert (await uow.sla.current_policy_set()).policy_set.policies[-1].name == "standard"
    assert uow.sla.cases[complaint_id]["escalation_level"] == "agent"


async def test_breached_together_the_case_is_escalated_once_then_per_interval(ctx, uow, clock):
    complaint_id = uuid.uuid4()
    await consume(ctx, complaint_received(complaint_id, clock()))
    await fire(ctx, clock() + 25 * H)
    # First response and confirmation (both 24 h) breach together: one level, not two.
    assert sorted(uow.published_types({"SlaBreached", "SlaEscalated"})) == [
        "SlaBreached",
        "SlaBreached",
        "SlaEscalated",
    ]
    (escalated,) = uow.events(SlaEscalated)
    assert (escalated.from_level, escalated.level, escalated.repeat) == (
        "agent",
        "department_manager",
        0,
    )
    assert sorted(escalated.overdue_milestones) == ["confirm", "first_response"]
    assert await fire(ctx, clock() + 27 * H) == services.FiredBatch()  # nothing due yet
    await fire(ctx, clock() + 28 * H)  # the standard policy's 4 h interval
    assert [(e.level, e.repeat) for e in uow.events(SlaEscalated)] == [
        ("department_manager", 0),
        ("director", 1),
    ]
    keys = uow.firing_keys()
    assert len(keys) == len(set(keys)) == len(uow.published_types(TIMERS))


async def test_a_case_routed_at_department_manager_escalates_to_director(ctx, uow, clock):
    complaint_id = uuid.uuid4()
    await consume(
        ctx,
        complaint_received(complaint_id, clock()),
        case_routed(complaint_id, clock() + 1 * H, handler_level="department_manager"),
    )
    await fire(ctx, clock() + 25 * H)
    (escalated,) = uow.events(SlaEscalated)
    assert (escalated.from_level, escalated.level) == ("department_manager", "director")
    assert escalated.department == "quality"


async def test_the_follow_up_is_met_when_the_customer_is_told_the_result(ctx, uow, clock):
    complaint_id = uuid.uuid4()
    resolved_at = clock() + 2 * H
    await consume(
        ctx,
        complaint_received(complaint_id, clock()),
        case_event(
            CaseResolved,
            complaint_id,
            resolved_at,
            resolution="refund",
            root_cause="transport",
            responsible_person="li",
        ),
        CustomerInformed(
            complaint_id=complaint_id,
            survey_id="s-1",
            channel="email",
            informed_at=resolved_at + 3 * H,
        ),
    )
    (follow_up,) = [met for met in uow.events(SlaMet) if met.milestone == "follow_up"]
    assert follow_up.within_target is True and follow_up.elapsed_seconds == 3 * 3600


async def test_customer_wait_pauses_the_policy_milestones_of_a_known_case(ctx, uow, clock):
    complaint_id = uuid.uuid4()
    with pytest.raises(NotFound):
        async with ctx.uow() as tx:
            await services.record_customer_wait(
                tx, ctx, complaint_id, waiting=True, reason="photos", actor="agent:li"
            )
    await consume(ctx, complaint_received(complaint_id, clock()))
    clock.advance(1 * H)
    async with ctx.uow() as tx:
        await services.record_customer_wait(
            tx, ctx, complaint_id, waiting=True, reason="photos", actor="agent:li"
        )
        await tx.commit()
    paused = uow.events(SlaMilestonePaused)
    assert {event.milestone for event in paused} == {"root_cause", "initial_solution", "resolve"}
    assert {(event.paused_by, event.reason, event.paused_at) for event in paused} == {
        ("agent:li", "photos", clock())
    }


async def test_publishing_a_policy_on_an_unknown_calendar_names_the_field(ctx, uow):
    async with ctx.uow() as tx:
        current = await catalog.policy_set_in_force(tx, ctx)
        policies = [policy.model_dump(mode="json") for policy in current.policy_set.policies]
        first = policies[0]["milestones"][0]
        policies[0]["milestones"][0] = {**first, "clock": "business", "calendar": "atlantis"}
        with pytest.raises(InvalidInput) as refused:
            await catalog.publish_policy_set(
                tx,
                [SlaPolicy.model_validate(policy) for policy in policies],
                based_on_version=current.version,
                comment=None,
                actor="ops",
            )
    assert refused.value.field == "policies.0.milestones.0.calendar"
    assert list(uow.sla.policy_sets) == [1]

"""Cases driven through second-scale policies over real Kafka and Postgres: warnings, breaches,
escalation, met milestones, reclassification, and schedulers that die or run twice."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import text
from tousu_shared.contracts import Envelope
from tousu_shared.contracts.case import CaseResolved, FirstResponseSent
from tousu_shared.contracts.feedback import CustomerInformed
from tousu_shared.testing import wait_for

pytestmark = pytest.mark.integration

# Every timer of the `urgent` first-response milestone (2 s target, warnings at 50% and
# 75%, escalation every second until executive).
URGENT_FIRST_RESPONSE = [
    ("SlaAtRisk", 0.5),
    ("SlaAtRisk", 0.75),
    ("SlaBreached", None),
    ("SlaEscalated", "department_manager"),
    ("SlaEscalated", "director"),
    ("SlaEscalated", "executive"),
]
TIMER_TYPES = {"SlaAtRisk", "SlaBreached", "SlaEscalated"}


def timers(events: list[Envelope], milestone: str = "first_response") -> list[tuple]:
    """The timer firings of one milestone in publication order."""
    return [
        (e.type, e.data.get("fraction", e.data.get("level")))
        for e in events
        if e.type in TIMER_TYPES and e.data["milestone"] == milestone
    ]


def of_type(events: list[Envelope], event_type: str, milestone: str) -> list[Envelope]:
    return [e for e in events if e.type == event_type and e.data["milestone"] == milestone]


def ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


async def test_unanswered_case_warns_breaches_escalates_to_the_top_then_meets_late(
    sla,
    new_complaint,
):
    complaint = new_complaint()
    async with sla.running():
        await sla.send(complaint.received(), complaint.classified("immediate"))
        events = await sla.sla_events(
            complaint.complaint_id,
            lambda es: len(timers(es)) >= len(URGENT_FIRST_RESPONSE),
        )
        assert timers(events) == URGENT_FIRST_RESPONSE
        (started,) = of_type(events, "SlaMilestoneStarted", "first_response")
        assert events.index(started) < events.index(
            of_type(events, "SlaAtRisk", "first_response")[0]
        )
        (breach,) = of_type(events, "SlaBreached", "first_response")
        assert breach.data["policy"] == "urgent" and breach.data["late"] is False
        # Due 2 s after the original start, even though the case began on the relaxed policy.
        assert ts(breach.data["due_at"]) - ts(started.data["started_at"]) == dt.timedelta(seconds=2)

        await sla.send(complaint.case(FirstResponseSent))
        events = await sla.sla_events(
            complaint.complaint_id,
            lambda es: of_type(es, "SlaMet", "first_response"),
        )
    (met,) = of_type(events, "SlaMet", "first_response")
    assert met.data["within_target"] is False
    assert met.data["elapsed_seconds"] >= 2
    assert timers(events) == URGENT_FIRST_RESPONSE  # nothing fired after the milestone was met

    async with sla.http() as http:
        view = (await http.get(f"/v1/cases/{complaint.complaint_id}/sla")).json()
    first_response = next(m for m in view["milestones"] if m["key"] == "first_response")
    assert first_response["state"] == "met"
    assert first_response["escalation_level"] == "executive"
    assert view["escalation_level"] == "executive"


async def test_milestones_met_in_time_publish_met_with_elapsed_time_and_no_warnings(
    sla,
    new_complaint,
):
    complaint = new_complaint()
    contacted = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=40)
    received = contacted + dt.timedelta(seconds=30)
    async with sla.running():
        await sla.send(complaint.received(received, contact_at=contacted))
        await sla.send(complaint.case(FirstResponseSent, received + dt.timedelta(seconds=5)))
        events = await sla.sla_events(
            complaint.complaint_id,
            lambda es: of_type(es, "SlaMet", "first_response"),
        )
    (recorded,) = of_type(events, "SlaMet", "record")
    assert recorded.data["elapsed_seconds"] == 30  # from first contact to the record
    assert recorded.data["within_target"] is True
    (answered,) = of_type(events, "SlaMet", "first_response")
    assert answered.data["elapsed_seconds"] == 5
    assert answered.data["within_target"] is True
    assert not [e for e in events if e.type in TIMER_TYPES]
    started = {e.data["milestone"] for e in events if e.type == "SlaMilestoneStarted"}
    assert started == {"record", "first_response", "resolve"}


async def test_reclassification_retargets_from_the_original_start(sla, new_complaint):
    complaint = new_complaint()
    async with sla.running():
        await sla.send(complaint.received())
        events = await sla.sla_events(
            complaint.complaint_id,
            lambda es: of_type(es, "SlaMilestoneStarted", "resolve"),
        )
        (started,) = of_type(events, "SlaMilestoneStarted", "first_response")
        assert started.data["policy"] == "relaxed"
        await asyncio.sleep(0.5)  # the raise in priority comes a little later
        await sla.send(complaint.reclassified("immediate"))
        events = await sla.sla_events(
            complaint.complaint_id,
            lambda es: of_type(es, "SlaBreached", "first_response"),
        )
    (retargeted,) = of_type(events, "SlaMilestoneRetargeted", "first_response")
    original_start = ts(started.data["started_at"])
    assert ts(retargeted.data["due_at"]) == original_start + dt.timedelta(seconds=2)
    assert ts(retargeted.data["previous_due_at"]) == original_start + dt.timedelta(seconds=120)
    (breach,) = of_type(events, "SlaBreached", "first_response")
    assert ts(breach.data["scheduled_for"]) == original_start + dt.timedelta(seconds=2)
    assert breach.data["policy"] == "urgent" and breach.data["urgency"] == "immediate"


async def test_killed_scheduler_catches_up_late_and_misses_or_repeats_nothing(
    sla,
    new_complaint,
):
    sla.ctx.late_after = dt.timedelta(seconds=1)
    complaint = new_complaint()

    async def fired() -> int:
        return await sla.scalar(
            "SELECT count(*) FROM sla_monitor.sla_event_log WHERE complaint_id = :id "
            "AND event_type IN ('SlaAtRisk', 'SlaBreached', 'SlaEscalated')",
            id=complaint.complaint_id,
        )

    async with sla.running(scheduler=False) as stop:
        scheduler = asyncio.create_task(sla.scheduler().run(stop))
        await sla.send(complaint.received(), complaint.classified("immediate"))
        await wait_for(fired, interval=0.02)
        scheduler.cancel()  # killed, possibly in the middle of a transaction
        with contextlib.suppress(asyncio.CancelledError):
            await scheduler
        fired_before = await fired()
        assert fired_before < len(URGENT_FIRST_RESPONSE)
        # Down for longer than every remaining timer plus the lateness threshold.
        await asyncio.sleep(5)
        assert await fired() == fired_before
        restarted = asyncio.create_task(sla.scheduler().run(stop))
        events = await sla.sla_events(
            complaint.complaint_id,
            lambda es: len(timers(es)) >= len(URGENT_FIRST_RESPONSE),
        )
        await asyncio.sleep(1)  # room for a duplicate to show up, if there were one
        seen = len(events)
        events = await sla.sla_events(complaint.complaint_id, lambda es: len(es) >= seen)
        stop.set()
        await restarted
    assert timers(events) == URGENT_FIRST_RESPONSE
    fired_timers = [e for e in events if e.type in TIMER_TYPES]
    assert all(e.data["late"] is False for e in fired_timers[:fired_before])
    assert all(e.data["late"] is True for e in fired_timers[fired_before:])


async def test_two_schedulers_never_fire_a_timer_twice(sla, new_complaint):
    complaints = [new_complaint() for _ in range(12)]
    async with sla.running(scheduler=False) as stop:
        workers = [asyncio.create_task(sla.scheduler().run(stop)) for _ in range(2)]
        for complaint in complaints:
            await sla.send(complaint.received(), complaint.classified("immediate"))

        async def every_case_at_the_top() -> bool:
            done = await sla.scalar(
                "SELECT count(*) FROM sla_monitor.sla_event_log "
                "WHERE event_type = 'SlaEscalated' "
                "AND envelope->'data'->>'level' = 'executive'"
            )
            return done >= len(complaints)

        await wait_for(every_case_at_the_top, timeout=60)
        await asyncio.sleep(1)
        stop.set()
        await asyncio.gather(*workers)
    rows = await sla.rows(
        "SELECT complaint_id, event_type, milestone, envelope->'data' AS data "
        "FROM sla_monitor.sla_event_log WHERE milestone = 'first_response' "
        "AND event_type IN ('SlaAtRisk', 'SlaBreached', 'SlaEscalated')"
    )
    fired = Counter(
        (row.complaint_id, row.event_type, row.data.get("fraction", row.data.get("level")))
        for row in rows
    )
    assert len(fired) == len(complaints) * len(URGENT_FIRST_RESPONSE)
    assert set(fired.values()) == {1}
    events = await sla.sla_events(
        complaints[-1].complaint_id, lambda es: len(timers(es)) >= len(URGENT_FIRST_RESPONSE)
    )
    assert timers(events) == URGENT_FIRST_RESPONSE


async def test_follow_up_starts_at_resolution_and_is_met_when_the_customer_is_told(
    sla,
    new_complaint,
):
    complaint = new_complaint()
    async with sla.running():
        await sla.send(
            complaint.received(),
            complaint.case(
                CaseResolved, resolution="refund", root_cause="transport", responsible_person="li"
            ),
        )
        await sla.sla_events(
            complaint.complaint_id, lambda es: of_type(es, "SlaMilestoneStarted", "follow_up")
        )
        await sla.send(
            CustomerInformed(
                complaint_id=complaint.complaint_id,
                survey_id="s-1",
                channel="email",
                informed_at=dt.datetime.now(dt.UTC),
            )
        )
        events = await sla.sla_events(
            complaint.complaint_id, lambda es: of_type(es, "SlaMet", "follow_up")
        )
    (met,) = of_type(events, "SlaMet", "follow_up")
    assert met.data["within_target"] is True
    assert of_type(events, "SlaMet", "resolve")


async def test_a_broken_case_is_set_aside_and_does_not_hold_up_the_others(sla, new_complaint):
    good, broken = new_complaint(), new_complaint()
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=300)
    await sla.apply(good.received(long_ago), broken.received(long_ago))
    async with sla.runtime.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE sla_monitor.sla_case SET state = jsonb_set(state, '{attributes}', '\"?\"') "
                "WHERE case_id = :id"
            ),
            {"id": broken.complaint_id},
        )
    assert await sla.scheduler().run_once() == 2
    errors = dict(await sla.rows("SELECT case_id, last_error FROM sla_monitor.sla_case"))
    breached = await sla.scalars(
        "SELECT DISTINCT complaint_id FROM sla_monitor.sla_event_log "
        "WHERE event_type = 'SlaBreached'"
    )
    retry_at = await sla.scalar(
        "SELECT min(next_fire_at) FROM sla_monitor.sla_milestone WHERE case_id = :id",
        id=broken.complaint_id,
    )
    assert breached == [good.complaint_id]
    assert errors[good.complaint_id] is None
    assert "ValidationError" in errors[broken.complaint_id]
    assert retry_at > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
    assert await sla.scheduler().run_once() == 0  # set aside, not retried in a hot loop

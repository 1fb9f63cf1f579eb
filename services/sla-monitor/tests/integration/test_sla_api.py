"""The ops API: case deadlines, pauses, lists, policies, calendars and the live stream."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import orjson
import pytest
from sqlalchemy.exc import IntegrityError
from tousu_shared.contracts.case import FirstResponseSent
from tousu_shared.contracts.sla import SlaBreached
from tousu_shared.testing import declare_departments

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)


def with_plan_milestone(policies, *, working_days: int, calendar: str) -> list[dict]:
    """The test policies as JSON, the catch-all with a business-day 'plan' milestone added."""
    as_json = [policy.model_dump(mode="json") for policy in policies]
    as_json[-1]["milestones"].append(
        {
            "key": "plan",
            "name": "Initial solution",
            "start_event": "ComplaintReceived",
            "stop_events": ["SolutionProposed"],
            "target_working_days": working_days,
            "clock": "business",
            "calendar": calendar,
        }
    )
    return as_json


def sse_events(body: str) -> list[dict[str, str]]:
    """Parse a text/event-stream body into its events (comments such as pings dropped)."""
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line and not line.startswith(":") and ":" in line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        if "data" in fields:
            events.append(fields)
    return events


async def test_case_sla_shows_every_milestone_at_once(sla, new_complaint):
    complaint = new_complaint()
    await sla.apply(complaint.received(ago(10), contact_at=ago(20)), complaint.routed("quality"))
    async with sla.http() as http:
        response = await http.get(f"/v1/cases/{complaint.complaint_id}/sla")
        missing = await http.get(f"/v1/cases/{uuid.uuid4()}/sla")
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["policy"] == "relaxed"
    assert view["attributes"]["department"] == "quality"
    milestones = {m["key"]: m for m in view["milestones"]}
    assert list(milestones) == ["record", "first_response", "resolve"]
    assert milestones["record"]["state"] == "met" and milestones["record"]["within_target"]
    for key in ("first_response", "resolve"):
        milestone = milestones[key]
        assert milestone["state"] == "running"
        assert milestone["due_at"] and milestone["started_at"] and milestone["next_fire_at"]
        assert milestone["paused_seconds"] == 0 and milestone["pauses"] == []
        assert milestone["escalation_level"] == "agent"
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_customer_wait_pauses_the_clock_and_records_who_and_why(sla, new_complaint):
    complaint = new_complaint()
    await sla.apply(complaint.received(ago(60)))
    async with sla.http() as http:
        before = (await http.get(f"/v1/cases/{complaint.complaint_id}/sla")).json()
        paused = await http.post(
            f"/v1/cases/{complaint.complaint_id}/sla/customer-wait",
            json={"reason": "waiting for photos of the screen"},
        )
        assert paused.status_code == 200, paused.text
        await asyncio.sleep(1.2)
        resumed = await http.delete(f"/v1/cases/{complaint.complaint_id}/sla/customer-wait")
        audit = (await http.get("/v1/admin/audit")).json()
    due = {m["key"]: m["due_at"] for m in before["milestones"]}
    paused_resolve = next(m for m in paused.json()["milestones"] if m["key"] == "resolve")
    assert paused_resolve["state"] == "paused" and paused_resolve["due_at"] is None
    (pause,) = paused_resolve["pauses"]
    assert pause["paused_by"] == "admin:bootstrap-admin"
    assert pause["reason"] == "waiting for photos of the screen"
    assert pause["ended_at"] is None
    # The first response does not pause for the customer: its policy says so.
    first_response = next(m for m in paused.json()["milestones"] if m["key"] == "first_response")
    assert (
        first_response["state"] == "running" and first_response["due_at"] == due["first_response"]
    )
    resolve = next(m for m in resumed.json()["milestones"] if m["key"] == "resolve")
    assert resolve["state"] == "running" and resolve["pauses"][0]["ended_at"]
    moved = dt.datetime.fromisoformat(resolve["due_at"]) - dt.datetime.fromisoformat(due["resolve"])
    assert moved.total_seconds() == pytest.approx(resolve["paused_seconds"], abs=1e-6)
    assert moved >= dt.timedelta(seconds=1)
    actions = [entry["action"] for entry in audit]
    assert actions == ["sla.customer_wait.start", "sla.customer_wait.end"]


async def test_breaches_and_at_risk_lists_filter_and_page(sla, new_complaint):
    breached = []
    for index in range(5):
        complaint = new_complaint()
        breached.append(complaint.complaint_id)
        await sla.apply(complaint.received(ago(300 + index)), complaint.routed("quality"))
    other = new_complaint()
    await sla.apply(other.received(ago(300)), other.routed("billing"))
    risky = new_complaint()
    await sla.apply(risky.received(ago(100)), risky.routed("quality"))  # 100 of 120 s
    await sla.scheduler().run_once()

    async with sla.http() as http:
        seen, cursor = [], None
        while True:
            params = {"department": "quality", "milestone": "first_response", "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/v1/breaches", params=params)).json()
            seen += [item["complaint_id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        at_risk = (await http.get("/v1/at-risk", params={"department": "quality"})).json()
        billing = (await http.get("/v1/breaches", params={"department": "billing"})).json()
        bad_cursor = await http.get("/v1/breaches", params={"cursor": "nonsense"})
    # Oldest due first: the case received longest ago breached first.
    assert seen == [str(case_id) for case_id in reversed(breached)]
    assert [item["complaint_id"] for item in at_risk["items"]] == [str(risky.complaint_id)]
    assert at_risk["items"][0]["state"] == "at_risk"
    assert [item["complaint_id"] for item in billing["items"]] == [str(other.complaint_id)]
    assert billing["items"][0]["escalation_level"] == "department_manager"
    assert bad_cursor.status_code == 422 and bad_cursor.json()["field"] == "cursor"


async def test_policies_are_validated_versioned_and_apply_to_the_next_event(sla, new_complaint):
    complaint = new_complaint()
    received_at = ago(30)
    await sla.apply(complaint.received(received_at))
    policies = [policy.model_dump(mode="json") for policy in sla.policies()]
    # An operator adds a milestone, without code: root cause within 2 days.
    policies[-1]["milestones"].append(
        {
            "key": "root_cause",
            "name": "Root cause analysed",
            "start_event": "ComplaintReceived",
            "stop_events": ["RootCauseRecorded", "CaseResolved"],
            "target": "P2D",
        }
    )
    async with sla.http() as http:
        current = (await http.get("/v1/sla-policies")).json()
        no_default = await http.put("/v1/sla-policies", json={"policies": policies[:1]})
        unknown_calendar = await http.put(
            "/v1/sla-policies",
            json={
                "policies": [
                    *policies[:-1],
                    {
                        **policies[-1],
                        "milestones": [{**policies[-1]["milestones"][2], "calendar": "atlantis"}],
                    },
                ]
            },
        )
        stale = await http.put(
            "/v1/sla-policies",
            json={"policies": policies, "based_on_version": current["version"] - 1},
        )
        published = await http.put(
            "/v1/sla-policies",
            json={
                "policies": policies,
                "based_on_version": current["version"],
                "comment": "root cause within 2 days",
            },
        )
        versions = (await http.get("/v1/sla-policies/versions")).json()
        await sla.apply(complaint.case(FirstResponseSent))
        view = (await http.get(f"/v1/cases/{complaint.complaint_id}/sla")).json()
        analyst = (
            await http.post("/v1/admin/credentials", json={"name": "bi", "role": "analyst"})
        ).json()["api_key"]
    assert no_default.status_code == 422, no_default.text
    assert "catch-all" in no_default.json()["message"]
    assert unknown_calendar.status_code == 422
    assert unknown_calendar.json()["field"].endswith("calendar")
    assert stale.status_code == 409
    assert published.status_code == 200, published.text
    assert published.json()["version"] == current["version"] + 1
    assert [v["version"] for v in versions] == [current["version"] + 1, current["version"], 1]
    root_cause = next(m for m in view["milestones"] if m["key"] == "root_cause")
    # The added milestone counts from the complaint's receipt, not from the policy change.
    assert dt.datetime.fromisoformat(root_cause["started_at"]) == received_at
    assert view["policy_set_version"] == current["version"] + 1
    async with sla.http(analyst) as http:
        denied = await http.put("/v1/sla-policies", json={"policies": policies})
        allowed = await http.get("/v1/sla-policies")
    assert denied.status_code == 403 and allowed.status_code == 200


async def test_a_policy_set_that_leaves_cases_without_milestones_is_refused(sla):
    policies = [policy.model_dump(mode="json") for policy in sla.policies()]
    async with sla.http() as http:
        before = (await http.get("/v1/sla-policies")).json()
        empty = await http.put(
            "/v1/sla-policies", json={"policies": [{"name": "", "milestones": []}]}
        )
        hollow_first = await http.put(
            "/v1/sla-policies",
            json={"policies": [{**policies[0], "milestones": []}, *policies[1:]]},
        )
        after = (await http.get("/v1/sla-policies")).json()
    assert empty.status_code == 422, empty.text
    fields = {error["field"] for error in empty.json()["errors"]}
    assert fields == {"body.policies.0.name", "body.policies.0.milestones"}
    assert hollow_first.status_code == 422, hollow_first.text
    (error,) = hollow_first.json()["errors"]
    assert error["field"] == "body.policies.0.milestones"
    assert "'urgent' has no milestones" in error["message"]
    assert after["version"] == before["version"]  # nothing was published


async def test_calendar_override_moves_a_due_date(sla, new_complaint):
    policies = with_plan_milestone(sla.policies(), working_days=1, calendar="weekdays")
    monday_10 = dt.datetime(2031, 3, 3, 10, tzinfo=SHANGHAI)
    complaint = new_complaint()
    async with sla.http() as http:
        created = await http.put(
            "/v1/calendars/weekdays",
            json={
                "timezone": "Asia/Shanghai",
                "working_periods": [{"start": "09:00", "end": "18:00"}],
            },
        )
        assert created.status_code == 200, created.text
        assert (await http.put("/v1/sla-policies", json={"policies": policies})).status_code == 200
        await sla.apply(complaint.received(monday_10))

        async def plan_due() -> dt.datetime:
            view = (await http.get(f"/v1/cases/{complaint.complaint_id}/sla")).json()
            plan = next(m for m in view["milestones"] if m["key"] == "plan")
            return dt.datetime.fromisoformat(plan["due_at"])

        assert await plan_due() == dt.datetime(2031, 3, 4, 10, tzinfo=SHANGHAI)
        day_off = await http.put(
            "/v1/calendars/weekdays/dates/2031-03-04", json={"working": False, "reason": "typhoon"}
        )
        assert day_off.status_code == 200, day_off.text
        assert day_off.json()["calendar"]["overrides"] == {"2031-03-04": False}
        assert await plan_due() == dt.datetime(2031, 3, 5, 10, tzinfo=SHANGHAI)
        status = (await http.get("/v1/calendars/weekdays/dates/2031-03-04")).json()
        assert status["is_working"] is False and status["reason"] == "override_off"
        listed = {c["name"]: c for c in (await http.get("/v1/calendars")).json()}
        bad = await http.put("/v1/calendars/weekdays", json={"timezone": "Mars/Olympus"})
        audit = [e["action"] for e in (await http.get("/v1/admin/audit")).json()]
    assert {"cn-statutory", "24x7", "weekdays"} <= set(listed)
    assert listed["weekdays"]["version"] == 2 and listed["weekdays"]["overrides"] == 1
    assert bad.status_code == 422
    assert "sla.calendar.override_date" in audit

    # The scheduler recomputes the stored deadline and announces the move.
    await sla.scheduler().run_once()
    (row,) = await sla.rows(
        "SELECT due_at FROM sla_monitor.sla_milestone "
        "WHERE case_id = :id AND milestone_key = 'plan'",
        id=complaint.complaint_id,
    )
    moved = await sla.scalars(
        "SELECT envelope->'data' FROM sla_monitor.sla_event_log "
        "WHERE complaint_id = :id AND event_type = 'SlaMilestoneRetargeted'",
        id=complaint.complaint_id,
    )
    assert row.due_at == dt.datetime(2031, 3, 5, 10, tzinfo=SHANGHAI)
    assert [m["milestone"] for m in moved] == ["plan"]


async def test_statutory_year_without_data_raises_an_alert_until_filled(sla, new_complaint):
    policies = with_plan_milestone(sla.policies(), working_days=3, calendar="cn-statutory")
    complaint = new_complaint()
    async with sla.http() as http:
        assert (await http.put("/v1/sla-policies", json={"policies": policies})).status_code == 200
        await sla.apply(complaint.received(dt.datetime(2031, 3, 3, 10, tzinfo=SHANGHAI)))
        alerts = await sla.scalars(
            "SELECT envelope->'data' FROM sla_monitor.sla_event_log "
            "WHERE complaint_id = :id AND event_type = 'CalendarDataMissing'",
            id=complaint.complaint_id,
        )
        filled = await http.put(
            "/v1/calendars/cn-statutory/years/2031",
            json={"holidays": ["2031-03-04"], "makeup_workdays": []},
        )
        status = (await http.get("/v1/calendars/cn-statutory/dates/2031-03-05")).json()
        view = (await http.get(f"/v1/cases/{complaint.complaint_id}/sla")).json()
    (alert,) = alerts
    assert alert["calendar"] == "cn-statutory" and "2031-03-03" in alert["missing_dates"]
    assert filled.status_code == 200 and 2031 in filled.json()["calendar"]["data_years"]
    assert status["data_missing"] is False and status["is_working"] is True
    plan = next(m for m in view["milestones"] if m["key"] == "plan")
    # Mon 10:00 + 3 working days, with Tuesday now a holiday: Friday 10:00.
    assert dt.datetime.fromisoformat(plan["due_at"]) == dt.datetime(2031, 3, 7, 10, tzinfo=SHANGHAI)


async def test_live_stream_yields_events_and_resumes_after_last_event_id(sla, new_complaint):
    async with sla.http() as http:
        # A dashboard following the stream sees what is published after it joined.
        follower = asyncio.create_task(
            http.get("/v1/sla-events/stream", params={"max_events": 1, "event_type": "SlaMet"})
        )
        published = []
        while not follower.done() and len(published) < 40:
            complaint = new_complaint()
            published.append(str(complaint.complaint_id))
            await sla.apply(complaint.received(ago(5), contact_at=ago(6)))
            await asyncio.wait([follower], timeout=0.5)
        followed = await follower
        first_two = await http.get(
            "/v1/sla-events/stream", params={"from_start": "true", "max_events": 2}
        )
        first, second = sse_events(first_two.text)
        resumed = await http.get(
            "/v1/sla-events/stream",
            params={"max_events": 1},
            headers={"Last-Event-ID": first["id"]},
        )
        filtered = await http.get(
            "/v1/sla-events/stream",
            params={"from_start": "true", "max_events": 1, "milestone": "resolve"},
        )
        broken = await http.get("/v1/sla-events/stream", headers={"Last-Event-ID": "x"})
    assert followed.status_code == 200
    assert followed.headers["content-type"].startswith("text/event-stream")
    (met,) = sse_events(followed.text)
    assert met["event"] == "SlaMet"
    envelope = orjson.loads(met["data"])
    assert envelope["subject"] in published
    assert envelope["data"]["milestone"] == "record"
    assert [e["id"] for e in sse_events(resumed.text)] == [second["id"]]
    (resolve,) = sse_events(filtered.text)
    assert orjson.loads(resolve["data"])["data"]["milestone"] == "resolve"
    assert broken.status_code == 422


async def test_stream_and_lists_need_a_credential(sla):
    async with sla.http(key="tsk_nope_nope") as http:
        assert (await http.get("/v1/breaches")).status_code == 401
        assert (await http.get("/v1/sla-events/stream")).status_code == 401


async def test_event_log_rejects_a_second_firing_of_one_threshold(sla, new_complaint):
    complaint = new_complaint()
    await sla.apply(complaint.received(ago(300)))
    await sla.scheduler().run_once()
    keys = await sla.scalars(
        "SELECT firing_key FROM sla_monitor.sla_event_log WHERE firing_key IS NOT NULL"
    )
    assert keys and len(keys) == len(set(keys))
    assert await sla.scheduler().run_once() == 0  # nothing left due: nothing fires again


async def test_a_repeated_firing_key_rolls_the_whole_firing_back(sla, new_complaint):
    complaint = new_complaint()
    await sla.apply(complaint.received(ago(300)))
    await sla.scheduler().run_once()

    async def counts() -> tuple[int, int, str | None]:
        return (
            await sla.scalar("SELECT count(*) FROM sla_monitor.outbox"),
            await sla.scalar("SELECT count(*) FROM sla_monitor.sla_event_log"),
            await sla.scalar(
                "SELECT last_error FROM sla_monitor.sla_case WHERE case_id = :id",
                id=complaint.complaint_id,
            ),
        )

    before = await counts()
    (row,) = await sla.rows(
        "SELECT firing_key, envelope FROM sla_monitor.sla_event_log "
        "WHERE event_type = 'SlaBreached' LIMIT 1"
    )
    breach = SlaBreached.model_validate(
        {**row.envelope["data"], "complaint_id": complaint.complaint_id}
    )
    with pytest.raises(IntegrityError):
        async with sla.ctx.uow() as uow:
            # A state change and a second publication of a threshold that already fired.
            await uow.sla.record_failure(
                complaint.complaint_id, "must roll back", retry_at=ago(0), now=ago(0)
            )
            uow.publish(breach, firing_key=row.firing_key)
            await uow.commit()
    assert await counts() == before


async def test_agents_pause_only_their_own_departments_clocks(sla, new_complaint):
    complaint = new_complaint()
    await sla.apply(complaint.received(ago(60)), complaint.routed(department="quality"))
    url = f"/v1/cases/{complaint.complaint_id}/sla/customer-wait"
    await declare_departments(sla.service.runtime, "quality", "logistics")
    async with sla.http() as admin:
        keys = {}
        for name, role, department in [
            ("qa", "agent", "quality"),
            ("lg", "agent", "logistics"),
            ("bi", "analyst", None),
        ]:
            issued = await admin.post(
                "/v1/admin/credentials", json={"name": name, "role": role, "department": department}
            )
            keys[name] = issued.json()["api_key"]
    async with sla.http(keys["lg"]) as other_department:
        assert (await other_department.post(url, json={"reason": "x"})).status_code == 404
    async with sla.http(keys["bi"]) as analyst:
        assert (await analyst.post(url, json={"reason": "x"})).status_code == 403
    async with sla.http(keys["qa"]) as agent:
        paused = await agent.post(url, json={"reason": "waiting for the customer's photos"})
        assert paused.status_code == 200, paused.text
        resolve = next(m for m in paused.json()["milestones"] if m["key"] == "resolve")
        assert resolve["pauses"][0]["paused_by"] == "agent:qa"
        # Policies stay out of an agent's reach.
        assert (await agent.put("/v1/sla-policies", json={})).status_code == 403

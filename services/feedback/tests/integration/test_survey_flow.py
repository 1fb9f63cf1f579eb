"""The survey from resolution to outcome, with intake, routing and a real SMTP server."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import text
from tousu_shared.testing import wait_for

pytestmark = pytest.mark.integration


async def test_resolution_emails_the_result_and_confirmation_closes_the_case(scheduled):
    system = scheduled
    complaint, case = await system.resolved_case()
    survey = await system.survey_when(complaint["id"], "offered")
    assert survey["channel"] == "email" and survey["informed_at"]

    mail = await system.mail_to("wang@example.com")
    body = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert complaint["tracking_code"] in body and "refund and ¥200 compensation paid" in body
    link = system.link_in(body)
    assert link.startswith("https://feedback.test/s/")
    token = system.token_of(link)
    # The token appears nowhere an agent can see it.
    assert token not in str(survey)
    async with system.feedback.runtime.engine.connect() as conn:
        stored = await conn.scalar(
            text("SELECT string_agg(body, ' ') FROM feedback.outbound_message")
        )
        digests = await conn.scalar(
            text("SELECT string_agg(digest, ' ') FROM feedback.survey_token")
        )
    assert token not in stored and token not in digests

    page = await system.http["feedback"].get(f"/s/{token}", headers={"Authorization": ""})
    assert (
        page.status_code == 200
        and "问题是否已经解决" in page.text
        and "Was the problem" in page.text
    )
    shown = await system.http["feedback"].get(f"/v1/public/surveys/{token}")
    assert shown.status_code == 200
    assert {q["id"] for q in shown.json()["questions"]} >= {"solved", "satisfaction", "confirmed"}

    answered = await system.answer(token, satisfaction=5, comment="很满意")
    assert answered.status_code == 200, answered.text
    assert answered.json()["outcome"] == "confirmed"
    (closed,) = await system.case_events(complaint["id"], "CaseClosed")
    assert closed.data["close_reason"] == "customer_confirmed"
    again = await system.answer(token)
    assert again.status_code == 409

    kinds = await system.feedback_events(complaint["id"])
    assert kinds[:4] == ["SurveyScheduled", "CustomerInformed", "SurveyOffered", "SurveyAnswered"]
    assert "CustomerConfirmed" in kinds

    # Intake audited feedback's read of the contact details under its own credential.
    audit = await system.http["intake"].get(
        "/v1/admin/audit", params={"complaint_id": complaint["id"]}
    )
    reads = [e for e in audit.json() if e["action"] == "pii.read"]
    assert reads and all(e["actor"] == "service:feedback-service" for e in reads)


async def test_forged_expired_and_html_answers(scheduled):
    system = scheduled
    complaint, _, token = await system.offered_case()
    forged = await system.http["feedback"].get(f"/v1/public/surveys/{token[:-4]}AAAA")
    assert forged.status_code == 404
    assert "complaint" not in forged.text.lower()
    assert (await system.answer("not-a-token")).status_code == 404

    system.clock.advance(dt.timedelta(days=7, minutes=1))
    expired = await system.http["feedback"].get(f"/v1/public/surveys/{token}")
    assert expired.status_code == 410
    assert (await system.http["feedback"].get(f"/s/{token}")).status_code == 410


async def test_the_phone_friendly_page_takes_a_dissatisfied_answer_and_routing_reopens(scheduled):
    system = scheduled
    complaint, case, token = await system.offered_case()
    form = (
        "solved=no&satisfaction=2&reason_codes=not_solved&reason_codes=too_slow"
        "&comment=%E8%BF%98%E6%98%AF%E8%93%9D%E5%B1%8F&confirmed=no"
    )
    page = await system.http["feedback"].post(
        f"/s/{token}",
        content=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert page.status_code == 200, page.text
    (reopened,) = await system.case_events(complaint["id"], "CaseReopened")
    assert "还是蓝屏" in reopened.data["reason"]
    assert reopened.data["department"] == case["department"]
    survey = await system.survey_when(complaint["id"], "answered")
    assert survey["answer"]["reason_codes"] == ["not_solved", "too_slow"]
    assert survey["answer_source"] == "link"

    # The next resolution gets a survey of its own.
    await system.resolve(case, first_time=False)
    await system.survey_when(complaint["id"], "offered", count=2)
    assert len(await system.surveys(complaint["id"])) == 2


async def test_callback_answer_is_recorded_with_the_agent_and_call(scheduled):
    system = scheduled
    complaint, case = await system.resolved_case(
        channel="phone", name="王先生", phone="13800138000"
    )
    survey = await system.survey_when(complaint["id"], "offered")
    assert survey["channel"] == "sms"
    sms = await system.gateway_message(complaint["id"])
    assert sms["channel"] == "sms" and sms["to"] == "13800138000" and "/s/" in sms["text"]

    agent = await system.credential("agent", case["department"])
    headers = {"Authorization": f"Bearer {agent}"}

    async def listed(due: str) -> list[str]:
        page = await system.http["feedback"].get(
            "/v1/surveys", params={"due": due}, headers=headers
        )
        assert page.status_code == 200, page.text
        return [item["id"] for item in page.json()["items"]]

    # Offered at noon Beijing: due for a callback at noon tomorrow, overdue after.
    assert survey["id"] not in await listed("today")
    system.clock.advance(dt.timedelta(hours=23))
    assert survey["id"] in await listed("today")
    assert survey["id"] not in await listed("overdue")
    system.clock.advance(dt.timedelta(hours=2))
    assert survey["id"] in await listed("overdue")
    other = await system.http["feedback"].get(
        "/v1/surveys", params={"department": "elsewhere"}, headers=headers
    )
    assert other.status_code == 403 and other.json()["field"] == "department"

    attempt = await system.http["feedback"].post(
        f"/v1/surveys/{survey['id']}/callback-attempts",
        json={"outcome": "busy", "note": "line busy"},
        headers=headers,
    )
    assert attempt.status_code == 201, attempt.text
    answered = await system.http["feedback"].post(
        f"/v1/surveys/{survey['id']}/callback-answer",
        json={
            "answer": {"solved": True, "satisfaction": 4, "confirmed": True},
            "call_ref": "CALL-20261201-7",
        },
        headers=headers,
    )
    assert answered.status_code == 201, answered.text
    view = answered.json()
    assert (view["answer_source"], view["call_ref"]) == ("callback", "CALL-20261201-7")
    assert view["answered_by"].startswith("agent:")
    assert [a["outcome"] for a in view["callback_attempts"]] == ["busy", "answered"]
    (closed,) = await system.case_events(complaint["id"], "CaseClosed")
    assert closed.data["close_reason"] == "customer_confirmed"
    # The SMS link is used up with the survey.
    sms_token = system.token_of(system.link_in(sms["text"]))
    assert (await system.answer(sms_token)).status_code == 409


async def test_unanswered_after_the_attempts_expires_and_closes_as_no_response(scheduled):
    system = scheduled
    complaint, _ = await system.resolved_case()
    survey = await system.survey_when(complaint["id"], "offered")
    for outcome in ("no_answer", "busy", "wrong_number"):
        response = await system.http["feedback"].post(
            f"/v1/surveys/{survey['id']}/callback-attempts", json={"outcome": outcome}
        )
        assert response.status_code == 201, response.text
    assert response.json()["state"] == "expired"
    (closed,) = await system.case_events(complaint["id"], "CaseClosed")
    assert closed.data["close_reason"] == "no_response"
    refused = await system.http["feedback"].post(
        f"/v1/surveys/{survey['id']}/callback-attempts", json={"outcome": "busy"}
    )
    assert refused.status_code == 409 and refused.json()["allowed"] == []


async def test_reopen_cancels_the_open_survey_and_revokes_its_link(scheduled):
    system = scheduled
    complaint, case, token = await system.offered_case()
    await system.act(case, "reopen", comment="the manager found a second fault")
    survey = await system.survey_when(complaint["id"], "cancelled")
    assert survey["closed_reason"] == "case reopened"
    assert (await system.http["feedback"].get(f"/v1/public/surveys/{token}")).status_code == 410


async def test_redelivered_resolution_makes_no_second_survey(scheduled):
    system = scheduled
    complaint, _ = await system.resolved_case()
    await system.survey_when(complaint["id"], "offered")
    (resolved,) = await system.case_events(complaint["id"], "CaseResolved")
    producer = system.feedback.runtime.producer()
    await producer.start()
    try:
        # The same envelope again (the inbox), and a copy with a new id (one per resolution).
        copy = resolved.model_copy(update={"id": uuid.uuid4()})
        for envelope in (resolved, copy):
            await producer.send_and_wait(
                system.topic("case.events"), envelope.to_bytes(), key=envelope.subject.encode()
            )
    finally:
        await producer.stop()

    async def inbox_saw_both() -> bool:
        async with system.feedback.runtime.engine.connect() as conn:
            count = await conn.scalar(
                text("SELECT count(*) FROM feedback.inbox WHERE event_type = 'CaseResolved'")
            )
        return count == 2

    await wait_for(inbox_saw_both)
    assert len(await system.surveys(complaint["id"])) == 1
    assert len(system.mails()) == 1


async def test_send_window_holds_a_routine_message_until_nine_beijing(system):
    # No scheduler role running: the test runs its rounds with the clock at 22:00 Beijing.
    beijing = dt.timezone(dt.timedelta(hours=8))
    evening = dt.datetime.combine(dt.datetime.now(beijing).date(), dt.time(22), beijing)
    system.clock.set(evening)
    complaint, case = await system.resolved_case()
    assert case["urgency"] == "routine"
    survey = await system.survey_when(complaint["id"], "scheduled")
    next_morning = (evening + dt.timedelta(hours=11)).astimezone(dt.UTC)
    assert dt.datetime.fromisoformat(survey["offer_at"]) == next_morning

    system.clock.advance(dt.timedelta(hours=10, minutes=59))  # 08:59
    assert await system.run_scheduler_once() == 0
    assert system.mails() == []
    system.clock.advance(dt.timedelta(minutes=1))  # 09:00
    assert await system.run_scheduler_once() == 1
    await system.mail_to("wang@example.com")
    assert (await system.survey_when(complaint["id"], "offered"))["offered_at"]


async def test_a_new_problem_in_the_answer_becomes_one_survey_complaint_at_intake(scheduled):
    system = scheduled
    complaint, _, token = await system.offered_case()
    answered = await system.answer(token, new_issue="另外，随机附带的充电器也不能用。")
    assert answered.status_code == 200, answered.text

    async def filed() -> str | None:
        survey = (await system.surveys(complaint["id"]))[0]
        view = (await system.http["feedback"].get(f"/v1/surveys/{survey['id']}")).json()
        return view["new_complaint_id"]

    new_id = await wait_for(filed, timeout=30)
    created = await system.http["intake"].get(f"/v1/complaints/{new_id}")
    assert created.status_code == 200, created.text
    assert created.json()["channel"] == "survey"
    assert "充电器" in created.json()["description"]
    # Filing again (a scheduler that crashed before its commit) replays intake's answer.
    survey_id = (await system.surveys(complaint["id"]))[0]["id"]
    intake = system.feedback.app.state.feedback.intake
    contact = await intake.contact(
        f"http://127.0.0.1:8001/v1/complaints/{complaint['id']}?include=contact"
    )
    again = await intake.file_complaint(
        idempotency_key=f"survey-{survey_id}-new-issue",
        contact=contact,
        description="另外，随机附带的充电器也不能用。",
    )
    assert str(again) == new_id
    listed = await system.http["intake"].get("/v1/complaints", params={"channel": "survey"})
    assert [c["id"] for c in listed.json()["items"]] == [new_id]


async def test_survey_policy_is_versioned_data(system):
    http = system.http["feedback"]
    current = (await http.get("/v1/survey-policy")).json()
    assert current["version"] == 0
    policy = {**current["policy"], "callback_attempts": 5}
    published = await http.put(
        "/v1/survey-policy",
        json={"policy": policy, "based_on_version": 0, "comment": "five tries"},
    )
    assert published.status_code == 200, published.text
    assert published.json()["version"] == 1
    stale = await http.put(
        "/v1/survey-policy",
        json={"policy": policy, "based_on_version": 0, "comment": "again"},
    )
    assert stale.status_code == 409 and stale.json()["field"] == "based_on_version"
    broken = await http.put(
        "/v1/survey-policy",
        json={"policy": {**policy, "reminders": ["P30D"]}, "based_on_version": 1, "comment": "x"},
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["field"].startswith("body.policy")
    analyst = await system.credential("analyst")
    refused = await http.put(
        "/v1/survey-policy",
        json={"policy": policy, "based_on_version": 1, "comment": "x"},
        headers={"Authorization": f"Bearer {analyst}"},
    )
    assert refused.status_code == 403


async def test_reminder_after_two_days_then_expiry_closes_as_no_response(scheduled):
    system = scheduled
    complaint, _ = await system.resolved_case()
    await system.survey_when(complaint["id"], "offered")
    first = await system.mail_text()

    system.clock.advance(dt.timedelta(hours=48, minutes=1))
    reminded = await system.survey_when(complaint["id"], "reminded")
    assert reminded["reminders_sent"] == 1
    second = await system.mail_text(count=2)
    assert system.link_in(second) != system.link_in(first)
    for body in (first, second):  # both links stay valid until the survey ends
        link = system.token_of(system.link_in(body))
        assert (await system.http["feedback"].get(f"/v1/public/surveys/{link}")).status_code == 200

    system.clock.advance(dt.timedelta(days=5))
    expired = await system.survey_when(complaint["id"], "expired")
    assert [m["kind"] for m in expired["messages"]] == ["result_and_survey", "reminder"]
    (closed,) = await system.case_events(complaint["id"], "CaseClosed")
    assert closed.data["close_reason"] == "no_response"


async def test_closing_by_hand_cancels_the_survey(scheduled):
    system = scheduled
    complaint, case = await system.resolved_case()
    await system.survey_when(complaint["id"], "offered")
    await system.act(case, "close", close_reason="manual", note="customer withdrew")
    survey = await system.survey_when(complaint["id"], "cancelled")
    assert survey["closed_reason"] == "case closed manually"
    assert survey["history"][-1]["kind"] == "cancelled"

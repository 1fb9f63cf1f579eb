"""Departments and members: run-time topics, assignment by load, absence, conflict of interest."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


async def test_a_department_added_at_run_time_gets_its_topic_and_its_cases(kit):
    department = await kit.department("warranty", [("wr-1", "agent")], name="Warranty and repairs")
    assert department["topic"] == "case.routed.warranty"
    await kit.rule("repairs", "warranty", category=["after_sales"])

    case = await kit.open_case(category="after_sales")

    assert (case["department"], case["assignee_id"]) == ("warranty", "wr-1")
    routed = await kit.published("case.routed.warranty", case["complaint_id"])
    assert [e.type for e in routed] == ["CaseRouted"]
    assert routed[0].data["assignee"] == "wr-1"
    assert routed[0].data["contact_details_url"] == (
        f"http://intake/v1/complaints/{case['complaint_id']}/contact"
    )
    assert "customer_ref" not in routed[0].data and "tracking_code" not in routed[0].data


async def test_cases_go_to_the_least_loaded_available_member_or_wait_in_the_queue(kit):
    await kit.department("quality", [("qa-1", "agent"), ("qa-2", "agent"), ("qa-3", "agent")])
    await kit.rule("quality-products", "quality", category=["product_quality"])
    off = await kit.http.patch(
        "/v1/departments/quality/members/qa-3", json={"availability": "off_shift"}
    )
    assert off.status_code == 200, off.text

    cases = await kit.open_cases(3)
    # Whatever order the consumer takes them in: each goes to the least loaded, ties by id.
    assert sorted(c["assignee_id"] for c in cases) == ["qa-1", "qa-1", "qa-2"]
    members = {
        m["id"]: m for m in (await kit.http.get("/v1/departments/quality")).json()["members"]
    }
    assert members["qa-3"]["open_cases"] == 0
    assert members["qa-1"]["open_cases"] + members["qa-2"]["open_cases"] == 3

    for member_id in ("qa-1", "qa-2"):
        response = await kit.http.patch(
            f"/v1/departments/quality/members/{member_id}", json={"availability": "absent"}
        )
        assert response.status_code == 200, response.text
    queued = await kit.open_case()
    assert queued["assignee_id"] is None
    assert "queue" in queued["routing_reason"] and "absent" in queued["routing_reason"]


async def test_an_absent_member_hands_their_cases_to_a_peer_then_to_the_queue(kit):
    await kit.department("quality", [("qa-1", "agent"), ("qa-2", "agent")])
    await kit.rule("quality-products", "quality", category=["product_quality"])
    cases = await kit.open_cases(2)
    by_assignee = {c["assignee_id"]: c for c in cases}
    assert set(by_assignee) == {"qa-1", "qa-2"}

    absent = await kit.http.patch(
        "/v1/departments/quality/members/qa-1", json={"availability": "absent"}
    )
    assert absent.status_code == 200, absent.text
    moved = await kit.case(by_assignee["qa-1"]["id"])
    assert moved["assignee_id"] == "qa-2"
    assert moved["history"][-1]["action"] == "assign"
    assert moved["history"][-1]["details"] == {"from_assignee": "qa-1", "assignee": "qa-2"}
    assert "qa-1 is absent" in moved["history"][-1]["note"]

    off = await kit.http.patch(
        "/v1/departments/quality/members/qa-2", json={"availability": "off_shift"}
    )
    assert off.status_code == 200, off.text
    for case in cases:
        after = await kit.case(case["id"])
        assert after["assignee_id"] is None
        assert "waits in the quality queue" in after["history"][-1]["note"]

    events = await kit.published("case.events", by_assignee["qa-1"]["complaint_id"])
    assert [e.type for e in events] == ["CaseRouted", "CaseAssigned", "CaseAssigned"]
    assert (events[1].data["from_assignee"], events[1].data["assignee"]) == ("qa-1", "qa-2")
    department_topic = await kit.published(
        "case.routed.quality", by_assignee["qa-1"]["complaint_id"]
    )
    assert [e.type for e in department_topic] == ["CaseRouted", "CaseAssigned", "CaseAssigned"]


async def test_a_complaint_about_a_member_goes_to_their_manager_never_to_them(kit):
    await kit.department(
        "quality", [("qa-1", "agent"), ("qa-2", "agent"), ("qa-mgr", "department_manager")]
    )
    await kit.rule("quality-products", "quality", category=["product_quality"])

    case = await kit.open_case(received_overrides={"subject_staff_ref": "qa-1"})

    assert (case["handler_level"], case["assignee_id"]) == ("department_manager", "qa-mgr")
    assert case["excluded_member_ids"] == ["qa-1"]
    assert "complaint is about member qa-1" in case["routing_reason"]
    below = await kit.http.post(
        f"/v1/cases/{case['id']}/actions/assign", json={"assignee_id": "qa-1"}
    )
    assert (below.status_code, below.json()["field"]) == (422, "assignee_id")

    # The manager goes off shift: the case waits rather than fall to the agent it is about.
    off = await kit.http.patch(
        "/v1/departments/quality/members/qa-mgr", json={"availability": "off_shift"}
    )
    assert off.status_code == 200, off.text
    assert (await kit.case(case["id"]))["assignee_id"] is None

    dry_run = await kit.dry_run(
        {"severity": "minor", "category": "product_quality", "subject_staff_ref": "qa-2"}
    )
    assert dry_run.json()["handler_level"] == "department_manager"
    assert dry_run.json()["conflict_of_interest"] == [
        "complaint is about member qa-2: they are excluded and the case is handled at "
        "department_manager level or above"
    ]


async def test_the_member_a_complaint_is_about_is_refused_even_where_they_could_serve(kit):
    # qa-1 is an agent at home, but the ops desk lists them among its managers.
    await kit.department("quality", [("qa-1", "agent")])
    await kit.department("ops", [("ops-mgr", "department_manager")])
    chain = await kit.http.patch(
        "/v1/departments/ops", json={"chain": {"department_manager": ["ops-mgr", "qa-1"]}}
    )
    assert chain.status_code == 200, chain.text
    await kit.rule("to-ops", "ops", category=["service_attitude"])

    case = await kit.open_case(
        category="service_attitude", received_overrides={"subject_staff_ref": "qa-1"}
    )
    assert (case["department"], case["assignee_id"]) == ("ops", "ops-mgr")

    refused = await kit.http.post(
        f"/v1/cases/{case['id']}/actions/assign", json={"assignee_id": "qa-1"}
    )

    assert refused.status_code == 409
    assert refused.json()["error"] == "conflict_of_interest"
    assert (await kit.case(case["id"]))["assignee_id"] == "ops-mgr"


async def test_a_complaint_about_a_unit_is_kept_from_its_agents(kit):
    await kit.department("quality", [("qa-1", "agent"), ("qa-mgr", "department_manager")])
    await kit.rule("quality-products", "quality", category=["product_quality"])

    about_quality = await kit.open_case(received_overrides={"subject_unit": "quality"})
    about_another = await kit.open_case(received_overrides={"subject_unit": "logistics"})

    assert (about_quality["handler_level"], about_quality["assignee_id"]) == (
        "department_manager",
        "qa-mgr",
    )
    assert "complaint is about unit quality" in about_quality["routing_reason"]
    assert (about_another["handler_level"], about_another["assignee_id"]) == ("agent", "qa-1")


async def test_departments_in_use_cannot_be_deleted(kit):
    await kit.department("quality", [("qa-1", "agent")])
    await kit.rule("quality-products", "quality", category=["product_quality"])

    in_use = await kit.http.delete("/v1/departments/quality")
    assert in_use.status_code == 409
    assert in_use.json()["rule_ids"] == ["quality-products"]
    assert (await kit.http.delete("/v1/routing-rules/quality-products")).status_code == 204
    with_members = await kit.http.delete("/v1/departments/quality")
    assert with_members.status_code == 409
    assert with_members.json()["member_ids"] == ["qa-1"]
    assert (await kit.http.delete("/v1/departments/quality/members/qa-1")).status_code == 204
    assert (await kit.http.delete("/v1/departments/quality")).status_code == 204
    assert (await kit.http.get("/v1/departments/quality")).status_code == 404

    duplicate = await kit.http.post("/v1/departments", json={"code": "general", "name": "x"})
    assert duplicate.status_code == 409
    bad_code = await kit.http.post("/v1/departments", json={"code": "Bad Code", "name": "x"})
    assert bad_code.status_code == 422
    unknown_member = await kit.http.post(
        "/v1/departments", json={"code": "ops", "name": "Ops", "chain": {"director": ["nobody"]}}
    )
    assert unknown_member.status_code == 422

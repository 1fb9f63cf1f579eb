"""Department-bound credentials see and act on their own department's cases only."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
async def two_departments(kit):
    await kit.department("quality", [("qa-1", "agent"), ("qa-2", "agent")])
    await kit.department("logistics", [("lg-1", "agent")])
    await kit.rule("quality-products", "quality", category=["product_quality"])
    await kit.rule("deliveries", "logistics", category=["delivery_delay"])


async def test_an_agent_sees_and_acts_on_their_department_only(kit, two_departments):
    agent = await kit.credential("agent", "quality")
    own = await kit.open_case(category="product_quality")
    other = await kit.open_case(category="delivery_delay")
    as_agent = kit.bearer(agent)

    listed = (await kit.http.get("/v1/cases", headers=as_agent)).json()["items"]
    assert [c["id"] for c in listed] == [own["id"]]
    assert (await kit.http.get(f"/v1/cases/{own['id']}", headers=as_agent)).status_code == 200
    hidden = await kit.http.get(f"/v1/cases/{other['id']}", headers=as_agent)
    assert hidden.status_code == 404
    missing = await kit.http.get("/v1/cases/00000000-0000-0000-0000-000000000000", headers=as_agent)
    assert hidden.json()["error"] == missing.json()["error"] == "not_found"
    acting = await kit.http.post(f"/v1/cases/{other['id']}/actions/acknowledge", headers=as_agent)
    assert acting.status_code == 404
    asking = await kit.http.get("/v1/cases", params={"department": "logistics"}, headers=as_agent)
    assert asking.status_code == 403

    acknowledged = await kit.act(own, "acknowledge", key=agent)
    assert acknowledged["history"][-1]["actor"].startswith("agent:")
    # A transfer hands the case over: the agent no longer sees it.
    await kit.act(
        acknowledged, "transfer", {"to_department": "logistics", "reason": "carrier"}, key=agent
    )
    assert (await kit.http.get(f"/v1/cases/{own['id']}", headers=as_agent)).status_code == 404
    assert (await kit.http.get("/v1/cases", headers=as_agent)).json()["items"] == []


async def test_department_roles_are_limited_to_what_they_may_change(kit, two_departments):
    agent = await kit.credential("agent", "quality")
    manager = await kit.credential("manager", "quality")
    case = await kit.open_case(category="product_quality")

    closing = await kit.http.post(
        f"/v1/cases/{case['id']}/actions/close", headers=kit.bearer(agent)
    )
    assert closing.status_code == 403
    new_department = await kit.http.post(
        "/v1/departments", json={"code": "x", "name": "X"}, headers=kit.bearer(manager)
    )
    assert new_department.status_code == 403

    async def mark_absent(member: str, key: str) -> int:
        """A caller marks a member (``department/id``) absent; the status code."""
        department, member_id = member.split("/")
        response = await kit.http.patch(
            f"/v1/departments/{department}/members/{member_id}",
            json={"availability": "absent"},
            headers=kit.bearer(key),
        )
        return response.status_code

    assert await mark_absent("quality/qa-2", manager) == 200  # their own department's member
    assert await mark_absent("logistics/lg-1", manager) == 403
    assert await mark_absent("quality/qa-1", agent) == 403


async def test_case_lists_filter_and_page_with_an_opaque_cursor(kit, two_departments):
    quality = await kit.open_cases(5, category="product_quality")
    await kit.open_cases(2, category="delivery_delay", severity="serious")

    seen, cursor = [], None
    while True:
        params = {"department": "quality", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await kit.http.get("/v1/cases", params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(c["id"] for c in seen) == sorted(c["id"] for c in quality)
    keys = [(c["created_at"], c["id"]) for c in seen]
    assert keys == sorted(keys, reverse=True)

    serious = (
        await kit.http.get("/v1/cases", params={"severity": "serious", "state": "routed"})
    ).json()["items"]
    assert {c["department"] for c in serious} == {"logistics"} and len(serious) == 2
    managers = (await kit.http.get("/v1/cases", params={"level": "department_manager"})).json()
    assert len(managers["items"]) == 2
    mine = (await kit.http.get("/v1/cases", params={"assignee": "qa-1"})).json()["items"]
    assert {c["assignee_id"] for c in mine} == {"qa-1"}
    later = (
        await kit.http.get("/v1/cases", params={"created_from": seen[0]["created_at"]})
    ).json()["items"]
    assert seen[0]["id"] in [c["id"] for c in later]
    tampered = await kit.http.get("/v1/cases", params={"cursor": "not-a-cursor"})
    assert (tampered.status_code, tampered.json()["field"]) == (422, "cursor")

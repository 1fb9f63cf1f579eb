"""Routing rules: order, the default queue, dry runs, versioned edits."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


async def test_first_matching_rule_wins_and_unmatched_complaints_go_to_the_default_queue(kit):
    await kit.department("quality", [("qa-1", "agent")])
    await kit.department("logistics", [("lg-1", "agent")])
    await kit.rule("quality-products", "quality", order=10, category=["product_quality"])
    await kit.rule("serious-anything", "logistics", order=20, severity=["serious", "major"])

    async def dry_run(**complaint):
        response = await kit.dry_run(complaint)
        assert response.status_code == 200, response.text
        return response.json()

    both_match = await dry_run(category="product_quality", severity="serious")
    assert (both_match["department"], both_match["rule_id"]) == ("quality", "quality-products")
    verdicts = {e["rule_id"]: (e["is_match"], e["selected"]) for e in both_match["evaluations"]}
    assert verdicts == {
        "quality-products": (True, True),
        "serious-anything": (True, False),
        "default": (True, False),
    }
    assert both_match["handler_level"] == "department_manager"

    unmatched = await dry_run(category="price_dispute", severity="minor")
    assert (unmatched["department"], unmatched["rule_id"]) == ("general", "default")
    assert unmatched["queued"] and "general queue" in unmatched["assignment_reason"]
    failed = {e["rule_id"]: e["failed"] for e in unmatched["evaluations"]}
    assert failed["quality-products"] == ["category=price_dispute"]

    reordered = await kit.http.post(
        "/v1/routing-rules:reorder",
        json={
            "rule_ids": ["serious-anything", "quality-products", "default"],
        },
    )
    assert reordered.status_code == 200, reordered.text
    assert [r["id"] for r in reordered.json()] == [
        "serious-anything",
        "quality-products",
        "default",
    ]
    assert (await dry_run(category="product_quality", severity="serious"))["department"] == (
        "logistics"
    )

    # The same decisions through intake's ComplaintClassified events.
    serious = await kit.open_case(category="product_quality", severity="serious")
    general = await kit.open_case(category="product_quality", severity="general")
    price = await kit.open_case(category="price_dispute", severity="minor")
    assert (serious["department"], serious["rule_id"]) == ("logistics", "serious-anything")
    assert (general["department"], general["rule_id"]) == ("quality", "quality-products")
    assert (price["department"], price["rule_id"]) == ("general", "default")
    assert price["assignee_id"] is None
    assert "rule 'default'" in price["routing_reason"] and "queue" in price["routing_reason"]
    assert general["assignee_id"] == "qa-1"
    assert general["history"][0]["action"] == "route"
    assert general["history"][0]["details"]["rule_id"] == "quality-products"
    assert general["rule_version"] == 2  # created, then reordered


async def test_dry_run_tries_candidate_rules_and_saves_nothing(kit):
    await kit.department("vip-desk")
    before = (await kit.http.get("/v1/routing-rules")).json()

    response = await kit.dry_run(
        {"severity": "minor", "category": "service_attitude", "customer_tier": "vip"},
        candidate_rules=[
            {
                "id": "vips",
                "name": "VIPs",
                "order": 5,
                "target_department": "vip-desk",
                "criteria": {"customer_tier": ["vip"]},
            }
        ],
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["department"], result["rule_id"]) == ("vip-desk", "vips")
    assert result["matched_criteria"] == ["customer_tier=vip"]
    assert (await kit.http.get("/v1/routing-rules")).json() == before
    assert (await kit.http.get("/v1/cases")).json()["items"] == []


async def test_rule_edits_are_versioned_checked_and_the_default_queue_stays(kit):
    await kit.department("quality")
    created = await kit.rule("quality-products", "quality", category=["product_quality"])
    assert created["version"] == 1 and created["order"] < 1_000_000

    edited = await kit.http.patch(
        "/v1/routing-rules/quality-products",
        json={"criteria": {"category": ["product_quality", "after_sales"]}},
        headers={"If-Match": '"1"'},
    )
    assert edited.status_code == 200, edited.text
    assert edited.headers["ETag"] == '"2"'
    assert edited.json()["criteria"] == {"category": ["after_sales", "product_quality"]}

    stale = await kit.http.patch(
        "/v1/routing-rules/quality-products", json={"enabled": False}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2

    revisions = (await kit.http.get("/v1/routing-rules/quality-products/revisions")).json()
    assert [(r["version"], r["change"]) for r in revisions] == [(1, "created"), (2, "updated")]
    assert revisions[0]["snapshot"]["criteria"] == {"category": ["product_quality"]}

    refused = {}
    for body in (
        {"name": "nowhere", "target_department": "nowhere", "criteria": {}},  # unknown target
        {"name": "typo", "target_department": "quality", "criteria": {"category": ["qualty"]}},
        {"name": "clash", "target_department": "quality", "order": created["order"]},
    ):
        refused[body["name"]] = await kit.http.post("/v1/routing-rules", json=body)
    assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(refused, 422)
    assert "order" in refused["clash"].json()["message"]

    last_default = await kit.http.delete("/v1/routing-rules/default")
    assert last_default.status_code == 409
    removed = await kit.http.delete("/v1/routing-rules/quality-products")
    assert removed.status_code == 204
    tombstone = (await kit.http.get("/v1/routing-rules/quality-products/revisions")).json()
    assert tombstone[-1]["change"] == "deleted"
    assert (await kit.http.get("/v1/routing-rules/quality-products")).status_code == 404


async def test_rules_cannot_be_edited_without_the_scope(kit):
    agent = await kit.credential("agent", "general")

    refused = await kit.http.post(
        "/v1/routing-rules",
        json={
            "name": "mine",
            "target_department": "general",
        },
        headers=kit.bearer(agent),
    )

    assert refused.status_code == 403
    assert refused.json()["required_scope"] == "rules:write"

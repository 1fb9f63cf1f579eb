"""The detector on the real read model, its alert on Kafka and in the API, a manager's
decisions, and an improvement action's before/after effect (the seed's 15% → 8%)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from analytics_factories import cst, daily_quality_complaints, raised_alert
from tousu_analytics.domain.alerts import Alert, Series
from tousu_analytics.service_layer.detector import detect
from tousu_shared.testing import envelopes, read_topic

pytestmark = pytest.mark.integration


async def plan_laptop_action(http: Any, title: str, starts_on: str, **fields: Any) -> Any:
    """A manager's improvement action on laptops, posted; ``fields`` add its links or target
    rate."""
    body = {
        "title": title,
        "target": {"product_line": "laptops"},
        "plan": f"{title}: plan",
        "owner": "quality lead",
        "starts_on": starts_on,
        **fields,
    }
    return await http.post("/v1/improvement-actions", json=body)


async def test_a_spike_raises_one_alert_with_its_evidence(analytics, kit) -> None:
    first, spike_day = date(2025, 4, 1), date(2025, 5, 20)
    # three complaints a day about laptops, for seven weeks
    events = daily_quality_complaints(kit, first, spike_day, product_line="laptops", region="north")
    spike = []
    for minute in range(15):  # then one batch fails: 15 more on one day, same batch
        c = kit(
            contact_at=cst(spike_day, 10) + timedelta(minutes=minute),
            product_line="laptops",
            region="east",
            product_ref="BATCH-7",
            subject_unit="plant-2",
        )
        spike.append(c.complaint_id)
        events += [c.received(), c.classified("product_quality")]
    async with analytics.running(), analytics.http() as http:
        await analytics.send(*events)
        await analytics.until_applied(len(events))
        run = await detect(analytics.ctx, spike_day)
        quiet = await detect(analytics.ctx, spike_day - timedelta(days=1))
        again = await detect(analytics.ctx, spike_day)  # a second run the same day
        published = envelopes(
            await read_topic(
                analytics.settings.topic("analytics.events"),
                until=lambda records: len(records) >= 1,
            )
        )
        listed = (await http.get("/v1/alerts")).json()["items"]
        alert_id = listed[0]["id"]
        ack = await http.post(f"/v1/alerts/{alert_id}/acknowledge")
        action = await plan_laptop_action(
            http, "Quarantine batch 7", "2025-05-21", alert_id=alert_id
        )
        linked = await http.post(
            f"/v1/alerts/{alert_id}/link", json={"action_id": action.json()["id"]}
        )
        refused = await http.post(f"/v1/alerts/{alert_id}/dismiss", json={"reason": "noise"})
        short = await http.post(f"/v1/alerts/{alert_id}/dismiss", json={"reason": ""})
    assert run.series_tested == 1 and len(run.alerts_raised) == 1
    assert quiet.alerts_raised == [] and again.alerts_raised == [] and again.alerts_extended == []
    assert len(published) == 1
    data = published[0].data
    assert published[0].type == "SystemicIssueDetected"
    assert published[0].subject == alert_id == data["alert_id"]
    assert (data["category"], data["product_line"], data["method"]) == (
        "product_quality",
        "laptops",
        "farrington_nb",
    )
    assert data["observed"] == 18 and data["day"] == data["first_day"] == "2025-05-20"
    assert data["expected"] == pytest.approx(3.0, rel=0.05)
    assert data["upper_bound"] < 18 and data["p_value"] < 1e-6
    assert set(spike) <= {__import__("uuid").UUID(cid) for cid in data["complaint_ids"]}
    assert len(data["complaint_ids"]) == 18
    assert data["shared"] == {"region": "east", "product_ref": "BATCH-7", "subject_unit": "plant-2"}
    assert listed[0]["state"] == "open" and listed[0]["evidence"]["observed"] == 18
    assert ack.json()["state"] == "acknowledged"
    assert linked.json()["state"] == "linked"
    assert linked.json()["action_id"] == action.json()["id"]
    assert refused.status_code == 409 and refused.json()["allowed_actions"] == []
    assert short.status_code == 422


async def test_an_actions_effect_is_a_rate_ratio_with_its_interval(analytics, kit) -> None:
    events = []
    for month, complaints in ((9, 150), (10, 80)):
        for i in range(complaints):
            day = date(2025, month, 1 + i % 28)
            c = kit(contact_at=cst(day, 9 + i % 8), product_line="laptops")
            events += [c.received(), c.classified("product_quality")]
    async with analytics.running(), analytics.http() as http:
        await analytics.send(*events)
        await analytics.until_applied(len(events))
        for month in ("2025-09", "2025-10"):
            response = await http.put(
                f"/v1/denominators/{month}", json={"orders": 1000, "product_line": "laptops"}
            )
            assert response.status_code == 204
        created = await plan_laptop_action(http, "Screen inspection", "2025-10-01", target_rate=0.1)
        action_id = created.json()["id"]
        started = await http.post(
            f"/v1/improvement-actions/{action_id}/advance", json={"to": "do", "on": "2025-10-01"}
        )
        skipped = await http.post(
            f"/v1/improvement-actions/{action_id}/advance", json={"to": "act"}
        )
        shown = (await http.get(f"/v1/improvement-actions/{action_id}")).json()
        bad = await http.post(
            "/v1/improvement-actions",
            json={"title": "x", "target": {}, "plan": "y", "owner": "z", "starts_on": "2025-10-01"},
        )
    assert created.status_code == 201 and created.json()["state"] == "plan"
    assert started.json()["state"] == "do"
    assert skipped.status_code == 409 and skipped.json()["allowed_next"] == ["check"]
    effect = shown["effect"]
    assert effect["exposure"] == "orders"
    # 150 of 1000 orders before, 80 of 1000 after: ratio 80/150, log-scale Wald interval
    # with se = sqrt(1/150 + 1/80) (Poisson: two periods leave no dispersion to estimate).
    se = math.sqrt(1 / 150 + 1 / 80)
    ratio = 80 / 150
    assert effect["effect"]["rate_before"] == pytest.approx(0.15)
    assert effect["effect"]["rate_after"] == pytest.approx(0.08)
    assert effect["effect"]["rate_ratio"] == pytest.approx(ratio, abs=1e-5)
    assert effect["effect"]["ci_low"] == pytest.approx(ratio * math.exp(-1.959964 * se), abs=1e-4)
    assert effect["effect"]["ci_high"] == pytest.approx(ratio * math.exp(1.959964 * se), abs=1e-4)
    assert effect["target_met"] is True
    assert bad.status_code == 422


async def test_a_department_bound_caller_lists_only_its_departments_alerts(analytics) -> None:
    def raised(kind: str, value: str, hours: int) -> Alert:
        at = datetime(2025, 5, 21, tzinfo=ZoneInfo("UTC")) + timedelta(hours=hours)
        return raised_alert(Series(kind, "product_quality", value), at)

    quality = raised("category_department", "quality", 1)
    logistics = raised("category_department", "logistics", 2)
    laptops = raised("category_product_line", "laptops", 3)
    async with analytics.ctx.uow() as uow:
        for alert in (quality, logistics, laptops):
            await uow.alerts.save(alert)
        await uow.commit()
    async with analytics.http() as http:
        manager = await analytics.credential(http, "manager", "quality")
        every = (await http.get("/v1/alerts")).json()["items"]
        narrowed = (await http.get("/v1/alerts", params={"department": "logistics"})).json()
    async with analytics.http(manager) as http:
        mine = (await http.get("/v1/alerts")).json()["items"]
        named = (await http.get("/v1/alerts", params={"department": "quality"})).json()["items"]
        other = await http.get("/v1/alerts", params={"department": "logistics"})
        own = await http.get(f"/v1/alerts/{quality.id}")
        theirs = await http.get(f"/v1/alerts/{logistics.id}")
        spanning = await http.get(f"/v1/alerts/{laptops.id}")
    ids = [str(alert.id) for alert in (laptops, logistics, quality)]  # newest first
    assert [item["id"] for item in every] == ids
    assert [item["id"] for item in narrowed["items"]] == [str(logistics.id)]
    assert [item["id"] for item in mine] == [item["id"] for item in named] == [str(quality.id)]
    assert other.status_code == 403 and other.json()["field"] == "department"
    assert own.status_code == 200
    assert theirs.status_code == spanning.status_code == 404

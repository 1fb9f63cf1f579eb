"""Known event sequences through the real Kafka into the read model; every KPI checked
against values computed by hand (in the comments), then a rebuild from offset zero."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from analytics_factories import CST, H
from sqlalchemy import text
from tousu_analytics.service_layer.rebuild import rebuild
from tousu_shared.contracts.case import (
    CaseClosed,
    CaseReopened,
    FirstResponseSent,
    RootCauseRecorded,
)
from tousu_shared.contracts.feedback import CustomerConfirmed
from tousu_shared.contracts.sla import SlaBreached

pytestmark = pytest.mark.integration

PERIOD = {"from": "2025-09-01", "to": "2025-11-01"}


def cst(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=CST)  # type: ignore[misc]


def scenario(kit) -> list:  # type: ignore[no-untyped-def]
    """Five complaints in September and October 2025 (National Day: 1–8 October)."""
    events = []
    # C1: customer A, quality, answered by link (5, confirmed).
    at = cst(2025, 10, 9, 9)
    c1 = kit(contact_at=at, customer_ref="cust-a", product_line="laptops", region="east")
    events += [
        *c1.opened("product_quality", "quality"),
        c1.case(FirstResponseSent, at + 2 * H, "quality"),
        c1.met("first_response", at + 2 * H, 2, True),
        c1.case(RootCauseRecorded, at + 20 * H, "quality", root_cause="supplier batch"),
        c1.resolved(at + 26 * H, "quality", "supplier batch"),
        c1.met("resolve", at + 26 * H, 10, True),
        c1.answered("s1", at + 30 * H, 5, "link", confirmed=True),
        c1.case(CaseClosed, at + 31 * H, "quality", close_reason="customer_confirmed"),
    ]
    # C2: customer B, quality, first response late, answered 3 on a callback, reopened.
    at = cst(2025, 10, 10, 10)
    c2 = kit(contact_at=at, customer_ref="cust-b", channel="web_form", product_line="laptops")
    events += [
        *c2.opened("product_quality", "quality"),
        c2.sla(SlaBreached, "first_response", at + 3 * H),
        c2.case(FirstResponseSent, at + 4 * H, "quality"),
        c2.met("first_response", at + 4 * H, 4, False),
        c2.resolved(at + 50 * H, "quality", "supplier batch"),
        c2.met("resolve", at + 50 * H, 20, True),
        c2.answered("s2", at + 60 * H, 3, "callback", solved=False),
        c2.case(CaseReopened, at + 61 * H, "quality", reason="not solved"),
    ]
    # C3: customer A again 11 days later (a repeat), solved on first contact, callback 4 and
    # confirmed by a separate CustomerConfirmed.
    at = cst(2025, 10, 20, 11)
    c3 = kit(
        contact_at=at,
        customer_ref="cust-a",
        channel="phone",
        product_line="delivery",
        resolved_on_first_contact=True,
    )
    events += [
        *c3.opened("delivery_delay", "logistics"),
        c3.case(FirstResponseSent, at + H, "logistics"),
        c3.met("first_response", at + H, 1, True),
        c3.resolved(at + H, "logistics", "courier"),
        c3.met("resolve", at + H, 1, True),
        c3.answered("s3", at + 5 * H, 4, "callback"),
        c3.feedback(CustomerConfirmed, "s3", confirmed_at=at + 5 * H, source="callback"),
    ]
    # C4: received 30 September 17:00, answered during the holiday, resolved 9 October 10:00:
    # 16 h and 209 h on the clock; the SLA monitor counted 1 h and 2 h of business time
    # (17–18 on the 30th, 9–10 on the 9th; 1–8 October are off).
    at = cst(2025, 9, 30, 17)
    c4 = kit(contact_at=at, customer_ref="cust-c", channel="email", product_line="delivery")
    events += [
        *c4.opened("delivery_delay", "logistics"),
        c4.case(FirstResponseSent, cst(2025, 10, 1, 9), "logistics"),
        c4.met("first_response", cst(2025, 10, 1, 9), 1, True),
        c4.resolved(cst(2025, 10, 9, 10), "logistics", "address error"),
        c4.met("resolve", cst(2025, 10, 9, 10), 2, True),
    ]
    # C5: the classifier said product quality; a person corrected it; still open, breached.
    at = cst(2025, 10, 21, 15)
    c5 = kit(contact_at=at, customer_ref="cust-d", channel="app")
    events += [
        c5.received(),
        c5.classified("product_quality"),
        c5.reclassified("service_attitude", "product_quality"),
        c5.routed(at, "service", category="service_attitude"),
        c5.sla(SlaBreached, "first_response", at + 4 * H),
    ]
    return events


async def _denominators(http) -> None:  # type: ignore[no-untyped-def]
    for month, orders, customers in (("2025-09", 1000, 800), ("2025-10", 2000, 1500)):
        response = await http.put(
            f"/v1/denominators/{month}", json={"orders": orders, "customers": customers}
        )
        assert response.status_code == 204, response.text


async def test_every_kpi_matches_the_hand_computed_value(analytics, kit) -> None:
    events = scenario(kit)
    async with analytics.running(), analytics.http() as http:
        await analytics.send(*events)
        await analytics.until_applied(len(events))
        await _denominators(http)
        response = await http.get("/v1/kpis", params={**PERIOD, "group_by": "month"})
        assert response.status_code == 200, response.text
        document = response.json()
    t = document["totals"]
    assert t["volume"] == 5
    assert t["complaint_rate_per_order"] == pytest.approx(5 / 3000, abs=1e-6)
    assert t["complaint_rate_per_customer"] == pytest.approx(5 / 2300, abs=1e-6)
    assert t["resolution_rate"] == 0.8  # C1–C4 of 5
    assert t["fcr_rate"] == 0.2  # C3
    # first response on the clock: 2, 4, 1, 16 h → median 3, p90 4 + 0.7 × 12 = 12.4
    assert t["first_response_hours"] == {"median": 3.0, "p90": 12.4}
    # the SLA monitor's business hours: 2, 4, 1, 1 → median 1.5, p90 2 + 0.7 × 2 = 3.4
    assert t["first_response_business_hours"] == {"median": 1.5, "p90": 3.4}
    # resolution on the clock: 26, 50, 1, 209 h → median 38, p90 50 + 0.7 × 159 = 161.3
    assert t["resolution_hours"] == {"median": 38.0, "p90": 161.3}
    # business: 10, 20, 1, 2 → median 6, p90 10 + 0.7 × 10 = 17
    assert t["resolution_business_hours"] == {"median": 6.0, "p90": 17.0}
    # first response: C1, C3, C4 in time; C2 late; C5 breached and open → 3 of 5
    assert t["sla_compliance"]["first_response"] == {"rate": 0.6, "compliant": 3, "decided": 5}
    assert t["sla_compliance"]["resolve"] == {"rate": 1.0, "compliant": 4, "decided": 4}
    assert t["csat"]["link"] == {
        "mean": 5.0,
        "share_4_5": 1.0,
        "confirmed_share": 1.0,
        "answers": 1,
        "surveys": 1,
    }
    assert t["csat"]["callback"] == {
        "mean": 3.5,
        "share_4_5": 0.5,
        "confirmed_share": 0.5,
        "answers": 2,
        "surveys": 2,
    }
    assert t["reopen_rate"] == 0.25  # C2 of the 4 resolved
    assert t["repeat_rate"] == 0.2  # C3: customer A 11 days after C1
    assert t["top_root_causes"] == [
        {"root_cause": "supplier batch", "count": 2},
        {"root_cause": "address error", "count": 1},
        {"root_cause": "courier", "count": 1},
    ]
    assert t["classifier_corrections"] == {"category": {"count": 1, "rate": 0.2}}
    assert t["unhappy_customers_estimate"] == 125.0  # 5 × 25
    september, october = document["cells"]
    assert (september["cell"], september["volume"]) == ("2025-09-01", 1)
    assert september["complaint_rate_per_order"] == 0.001  # 1 / 1000
    assert (october["cell"], october["volume"]) == ("2025-10-01", 4)
    assert october["complaint_rate_per_order"] == 0.002  # 4 / 2000
    assert {"date": "2025-10-01", "kind": "holiday", "name": "National Day"} in document["calendar"]
    assert {"date": "2025-09-28", "kind": "makeup_workday", "name": "National Day"} in document[
        "calendar"
    ]


async def test_figures_drill_down_export_and_respect_departments(analytics, kit) -> None:
    events = scenario(kit)
    async with analytics.running(), analytics.http() as http:
        await analytics.send(*events)
        await analytics.until_applied(len(events))
        drill = (
            await http.get(
                "/v1/kpis/drill",
                params={
                    **PERIOD,
                    "metric": "resolution_rate",
                    "group_by": "department",
                    "cell": "quality",
                },
            )
        ).json()
        first_response = (
            await http.get(
                "/v1/kpis/drill",
                params={
                    **PERIOD,
                    "metric": "sla_compliance.first_response",
                },
            )
        ).json()
        page = (
            await http.get("/v1/kpis/drill", params={**PERIOD, "metric": "volume", "limit": 2})
        ).json()
        rest = (
            await http.get(
                "/v1/kpis/drill",
                params={**PERIOD, "metric": "volume", "limit": 10, "cursor": page["next_cursor"]},
            )
        ).json()
        exported = await http.get(
            "/v1/kpis/drill", params={**PERIOD, "metric": "volume", "format": "csv"}
        )
        table = await http.get(
            "/v1/kpis", params={**PERIOD, "group_by": "category", "format": "csv"}
        )
        bad = await http.get("/v1/kpis/drill", params={**PERIOD, "metric": "nonsense"})
        bad_group = await http.get("/v1/kpis", params={**PERIOD, "group_by": "colour"})
        logistics = await analytics.credential(http, "manager", "logistics")
        mine = await http.get(
            "/v1/kpis", params=PERIOD, headers={"Authorization": f"Bearer {logistics}"}
        )
        other = await http.get(
            "/v1/kpis",
            params={**PERIOD, "department": "quality"},
            headers={"Authorization": f"Bearer {logistics}"},
        )
    assert len(drill["items"]) == 2 and all(item["counted"] for item in drill["items"])
    flags = sorted(item["counted"] for item in first_response["items"])
    assert flags == [False, False, True, True, True]
    assert len(page["items"]) == 2 and len(rest["items"]) == 3
    ids = {item["complaint_id"] for item in page["items"] + rest["items"]}
    assert len(ids) == 5
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["complaint_id"] for row in rows} == ids
    kpi_rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [row["cell"] for row in kpi_rows] == [
        "total",
        "delivery_delay",
        "product_quality",
        "service_attitude",
    ]
    assert [row["volume"] for row in kpi_rows] == ["5", "2", "2", "1"]
    assert bad.status_code == 422 and bad.json()["field"] == "metric"
    assert bad_group.status_code == 422 and bad_group.json()["field"] == "group_by"
    assert mine.status_code == 200 and mine.json()["totals"]["volume"] == 2  # C3, C4
    assert other.status_code == 403 and other.json()["field"] == "department"


async def test_redelivery_changes_nothing_and_a_rebuild_gives_identical_numbers(
    analytics, kit
) -> None:
    events = scenario(kit)
    async with analytics.running(), analytics.http() as http:
        sent = await analytics.send(*events)
        await analytics.until_applied(len(events))
        await _denominators(http)
        before = (await http.get("/v1/kpis", params={**PERIOD, "group_by": "category"})).json()
        # The same envelopes again (a redelivery), and a repeated fact in a new envelope.
        await analytics.send(*sent[:10])
        await analytics.send(events[3])  # C1's FirstResponseSent, a second envelope
        await analytics.until_applied(len(events) + 1)
        again = (await http.get("/v1/kpis", params={**PERIOD, "group_by": "category"})).json()
        result = await rebuild(analytics.service)
        after = (await http.get("/v1/kpis", params={**PERIOD, "group_by": "category"})).json()
        # The live consumer keeps working on the swapped-in tables.
        c6 = kit(contact_at=cst(2025, 10, 22, 9), customer_ref="cust-e")
        await analytics.send(c6.received())
        await analytics.until_applied(len(events) + 2)
        later = (await http.get("/v1/kpis", params=PERIOD)).json()
    assert again == before
    assert after == before
    assert result.complaints == 5
    assert result.events_applied == len(events) + 1
    assert later["totals"]["volume"] == 6
    async with analytics.service.runtime.engine.connect() as conn:
        leftovers = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'analytics' "
                "AND tablename LIKE '%\\_\\_%'"
            )
        )
        indexes = set(
            (
                await conn.execute(
                    text(
                        "SELECT indexname FROM pg_indexes WHERE tablename = 'fact' "
                        "AND schemaname = 'analytics'"
                    )
                )
            ).scalars()
        )
    assert leftovers == 0
    assert "ix_fact_received" in indexes

"""The monthly report in every format, archived by the worker's rule and shown as sent."""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from analytics_factories import improvement_action
from tousu_analytics.domain.actions import ImprovementAction, Target
from tousu_analytics.service_layer.reports import archive_if_due, first_working_day

pytestmark = pytest.mark.integration

CST = ZoneInfo("Asia/Shanghai")
OUT = Path(tempfile.gettempdir()) / "tousu-analytics-report"  # the pages, to look at


def complaint(kit, at: datetime, category: str, channel: str, hours: float):  # type: ignore[no-untyped-def]
    c = kit(contact_at=at, channel=channel, customer_ref=f"cust-{at.isoformat()}")
    done = at + timedelta(hours=hours)
    return [
        *c.opened(category, "quality"),
        c.resolved(done, "quality", "batch 7"),
        # half the clock hours counted as business time; within target under 48 h
        c.met("resolve", done, hours / 2, hours < 48),
    ]


def actions() -> list[ImprovementAction]:
    """One closed in September, one running since September, one begun in October, one
    planned for November."""

    def action(title: str, starts: date, *steps: tuple[str, date]) -> ImprovementAction:
        item = improvement_action(
            title=title,
            target=Target(category="product_quality"),
            starts_on=starts,
            created_at=datetime(2025, 8, 1, tzinfo=CST),
        )
        for to, on in steps:
            item.advance(to, "manager:zhao", on, None, item.created_at)
        return item

    return [
        action("Courier briefing", date(2025, 10, 20), ("do", date(2025, 10, 20))),
        action(
            "Packaging change",
            date(2025, 9, 1),
            ("do", date(2025, 9, 1)),
            ("check", date(2025, 9, 20)),
            ("act", date(2025, 9, 28)),
        ),
        action("Screen inspection", date(2025, 9, 10), ("do", date(2025, 9, 12))),
        action("Supplier audit", date(2025, 11, 10)),
    ]


async def test_the_report_in_every_format_archived_on_the_first_working_day(analytics, kit) -> None:
    events = []
    for day in range(1, 31, 3):  # October: 10 complaints, National Day week included
        events += complaint(
            kit, datetime(2025, 10, day, 10, tzinfo=CST), "product_quality", "phone", 10 + day
        )
    for day in (2, 9, 16, 23, 30):
        events += complaint(
            kit, datetime(2025, 10, day, 15, tzinfo=CST), "delivery_delay", "app", 5
        )
    for day in range(1, 29, 4):  # September: 7 complaints
        events += complaint(
            kit, datetime(2025, 9, day, 10, tzinfo=CST), "product_quality", "email", 20
        )
    assert first_working_day(datetime(2025, 11, 1).date()).isoformat() == "2025-11-03"
    async with analytics.running(), analytics.http() as http:
        await analytics.send(*events)
        await analytics.until_applied(len(events))
        async with analytics.ctx.uow() as uow:
            for action in actions():
                await uow.actions.save(action)
            await uow.commit()
        live = (await http.get("/v1/reports/monthly/2025-10")).json()
        analytics.clock.at = datetime(2025, 11, 1, 2, tzinfo=ZoneInfo("UTC"))  # Saturday
        too_early = await archive_if_due(analytics.ctx)
        analytics.clock.at = datetime(2025, 11, 3, 2, tzinfo=ZoneInfo("UTC"))  # Monday
        archived = await archive_if_due(analytics.ctx)
        once = await archive_if_due(analytics.ctx)
        # Later events do not change the report as it was sent.
        await analytics.send(
            *complaint(kit, datetime(2025, 10, 31, 9, tzinfo=CST), "other", "phone", 1)
        )
        await analytics.until_applied(len(events) + 5)
        shown = (await http.get("/v1/reports/monthly/2025-10")).json()
        as_csv = await http.get("/v1/reports/monthly/2025-10", params={"format": "csv"})
        as_html = await http.get("/v1/reports/monthly/2025-10", headers={"Accept": "text/html"})
        as_pdf = await http.get("/v1/reports/monthly/2025-10", params={"format": "pdf"})
        in_english = await http.get(
            "/v1/reports/monthly/2025-10", params={"format": "pdf", "lang": "en"}
        )
        bad_month = await http.get("/v1/reports/monthly/2025-13")
        bad_format = await http.get("/v1/reports/monthly/2025-10", params={"format": "docx"})
    assert live["headline"][0] == {
        "metric": "volume",
        "value": 15,
        "previous": 7,
        "change": round((15 - 7) / 7, 4),
    }
    assert {row["cell"]: row["volume"] for row in live["by_category"]} == {
        "delivery_delay": 5,
        "product_quality": 10,
    }
    assert {row["cell"]: row["volume"] for row in live["by_channel"]} == {"app": 5, "phone": 10}
    assert live["slowest_cases"][0]["hours"] == 38.0  # 28 October, 10 + 28 hours
    assert live["top_root_causes"] == [{"root_cause": "batch 7", "count": 15}]
    # The month's actions: under way in October, not the ones closed before or not yet begun.
    assert [row["title"] for row in live["improvement_actions"]] == [
        "Screen inspection",
        "Courier briefing",
    ]
    assert too_early is None and once is None
    assert archived is not None and archived["report_id"]
    assert set(archived["position"]) == {
        analytics.settings.topic("complaint.events"),
        analytics.settings.topic("case.events"),
        analytics.settings.topic("sla.events"),
    }
    assert shown["report_id"] == archived["report_id"]
    assert shown["headline"][0]["value"] == 15  # as sent, not 16
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert {"section": "headline", "key": "volume", "column": "value", "value": "15"} in rows
    assert as_html.headers["content-type"].startswith("text/html")
    assert "客户投诉工作简报" in as_html.text and "data:image/png;base64," in as_html.text
    assert "产品质量" in as_html.text and "电话" in as_html.text  # labels in Chinese
    assert as_pdf.content.startswith(b"%PDF") and in_english.content.startswith(b"%PDF")
    assert bad_month.status_code == 422 and bad_month.json()["field"] == "month"
    assert bad_format.status_code == 422 and bad_format.json()["field"] == "format"
    # The pages as images, for a person to look at (pdftoppm from poppler-utils).
    OUT.mkdir(exist_ok=True)
    for name, pdf in (("zh", as_pdf.content), ("en", in_english.content)):
        (OUT / f"report-{name}.pdf").write_bytes(pdf)
        process = await asyncio.create_subprocess_exec(
            "pdftoppm",
            "-png",
            "-r",
            "60",
            str(OUT / f"report-{name}.pdf"),
            str(OUT / f"report-{name}"),
        )
        assert await process.wait() == 0
    assert (OUT / "report-zh-1.png").exists()

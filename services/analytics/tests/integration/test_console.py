"""The ops console in a real headless Chromium (Debian's, driven by Playwright), served by
the analytics service over real HTTP, its read model fed through the real Kafka.

Each test saves screenshots under ``.data/screenshots/`` (the README's come from there).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright, expect
from tousu_analytics.domain.alerts import Alert, Evidence, Series
from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts.case import (
    CaseClosed,
    CaseEscalated,
    CaseResolved,
    FirstResponseSent,
    InvestigationStarted,
    RootCauseRecorded,
    SolutionProposed,
)
from tousu_shared.contracts.feedback import (
    CallbackAttempted,
    CustomerConfirmed,
    CustomerInformed,
)
from tousu_shared.contracts.sla import (
    SlaBreached,
    SlaEscalated,
    SlaMilestoneStarted,
)
from tousu_shared.testing import declare_departments, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[4]
SHOTS = Path(os.environ.get("TOUSU_SCREENSHOTS", ROOT / ".data" / "screenshots"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WALL = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}
# The harness's clock: Monday 3 November 2025, 10:00 in Beijing.
NOW = datetime(2025, 11, 3, 2, 0, tzinfo=UTC)
UI_TIMEOUT = 20_000  # ms a page may take to show what the backend did (a loaded machine)


@contextlib.asynccontextmanager
async def serving(harness: Any) -> AsyncIterator[str]:
    """The analytics app on a real port (uvicorn in this loop), with its consumer running."""
    # Open event streams (the board's) do not end by themselves: shutdown cuts them after 1 s.
    server = uvicorn.Server(
        uvicorn.Config(
            harness.service.app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started or task.done())
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with harness.running():
            yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()


def admin_key(harness: Any) -> str:
    return str(harness.settings.bootstrap_admin_key.get_secret_value())


async def credential(harness: Any, base: str, role: str, department: str | None = None) -> str:
    if department is not None:
        await declare_departments(harness.service.runtime, department)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {admin_key(harness)}"}
    ) as http:
        response = await http.post(
            "/v1/admin/credentials",
            json={"name": f"{role}-{uuid.uuid4().hex[:4]}", "role": role, "department": department},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


async def sign_in(browser: Browser, base: str, key: str, path: str = "/console/board") -> Page:
    page = await browser.new_page(viewport=WALL)  # type: ignore[arg-type]
    page.set_default_timeout(UI_TIMEOUT)
    await page.goto(base + path)
    assert "/console/login" in page.url  # not signed in: sent to the form, then back
    await page.fill("#api_key", key)
    await page.click("#sign-in")
    await page.wait_for_url(f"**{path}")
    return page


async def shot(page: Page, name: str, full_page: bool = True) -> None:
    await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


async def send_at(harness: Any, *timed: tuple[datetime, Event]) -> None:
    """Publish events as their services would, each stamped with the time it happened."""
    envelopes: list[Event | Envelope] = [
        harness.envelope(event).model_copy(update={"time": at}) for at, event in timed
    ]
    await harness.send(*envelopes)


def routed(c: Any, at: datetime, department: str) -> Event:
    """The seed's case: serious and immediate, at agent level."""
    return c.routed(at, department, severity="serious", urgency="immediate")


def started(
    c: Any, milestone: str, at: datetime, due: datetime, calendar: str | None = None
) -> Event:
    return c.sla(
        SlaMilestoneStarted,
        milestone,
        due,
        started_at=at,
        target_seconds=(due - at).total_seconds(),
        calendar=calendar,
    )


def open_case(
    kit: Any, department: str, milestone: str, due: datetime, calendar: str | None = None
) -> tuple[Any, list[tuple[datetime, Event]]]:
    at = NOW - timedelta(hours=1)
    c = kit(contact_at=at, customer_ref=f"cust-{uuid.uuid4().hex[:4]}", product_line="laptops")
    return c, [
        (at, c.received()),
        (at, c.classified("product_quality", "serious")),
        (at, routed(c, at, department)),
        (at, started(c, milestone, at, due, calendar)),
    ]


async def test_sign_in_then_the_board_follows_a_breach_live_without_reload(
    analytics: Any, browser: Browser, kit: Any
) -> None:
    a, a_events = open_case(kit, "after_sales", "first_response", NOW + timedelta(minutes=30))
    # A business-calendar clock due at 13:00 Beijing the same Monday: 180 working minutes.
    b, b_events = open_case(
        kit, "logistics", "resolve", NOW + timedelta(hours=3), calendar="cn-statutory"
    )
    async with serving(analytics) as base:
        await send_at(analytics, *a_events, *b_events)
        await analytics.until_applied(8)
        key = await credential(analytics, base, "ops")
        page = await sign_in(browser, base, key)

        # The session is an HttpOnly, SameSite=Strict cookie; the key is nowhere in the page.
        cookies = {c["name"]: c for c in await page.context.cookies()}
        assert cookies["tousu_console"]["httpOnly"] is True
        assert cookies["tousu_console"]["sameSite"] == "Strict"
        assert key not in page.url
        assert await page.evaluate("localStorage.length + sessionStorage.length") == 0
        assert key not in await page.content()

        rows = page.locator("#clock-rows tr")
        await expect(rows).to_have_count(2)
        row_a = page.locator(f'#clock-rows tr[data-key="{a.complaint_id}:first_response"]')
        row_b = page.locator(f'#clock-rows tr[data-key="{b.complaint_id}:resolve"]')
        await expect(row_a.locator("td").nth(6)).to_have_text("30")
        await expect(row_b.locator("td").nth(6)).to_have_text("180")
        await expect(page.locator("#total-breached")).to_have_text("0")
        # The stream is connected once the script drew its first snapshot.
        await expect(page.locator("#board")).to_have_attribute("data-version", "1")
        await page.evaluate("window.notReloaded = true")

        breach = NOW - timedelta(minutes=1)
        await send_at(
            analytics,
            (breach, a.sla(SlaBreached, "first_response", breach)),
            (breach, a.sla(SlaEscalated, "first_response", breach, level="department_manager")),
            (
                breach,
                a.case(
                    CaseEscalated,
                    breach,
                    "after_sales",
                    from_level="agent",
                    to_level="department_manager",
                    reason="first_response overdue",
                ),
            ),
        )
        await expect(page.locator("#total-breached")).to_have_text("1")
        await expect(page.locator("#total-escalated")).to_have_text("1")
        await expect(row_a).to_have_class("state-breached flash")
        await expect(page.locator("#breach-banner")).to_be_visible()
        await expect(page.locator("#breach-list")).to_contain_text(str(a.complaint_id)[:8])
        assert await page.evaluate("window.notReloaded") is True
        await expect(page.locator("#per-department")).to_contain_text("after_sales")
        await shot(page, "console-board")

        phone = await browser.new_page(viewport=PHONE)  # type: ignore[arg-type]
        await phone.context.add_cookies(await page.context.cookies())  # type: ignore[arg-type]
        await phone.goto(base + "/console/board")
        await expect(phone.locator("#total-breached")).to_have_text("1")
        await shot(phone, "console-board-phone")


async def test_an_agent_sees_only_their_department(
    analytics: Any, browser: Browser, kit: Any
) -> None:
    mine, mine_events = open_case(kit, "after_sales", "first_response", NOW + timedelta(minutes=40))
    theirs, theirs_events = open_case(
        kit, "logistics", "first_response", NOW + timedelta(minutes=20)
    )
    async with serving(analytics) as base:
        await send_at(analytics, *mine_events, *theirs_events)
        await analytics.until_applied(8)
        page = await sign_in(
            browser, base, await credential(analytics, base, "agent", "after_sales")
        )

        rows = page.locator("#clock-rows tr")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute(
            "data-key", f"{mine.complaint_id}:first_response"
        )
        await expect(page.locator("#per-department")).not_to_contain_text("logistics")
        # The stream narrows the same way (a snapshot replaces the rows).
        await expect(page.locator("#board")).to_have_attribute("data-version", "1")
        await expect(rows).to_have_count(1)

        other = await page.goto(f"{base}/console/cases/{theirs.complaint_id}")
        assert other is not None and other.status == 404
        own = await page.goto(f"{base}/console/cases/{mine.complaint_id}")
        assert own is not None and own.status == 200
        asked = await page.goto(f"{base}/console/board?department=logistics")
        assert asked is not None and asked.status == 403
        # Agents hold no analytics scope: the KPI pages refuse them.
        kpis = await page.goto(f"{base}/console/kpis")
        assert kpis is not None and kpis.status == 403


def wang_story(c: Any, t0: datetime) -> list[tuple[datetime, Event]]:
    """domain.md §7 as the services publish it: 0 h complaint → 1 h apology and first
    response → 6 h technician on site → 12 h cause confirmed, plan made → 18 h refund and
    compensation done → callback: satisfied, confirmed."""

    def h(hours: float) -> datetime:
        return t0 + timedelta(hours=hours)

    dept = "after_sales"
    return [
        (h(0), c.received()),
        (h(0), c.classified("product_quality", "serious", "immediate")),
        (h(0), routed(c, h(0), dept)),
        (h(0), started(c, "first_response", h(0), h(1))),
        (h(0), started(c, "resolve", h(0), h(24))),
        (h(1), c.case(FirstResponseSent, h(1), dept)),
        (h(1), c.met("first_response", h(1), 1, True)),
        (h(6), c.case(InvestigationStarted, h(6), dept)),
        (h(12), c.case(RootCauseRecorded, h(12), dept, root_cause="warehousing_transport")),
        (h(12), c.case(SolutionProposed, h(12), dept, solution="full refund + ¥200")),
        (
            h(18),
            c.case(
                CaseResolved,
                h(18),
                dept,
                resolution="refund and compensation paid",
                root_cause="warehousing_transport",
                responsible_person="agent:li",
            ),
        ),
        (h(18), c.met("resolve", h(18), 18, True, due_at=h(24))),
        (h(18.5), c.feedback(CustomerInformed, "s1", channel="sms", informed_at=h(18.5))),
        (
            h(20),
            c.feedback(CallbackAttempted, "s1", attempt=1, outcome="answered", attempted_at=h(20)),
        ),
        (
            h(20),
            c.answered("s1", h(20), 5, "callback", confirmed=True),
        ),
        (
            h(20),
            c.feedback(
                CustomerConfirmed, "s1", confirmed_at=h(20), satisfaction=5, source="callback"
            ),
        ),
        (h(20), c.case(CaseClosed, h(20), dept, close_reason="customer_confirmed")),
    ]


async def test_mr_wangs_case_reads_as_the_seed_timeline(
    analytics: Any, browser: Browser, kit: Any
) -> None:
    t0 = datetime(2025, 11, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
    wang = kit(contact_at=t0, customer_ref="cust-wang", product_line="laptops", region="east")
    story = wang_story(wang, t0)
    async with serving(analytics) as base:
        await send_at(analytics, *story)
        await analytics.until_applied(len(story))
        page = await sign_in(
            browser,
            base,
            await credential(analytics, base, "ops"),
            f"/console/cases/{wang.complaint_id}",
        )
        events = page.locator("#timeline li.event")
        await expect(events).to_have_count(len(story))
        seen = [
            (
                await li.get_attribute("data-type"),
                float(await li.get_attribute("data-offset-hours") or 0),
            )
            for li in await events.all()
        ]
        steps = {
            "ComplaintReceived": 0.0,
            "FirstResponseSent": 1.0,
            "InvestigationStarted": 6.0,
            "SolutionProposed": 12.0,
            "CaseResolved": 18.0,
        }
        for event_type, hours in steps.items():
            assert (event_type, hours) in seen
        order = [event_type for event_type, _ in seen]
        assert [t for t in order if t in steps] == list(steps)
        callback = order.index("CallbackAttempted")
        assert callback > order.index("CaseResolved")
        assert order.index("SurveyAnswered") > order.index("CaseResolved")
        for hours in ("0 h", "1 h", "6 h", "12 h", "18 h"):
            await expect(page.locator("#timeline .offset", has_text=hours).first).to_be_visible()
        # Both milestones met within target: no breach on the seed's timeline.
        bars = page.locator("tr.milestone-row")
        await expect(bars).to_have_count(2)
        for bar in await bars.all():
            assert await bar.get_attribute("data-outcome") == "met"
        await expect(page.locator(".survey[data-type=SurveyAnswered]")).to_contain_text(
            "satisfaction=5"
        )
        await expect(page.locator("svg.chart rect.run.met")).to_have_count(2)
        await shot(page, "console-timeline")

        # The English switch keeps the page and changes its words.
        await page.click("#lang-switch")
        await expect(page.locator("h1")).to_contain_text("Case timeline")
        await expect(page.locator("#timeline")).to_contain_text("FirstResponseSent")


async def test_kpi_overview_drills_down_to_the_cases_behind_a_bar(
    analytics: Any, browser: Browser, kit: Any
) -> None:
    t0 = datetime(2025, 11, 1, 2, 0, tzinfo=UTC)
    wang = kit(contact_at=t0, customer_ref="cust-wang", product_line="laptops")
    story = wang_story(wang, t0)
    others: list[tuple[datetime, Event]] = []
    late = []
    for i, (category, channel) in enumerate(
        [("product_quality", "web_form"), ("product_quality", "app"), ("delivery_delay", "email")]
    ):
        at = t0 + timedelta(days=i + 1)
        c = kit(contact_at=at, customer_ref=f"cust-{i}", channel=channel)
        late.append(c)
        others += [(at, c.received()), (at, c.classified(category))]
    previous = kit(contact_at=t0 - timedelta(days=10), customer_ref="cust-old")
    others += [(t0 - timedelta(days=10), previous.received())]
    async with serving(analytics) as base:
        await send_at(analytics, *story, *others)
        await analytics.until_applied(len(story) + len(others))
        page = await sign_in(
            browser, base, await credential(analytics, base, "ops"), "/console/kpis"
        )
        await page.goto(f"{base}/console/kpis?month=2025-11")
        volume = page.locator('.tile[data-metric="volume"]')
        await expect(volume.locator(".count")).to_have_text("4")
        await expect(volume.locator(".previous")).to_contain_text("1")
        bars = page.locator("#by-category a.drill")
        await expect(bars).to_have_count(2)
        await shot(page, "console-kpis")

        await bars.first.click()  # the largest bar first: product quality, three complaints
        await page.wait_for_url("**/console/drill**")
        rows = page.locator("table.drill-rows tbody tr")
        await expect(rows).to_have_count(3)
        text = await page.locator("table.drill-rows").inner_text()
        assert str(wang.complaint_id)[:8] in text
        assert str(late[0].complaint_id)[:8] in text
        assert str(late[1].complaint_id)[:8] in text
        assert str(late[2].complaint_id)[:8] not in text
        await page.locator("table.drill-rows a").first.click()
        await page.wait_for_url("**/console/cases/**")
        await shot(page, "console-drill")


async def test_alerts_show_their_evidence_and_a_manager_acknowledges_with_csrf(
    analytics: Any, browser: Browser, kit: Any
) -> None:
    series = Series("category_product_line", "product_quality", "laptops")
    days = [date(2025, 10, 31) - timedelta(days=i) for i in range(28)]
    counts = {day: 2 + (i % 3) for i, day in enumerate(days)}
    counts[days[0]] = 19
    spike: list[Any] = []
    timed: list[tuple[datetime, Event]] = []
    for day, n in counts.items():
        for j in range(n):
            at = datetime(day.year, day.month, day.day, 2 + j % 8, tzinfo=UTC)
            c = kit(contact_at=at, customer_ref=f"c-{day}-{j}", product_line="laptops")
            if day == days[0]:
                spike.append(c)
            timed += [(at, c.received()), (at, c.classified("product_quality"))]
    evidence = Evidence(
        day=days[0],
        first_day=days[0],
        method="farrington_nb",
        observed=19,
        expected=3.1,
        upper_bound=8.4,
        p_value=1e-6,
        complaint_ids=tuple(c.complaint_id for c in spike),
        shared={"region": "east"},
    )
    async with serving(analytics) as base:
        await send_at(analytics, *timed)
        await analytics.until_applied(len(timed))
        alert = Alert.raise_for(series, evidence, NOW)
        async with analytics.ctx.uow() as uow:
            await uow.alerts.save(alert)
            uow.track(alert)
            await uow.commit()

        page = await sign_in(browser, base, admin_key(analytics), "/console/alerts")
        card = page.locator(f'article.alert[data-alert="{alert.id}"]')
        await expect(card).to_be_visible()
        await expect(card.locator("svg.chart rect.band")).to_have_count(1)
        await expect(card.locator(".numbers")).to_contain_text("19")
        await shot(page, "console-alerts")

        # A form post without the session's CSRF token is refused and changes nothing.
        forged = await page.request.post(f"{base}/console/alerts/{alert.id}/acknowledge", form={})
        assert forged.status == 403
        await card.locator("button.acknowledge").click()
        await page.wait_for_url("**/console/alerts")
        await expect(card.locator(".pill").first).to_have_text("已确认")
        async with analytics.ctx.uow() as uow:
            stored = await uow.alerts.get(alert.id)
        assert stored is not None and stored.state == "acknowledged"

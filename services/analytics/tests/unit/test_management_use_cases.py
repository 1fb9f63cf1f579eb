"""Manager use cases on a fake unit of work: no Kafka, no Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from analytics_factories import improvement_action, raised_alert
from tousu_analytics.domain.actions import Target
from tousu_analytics.domain.alerts import Alert, Series
from tousu_analytics.service_layer import management
from tousu_analytics.service_layer.context import AnalyticsContext
from tousu_analytics.settings import AnalyticsSettings
from tousu_shared.auth import Principal
from tousu_shared.clock import FixedClock
from tousu_shared.contracts.analytics import SystemicIssueDetected
from tousu_shared.errors import Conflict, InvalidInput, NotFound
from tousu_shared.uow import FakeUnitOfWork

MANAGER = Principal("k1", "zhao", "manager", "quality", frozenset({"cases:manage"}))


class _Store:
    def __init__(self) -> None:
        self.items: dict[uuid.UUID, Any] = {}

    async def get(self, item_id: uuid.UUID, *, lock: bool = False) -> Any:
        return self.items.get(item_id)

    async def save(self, item: Any) -> None:
        self.items[item.id] = item


class FakeAnalyticsUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.alerts = _Store()
        self.actions = _Store()


@pytest.fixture
def uow() -> FakeAnalyticsUnitOfWork:
    return FakeAnalyticsUnitOfWork()


@pytest.fixture
def ctx(uow: FakeAnalyticsUnitOfWork) -> AnalyticsContext:
    clock = FixedClock(datetime(2025, 5, 21, 2, tzinfo=UTC))
    return AnalyticsContext(
        uow=lambda: uow,
        clock=clock,  # type: ignore[arg-type,return-value]
        settings=AnalyticsSettings(),
    )


def _alert() -> Alert:
    return raised_alert(
        Series("category_product_line", "product_quality", "laptops"),
        datetime(2025, 5, 21, tzinfo=UTC),
    )


async def test_a_manager_links_an_alert_to_an_action_and_it_is_audited(uow, ctx) -> None:
    alert = _alert()
    await uow.alerts.save(alert)
    action = await management.create_action(
        ctx,
        MANAGER,
        management.CreateAction(
            title="Quarantine",
            target=Target(product_line="laptops"),
            plan="recall",
            owner="lead",
            starts_on=date(2025, 5, 21),
            due_on=None,
            target_rate=None,
            alert_id=alert.id,
            root_cause=None,
        ),
    )
    linked = await management.decide_alert(
        ctx, MANAGER, management.DecideAlert(alert.id, "link", action.id)
    )
    assert linked.state == "linked" and linked.action_id == action.id
    assert [entry.action for entry in uow.audited] == ["improvement_action.create", "alert.link"]
    assert uow.events(SystemicIssueDetected) == []  # decisions publish nothing
    with pytest.raises(Conflict):
        await management.decide_alert(
            ctx, MANAGER, management.DecideAlert(alert.id, "dismiss", reason="x")
        )


async def test_refusals_name_the_field(uow, ctx) -> None:
    alert = _alert()
    await uow.alerts.save(alert)
    with pytest.raises(InvalidInput) as no_action:
        await management.decide_alert(
            ctx, MANAGER, management.DecideAlert(alert.id, "link", uuid.uuid4())
        )
    assert no_action.value.field == "action_id"
    with pytest.raises(NotFound):
        await management.decide_alert(
            ctx, MANAGER, management.DecideAlert(uuid.uuid4(), "acknowledge")
        )
    assert uow.commits == 0


async def test_an_action_advances_on_the_clock_day_by_default(uow, ctx) -> None:
    action = improvement_action(starts_on=date(2025, 5, 1))
    await uow.actions.save(action)
    moved = await management.advance_action(ctx, MANAGER, action.id, "do", None, "go")
    assert moved.state == "do" and moved.started_on == date(2025, 5, 21)
    assert uow.audited[-1].action == "improvement_action.do"

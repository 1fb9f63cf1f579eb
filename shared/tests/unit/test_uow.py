"""The unit of work's collecting rules, on the fake (no database)."""

import uuid
from dataclasses import dataclass, field

import pytest
from contract_events import customer_message_added as added
from tousu_shared.auth import Principal
from tousu_shared.contracts.complaint import CustomerMessageAdded
from tousu_shared.uow import FakeUnitOfWork, OutgoingMessage

WHO = Principal(key_id="k", name="tester", role="admin", department=None)


@dataclass
class Aggregate:
    complaint: uuid.UUID
    pending: list[OutgoingMessage] = field(default_factory=list)

    def change(self, n: int) -> None:
        self.pending.append(OutgoingMessage(added(self.complaint, n)))

    def pull_messages(self) -> list[OutgoingMessage]:
        pending, self.pending = self.pending, []
        return pending


async def test_commit_publishes_tracked_and_direct_events_in_the_order_they_happened():
    uow, aggregate = FakeUnitOfWork(), Aggregate(uuid.uuid4())
    async with uow:
        uow.track(aggregate)
        aggregate.change(1)
        uow.publish(added(aggregate.complaint, 2))
        aggregate.change(3)
        uow.audit(WHO, "thing.done", "thing", "t-1", complaint_id=aggregate.complaint)
        await uow.commit()
    assert [e.message_id for e in uow.events(CustomerMessageAdded)] == ["1", "2", "3"]
    assert [entry.action for entry in uow.audited] == ["thing.done"]
    assert uow.audited[0].actor == "admin:tester"
    assert uow.commits == 1


async def test_leaving_without_commit_publishes_nothing_and_audits_nothing():
    uow, aggregate = FakeUnitOfWork(), Aggregate(uuid.uuid4())
    async with uow:
        uow.track(aggregate)
        aggregate.change(1)
        uow.audit(WHO, "thing.done", "thing")
    assert uow.published == [] and uow.audited == [] and uow.commits == 0


async def test_an_exception_rolls_back_and_a_later_unit_of_work_starts_clean():
    uow, aggregate = FakeUnitOfWork(), Aggregate(uuid.uuid4())
    with pytest.raises(RuntimeError):
        async with uow:
            uow.publish(added(aggregate.complaint, 1))
            raise RuntimeError("boom")
    async with uow:
        uow.publish(added(aggregate.complaint, 2))
        await uow.commit()
    assert [e.message_id for e in uow.events()] == ["2"]


async def test_tracking_the_same_aggregate_twice_publishes_its_events_once():
    uow, aggregate = FakeUnitOfWork(), Aggregate(uuid.uuid4())
    async with uow:
        uow.track(aggregate)
        uow.track(aggregate)
        aggregate.change(1)
        await uow.commit()
    assert len(uow.published) == 1

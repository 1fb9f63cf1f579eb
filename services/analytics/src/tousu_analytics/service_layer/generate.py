"""Synthetic complaints through the read model's own write path (projection + writer).

For scale measurements: each complaint's lifecycle is written as the contract events the
other services would publish, turned into read-model changes by ``domain/projection.py``
and applied by the same writer the consumer uses, a batch per transaction (Kafka and the
inbox are skipped: they bound throughput, not the read model's size).

Complaints arrive in time order, as the consumer sees them, spread evenly with random
jitter over the period; the ids come from the seed, so running the same generation again
changes nothing (the merges are idempotent) and an interrupted one can be completed. The
next batch is built in a thread while the database applies the current one.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from tousu_shared.contracts import Event
from tousu_shared.contracts.case import CaseReopened, CaseResolved, CaseRouted, FirstResponseSent
from tousu_shared.contracts.complaint import (
    ClassificationData,
    ComplaintClassified,
    ComplaintReceived,
)
from tousu_shared.contracts.feedback import SurveyAnswered
from tousu_shared.contracts.sla import SlaMet
from tousu_shared.contracts.vocabulary import Category, Channel

from tousu_analytics.domain.projection import Upsert, changes_for
from tousu_analytics.service_layer.context import AnalyticsContext

DEPARTMENTS = ("quality", "logistics", "service", "billing", "after_sales")
PRODUCT_LINES = ("laptops", "phones", "tablets", "accessories", "services")
REGIONS = ("north", "east", "south", "west", "central")
ROOT_CAUSES = ("supplier batch", "courier delay", "staff training", "pricing error", "other")


def _met(
    complaint_id: uuid.UUID, milestone: str, start: datetime, met_at: datetime, target: timedelta
) -> SlaMet:
    """The SLA monitor's verdict on a milestone reached at ``met_at``.

    Business time is taken as 40% of the wall-clock wait (nights and weekends excluded,
    roughly), so the business-time KPIs have plausible values without a calendar.
    """
    return SlaMet(
        complaint_id=complaint_id,
        milestone=milestone,
        policy="gen",
        due_at=start + target,
        met_at=met_at,
        elapsed_seconds=(met_at - start).total_seconds() * 0.4,
        within_target=met_at - start < target,
    )


def _events(rng: random.Random, at: datetime) -> Iterator[Event]:
    complaint_id = uuid.UUID(int=rng.getrandbits(128))
    category = rng.choice(list(Category))
    department = rng.choice(DEPARTMENTS)
    yield ComplaintReceived(
        complaint_id=complaint_id,
        tracking_code="TS-GEN",
        channel=rng.choice(list(Channel)),
        contact_at=at,
        received_at=at,
        customer_ref=f"cust-{rng.randrange(300_000)}",
        customer_tier="vip" if rng.random() < 0.05 else "regular",
        product_line=rng.choice(PRODUCT_LINES),
        region=rng.choice(REGIONS),
        resolved_on_first_contact=rng.random() < 0.2,
        contact_details_url="https://intake/c",
    )
    yield ComplaintClassified(
        complaint_id=complaint_id,
        explanation={},
        ruleset_version="generated",
        classification=ClassificationData(
            category=category, severity="general", urgency="routine", customer_tier="regular"
        ),
    )
    case = {"complaint_id": complaint_id, "department": department, "actor": "gen"}
    yield CaseRouted(
        **case,
        occurred_at=at,
        recorded_at=at,
        case_version=1,
        rule_id="gen",
        rule_reason="gen",
        handler_level="agent",
        category=category,
        severity="general",
        urgency="routine",
        contact_details_url="https://c",
    )
    responded = at + timedelta(hours=rng.expovariate(1 / 6))
    yield FirstResponseSent(**case, occurred_at=responded, recorded_at=responded, case_version=2)
    yield _met(complaint_id, "first_response", at, responded, timedelta(hours=24))
    if rng.random() < 0.85:
        done = responded + timedelta(hours=rng.expovariate(1 / 48))
        yield CaseResolved(
            **case,
            occurred_at=done,
            recorded_at=done,
            case_version=3,
            resolution="fixed",
            root_cause=rng.choice(ROOT_CAUSES),
            responsible_person="gen",
        )
        yield _met(complaint_id, "resolve", at, done, timedelta(days=7))
        if rng.random() < 0.5:
            yield SurveyAnswered(
                complaint_id=complaint_id,
                survey_id=f"s-{complaint_id}",
                solved=True,
                satisfaction=rng.choice((2, 3, 4, 4, 5, 5)),
                answered_at=done + timedelta(days=1),
                source=rng.choice(("link", "callback")),
                confirmed=rng.random() < 0.7,
            )
        if rng.random() < 0.05:
            yield CaseReopened(
                **case,
                occurred_at=done + timedelta(days=2),
                recorded_at=done + timedelta(days=2),
                case_version=4,
                reason="gen",
            )


async def generate(
    ctx: AnalyticsContext,
    complaints: int,
    *,
    start: datetime | None = None,
    days: int = 365,
    seed: int = 1,
    batch: int = 10_000,
) -> int:
    """Write ``complaints`` synthetic complaints spread over ``days`` from ``start``."""
    rng = random.Random(seed)
    start = start or datetime(2025, 1, 1, tzinfo=UTC)
    spacing = days * 86400 / max(complaints, 1)

    def build(first: int) -> list[Upsert]:
        changes: list[Upsert] = []
        for n in range(first, min(first + batch, complaints)):
            at = start + timedelta(seconds=(n + rng.random()) * spacing)
            for event in _events(rng, at):
                changes += changes_for(event, uuid.UUID(int=rng.getrandbits(128)))
        return changes

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1, thread_name_prefix="generate") as pool:
        pending = loop.run_in_executor(pool, build, 0)
        for first in range(0, complaints, batch):
            changes = await pending
            if first + batch < complaints:
                pending = loop.run_in_executor(pool, build, first + batch)
            async with ctx.uow() as uow:
                await uow.read_model.apply(changes)
                await uow.commit()
    return complaints

"""Retraining from people's corrections: corrections become training data, a candidate is
promoted only when it is not worse, and a worse one is stored rejected with the reason."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from tousu_intake.adapters.model_store import ModelRecord
from tousu_intake.adapters.training_data import Correction, correction_from_row
from tousu_intake.domain.classification import Classifier, ComplaintFacts
from tousu_intake.domain.classification.corpus import load_split
from tousu_intake.domain.classification.training import train
from tousu_intake.service_layer.retraining import (
    ReadCorrections,
    RetrainCommand,
    retrain,
    split_corrections,
    verdict,
)
from tousu_shared.clock import FixedClock

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class FakeRegistry:
    """In-memory model registry."""

    def __init__(self) -> None:
        self.records: list[ModelRecord] = []

    async def add(self, record: ModelRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def corpus():
    # A third of the training split keeps each training run to a second or two.
    return load_split("train")[::3]


@pytest.fixture(scope="module")
def test_split():
    return load_split("test")[::2]


@pytest.fixture(scope="module")
def current(corpus):
    return train([item.example() for item in corpus], "current")


def correction(text: str, minutes: int, **labels) -> Correction:
    return Correction(
        complaint_id=f"c-{minutes}",
        corrected_at=START + timedelta(minutes=minutes),
        facts=ComplaintFacts(description=text, channel="phone"),
        labels=labels,
    )


def run(command, registry, corrections, corpus, test_split, current):
    return asyncio.run(
        retrain(
            command,
            registry=registry,
            corrections=ReadCorrections(corrections),
            corpus=corpus,
            test=test_split,
            current=current,
            rules=Classifier(model=None).rules,
            clock=FixedClock(START + timedelta(days=1)),
        )
    )


def test_a_correction_row_labels_only_what_the_person_corrected():
    row = {
        "id": "0d6c",
        "description": "积分兑换的东西一直没发",
        "channel": "app",
        "customer_tier": "regular",
        "amount": Decimal("20.00"),
        "affected_customers": None,
        "manual_classification": {"category": "delivery_delay", "severity": "minor"},
        "manual_classified_at": START,
    }
    found = correction_from_row(row)
    assert found is not None
    assert found.labels == {"category": "delivery_delay", "severity": "minor"}
    example = found.example()
    assert (example.category, example.minor) == ("delivery_delay", True)
    assert example.emotion is None and example.risk_flags is None  # untouched: not learned
    assert correction_from_row({**row, "manual_classification": {}}) is None


def test_the_newest_corrections_are_held_back_for_evaluation():
    corrections = [correction(f"text {i}", minutes=i) for i in range(10)]
    older, recent = split_corrections(list(reversed(corrections)), share=0.3, limit=200)
    assert [c.complaint_id for c in recent] == ["c-7", "c-8", "c-9"]
    assert len(older) == 7
    assert split_corrections(corrections[:1], share=0.3, limit=200) == (corrections[:1], [])


def test_verdict_refuses_any_measure_that_got_worse():
    current = {"test_category": 0.80, "test_emotion": 0.70, "recent_corrections": None}
    assert verdict({**current, "test_category": 0.80}, current, tolerance=0.0)[0]
    promote, reason = verdict({**current, "test_emotion": 0.69}, current, tolerance=0.0)
    assert not promote and "test_emotion 0.700 → 0.690" in reason
    assert verdict({**current, "test_emotion": 0.69}, current, tolerance=0.02)[0]


def test_corrections_teach_the_candidate_and_it_is_promoted(corpus, test_split, current):
    # People keep correcting one new kind of complaint (a made-up product name) to
    # handling_timeliness; the current model has never seen the word.
    phrasings = [
        "星尘卡的申请拖了{}天还没有人处理",
        "星尘卡开通一直卡在审核,已经{}天了",
        "星尘卡的进度{}天没有任何更新",
        "星尘卡的工单{}天没人跟进",
    ]
    corrections = [
        correction(p.format(n), minutes=n * 4 + i, category="handling_timeliness")
        for n in range(3, 15)
        for i, p in enumerate(phrasings)
    ]
    registry = FakeRegistry()
    outcome = run(
        RetrainCommand(actor="ops-lead", tolerance=0.02),
        registry,
        corrections,
        corpus,
        test_split,
        current,
    )
    assert outcome.status == "promoted", outcome.reason
    record = registry.records[-1]
    assert record.status == "promoted" and record.promoted_by == "ops-lead"
    assert record.trained_on_size == len(corpus) + outcome.metrics["corrections_trained"]
    assert outcome.metrics["corrections_evaluated"] > 0
    assert (
        outcome.metrics["candidate"]["recent_corrections"]
        >= (outcome.metrics["current"]["recent_corrections"])
    )
    text = "星尘卡的申请等了好久都没有结果"
    learned = Classifier(model=outcome.model).classify(
        ComplaintFacts(description=text, channel="app")
    )
    assert learned.category.value == "handling_timeliness"
    assert learned.model_version == outcome.version == record.version


def test_a_worse_candidate_is_stored_rejected_with_the_reason(corpus, test_split, current):
    # Careless corrections: ordinary complaints of the corpus all relabelled `other`.
    corrections = [
        correction(item.facts.description, minutes=i, category="other", emotion="calm")
        for i, item in enumerate(load_split("train")[1::3][:400])
    ]
    registry = FakeRegistry()
    outcome = run(
        RetrainCommand(actor="ops-lead"), registry, corrections, corpus, test_split, current
    )
    assert outcome.status == "rejected"
    assert "test_category" in outcome.reason
    record = registry.records[-1]
    assert record.status == "rejected"
    assert record.promoted_at is None and record.promoted_by is None
    assert record.reason == outcome.reason
    assert record.metrics["candidate"]["test_category"] < record.metrics["current"]["test_category"]
    assert record.artefact  # kept, so the rejection can be examined

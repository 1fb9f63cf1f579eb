"""The labelled corpus: size, languages, the separately written test split, label coherence,
and the measures the report prints."""

from dataclasses import replace

import pytest
from tousu_intake.domain.classification import Category, RiskFlag, Severity
from tousu_intake.domain.classification.corpus import LabelledComplaint, load_split
from tousu_intake.domain.classification.evaluate import (
    ALL_TEST,
    CLEAN_TEST,
    CLEAN_TEST_FROM_BATCH,
    FRESH_TEST,
    FRESH_TEST_FROM_BATCH,
    NEW_TEST,
    NEW_TEST_FROM_BATCH,
    NEWEST_TEST,
    NEWEST_TEST_FROM_BATCH,
    OLD_TEST,
    Scores,
    batch_number,
    folds,
    grouped_test_split,
)

URGENCY_BY_SEVERITY = {"minor": 0, "general": 1, "serious": 2, "major": 3}
URGENCY = ("deferred", "routine", "priority", "immediate")


def test_corpus_is_large_bilingual_and_covers_every_label():
    train, test = load_split("train"), load_split("test")
    assert len(train) + len(test) >= 2000
    for split in (train, test):
        assert {i.language for i in split} == {"zh", "en"}
        assert {i.labels["category"] for i in split} == {c.value for c in Category}
        assert {f for i in split for f in i.labels["risk_flags"]} == {f.value for f in RiskFlag}
        rubric = [i for i in split if i.rubric_labels]
        assert {i.labels["severity"] for i in rubric} == {s.value for s in Severity}


def test_test_split_is_separate_from_training():
    train, test = load_split("train"), load_split("test")
    assert not {i.facts.description for i in train} & {i.facts.description for i in test}
    assert not {i.id for i in train} & {i.id for i in test}
    # The clean batches are written for industries in neither the training split nor the old
    # test batches; the old batches' industries are now also trained on (README.md).
    groups = grouped_test_split(test)
    clean_industries = {i.industry for i in groups[CLEAN_TEST]}
    assert not clean_industries & {i.industry for i in train}
    assert not clean_industries & {i.industry for i in groups[OLD_TEST]}


def test_dev_split_is_neither_training_nor_test():
    # The dev split (evaluation/dev/, README "Dev split") tunes the flag rules: it must not
    # train the model nor be scored as test, and shares no text with either split.
    train, test, dev = load_split("train"), load_split("test"), load_split("dev")
    assert len(dev) >= 100 and {i.language for i in dev} == {"zh", "en"}
    assert all(i.split == "dev" and i.id.startswith("dev-") for i in dev)
    texts = {i.facts.description for i in dev}
    assert not texts & {i.facts.description for i in train}
    assert not texts & {i.facts.description for i in test}
    assert {f for i in dev for f in i.labels["risk_flags"]} == {f.value for f in RiskFlag}


def test_the_report_splits_the_test_batches_into_clean_and_old():
    test = load_split("test")
    groups = grouped_test_split(test)
    assert {i.id for i in groups[CLEAN_TEST]} | {i.id for i in groups[OLD_TEST]} == {
        i.id for i in test
    }
    assert not {i.id for i in groups[CLEAN_TEST]} & {i.id for i in groups[OLD_TEST]}
    assert groups[ALL_TEST] == test
    assert all(batch_number(i) >= CLEAN_TEST_FROM_BATCH for i in groups[CLEAN_TEST])
    assert all(1 <= batch_number(i) < CLEAN_TEST_FROM_BATCH for i in groups[OLD_TEST])
    assert groups[CLEAN_TEST] and groups[OLD_TEST]
    # The fresh (15–20), new (21–23) and newest (24+) batches are the latest clean ones, scored
    # again on their own; each group stops where the next one starts.
    fresh = [
        i
        for i in groups[CLEAN_TEST]
        if FRESH_TEST_FROM_BATCH <= batch_number(i) < NEW_TEST_FROM_BATCH
    ]
    new = [
        i
        for i in groups[CLEAN_TEST]
        if NEW_TEST_FROM_BATCH <= batch_number(i) < NEWEST_TEST_FROM_BATCH
    ]
    newest = [i for i in groups[CLEAN_TEST] if batch_number(i) >= NEWEST_TEST_FROM_BATCH]
    assert groups[FRESH_TEST] == fresh and groups[NEW_TEST] == new
    assert groups[NEWEST_TEST] == newest
    assert (
        CLEAN_TEST_FROM_BATCH < FRESH_TEST_FROM_BATCH < NEW_TEST_FROM_BATCH < NEWEST_TEST_FROM_BATCH
    )
    assert len(groups[FRESH_TEST]) >= 150 and len(groups[NEW_TEST]) >= 100
    assert len(groups[NEWEST_TEST]) >= 60


def test_batch_numbers_come_from_the_test_ids():
    items = _items("test-10_clinics-001", "test-03_public-017")
    assert [batch_number(i) for i in items] == [10, 3]
    groups = grouped_test_split(items)
    assert [i.id for i in groups[CLEAN_TEST]] == ["test-10_clinics-001"]
    assert [i.id for i in groups[OLD_TEST]] == ["test-03_public-017"]
    with pytest.raises(ValueError):
        batch_number(_items("t-zh-001")[0])


def _items(*ids: str) -> list[LabelledComplaint]:
    example = load_split("test")[0]
    return [replace(example, id=one) for one in ids]


def test_urgency_labels_follow_the_rubric():
    for item in load_split("train") + load_split("test"):
        if not item.rubric_labels:
            continue
        labels = item.labels
        if labels["risk_flags"]:
            assert labels["urgency"] == "immediate", item.id
            continue
        step = URGENCY_BY_SEVERITY[labels["severity"]] + (item.facts.customer_tier == "vip")
        assert labels["urgency"] == URGENCY[min(step, 3)], item.id


def test_folds_are_disjoint_stratified_and_complete():
    items = load_split("train")
    parts = folds(items, k=5)
    indices = [i for part in parts for i in part]
    assert sorted(indices) == list(range(len(items)))
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 9  # at most one per category apart


def test_expected_calibration_error():
    scores = Scores()
    # Confidence 0.9, right 9 of 10 times: calibrated. Confidence 0.8, always right: gap 0.2.
    scores.calibration["category"] = [(0.9, i < 9) for i in range(10)] + [(0.8, True)] * 10
    assert abs(scores.ece("category") - 0.1) < 1e-9
    assert scores.ece("emotion") is None

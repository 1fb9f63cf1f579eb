"""The labelled corpus: size, languages, the separately written test split, label coherence,
and the measures the report prints."""

from tousu_intake.domain.classification import Category, RiskFlag, Severity
from tousu_intake.domain.classification.corpus import load_split
from tousu_intake.domain.classification.evaluate import Scores, folds

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
    # Written for other industries than the training split.
    assert not {i.industry for i in test} & {i.industry for i in train}


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

"""Training the text model with scikit-learn and exporting it to the run-time form (textmodel.py).

Features: tf-idf over character 1–3-grams and jieba-segmented words (one vocabulary).
Each head is a linear SVM (one-vs-rest) whose scores are calibrated into probabilities with
Platt scaling (CalibratedClassifierCV, sigmoid, ensemble=False: one linear model per head, so
the weights that explain a decision are the ones that made it). A linear SVM trains in a
fraction of a second here, which keeps 5-fold cross-validation and retraining cheap.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from .model import RiskFlag
from .textmodel import FeatureSpec, Head, TextModel, features

NO, YES = "no", "yes"
MULTICLASS_HEADS = ("category", "emotion")


@dataclass(frozen=True)
class Example:
    """One labelled text; a label left None does not train that head (partial corrections)."""

    text: str
    category: str | None = None
    emotion: str | None = None
    risk_flags: tuple[str, ...] | None = None
    minor: bool | None = None  # severity "minor" judged from the text (trivial, enquiry…)
    source: str = "corpus"


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters, chosen by cross-validation on the training split only."""

    c_multiclass: float = 1.0
    c_binary: float = 1.0
    min_df: int = 2
    max_features: int = 30_000
    calibration_folds: int = 3
    balanced_multiclass: bool = False  # class weights inverse to frequency for category/emotion
    # Words of the clauses that ask for something: +0.2–0.3 points of category in 5-fold CV.
    # Latin-word 4–5-grams: English category +1.6 points (79.2 → 80.8), all +0.4 in 5-fold CV
    # on the same folds (fifth helper, evaluation/README.md).
    features: FeatureSpec = field(
        default_factory=lambda: FeatureSpec(ask_words=True, latin_word_grams=(4, 5))
    )


def head_labels(examples: Sequence[Example]) -> dict[str, list[tuple[int, str]]]:
    """(example index, label) per head, skipping examples that do not label that head."""
    heads: dict[str, list[tuple[int, str]]] = {"category": [], "emotion": [], "minor": []}
    for flag in RiskFlag:
        heads[f"flag:{flag.value}"] = []
    for i, ex in enumerate(examples):
        if ex.category is not None:
            heads["category"].append((i, ex.category))
        if ex.emotion is not None:
            heads["emotion"].append((i, ex.emotion))
        if ex.minor is not None:
            heads["minor"].append((i, YES if ex.minor else NO))
        if ex.risk_flags is not None:
            for flag in RiskFlag:
                heads[f"flag:{flag.value}"].append((i, YES if flag.value in ex.risk_flags else NO))
    return heads


def corpus_fingerprint(examples: Sequence[Example]) -> str:
    """Hash of the training data (texts and labels), recorded with every trained version."""
    digest = hashlib.sha256()
    for ex in examples:
        row = [ex.text, ex.category, ex.emotion, ex.risk_flags, ex.minor]
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()[:16]


@dataclass
class Fitted:
    """The fitted scikit-learn objects, before export (kept for tests and diagnostics)."""

    vectoriser: TfidfVectorizer
    heads: dict[str, CalibratedClassifierCV]
    spec: FeatureSpec  # the features the vectoriser computes, exported with the weights


def fit(examples: Sequence[Example], config: TrainingConfig | None = None) -> Fitted:
    """Fit the vocabulary and every head on the examples that label it."""
    config = config or TrainingConfig()
    vectoriser = TfidfVectorizer(
        analyzer=partial(features, spec=config.features),
        min_df=config.min_df,
        max_features=config.max_features,
        sublinear_tf=True,
        dtype=np.float32,
    )
    matrix = vectoriser.fit_transform([ex.text for ex in examples])
    fitted: dict[str, CalibratedClassifierCV] = {}
    for name, labelled in head_labels(examples).items():
        labels = [label for _, label in labelled]
        counts = Counter(labels)
        if len(counts) < 2 or min(counts.values()) < 2:
            continue  # nothing to learn (e.g. no positive example of a flag)
        binary = name not in MULTICLASS_HEADS
        base = LinearSVC(
            C=config.c_binary if binary else config.c_multiclass,
            class_weight="balanced" if binary or config.balanced_multiclass else None,
        )
        folds = min(config.calibration_folds, min(counts.values()))
        model = CalibratedClassifierCV(base, method="sigmoid", cv=folds, ensemble=False)
        model.fit(matrix[[i for i, _ in labelled]], labels)
        fitted[name] = model
    return Fitted(vectoriser=vectoriser, heads=fitted, spec=config.features)


def export(fitted: Fitted, version: str, examples: Sequence[Example]) -> TextModel:
    """The run-time model: vocabulary, idf, stacked weights and Platt parameters."""
    vocabulary = [""] * len(fitted.vectoriser.vocabulary_)
    for feature, column in fitted.vectoriser.vocabulary_.items():
        vocabulary[column] = feature
    columns: list[np.ndarray] = []
    intercepts: list[float] = []
    heads: list[Head] = []
    start = 0
    for name, model in fitted.heads.items():
        calibrated = model.calibrated_classifiers_[0]
        estimator = calibrated.estimator
        coef = estimator.coef_.astype(np.float32)  # (1 or n_classes, n_features)
        columns.extend(coef)
        intercepts.extend(float(v) for v in estimator.intercept_)
        stop = start + coef.shape[0]
        heads.append(
            Head(
                name=name,
                classes=tuple(str(c) for c in estimator.classes_),
                start=start,
                stop=stop,
                calibration_a=tuple(float(c.a_) for c in calibrated.calibrators),
                calibration_b=tuple(float(c.b_) for c in calibrated.calibrators),
            )
        )
        start = stop
    weights = np.stack(columns, axis=1) if columns else np.zeros((len(vocabulary), 0))
    return TextModel(
        version=version,
        vocabulary=vocabulary,
        idf=fitted.vectoriser.idf_.astype(np.float32),
        weights=weights,
        intercept=np.asarray(intercepts, dtype=np.float32),
        heads=heads,
        spec=fitted.spec,
        info={
            "trained_on_hash": corpus_fingerprint(examples),
            "trained_on_size": len(examples),
            "features": len(vocabulary),
        },
    )


def train(
    examples: Sequence[Example], version: str, config: TrainingConfig | None = None
) -> TextModel:
    """Fit every head on the examples that label it and export one TextModel."""
    config = config or TrainingConfig()
    model = export(fit(examples, config), version, examples)
    model.info["config"] = {k: v for k, v in config.__dict__.items() if k != "features"}
    return model

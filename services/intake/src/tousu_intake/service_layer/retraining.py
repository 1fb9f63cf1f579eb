"""Retraining the text model from the corpus plus people's corrections, and promoting it safely.

A candidate is trained on the training split and the older corrections; it is compared with
the model in use on the held-out test split and on the most recent corrections (held back
from training for that purpose). It is promoted only if it is not worse on any compared
measure (beyond a tolerance); otherwise it is stored as rejected, with the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tousu_shared.clock import Clock

from tousu_intake.adapters.model_store import ModelRecord
from tousu_intake.adapters.training_data import Correction
from tousu_intake.domain.classification import Classifier, ClassifierRules
from tousu_intake.domain.classification.corpus import LabelledComplaint
from tousu_intake.domain.classification.evaluate import predicted_value, score
from tousu_intake.domain.classification.textmodel import TextModel
from tousu_intake.domain.classification.training import (
    Example,
    TrainingConfig,
    corpus_fingerprint,
    train,
)

# Measures on the test split that the model can change (risk flags are the rules').
TEST_MEASURES = ("category", "emotion", "severity")


class ModelRegistry(Protocol):
    """Where trained models are kept (adapters.model_store.SqlModelRegistry)."""

    async def add(self, record: ModelRecord) -> None: ...


class CorrectionSource(Protocol):
    """Where people's corrections come from (adapters.training_data.SqlCorrections)."""

    async def corrections(self, limit: int = ...) -> list[Correction]: ...


class ReadCorrections:
    """Corrections already read (so no transaction stays open while the model trains)."""

    def __init__(self, corrections: Sequence[Correction]) -> None:
        self._corrections = list(corrections)

    async def corrections(self, limit: int = 20_000) -> list[Correction]:
        """The corrections given at construction, at most `limit`."""
        return self._corrections[:limit]


@dataclass(frozen=True)
class RetrainCommand:
    """Retrain on behalf of `actor`; `tolerance` is how much worse (0..1) still counts as equal."""

    actor: str
    tolerance: float = 0.0
    recent_share: float = 0.3  # newest share of corrections held back for evaluation
    max_recent: int = 200
    config: TrainingConfig = field(default_factory=TrainingConfig)


@dataclass(frozen=True)
class RetrainOutcome:
    """What happened to the candidate."""

    version: str
    status: str  # promoted | rejected
    reason: str
    metrics: dict[str, Any]
    model: TextModel


def split_corrections(
    corrections: Sequence[Correction], share: float, limit: int
) -> tuple[list[Correction], list[Correction]]:
    """(older, for training; recent, for evaluation), by correction time."""
    ordered = sorted(corrections, key=lambda c: c.corrected_at)
    if len(ordered) < 2:
        return ordered, []
    recent = min(limit, max(1, round(len(ordered) * share)))
    return ordered[:-recent], ordered[-recent:]


def correction_accuracy(corrections: Sequence[Correction], classifier: Classifier) -> float | None:
    """Share of corrected dimensions the classifier now gets right (None without corrections)."""
    hits = total = 0
    for correction in corrections:
        result = classifier.classify(correction.facts)
        for dimension, value in correction.labels.items():
            if dimension == "risk_flags":
                expected = ",".join(sorted(value)) or "-"
            else:
                expected = str(value)
            hits += predicted_value(result, dimension) == expected
            total += 1
    return hits / total if total else None


def measure(
    classifier: Classifier, test: Sequence[LabelledComplaint], recent: Sequence[Correction]
) -> dict[str, float | None]:
    """The measures promotion compares: test-split accuracies and recent-correction accuracy."""
    scores = score(test, classifier)
    measures: dict[str, float | None] = {f"test_{d}": scores.accuracy(d) for d in TEST_MEASURES}
    measures["recent_corrections"] = correction_accuracy(recent, classifier)
    return measures


def verdict(
    candidate: dict[str, float | None], current: dict[str, float | None], tolerance: float
) -> tuple[bool, str]:
    """Promote only if no measure got worse by more than the tolerance."""
    worse = [
        f"{name} {current[name]:.3f} → {value:.3f}"
        for name, value in candidate.items()
        if value is not None
        and current.get(name) is not None
        and value < (current[name] or 0.0) - tolerance
    ]
    if worse:
        return False, "worse than the model in use on " + "; ".join(worse)
    return True, "not worse than the model in use on any measure"


async def retrain(
    command: RetrainCommand,
    *,
    registry: ModelRegistry,
    corrections: CorrectionSource,
    corpus: Sequence[LabelledComplaint],
    test: Sequence[LabelledComplaint],
    current: TextModel | None,
    rules: ClassifierRules,
    clock: Clock,
) -> RetrainOutcome:
    """Train a candidate, compare it with the model in use, store it promoted or rejected."""
    older, recent = split_corrections(
        await corrections.corrections(), command.recent_share, command.max_recent
    )
    examples: list[Example] = [item.example() for item in corpus] + [c.example() for c in older]
    now = clock()
    fingerprint = corpus_fingerprint(examples)
    version = f"m{now:%Y%m%d%H%M%S%f}-{fingerprint[:8]}"
    # Training and scoring take seconds of CPU: off the event loop.
    candidate = await asyncio.to_thread(train, examples, version, command.config)
    candidate_measures = await asyncio.to_thread(
        measure, Classifier(rules, model=candidate), test, recent
    )
    current_measures = await asyncio.to_thread(
        measure, Classifier(rules, model=current), test, recent
    )
    promote, reason = verdict(candidate_measures, current_measures, command.tolerance)
    metrics = {
        "candidate": candidate_measures,
        "current": current_measures,
        "current_version": current.version if current is not None else None,
        "corrections_trained": len(older),
        "corrections_evaluated": len(recent),
        "tolerance": command.tolerance,
    }
    artefact = candidate.to_bytes()
    await registry.add(
        ModelRecord(
            version=version,
            created_at=now,
            trained_on_hash=fingerprint,
            trained_on_size=len(examples),
            metrics=metrics,
            status="promoted" if promote else "rejected",
            reason=reason,
            promoted_at=now if promote else None,
            promoted_by=command.actor if promote else None,
            artefact=artefact,
        )
    )
    return RetrainOutcome(
        version=version,
        status="promoted" if promote else "rejected",
        reason=reason,
        metrics=metrics | {"artefact_sha256": hashlib.sha256(artefact).hexdigest()[:16]},
        model=candidate,
    )

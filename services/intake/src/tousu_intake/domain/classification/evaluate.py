"""Measure the classifier against the labelled evaluation set.

Usage: python -m tousu_intake.domain.classification.evaluate
           [--split tune|holdout|all] [--rules FILE] [--errors] [--timing] [path]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .classifier import Classifier
from .model import Category, Classification, ComplaintFacts
from .rules import ClassifierRules

DIMENSIONS = ("category", "severity", "urgency", "risk_flags", "emotion")
SPLITS = ("tune", "holdout")
# src/tousu_intake/domain/classification/evaluate.py → services/intake/evaluation/complaints.jsonl
DEFAULT_DATASET = Path(__file__).resolve().parents[4] / "evaluation" / "complaints.jsonl"

_SHORT = {
    "product_quality": "qual",
    "service_attitude": "attit",
    "price_dispute": "price",
    "delivery_delay": "deliv",
    "after_sales": "after",
    "handling_timeliness": "timel",
    "information_accuracy": "info",
    "policy_execution": "policy",
    "other": "other",
}


@dataclass(frozen=True)
class LabelledComplaint:
    """One line of the evaluation set."""

    id: str
    split: str
    facts: ComplaintFacts
    labels: dict[str, Any]


@dataclass
class SplitResult:
    """Per-dimension hits, the category confusion counts and the misses of one split."""

    total: int = 0
    correct: Counter = field(default_factory=Counter)
    confusion: Counter = field(default_factory=Counter)  # (true, predicted) → count
    misses: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # (id, dimension, true, predicted)

    def accuracy(self, dimension: str) -> float:
        """Share of complaints whose predicted value equals the label."""
        return self.correct[dimension] / self.total if self.total else 0.0


def load_dataset(path: Path | str = DEFAULT_DATASET) -> list[LabelledComplaint]:
    """Read the JSONL evaluation set; the classifier infers emotion, so none is passed in."""
    items = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row["split"] not in SPLITS:
                raise ValueError(f"line {number}: split must be one of {SPLITS}")
            facts = ComplaintFacts(
                description=row["text"],
                channel=row["channel"],
                customer_tier=row["customer_tier"],
                amount=None if row.get("amount") is None else Decimal(str(row["amount"])),
                affected_customers=row.get("affected_customers"),
                recent_complaints_by_customer=row.get("recent_complaints_by_customer", 0),
            )
            items.append(LabelledComplaint(row["id"], row["split"], facts, row["labels"]))
    return items


def _predicted(result: Classification, dimension: str) -> str:
    if dimension == "risk_flags":
        return ",".join(sorted(f.value for f in result.risk_flags)) or "-"
    return str(getattr(result, dimension).value)


def _expected(labels: dict[str, Any], dimension: str) -> str:
    if dimension == "risk_flags":
        return ",".join(sorted(labels["risk_flags"])) or "-"
    return str(labels[dimension])


def evaluate(
    dataset: Iterable[LabelledComplaint],
    classifier: Classifier | None = None,
    splits: Iterable[str] = SPLITS,
) -> dict[str, SplitResult]:
    """Classify every complaint of the chosen splits and score each dimension against its label."""
    classifier = classifier or Classifier()
    wanted = set(splits)
    results = {split: SplitResult() for split in SPLITS if split in wanted}
    for item in dataset:
        if item.split not in wanted:
            continue
        outcome = results[item.split]
        predicted = classifier.classify(item.facts)
        outcome.total += 1
        for dimension in DIMENSIONS:
            truth, guess = _expected(item.labels, dimension), _predicted(predicted, dimension)
            if truth == guess:
                outcome.correct[dimension] += 1
            else:
                outcome.misses.append((item.id, dimension, truth, guess))
        outcome.confusion[(item.labels["category"], predicted.category.value)] += 1
    return results


def format_accuracy_table(results: dict[str, SplitResult]) -> str:
    """Accuracy per dimension (rows) and split (columns)."""
    header = f"{'dimension':<12}" + "".join(
        f"{split + ' (n=' + str(r.total) + ')':>18}" for split, r in results.items()
    )
    rows = [header, "-" * len(header)]
    for dimension in DIMENSIONS:
        cells = "".join(
            f"{r.accuracy(dimension) * 100:>11.1f}% {r.correct[dimension]:>3}/{r.total:<3}".rjust(
                18
            )
            for r in results.values()
        )
        rows.append(f"{dimension:<12}{cells}")
    return "\n".join(rows)


def format_confusion(result: SplitResult) -> str:
    """Category confusion matrix: rows are the true category, columns the predicted one."""
    names = [c.value for c in Category]
    width = 8
    corner = "true \\ predicted"
    lines = [
        f"{corner:<22}"
        + "".join(f"{_SHORT[n]:>{width}}" for n in names)
        + f"{'recall':>{width + 1}}"
    ]
    for truth in names:
        row_total = sum(result.confusion[(truth, p)] for p in names)
        recall = result.confusion[(truth, truth)] / row_total if row_total else 0.0
        cells = "".join(f"{(result.confusion[(truth, p)] or '.'):>{width}}" for p in names)
        lines.append(f"{truth:<22}{cells}{recall * 100:>{width}.0f}%")
    return "\n".join(lines)


def measure_latency(
    dataset: list[LabelledComplaint], classifier: Classifier, rounds: int = 7
) -> dict[str, float]:
    """CPU milliseconds per classify() call over the set, after one warm-up pass.

    CPU time per round (not wall time per call) so that other work on the machine skews it less;
    reports the best and the median round.
    """
    facts = [item.facts for item in dataset]
    for one in facts:
        classifier.classify(one)
    per_call = []
    for _ in range(rounds):
        start = time.process_time()
        for one in facts:
            classifier.classify(one)
        per_call.append((time.process_time() - start) * 1000 / len(facts))
    per_call.sort()
    return {
        "best_ms": per_call[0],
        "median_ms": per_call[len(per_call) // 2],
        "mean_chars": sum(len(one.description) for one in facts) / len(facts),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description="Score the complaint classifier against the labelled set."
    )
    parser.add_argument(
        "path", nargs="?", default=str(DEFAULT_DATASET), help="JSONL evaluation set"
    )
    parser.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    parser.add_argument("--rules", help="rules JSON to use instead of the shipped defaults")
    parser.add_argument(
        "--errors", action="store_true", help="list the ids of misclassified complaints"
    )
    parser.add_argument("--timing", action="store_true", help="also measure classify() latency")
    args = parser.parse_args(argv)

    rules = (
        ClassifierRules.model_validate_json(Path(args.rules).read_text(encoding="utf-8"))
        if args.rules
        else None
    )
    classifier = Classifier(rules)
    dataset = load_dataset(args.path)
    splits = SPLITS if args.split == "all" else (args.split,)
    results = evaluate(dataset, classifier, splits)

    print(
        f"ruleset {classifier.ruleset_version} ({classifier.rules.fingerprint()}),"
        f" dataset {args.path}"
    )
    print()
    print(format_accuracy_table(results))
    for split, result in results.items():
        print()
        print(f"category confusion matrix, {split} (rows true, columns predicted)")
        print(format_confusion(result))
        if args.errors:
            print()
            print(f"misses, {split}: id  dimension  true → predicted")
            for miss_id, dimension, truth, guess in result.misses:
                print(f"  {miss_id:<10} {dimension:<11} {truth} → {guess}")
    if args.timing:
        chosen = [item for item in dataset if item.split in splits]
        latency = measure_latency(chosen, classifier)
        print()
        print(
            f"classify CPU time per call: best round {latency['best_ms']:.3f} ms,"
            f" median round {latency['median_ms']:.3f} ms"
            f" (mean description {latency['mean_chars']:.0f} chars)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

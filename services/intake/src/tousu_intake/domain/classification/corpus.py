"""The labelled corpus in the repository (services/intake/evaluation/, see its README.md).

- ``train/*.jsonl``: the training split (5-fold cross-validation and the shipped model);
- ``test/*.jsonl``: the separately written test split, never used for training or tuning;
- ``dev/*.jsonl``: a dev split for tuning the flag rules, neither trained on nor reported as test;
- ``complaints.jsonl``: the first, smaller set (397), labelled by the 2025 rubric: its
  category, emotion and risk-flag labels still hold and train the model; its severity and
  urgency labels follow the old thresholds, so they are neither trained on nor scored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from .model import ComplaintFacts
from .training import Example

# src/tousu_intake/domain/classification/corpus.py → services/intake/evaluation/
EVALUATION_DIR = Path(__file__).resolve().parents[4] / "evaluation"
LEGACY_FILE = "complaints.jsonl"
SPLITS = ("train", "test", "dev")


@dataclass(frozen=True)
class LabelledComplaint:
    """One labelled complaint of the corpus."""

    id: str
    split: str
    language: str
    industry: str
    facts: ComplaintFacts
    labels: dict[str, Any]
    rubric_labels: bool  # severity/urgency labelled by the current rubric (False: legacy set)

    def example(self) -> Example:
        """The training example of this complaint (severity only where the rubric holds)."""
        return Example(
            text=self.facts.description,
            category=self.labels["category"],
            emotion=self.labels["emotion"],
            risk_flags=tuple(self.labels["risk_flags"]),
            minor=(self.labels["severity"] == "minor") if self.rubric_labels else None,
            source=self.split,
        )


def _row(row: dict[str, Any], split: str, rubric_labels: bool) -> LabelledComplaint:
    facts = ComplaintFacts(
        description=row["text"],
        channel=row["channel"],
        customer_tier=row["customer_tier"],
        amount=None if row.get("amount") is None else Decimal(str(row["amount"])),
        affected_customers=row.get("affected_customers"),
        recent_complaints_by_customer=row.get("recent_complaints_by_customer", 0),
    )
    return LabelledComplaint(
        id=row["id"],
        split=split,
        language=row.get("language", "zh"),
        industry=row.get("industry", "mixed"),
        facts=facts,
        labels=row["labels"],
        rubric_labels=rubric_labels,
    )


def read_jsonl(path: Path, split: str, rubric_labels: bool = True) -> list[LabelledComplaint]:
    """One JSONL file of the corpus."""
    items = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                items.append(_row(json.loads(line), split, rubric_labels))
            except (KeyError, ValueError) as error:
                raise ValueError(f"{path.name} line {number}: {error}") from error
    return items


def load_split(split: str, directory: Path = EVALUATION_DIR) -> list[LabelledComplaint]:
    """The training split (with the legacy set), the test split or the dev split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}")
    items = []
    for path in sorted((directory / split).glob("*.jsonl")):
        items += read_jsonl(path, split)
    if split == "train" and (directory / LEGACY_FILE).is_file():
        items += read_jsonl(directory / LEGACY_FILE, "train", rubric_labels=False)
    return items

"""Turn the hand-written drafts (evaluation/drafts/*.txt) into the JSONL corpus.

Each draft line is ``category|severity|flags|emotion|tier|amount|text`` in short codes (see
README.md). Severity, flags and emotion are the author's labels; urgency is not written by hand
but derived from them by domain.md §2 (it is a pure function of severity, flags and tier), so
that it can never contradict them. The channel is assigned in turn from the industry's usual
channels, because the author did not write one per line.

Usage: python services/intake/evaluation/build_corpus.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
CATEGORIES = {
    "q": "product_quality",
    "a": "service_attitude",
    "p": "price_dispute",
    "d": "delivery_delay",
    "s": "after_sales",
    "t": "handling_timeliness",
    "i": "information_accuracy",
    "l": "policy_execution",
    "o": "other",
}
SEVERITIES = {"m": "minor", "g": "general", "s": "serious", "M": "major"}
FLAGS = {"s": "safety", "f": "fraud", "d": "data_leak", "l": "legal", "m": "media"}
EMOTIONS = {"A": "angry", "D": "disappointed", "X": "anxious", "C": "calm"}
TIERS = {"r": "regular", "v": "vip"}
URGENCY = ("deferred", "routine", "priority", "immediate")
BASE_URGENCY = {"minor": 0, "general": 1, "serious": 2, "major": 3}
CHANNELS = ("phone", "web_form", "app", "online_chat", "email", "social_media", "letter", "on_site")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def urgency(severity: str, flags: list[str], tier: str) -> str:
    """domain.md §2: any risk flag → immediate; else by severity, then VIP one step up."""
    if flags:
        return "immediate"
    step = BASE_URGENCY[severity] + (1 if tier == "vip" else 0)
    return URGENCY[min(step, 3)]


def convert(draft: Path, split: str) -> list[dict]:
    rows = []
    industry = "unknown"
    number = 0
    for raw in draft.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#industry:"):
            industry = line.split(":", 1)[1].strip()
            continue
        if line.startswith("#"):
            continue
        cat, sev, flags, emo, tier, amount, text = line.split("|", 6)
        number += 1
        flag_list = [] if flags == "-" else [FLAGS[f] for f in flags.split(",")]
        severity = SEVERITIES[sev]
        rows.append(
            {
                "id": f"{split}-{draft.stem.split('_', 1)[1]}-{number:03d}",
                "split": split,
                "language": "zh" if _HAN.search(text) else "en",
                "industry": industry,
                "text": text.strip(),
                "channel": CHANNELS[number % len(CHANNELS)],
                "customer_tier": TIERS[tier],
                "amount": float(amount) if amount else None,
                "affected_customers": None,
                "recent_complaints_by_customer": 0,
                "labels": {
                    "category": CATEGORIES[cat],
                    "severity": severity,
                    "urgency": urgency(severity, flag_list, TIERS[tier]),
                    "risk_flags": sorted(flag_list),
                    "emotion": EMOTIONS[emo],
                },
            }
        )
    return rows


def main() -> None:
    for split in ("train", "test", "dev"):
        for draft in sorted((HERE / "drafts").glob(f"{split}_*.txt")):
            rows = convert(draft, split)
            (HERE / split).mkdir(exist_ok=True)
            out = HERE / split / f"{draft.stem.split('_', 1)[1]}.jsonl"
            with out.open("w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            print(f"{out.relative_to(HERE)}: {len(rows)}")


if __name__ == "__main__":
    main()

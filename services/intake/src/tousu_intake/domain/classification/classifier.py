"""The complaint classifier: facts in, classification with reasons out (domain.md §2)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .model import (
    RISK_FLAG_ORDER,
    SEVERITY_SCALE,
    URGENCY_SCALE,
    Category,
    Classification,
    ComplaintFacts,
    CustomerTier,
    Emotion,
    RiskFlag,
    Severity,
    Urgency,
)
from .rules import ClassifierRules, TermList, WeightedTerms, load_default_rules, normalise_text
from .text import Term, TermIndex, TextAnalysis


class Classifier:
    """Classifies complaints by one rule set; build once (compiles the rules), classify often."""

    def __init__(self, rules: ClassifierRules | None = None) -> None:
        self.rules = rules if rules is not None else load_default_rules()
        negatable = set(self.rules.negation.applies_to)
        terms: list[Term] = []
        for category, words in self.rules.categories.items():
            terms += _weighted_terms(words, "category", category.value, "category" in negatable)
        for flag, words in self.rules.risk_words.items():
            terms += _listed_terms(words, "risk_flags", flag.value, "risk_flags" in negatable)
        for emotion, words in self.rules.emotion.words.items():
            terms += _weighted_terms(words, "emotion", emotion.value, "emotion" in negatable)
        for level, words in self.rules.severity.words.items():
            terms += _listed_terms(words, "severity", level.value, "severity" in negatable)
        for text, estimate in self.rules.impact.words.items():
            terms.append(Term(text, "impact", str(estimate), float(estimate), False))
        cues = [*self.rules.negation.cues.zh, *self.rules.negation.cues.en]
        self._index = TermIndex(terms, cues, self.rules.negation.window_tokens)
        self._amount_floors = sorted(
            self.rules.severity.amount_floors, key=lambda f: f.min_amount, reverse=True
        )
        self._impact_raises = sorted(
            self.rules.severity.impact_raises, key=lambda r: r.min_affected, reverse=True
        )
        self._category_order = {c: i for i, c in enumerate(self.rules.category_tie_break)}
        self._emotion_order = {e: i for i, e in enumerate(self.rules.emotion.tie_break)}

    @property
    def ruleset_version(self) -> str:
        """Version string of the rules in use."""
        return self.rules.version

    def classify(self, facts: ComplaintFacts) -> Classification:
        """Classify one complaint; `explanation` says which rule or signal set each dimension."""
        analysis = self._index.analyse(normalise_text(facts.description))
        found = self._group(analysis)
        category, category_why = self._category(found, facts)
        risk_flags, risk_why = self._risk_flags(found, analysis)
        emotion, emotion_why = self._emotion(found, analysis, facts)
        impact, impact_why = self._impact(found, facts)
        severity, severity_why = self._severity(found, risk_flags, facts, impact)
        urgency, urgency_why = self._urgency(severity, emotion, facts, risk_flags)
        explanation = {
            "category": category_why,
            "severity": severity_why,
            "urgency": urgency_why,
            "risk_flags": risk_why,
            "customer_tier": {"rule": "supplied", "value": facts.customer_tier.value},
            "impact": impact_why,
            "emotion": emotion_why,
        }
        return Classification(
            category=category,
            severity=severity,
            urgency=urgency,
            risk_flags=risk_flags,
            customer_tier=facts.customer_tier,
            impact=impact,
            emotion=emotion,
            explanation=explanation,
            ruleset_version=self.rules.version,
        )

    # --- dimensions -------------------------------------------------------------------------

    def _group(self, analysis: TextAnalysis) -> dict[str, dict[str, list[Term]]]:
        """Matched terms by dimension and label, in rule order so explanations are stable."""
        grouped: dict[str, dict[str, list[Term]]] = defaultdict(lambda: defaultdict(list))
        for term_id in sorted(analysis.matched):
            term = self._index.terms[term_id]
            grouped[term.dimension][term.label].append(term)
        return grouped

    def _category(self, found, facts: ComplaintFacts) -> tuple[Category, dict[str, Any]]:
        scores: dict[Category, float] = {}
        matched: dict[str, list[str]] = {}
        for label, terms in found.get("category", {}).items():
            scores[Category(label)] = sum(t.weight for t in terms)
            matched[label] = [t.text for t in terms]
        remedy_signals = []
        for remedy in facts.requested_remedies:
            for category, weight in self.rules.remedy_weights.get(remedy, {}).items():
                scores[category] = scores.get(category, 0.0) + weight
                remedy_signals.append(f"{remedy.value} → {category.value} +{weight:g}")
        rounded = {c.value: round(s, 2) for c, s in sorted(scores.items(), key=lambda kv: -kv[1])}
        why: dict[str, Any] = {
            "matched": matched,
            "scores": rounded,
            "min_score": self.rules.category_min_score,
        }
        if remedy_signals:
            why["remedies"] = remedy_signals
        best = max(scores.values(), default=0.0)
        if best < self.rules.category_min_score:
            why["rule"] = "fallback"
            why["reason"] = f"no category scored ≥ {self.rules.category_min_score:g}"
            return Category.OTHER, why
        leaders = [c for c, s in scores.items() if s == best]
        winner = min(leaders, key=self._category_order.__getitem__)
        why["rule"] = "keywords"
        if len(leaders) > 1:
            why["tie_break"] = [
                c.value for c in sorted(leaders, key=self._category_order.__getitem__)
            ]
        return winner, why

    def _risk_flags(
        self, found, analysis: TextAnalysis
    ) -> tuple[tuple[RiskFlag, ...], dict[str, Any]]:
        by_flag = found.get("risk_flags", {})
        flags = tuple(flag for flag in RISK_FLAG_ORDER if flag.value in by_flag)
        why: dict[str, Any] = {
            "rule": "risk_words",
            "matched": {f: [t.text for t in ts] for f, ts in by_flag.items()},
        }
        negated = self._negated(analysis, "risk_flags")
        if negated:
            why["negated"] = negated
        return flags, why

    def _emotion(
        self, found, analysis: TextAnalysis, facts: ComplaintFacts
    ) -> tuple[Emotion, dict[str, Any]]:
        if facts.emotion is not None:
            return facts.emotion, {"rule": "supplied", "value": facts.emotion.value}
        rules = self.rules.emotion
        scores: dict[Emotion, float] = {}
        matched: dict[str, list[str]] = {}
        for label, terms in found.get("emotion", {}).items():
            scores[Emotion(label)] = sum(t.weight for t in terms)
            matched[label] = [t.text for t in terms]
        signals = []
        if rules.exclamation is not None and analysis.exclamations >= rules.exclamation.min_count:
            emotion = rules.exclamation.emotion
            scores[emotion] = scores.get(emotion, 0.0) + rules.exclamation.weight
            signals.append(
                f"{analysis.exclamations} exclamation marks → {emotion.value}"
                f" +{rules.exclamation.weight:g}"
            )
        why: dict[str, Any] = {
            "matched": matched,
            "scores": {e.value: round(s, 2) for e, s in scores.items()},
        }
        if signals:
            why["signals"] = signals
        negated = self._negated(analysis, "emotion")
        if negated:
            why["negated"] = negated
        best = max(scores.values(), default=0.0)
        if best < rules.min_score:
            why["rule"] = "default"
            why["reason"] = f"no emotion scored ≥ {rules.min_score:g}"
            return rules.default, why
        winner = min(
            (e for e, s in scores.items() if s == best), key=self._emotion_order.__getitem__
        )
        why["rule"] = "words"
        return winner, why

    def _impact(self, found, facts: ComplaintFacts) -> tuple[int, dict[str, Any]]:
        if facts.affected_customers is not None:
            return facts.affected_customers, {"rule": "supplied", "value": facts.affected_customers}
        terms = [t for ts in found.get("impact", {}).values() for t in ts]
        if terms:
            top = max(terms, key=lambda t: t.weight)
            return int(top.weight), {
                "rule": "impact_words",
                "matched": [t.text for t in terms],
                "value": int(top.weight),
            }
        return self.rules.impact.default, {"rule": "default", "value": self.rules.impact.default}

    def _severity(
        self, found, risk_flags, facts: ComplaintFacts, impact: int
    ) -> tuple[Severity, dict[str, Any]]:
        rules = self.rules.severity
        amount = facts.amount
        by_level = found.get("severity", {})
        worded = [
            level
            for level in SEVERITY_SCALE
            if level.value in by_level and level is not Severity.MINOR
        ]
        why: dict[str, Any] = {
            "matched": {lvl: [t.text for t in ts] for lvl, ts in by_level.items()}
        }
        if worded:
            level = worded[-1]
            why["base"], why["source"] = level.value, "words"
        elif Severity.MINOR.value in by_level:
            level = Severity.MINOR
            why["base"], why["source"] = level.value, "words"
        elif facts.channel in rules.default_by_channel:
            level = rules.default_by_channel[facts.channel]
            why["base"], why["source"] = level.value, f"channel {facts.channel.value} default"
        else:
            level = rules.default
            why["base"], why["source"] = level.value, "default"
        steps: list[str] = []
        for flag in risk_flags:
            floor = rules.risk_flag_floor.get(flag)
            if floor is not None and _rank(floor) > _rank(level):
                steps.append(f"risk flag {flag.value} → at least {floor.value}")
                level = floor
        if amount is not None:
            for amount_floor in self._amount_floors:
                if amount >= amount_floor.min_amount:
                    if _rank(amount_floor.at_least) > _rank(level):
                        steps.append(
                            f"amount {amount} ≥ {amount_floor.min_amount}"
                            f" → at least {amount_floor.at_least.value}"
                        )
                        level = amount_floor.at_least
                    break
        for impact_raise in self._impact_raises:
            if impact >= impact_raise.min_affected:
                raised = SEVERITY_SCALE[
                    min(len(SEVERITY_SCALE) - 1, _rank(level) + impact_raise.steps)
                ]
                if raised is not level:
                    steps.append(
                        f"impact {impact} ≥ {impact_raise.min_affected}"
                        f" → raise {impact_raise.steps} ({level.value} → {raised.value})"
                    )
                    level = raised
                break
        why["steps"] = steps
        return level, why

    def _urgency(
        self, severity: Severity, emotion: Emotion, facts: ComplaintFacts, risk_flags
    ) -> tuple[Urgency, dict[str, Any]]:
        rules = self.rules.urgency
        urgency = rules.base_by_severity[severity]
        why: dict[str, Any] = {
            "base": urgency.value,
            "rule": f"severity {severity.value} → {urgency.value}",
        }
        steps: list[str] = []
        for floor in rules.emotion_floors:
            if (
                emotion is floor.emotion
                and _rank(severity) >= _rank(floor.min_severity)
                and _step(floor.at_least) > _step(urgency)
            ):
                steps.append(
                    f"{emotion.value} + severity {severity.value} → at least {floor.at_least.value}"
                )
                urgency = floor.at_least
        repeat = rules.repeat_complaints
        if (
            repeat is not None
            and repeat.raise_steps
            and facts.recent_complaints_by_customer >= repeat.min_recent
        ):
            raised = _raise_urgency(urgency, repeat.raise_steps)
            if raised is not urgency:
                steps.append(
                    f"repeat complainer ({facts.recent_complaints_by_customer} in 30 days"
                    f" ≥ {repeat.min_recent}) → {raised.value}"
                )
                urgency = raised
        if facts.customer_tier is CustomerTier.VIP and rules.vip_raise_steps:
            raised = _raise_urgency(urgency, rules.vip_raise_steps)
            if raised is not urgency:
                steps.append(
                    f"vip → raise {rules.vip_raise_steps} ({urgency.value} → {raised.value})"
                )
                urgency = raised
        if risk_flags and _step(rules.risk_flag_forces) > _step(urgency):
            steps.append(
                f"risk flag {', '.join(f.value for f in risk_flags)}"
                f" → {rules.risk_flag_forces.value}"
            )
            urgency = rules.risk_flag_forces
        why["steps"] = steps
        return urgency, why

    def _negated(self, analysis: TextAnalysis, dimension: str) -> list[str]:
        return sorted(
            {
                self._index.terms[i].text
                for i in analysis.negated
                if self._index.terms[i].dimension == dimension
            }
        )


def _weighted_terms(
    words: WeightedTerms, dimension: str, label: str, negatable: bool
) -> list[Term]:
    return [
        Term(text, dimension, label, weight, negatable)
        for text, weight in (*words.zh.items(), *words.en.items())
    ]


def _listed_terms(words: TermList, dimension: str, label: str, negatable: bool) -> list[Term]:
    return [Term(text, dimension, label, 1.0, negatable) for text in (*words.zh, *words.en)]


def _rank(severity: Severity) -> int:
    return SEVERITY_SCALE.index(severity)


def _step(urgency: Urgency) -> int:
    return URGENCY_SCALE.index(urgency)


def _raise_urgency(urgency: Urgency, steps: int) -> Urgency:
    return URGENCY_SCALE[min(len(URGENCY_SCALE) - 1, _step(urgency) + steps)]

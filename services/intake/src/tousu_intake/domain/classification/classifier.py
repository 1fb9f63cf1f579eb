"""The complaint classifier: facts in, classification with reasons out (domain.md §2)."""

from __future__ import annotations

import re
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
from .rules import (
    ClassifierRules,
    RiskPair,
    TermList,
    WeightedTerms,
    load_default_rules,
    normalise_text,
)
from .text import (
    Term,
    TermIndex,
    TextAnalysis,
    register_chinese_words,
    segment,
    term_pattern,
)
from .textmodel import HeadResult, Prediction, TextModel, load_shipped_model

# Sentinel: "use the model shipped with the package" (None means rules only).
SHIPPED = object()
# Clause punctuation: a cued risk word's cue must stand in its own clause.
_CLAUSE_END = re.compile(r"[.!?;,。!?;,:\n]")
# Sentence ends: a hearsay question ("…是真的吗?") and a sentence-wide risk pair stop here.
_SENTENCE_END = re.compile(r"[.!?;。!?;\n]")
_TRAILING_PUNCT = re.compile(r"[\s.!?;。!?;]+$")
# Quoted speech (after NFKC folding): what someone else said, or the customer's own retort.
_QUOTED = re.compile(r'"[^"\n]{1,200}"|“[^”\n]{1,200}”|「[^」\n]{1,200}」|『[^』\n]{1,200}』')
# Where an urgency explanation keeps what it learnt from the customer's earlier complaints.
CUSTOMER_HISTORY = "customer_history"


class Classifier:
    """Classifies complaints by one rule set and one trained text model; build once, classify often.

    The model decides what needs judgement (category, emotion, whether the text is trivial) and
    gives every dimension a confidence; the rules decide what must be exact and explainable
    (risk flags, harm, amount and impact thresholds, tier) and, without a model, everything.
    """

    def __init__(self, rules: ClassifierRules | None = None, model: Any = SHIPPED) -> None:
        self.rules = rules if rules is not None else load_default_rules()
        self.model: TextModel | None = load_shipped_model() if model is SHIPPED else model
        # Before the keywords: words jieba must not split (a keyword never matches inside one).
        register_chinese_words(self.rules.segmentation_words)
        negatable = set(self.rules.negation.applies_to)
        terms: list[Term] = []
        for category, words in self.rules.categories.items():
            terms += _weighted_terms(words, "category", category.value, "category" in negatable)
        for flag, flag_words in self.rules.risk_words.items():
            terms += _listed_terms(flag_words, "risk_flags", flag.value, "risk_flags" in negatable)
        for emotion, words in self.rules.emotion.words.items():
            terms += _weighted_terms(words, "emotion", emotion.value, "emotion" in negatable)
        for level, level_words in self.rules.severity.words.items():
            terms += _listed_terms(level_words, "severity", level.value, "severity" in negatable)
        if self.rules.severity.loss_floor is not None:
            loss_words = self.rules.severity.loss_floor.words
            terms += _listed_terms(loss_words, "loss", "loss", "severity" in negatable)
        for text, estimate in self.rules.impact.words.items():
            terms.append(Term(text, "impact", str(estimate), float(estimate), False))
        cues = [*self.rules.negation.cues.zh, *self.rules.negation.cues.en]
        endings = self.rules.negation.rhetorical_endings
        self._index = TermIndex(
            terms,
            cues,
            self.rules.negation.window_tokens,
            [*endings.zh, *endings.en],
            whole_words=self.rules.segmentation_words,
            negation_breaks=[*self.rules.negation.breaks.zh, *self.rules.negation.breaks.en],
            clause_cues=[*self.rules.negation.clause_cues.zh, *self.rules.negation.clause_cues.en],
            clause_cue_labels=[f.value for f in self.rules.negation.clause_cue_flags],
            prevention_prefixes=[
                *self.rules.negation.prevention_prefixes.zh,
                *self.rules.negation.prevention_prefixes.en,
            ],
            naming_followers=[
                *self.rules.negation.naming_followers.zh,
                *self.rules.negation.naming_followers.en,
            ],
            typo_min_length=self.rules.typo_min_length,
        )
        self._event_flags = {f.value for f in self.rules.negation.clause_cue_flags}
        self._pairs = [
            (
                pair,
                term_pattern([*pair.first.zh, *pair.first.en]),
                term_pattern([*pair.second.zh, *pair.second.en]),
                term_pattern([*pair.requires.zh, *pair.requires.en]),
            )
            for pair in self.rules.risk_pairs
        ]
        self._hearsay_endings = tuple(
            normalise_text(e)
            for e in (*self.rules.hearsay_questions.zh, *self.rules.hearsay_questions.en)
        )
        self._quoted_ignored = {f.value for f in self.rules.quoted_speech_ignored}
        self._cued = [
            (
                cued,
                re.compile(rf"(?<![a-z0-9]){re.escape(cued.word)}(?![a-z0-9])"),
                (*cued.cues.zh, *cued.cues.en),
            )
            for cued in self.rules.cued_risk_words
        ]
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

    @property
    def model_version(self) -> str | None:
        """Version of the trained model in use (None: rules only)."""
        return self.model.version if self.model is not None else None

    def classify(self, facts: ComplaintFacts) -> Classification:
        """Classify one complaint; `explanation` says which rule or signal set each dimension."""
        text = normalise_text(facts.description)
        # One segmentation for both: the model needs every word, so the rules get them too.
        tokens = segment(text) if self.model is not None else None
        analysis = self._index.analyse(text, tokens)
        found = self._group(analysis)
        prediction = (
            self.model.predict(facts.description, tokens) if self.model is not None else None
        )
        confidence: dict[str, float] = {}
        category_head = _head(prediction, "category")
        if category_head is not None:
            category, category_why = _from_model(Category, category_head)
        else:
            category, category_why = self._category(found, facts)
        confidence["category"] = _confidence(category_head, category_why)
        risk_flags, risk_why = self._risk_flags(found, analysis, prediction, text)
        confidence["risk_flags"] = self._risk_confidence(risk_flags, prediction, risk_why)
        emotion_head = _head(prediction, "emotion") if facts.emotion is None else None
        if emotion_head is not None:
            emotion, emotion_why = _from_model(Emotion, emotion_head)
            confidence["emotion"] = emotion_head.confidence
        else:
            emotion, emotion_why = self._emotion(found, analysis, facts)
            confidence["emotion"] = 1.0 if facts.emotion is not None else 0.5
        impact, impact_why = self._impact(found, facts)
        severity, severity_why, severity_sure = self._severity(
            found, risk_flags, facts, impact, prediction
        )
        confidence["severity"] = round(min(severity_sure, confidence["risk_flags"]), 3)
        urgency, urgency_why = self._urgency(severity, emotion, facts, risk_flags)
        confidence["urgency"] = confidence["severity"]
        low = {
            dim: value
            for dim, value in confidence.items()
            if value < self.rules.review.thresholds.get(dim, 0.0)
        }
        explanation = {
            "category": category_why,
            "severity": severity_why,
            "urgency": urgency_why,
            "risk_flags": risk_why,
            "customer_tier": {"rule": "supplied", "value": facts.customer_tier.value},
            "impact": impact_why,
            "emotion": emotion_why,
            "review": {
                "needs_review": bool(low),
                "below_threshold": {
                    d: {"confidence": v, "threshold": self.rules.review.thresholds[d]}
                    for d, v in low.items()
                },
            },
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
            confidence={d: round(v, 3) for d, v in confidence.items()},
            needs_review=bool(low),
            model_version=self.model_version,
        )

    def _risk_confidence(
        self, flags: tuple[RiskFlag, ...], prediction: Prediction | None, why: dict[str, Any]
    ) -> float:
        """How far the model agrees with the rules' flags: the least agreement over all flags.

        A flag the rules set but the model doubts, or one the model expects but no rule found
        (a missed harm, a scam in other words), lowers it and so sends the complaint to review.
        """
        agreement = []
        doubts = {}
        for flag in RISK_FLAG_ORDER:
            name = f"flag:{flag.value}"
            if prediction is None or name not in prediction:
                continue
            yes = prediction.probabilities[name]["yes"]
            agree = yes if flag in flags else 1.0 - yes
            agreement.append(agree)
            if agree < 0.5:
                doubts[flag.value] = round(yes, 3)
        if doubts:
            why["model_disagrees"] = doubts
        return min(agreement, default=1.0)

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
        self, found, analysis: TextAnalysis, prediction: Prediction | None, text: str = ""
    ) -> tuple[tuple[RiskFlag, ...], dict[str, Any]]:
        by_flag: dict[str, list[Any]] = dict(found.get("risk_flags", {}))
        why: dict[str, Any] = {
            "rule": "risk_words",
            "matched": {f: [t.text for t in ts] for f, ts in by_flag.items()},
        }
        for extra in (self._cued_words(text), self._pair_words(text)):
            for flag_name, seen in extra.items():
                by_flag.setdefault(flag_name, [])
                why["matched"].setdefault(flag_name, []).extend(seen)
        hearsay = self._drop(by_flag, why, "hearsay_only", self._only_hearsay(by_flag, text))
        self._drop(by_flag, why, "quoted_only", self._only_quoted(by_flag, text))
        negated = self._negated(analysis, "risk_flags")
        if negated:
            why["negated"] = negated
        by_model = self._model_flags(by_flag, analysis, prediction, text, hearsay)
        if by_model:
            why["model"] = by_model
        flags = tuple(f for f in RISK_FLAG_ORDER if f.value in by_flag or f.value in by_model)
        return flags, why

    @staticmethod
    def _drop(
        by_flag: dict[str, list[Any]], why: dict[str, Any], reason: str, flags: list[str]
    ) -> list[str]:
        """Take these flags back out, saying why in the explanation."""
        for flag_name in flags:
            del by_flag[flag_name]
            why["matched"].pop(flag_name, None)
        if flags:
            why[reason] = flags
        return flags

    def _model_flags(
        self,
        by_flag: dict[str, list[Any]],
        analysis: TextAnalysis,
        prediction: Prediction | None,
        text: str,
        hearsay: list[str],
    ) -> dict[str, Any]:
        """Flags no word found but the model is very sure of (policy data: a threshold), with
        the words that weighed: a harm said in other words."""
        threshold = self.rules.risk_model_min_probability
        if threshold is None or prediction is None:
            return {}
        denied = negated_flags(self, analysis) | set(hearsay)
        # A hypothetical or hearsay text: the model cannot tell the cue's scope (rules data).
        cued_text = self.rules.risk_model_not_after_cue and (
            bool(hearsay) or self._index.clause_cue_in(text)
        )
        allowed = self.rules.risk_model_flags
        by_model: dict[str, Any] = {}
        for flag in RISK_FLAG_ORDER:
            name = f"flag:{flag.value}"
            if flag.value in by_flag or flag.value in denied or name not in prediction:
                continue
            if allowed is not None and flag not in allowed:
                continue
            if any(f.value in by_flag for f in self.rules.risk_model_not_beside.get(flag, ())):
                continue
            if cued_text and flag.value in self._event_flags:
                continue
            if prediction.probabilities[name]["yes"] >= threshold:
                head = prediction.head(name, explain=True)
                by_model[flag.value] = {
                    "p": round(head.probabilities["yes"], 3),
                    "model_words": [w for w, _ in head.top_features],
                }
        return by_model

    def _flags_in(self, text: str) -> set[str]:
        """Every flag the words find in this text: risk words, cued words and risk pairs."""
        found = set(self._group(self._index.analyse(text)).get("risk_flags", {}))
        return found | set(self._cued_words(text)) | set(self._pair_words(text))

    def _only_quoted(self, by_flag: dict[str, list[Any]], text: str) -> list[str]:
        """Threat flags whose words stand only inside quotation marks: someone else's words."""
        candidates = [f for f in by_flag if f in self._quoted_ignored]
        if not candidates or _QUOTED.search(text) is None:
            return []
        outside = self._flags_in(_QUOTED.sub(" , ", text))
        return [f for f in candidates if f not in outside]

    def _only_hearsay(self, by_flag: dict[str, list[Any]], text: str) -> list[str]:
        """Event flags found only in hearsay questions ("有人说…孩子吃了会生病,是真的吗?")."""
        candidates = [f for f in by_flag if f in self._event_flags]
        if not candidates or not any(e in text for e in self._hearsay_endings):
            return []
        ends = [m.end() for m in _SENTENCE_END.finditer(text)] + [len(text)]
        sentences = [text[start:end] for start, end in zip([0, *ends], ends, strict=False)]
        kept = [s for s in sentences if not self._hearsay_question(s)]
        if len(kept) == len(sentences):
            return []
        outside = self._flags_in(" , ".join(kept))
        return [f for f in candidates if f not in outside]

    def _hearsay_question(self, sentence: str) -> bool:
        body = _TRAILING_PUNCT.sub("", sentence)
        return body.endswith(self._hearsay_endings) and self._index.clause_cue_in(body)

    def _pair_words(self, text: str) -> dict[str, list[str]]:
        """Risk pairs (rules.risk_pairs) whose two words stand close together, by flag."""
        hits: dict[str, list[str]] = {}
        for pair, first, second, requires in self._pairs:
            if pair.flag.value in hits or first is None or second is None:
                continue
            # Cheap checks first: most texts hold neither word of most pairs.
            if second.search(text) is None or first.search(text) is None:
                continue
            if requires is not None and requires.search(text) is None:
                continue
            found = self._find_pair(pair, first, second, text)
            if found is not None:
                hits.setdefault(pair.flag.value, []).append(f"{pair.kind}: {found}")
        return hits

    def _find_pair(
        self, pair: RiskPair, first: re.Pattern[str], second: re.Pattern[str], text: str
    ) -> str | None:
        units = _SENTENCE_END if pair.scope == "sentence" else _CLAUSE_END
        start = 0
        for end in [m.start() for m in units.finditer(text)] + [len(text)]:
            unit = text[start:end]
            offset = start
            start = end + 1
            if not unit.strip():
                continue
            seconds = [(m.start(), m.end(), m.group()) for m in second.finditer(unit)]
            if not seconds:
                continue
            for a in first.finditer(unit):
                for b_start, b_end, b_text in seconds:
                    if b_start >= a.end():
                        gap, earlier = b_start - a.end(), a.start()
                    elif not pair.ordered and b_end <= a.start():
                        gap, earlier = a.start() - b_end, b_start
                    else:
                        continue
                    if gap > pair.window_chars:
                        continue
                    later = b_start if earlier == a.start() else a.start()
                    if self._pair_cancelled(pair, text[: offset + earlier], text[: offset + later]):
                        continue
                    return f"{a.group()}…{b_text}"
        return None

    def _pair_cancelled(self, pair: RiskPair, before: str, before_later: str) -> bool:
        """A negation cue just before either word, or a hypothetical/hearsay cue in the clause.

        "没有把我的电话给别人", "说不出订单号": denied; "如果有人拿我的身份证补办…": not an event.
        """
        if self._index.negation_at_end(_CLAUSE_END.split(before)[-1]):
            return True
        # Up to the later word: a cue may hold the earlier one (有人说 … 以我的名义).
        clause = _CLAUSE_END.split(before_later)[-1]
        if self._index.negation_at_end(clause):
            return True
        return pair.flag.value in self._event_flags and self._index.clause_cue_in(clause)

    def _cued_words(self, text: str) -> dict[str, list[str]]:
        """Cued risk words whose cue stands close before them in their clause, by flag."""
        hits: dict[str, list[str]] = {}
        for cued, pattern, cues in self._cued:
            for match in pattern.finditer(text):
                start = match.start()
                clause = _CLAUSE_END.split(text[max(0, start - cued.window_chars) : start])[-1]
                cue = next((c for c in cues if c in clause), None)
                if cue is not None:
                    hits.setdefault(cued.flag.value, []).append(f"{cue}…{cued.word}")
                    break
        return hits

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
        self,
        found,
        risk_flags: tuple[RiskFlag, ...],
        facts: ComplaintFacts,
        impact: int,
        prediction: Prediction | None,
    ) -> tuple[Severity, dict[str, Any], float]:
        """The §2 rubric: a base (minor or general), then floors, then wide-impact raises.

        Returns the level, its explanation and how sure the base is: the model's probability
        when it judged "trivial or not", 1.0 when a fact (amount, harm, flag, impact) decided.
        """
        rules = self.rules.severity
        amount = facts.amount
        by_level = found.get("severity", {})
        why: dict[str, Any] = {
            "matched": {lvl: [t.text for t in ts] for lvl, ts in by_level.items()}
        }
        sure = 1.0
        if (
            amount is not None
            and rules.minor_below_amount is not None
            and amount < rules.minor_below_amount
        ):
            level = Severity.MINOR
            why["base"], why["source"] = (
                level.value,
                f"amount {amount} < {rules.minor_below_amount}",
            )
        elif prediction is not None and "minor" in prediction:
            trivial = prediction.probabilities["minor"]["yes"]
            level = rules.default
            if trivial >= rules.minor_min_probability:
                level = Severity.MINOR
                minor_head = prediction.head("minor", explain=True)
                why["model_words"] = [w for w, _ in minor_head.top_features]
            sure = max(trivial, 1.0 - trivial)
            why["base"], why["source"] = level.value, f"model: trivial p={trivial:.2f}"
        elif Severity.MINOR.value in by_level:
            level = Severity.MINOR
            why["base"], why["source"] = level.value, "words"
        elif facts.channel in rules.default_by_channel:
            level = rules.default_by_channel[facts.channel]
            why["base"], why["source"] = level.value, f"channel {facts.channel.value} default"
        else:
            level = rules.default
            why["base"], why["source"] = level.value, "default"
        base = level
        steps: list[str] = []

        def at_least(floor: Severity, reason: str) -> None:
            nonlocal level
            if _rank(floor) > _rank(level):
                steps.append(f"{reason} → at least {floor.value}")
                level = floor

        if amount is not None:
            for amount_floor in self._amount_floors:
                if amount >= amount_floor.min_amount:
                    at_least(amount_floor.at_least, f"amount {amount} ≥ {amount_floor.min_amount}")
                    break
        for worded in (Severity.SERIOUS, Severity.MAJOR):
            if worded.value in by_level:
                words = ", ".join(t.text for t in by_level[worded.value])
                at_least(worded, f"words ({words})")
        for flag in risk_flags:
            floor = rules.risk_flag_floor.get(flag)
            if floor is not None:
                at_least(floor, f"risk flag {flag.value}")
        loss = rules.loss_floor
        if loss is not None and any(f in loss.flags for f in risk_flags):
            losses = [t.text for ts in found.get("loss", {}).values() for t in ts]
            if losses:
                at_least(loss.at_least, f"{'/'.join(loss.flags)} with loss ({', '.join(losses)})")
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
        for impact_floor in sorted(rules.impact_floors, key=lambda f: -f.min_affected):
            if impact >= impact_floor.min_affected:
                at_least(impact_floor.at_least, f"impact {impact} ≥ {impact_floor.min_affected}")
                break
        why["steps"] = steps
        if level is not base and base is Severity.MINOR:
            sure = 1.0  # a fact overrode the judgement of triviality
        elif level is not base and _rank(level) > _rank(Severity.GENERAL):
            sure = 1.0
        return level, why, sure

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
                # The count is the customer's history: kept apart from the step's text so a
                # caller without pii:read can be shown the step without it (see
                # without_customer_history).
                steps.append(f"repeat complainer → {raised.value}")
                why[CUSTOMER_HISTORY] = {
                    "recent_complaints": facts.recent_complaints_by_customer,
                    "at_least": repeat.min_recent,
                }
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


def without_customer_history(explanation: dict[str, Any]) -> dict[str, Any]:
    """The explanation without the customer's history, for a caller without pii:read.

    How many complaints one customer made is personal data: shown with the count, a
    frontend posting guessed phone numbers could learn whose number complained how often.
    """
    urgency = explanation.get("urgency")
    if not isinstance(urgency, dict) or CUSTOMER_HISTORY not in urgency:
        return explanation
    kept = {key: value for key, value in urgency.items() if key != CUSTOMER_HISTORY}
    return {**explanation, "urgency": kept}


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


def _head(prediction: Prediction | None, name: str) -> HeadResult | None:
    """A head the model has, explained; None without a model or without that head."""
    if prediction is None or name not in prediction:
        return None
    return prediction.head(name, explain=True)


def _from_model(enum: Any, head: HeadResult) -> tuple[Any, dict[str, Any]]:
    """A dimension decided by the model, explained by its probabilities and weightiest words."""
    ranked = sorted(head.probabilities.items(), key=lambda kv: -kv[1])
    return enum(head.label), {
        "rule": "model",
        "probabilities": {label: round(p, 3) for label, p in ranked[:3]},
        "model_words": [word for word, _ in head.top_features],
    }


def _confidence(head: HeadResult | None, why: dict[str, Any]) -> float:
    """Model probability, or for the keyword fallback 1.0 with a clear winner and 0.5 without."""
    if head is not None:
        return head.confidence
    return 0.5 if why.get("rule") == "fallback" or "tie_break" in why else 1.0


def negated_flags(classifier: Classifier, analysis: TextAnalysis) -> set[str]:
    """Flags whose words appeared only negated ("没有人受伤"): the model must not add them."""
    terms = classifier._index.terms
    return {terms[i].label for i in analysis.negated if terms[i].dimension == "risk_flags"}

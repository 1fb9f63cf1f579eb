"""Classifier rules as data: a pydantic model that round-trips to JSON, and the shipped defaults."""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .model import (
    SEVERITY_SCALE,
    URGENCY_SCALE,
    Category,
    Channel,
    Emotion,
    Remedy,
    RiskFlag,
    Severity,
    Urgency,
)

DEFAULT_RULES_RESOURCE = "default_rules.json"

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_ENGLISH_TERM = re.compile(r"^[a-z0-9]+(?: [a-z0-9]+)*\*?$")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise_text(text: str) -> str:
    """NFKC-fold (full-width → ASCII) and lowercase; applied alike to terms and complaints."""
    return unicodedata.normalize("NFKC", text).lower()


def _normalise_chinese_term(term: str) -> str:
    folded = normalise_text(term).strip()
    if not folded or not _HAN.search(folded):
        raise ValueError(f"Chinese term {term!r} must contain Chinese characters")
    if any(ch.isspace() for ch in folded):
        raise ValueError(f"Chinese term {term!r} must not contain spaces")
    return folded


def _normalise_english_term(term: str) -> str:
    folded = normalise_text(term).strip()
    wildcard = folded.endswith("*")
    # Punctuation inside phrases ("after-sales", "won't") is a word break, as in the text.
    folded = _NON_WORD.sub(" ", folded.rstrip("*")).strip() + ("*" if wildcard else "")
    if not folded or folded == "*" or not _ENGLISH_TERM.match(folded):
        raise ValueError(f"English term {term!r} must be ASCII words, optionally ending in '*'")
    if wildcard and " " in folded:
        raise ValueError(
            f"English term {term!r}: '*' (prefix match) is only allowed on a single word"
        )
    return folded


def _check_weight(term: str, weight: float) -> float:
    if not math.isfinite(weight) or weight <= 0:
        raise ValueError(f"weight of {term!r} must be a positive number, got {weight}")
    return weight


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeightedTerms(_Strict):
    """Keywords with weights, Chinese and English; a keyword adds its weight once per complaint."""

    zh: dict[str, float] = Field(default_factory=dict)
    en: dict[str, float] = Field(default_factory=dict)

    @field_validator("zh")
    @classmethod
    def _zh_terms(cls, terms: dict[str, float]) -> dict[str, float]:
        return _normalised_weights(terms, _normalise_chinese_term)

    @field_validator("en")
    @classmethod
    def _en_terms(cls, terms: dict[str, float]) -> dict[str, float]:
        return _normalised_weights(terms, _normalise_english_term)

    def is_empty(self) -> bool:
        """True when there is no keyword in either language."""
        return not self.zh and not self.en


class TermList(_Strict):
    """Unweighted keywords, Chinese and English."""

    zh: list[str] = Field(default_factory=list)
    en: list[str] = Field(default_factory=list)

    @field_validator("zh")
    @classmethod
    def _zh_terms(cls, terms: list[str]) -> list[str]:
        return _normalised_list(terms, _normalise_chinese_term)

    @field_validator("en")
    @classmethod
    def _en_terms(cls, terms: list[str]) -> list[str]:
        return _normalised_list(terms, _normalise_english_term)

    def is_empty(self) -> bool:
        """True when there is no keyword in either language."""
        return not self.zh and not self.en


def _normalised_weights(terms: dict[str, float], normalise) -> dict[str, float]:
    result: dict[str, float] = {}
    for term, weight in terms.items():
        key = normalise(term)
        if key in result:
            raise ValueError(f"duplicate term {term!r}")
        result[key] = _check_weight(term, weight)
    return result


def _normalised_list(terms: list[str], normalise) -> list[str]:
    result: list[str] = []
    for term in terms:
        key = normalise(term)
        if key in result:
            raise ValueError(f"duplicate term {term!r}")
        result.append(key)
    return result


class ExclamationSignal(_Strict):
    """Many exclamation marks count as a signal for one emotion."""

    emotion: Emotion = Emotion.ANGRY
    min_count: int = Field(default=3, ge=1)
    weight: float = Field(default=1.0, gt=0)


class EmotionRules(_Strict):
    """How emotion is inferred when intake did not record it."""

    words: dict[Emotion, WeightedTerms]
    exclamation: ExclamationSignal | None = ExclamationSignal()
    min_score: float = Field(default=1.0, gt=0)
    tie_break: list[Emotion] = [Emotion.ANGRY, Emotion.ANXIOUS, Emotion.DISAPPOINTED, Emotion.CALM]
    default: Emotion = Emotion.CALM

    @model_validator(mode="after")
    def _check(self) -> EmotionRules:
        for emotion, terms in self.words.items():
            if terms.is_empty():
                raise ValueError(f"emotion {emotion.value!r} has an empty keyword set")
        if sorted(self.tie_break) != sorted(Emotion):
            raise ValueError("emotion.tie_break must list every emotion exactly once")
        return self


NegatableDimension = Literal["category", "risk_flags", "emotion", "severity"]


class NegationRules(_Strict):
    """A negation cue shortly before a keyword cancels it ("没有受伤", "not angry")."""

    cues: TermList
    window_tokens: int = Field(default=2, ge=1, le=6)
    applies_to: list[NegatableDimension] = ["risk_flags", "emotion"]
    # A clause ending in one of these is a rhetorical question ("这不是骗钱吗?" affirms fraud),
    # so its negation cue cancels nothing.
    rhetorical_endings: TermList = TermList()
    # A negation never reaches past one of these: in "再不处理就发抖音" the 不 belongs to the
    # condition (就 starts the threat), in "不知道有没有毒" it denies knowing, not the poison.
    breaks: TermList = TermList()
    # A clause that opens with one of these tells of no event of the complainant's own: a
    # hypothetical ("如果我的卡被盗刷了…", "what if someone used my card") or hearsay ("听说隔壁有人
    # 被烫伤", "my neighbour reckons…"). It cancels only the event flags below (a threat after a
    # condition, "如果不退款我就起诉", stays a threat). Matched as text within the clause, before
    # the word.
    clause_cues: TermList = TermList()
    clause_cue_flags: list[RiskFlag] = Field(default_factory=list)
    # A flag word right after one of these names a precaution, not an event: 防诈骗, 反诈,
    # "anti-fraud"; and right before one of these it names a thing: "fraud department", "hazard
    # indicator", "safety briefing".
    prevention_prefixes: TermList = TermList()
    naming_followers: TermList = TermList()


class AmountFloor(_Strict):
    """An amount at or above min_amount makes severity at least `at_least`."""

    min_amount: Decimal = Field(ge=0)
    at_least: Severity


class ImpactRaise(_Strict):
    """Impact (customers affected) at or above min_affected raises severity by `steps`."""

    min_affected: int = Field(ge=2)
    steps: int = Field(ge=1, le=3)


class ImpactFloor(_Strict):
    """Impact (customers affected) at or above min_affected makes severity at least `at_least`."""

    min_affected: int = Field(ge=2)
    at_least: Severity


class LossFloor(_Strict):
    """These risk flags with a loss (money lost, health or financial data leaked) → at least."""

    flags: list[RiskFlag]
    at_least: Severity
    words: TermList


class SeverityRules(_Strict):
    """Severity (domain.md §2): base (minor or general), then floors, then wide-impact raises."""

    default: Severity = Severity.GENERAL
    minor_below_amount: Decimal | None = Field(
        default=None, ge=0, description="a sum in dispute under this is minor (CNY)"
    )
    minor_min_probability: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="the model's probability that the text is trivial/a suggestion/an enquiry",
    )
    default_by_channel: dict[Channel, Severity] = Field(
        default_factory=dict,
        description="base level when no severity word matched, e.g. terse survey answers",
    )
    words: dict[Severity, TermList]
    risk_flag_floor: dict[RiskFlag, Severity] = Field(default_factory=dict)
    amount_floors: list[AmountFloor] = Field(default_factory=list)
    impact_raises: list[ImpactRaise] = Field(default_factory=list)
    impact_floors: list[ImpactFloor] = Field(default_factory=list)
    loss_floor: LossFloor | None = None

    @model_validator(mode="after")
    def _check(self) -> SeverityRules:
        if Severity.GENERAL in self.words:
            raise ValueError("severity.words: 'general' is the default level and takes no keywords")
        for level, terms in self.words.items():
            if terms.is_empty():
                raise ValueError(f"severity level {level.value!r} has an empty keyword set")
        _check_ascending(
            [f.min_amount for f in self.amount_floors], "severity.amount_floors min_amount"
        )
        _check_ascending(
            [SEVERITY_SCALE.index(f.at_least) for f in self.amount_floors],
            "severity.amount_floors at_least",
            strict=False,
        )
        _check_ascending(
            [r.min_affected for r in self.impact_raises], "severity.impact_raises min_affected"
        )
        _check_ascending(
            [r.steps for r in self.impact_raises], "severity.impact_raises steps", strict=False
        )
        return self


class ImpactRules(_Strict):
    """Impact when the caller gives none: the largest estimate among matched words, else default."""

    default: int = Field(default=1, ge=1)
    words: dict[str, int] = Field(
        default_factory=dict, description="term (Chinese or English) → customers affected"
    )

    @field_validator("words")
    @classmethod
    def _terms(cls, words: dict[str, int]) -> dict[str, int]:
        result: dict[str, int] = {}
        for term, estimate in words.items():
            key = (
                _normalise_chinese_term(term)
                if _HAN.search(term)
                else _normalise_english_term(term)
            )
            if estimate < 1:
                raise ValueError(f"impact estimate of {term!r} must be ≥ 1")
            if key in result:
                raise ValueError(f"duplicate term {term!r}")
            result[key] = estimate
        return result


class EmotionFloor(_Strict):
    """This emotion together with severity ≥ min_severity makes urgency at least `at_least`."""

    emotion: Emotion
    min_severity: Severity
    at_least: Urgency


class RepeatComplaintRule(_Strict):
    """A customer with this many complaints in the last 30 days is a repeat complainer."""

    min_recent: int = Field(default=2, ge=1)
    raise_steps: int = Field(default=1, ge=0, le=3)


class UrgencyRules(_Strict):
    """Urgency: base from severity, then floors and raises, then risk flags force the top."""

    base_by_severity: dict[Severity, Urgency]
    emotion_floors: list[EmotionFloor] = Field(default_factory=list)
    repeat_complaints: RepeatComplaintRule | None = RepeatComplaintRule()
    vip_raise_steps: int = Field(default=1, ge=0, le=3)
    risk_flag_forces: Urgency = Urgency.IMMEDIATE

    @model_validator(mode="after")
    def _check(self) -> UrgencyRules:
        missing = [s.value for s in SEVERITY_SCALE if s not in self.base_by_severity]
        if missing:
            raise ValueError(f"urgency.base_by_severity misses {missing}")
        bases = [URGENCY_SCALE.index(self.base_by_severity[s]) for s in SEVERITY_SCALE]
        _check_ascending(bases, "urgency.base_by_severity (by severity)", strict=False)
        return self


REVIEW_DIMENSIONS = ("category", "severity", "urgency", "risk_flags", "emotion")


class CuedRiskWord(_Strict):
    """A risk word that counts only after one of its cues, close before it in the same clause.

    The city hotline 12345 is a threat to go to the authorities in "再不退我就打12345投诉你们",
    but the service complained about in "12345的接线员…" or "打了五次12345" (domain.md §2: a
    flag is what happened, not a word).
    """

    flag: RiskFlag
    word: str = Field(min_length=1, max_length=50)
    cues: TermList
    window_chars: int = Field(default=12, ge=1, le=60)

    @field_validator("word")
    @classmethod
    def _word(cls, word: str) -> str:
        return normalise_text(word).strip()

    @model_validator(mode="after")
    def _check(self) -> CuedRiskWord:
        if self.cues.is_empty():
            raise ValueError(f"cued risk word {self.word!r} has no cues")
        return self


class RiskPair(_Strict):
    """Two words close together in one clause or sentence that tell a risk no single word does.

    Harm told without a harm word: 差点 … 泼到 (a near miss), 司机 … 刷短视频 (a driver on his
    phone), 电梯 … 关在 (people shut in a lift). Personal data passed to someone: 我的电话 …
    给了卖家, "my number" … "to his mate". Money paid to someone who then vanished: 卖家 …
    联系不上, with a payment word in the text. Chinese words match as text, English ones as
    whole words. A negation cue just before the earlier word cancels the pair
    (没有把我的电话给别人), and so does a hypothetical or hearsay cue before it in its clause
    for the flags `negation.clause_cue_flags` names.
    """

    flag: RiskFlag
    kind: str = Field(min_length=1, max_length=60, description="named in the explanation")
    first: TermList
    second: TermList
    window_chars: int = Field(default=20, ge=1, le=120)
    ordered: bool = Field(default=True, description="False: the second word may come first")
    scope: Literal["clause", "sentence"] = "clause"
    requires: TermList = Field(
        default_factory=TermList, description="if given, one of these must be in the text too"
    )

    @model_validator(mode="after")
    def _check(self) -> RiskPair:
        if self.first.is_empty() or self.second.is_empty():
            raise ValueError(f"risk pair {self.kind!r} needs words on both sides")
        return self


class ReviewRules(_Strict):
    """Below these confidences (0..1) a complaint is marked for human review."""

    thresholds: dict[str, float] = Field(
        default_factory=lambda: {
            "category": 0.5,
            "severity": 0.5,
            "urgency": 0.5,
            "risk_flags": 0.5,
            "emotion": 0.4,
        }
    )

    @field_validator("thresholds")
    @classmethod
    def _in_range(cls, thresholds: dict[str, float]) -> dict[str, float]:
        for dimension, value in thresholds.items():
            if dimension not in REVIEW_DIMENSIONS:
                raise ValueError(f"review threshold for unknown dimension {dimension!r}")
            if not 0 <= value <= 1:
                raise ValueError(f"review threshold of {dimension!r} must be within 0..1")
        return thresholds


class ClassifierRules(_Strict):
    """All the classifier decides by: keywords, thresholds, escalation steps (domain.md §2)."""

    version: str = Field(min_length=1, max_length=100)
    description: str = ""
    categories: dict[Category, WeightedTerms]
    category_min_score: float = Field(
        default=1.0, gt=0, description="below this the category is 'other'"
    )
    category_tie_break: list[Category]
    remedy_weights: dict[Remedy, dict[Category, float]] = Field(default_factory=dict)
    risk_words: dict[RiskFlag, TermList]
    cued_risk_words: list[CuedRiskWord] = Field(default_factory=list)
    emotion: EmotionRules
    negation: NegationRules
    severity: SeverityRules
    impact: ImpactRules = ImpactRules()
    urgency: UrgencyRules
    review: ReviewRules = ReviewRules()
    segmentation_words: list[str] = Field(
        default_factory=list,
        description="Chinese words jieba must keep whole, so no keyword matches inside them"
        " (吐槽 holds no 吐)",
    )
    risk_model_min_probability: float | None = Field(
        default=None,
        gt=0.5,
        le=1,
        description="the model adds a risk flag no word found at this probability (None: never)",
    )
    risk_pairs: list[RiskPair] = Field(
        default_factory=list,
        description="risks told by two words together, not by one word (see RiskPair)",
    )
    hearsay_questions: TermList = Field(
        default_factory=TermList,
        description="a sentence that holds a clause cue (听说, 有人说, reckons) and ends asking"
        " one of these (是真的吗, 'is that true') is hearsay as a whole: its event flags"
        " (negation.clause_cue_flags) are not set, in its later clauses either",
    )
    risk_model_not_after_cue: bool = Field(
        default=False,
        description="the model does not add an event flag (negation.clause_cue_flags) to a"
        " text that holds a hypothetical or hearsay cue: it cannot tell their scope, words can",
    )
    typo_min_length: int | None = Field(
        default=None,
        ge=5,
        le=20,
        description="English risk words this long or longer also match with one letter missing,"
        " doubled or two letters swapped inside the word ('poisning', 'stiches'); None: never",
    )
    risk_model_not_beside: dict[RiskFlag, list[RiskFlag]] = Field(
        default_factory=dict,
        description="the model does not add the key flag when the words found one of these:"
        " beside fraud, the model's data_leak is the scam's own use of an identity, which §2"
        " counts as fraud",
    )
    quoted_speech_ignored: list[RiskFlag] = Field(
        default_factory=list,
        description="threats set only by words outside quotation marks: a quoted '报警也没用'"
        " or 'I could sue you' is what someone else said, not the complainant's threat",
    )
    risk_model_flags: list[RiskFlag] | None = Field(
        default=None,
        description="the flags the model may add (None: all); legal and media are threats"
        " said in words, which the model guessed wrong every time in cross-validation, and"
        " data_leak additions were wrong more often than right (evaluation/README.md)",
    )

    @field_validator("segmentation_words")
    @classmethod
    def _chinese_words(cls, words: list[str]) -> list[str]:
        return _normalised_list(words, _normalise_chinese_term)

    @model_validator(mode="after")
    def _check(self) -> ClassifierRules:
        missing = [
            c.value for c in Category if c is not Category.OTHER and c not in self.categories
        ]
        if missing:
            raise ValueError(f"categories without keywords: {missing}")
        for category, terms in self.categories.items():
            if terms.is_empty():
                raise ValueError(f"category {category.value!r} has an empty keyword set")
        if sorted(self.category_tie_break) != sorted(Category):
            raise ValueError("category_tie_break must list every category exactly once")
        for flag, flag_terms in self.risk_words.items():
            if flag_terms.is_empty():
                raise ValueError(f"risk flag {flag.value!r} has an empty word set")
        for remedy, weights in self.remedy_weights.items():
            for category, weight in weights.items():
                _check_weight(f"{remedy.value}→{category.value}", weight)
        return self

    def fingerprint(self) -> str:
        """Short hash of the canonical JSON, to tell apart rule sets that share a version string."""
        return hashlib.sha256(self.model_dump_json().encode("utf-8")).hexdigest()[:12]


def _check_ascending(values: list, what: str, strict: bool = True) -> None:
    for before, after in zip(values, values[1:], strict=False):
        if after < before or (strict and after == before):
            raise ValueError(f"{what} must be {'strictly ' if strict else ''}ascending")


@lru_cache(maxsize=1)
def load_default_rules() -> ClassifierRules:
    """The rules shipped with the package (default_rules.json)."""
    text = resources.files(__package__).joinpath(DEFAULT_RULES_RESOURCE).read_text(encoding="utf-8")
    return ClassifierRules.model_validate_json(text)

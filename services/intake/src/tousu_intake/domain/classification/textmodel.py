"""The trained text model at run time: features, calibrated probabilities, the words that weighed.

Training (training.py) uses scikit-learn; what it learns is exported into this plain form
(vocabulary, idf, one stacked weight matrix, Platt calibration per output) so that a single
complaint is scored with a few numpy operations instead of the per-call validation overhead of
sklearn estimators, and so that an artefact can be loaded from the registry without pickle.
The unit tests check that these probabilities equal sklearn's own.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from .rules import normalise_text
from .text import segment

SHIPPED_MODEL_RESOURCE = "shipped_model.npz"
ARTEFACT_FORMAT = "tousu-textmodel/1"

_SPACES = re.compile(r"\s+")
WORD_PREFIX = "\x01"  # marks a segmented word, so it never collides with a character n-gram
# Function words weigh in the model but explain nothing to a reader; left out of explanations.
_UNTELLING = frozenset(
    "的 了 是 我 你 他 她 们 在 也 就 都 和 后 还 又 有 被 把 这 那 个 吗 吧 呢 啊 a an the to"
    " and of i my me it is was be for on in at that this".split()
)
LATIN_PREFIX = "\x03"  # marks an n-gram inside one Latin-letter word (FeatureSpec.latin_word_grams)
_LATIN_WORD = re.compile(r"^[a-z']{4,}$")
ASK_PREFIX = "\x02"  # marks a word of a clause that says what the customer wants put right
# Clauses holding one of these say what the customer asks for (domain.md §2: the main thing the
# customer wants put right decides the category); their words become features of their own.
ASK_CUES = frozenset(
    "请 要求 希望 麻烦 尽快 赶紧 到底 什么时候 何时 凭什么 必须 给个 给我 我要 退钱 退款 赔偿 处理"
    " please want demand expect asking refund fix when why how sort resolve".split()
)


@dataclass(frozen=True)
class FeatureSpec:
    """Which features the model sees; stored in the artefact so run time matches training."""

    char_ngrams: tuple[int, int] = (1, 3)
    ask_words: bool = False
    # Character n-grams of these lengths inside each Latin-letter word of 4+ letters, padded with
    # a space at each end ("refund" → " ref", "refu", …): 1–3-grams of the whole text say little
    # about English words, and an inflected or misspelt word shares most of these with its stem.
    latin_word_grams: tuple[int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"char_ngrams": list(self.char_ngrams), "ask_words": self.ask_words}
        if self.latin_word_grams is not None:
            data["latin_word_grams"] = list(self.latin_word_grams)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> FeatureSpec:
        if not data:
            return cls()
        low, high = data["char_ngrams"]
        latin = data.get("latin_word_grams")  # absent in artefacts made before it existed
        return cls(
            char_ngrams=(int(low), int(high)),
            ask_words=bool(data["ask_words"]),
            latin_word_grams=None if latin is None else (int(latin[0]), int(latin[1])),
        )


DEFAULT_SPEC = FeatureSpec()


def features(
    text: str, tokens: list[str | None] | None = None, spec: FeatureSpec = DEFAULT_SPEC
) -> list[str]:
    """Character n-grams of the normalised text plus its jieba-segmented words (one list).

    `tokens`: segment(normalise_text(text)), when the caller already has it. With
    `spec.ask_words`, the words of clauses that ask for something are added again, marked.
    """
    norm = normalise_text(text)
    compact = _SPACES.sub(" ", norm).strip()
    low, high = spec.char_ngrams
    # Spaces are collapsed, so only a 1-gram can be all space.
    grams = [c for c in compact if c != " "] if low == 1 else []
    for n in range(max(low, 2), high + 1):
        grams += [compact[i : i + n] for i in range(len(compact) - n + 1)]
    if tokens is None:
        tokens = segment(norm)
    grams += [WORD_PREFIX + token for token in tokens if token is not None]
    if spec.latin_word_grams is not None:
        grams += _latin_word_grams(tokens, spec.latin_word_grams)
    if spec.ask_words:
        grams += _ask_words(tokens)
    return grams


def _latin_word_grams(tokens: list[str | None], lengths: tuple[int, int]) -> list[str]:
    low, high = lengths
    grams: list[str] = []
    for token in tokens:
        if token is None or not _LATIN_WORD.match(token):
            continue
        padded = f" {token} "
        for n in range(low, high + 1):
            grams += [LATIN_PREFIX + padded[i : i + n] for i in range(len(padded) - n + 1)]
    return grams


def _ask_words(tokens: list[str | None]) -> list[str]:
    asked: list[str] = []
    clause: list[str] = []
    for token in [*tokens, None]:
        if token is not None:
            clause.append(token)
            continue
        if not ASK_CUES.isdisjoint(clause):
            asked += [ASK_PREFIX + word for word in clause]
        clause = []
    return asked


def display_feature(feature: str) -> str:
    """A feature as a reader sees it: the word, or the character n-gram in quotes."""
    if feature[:1] in (WORD_PREFIX, ASK_PREFIX):
        return feature[1:]
    if feature[:1] == LATIN_PREFIX:
        return f"“{feature[1:].strip()}”"
    return f"“{feature}”"


_GRAM, _TELLING_WORD, _FUNCTION_WORD = 0, 1, 2


def _feature_kind(feature: str) -> int:
    if feature[:1] not in (WORD_PREFIX, ASK_PREFIX):
        return _GRAM
    return _FUNCTION_WORD if feature[len(WORD_PREFIX) :] in _UNTELLING else _TELLING_WORD


@dataclass(frozen=True)
class Head:
    """One output of the model: a multiclass dimension (category, emotion) or a binary one."""

    name: str
    classes: tuple[str, ...]  # binary heads: ("no", "yes")
    start: int  # first column in the stacked weight matrix
    stop: int
    calibration_a: tuple[float, ...]
    calibration_b: tuple[float, ...]

    @property
    def binary(self) -> bool:
        """Binary heads have one weight column: the score of "yes"."""
        return self.stop - self.start == 1


@dataclass(frozen=True)
class HeadResult:
    """Calibrated probabilities of one head, and the features that pushed its top answer."""

    probabilities: dict[str, float]
    top_features: tuple[tuple[str, float], ...]

    @property
    def label(self) -> str:
        """The most probable class."""
        return max(self.probabilities, key=self.probabilities.__getitem__)

    @property
    def confidence(self) -> float:
        """Probability of the most probable class."""
        return max(self.probabilities.values())


class TextModel:
    """A trained, versioned model: text in, calibrated probabilities per head out."""

    def __init__(
        self,
        *,
        version: str,
        vocabulary: list[str],
        idf: np.ndarray,
        weights: np.ndarray,
        intercept: np.ndarray,
        heads: list[Head],
        info: dict[str, Any] | None = None,
        spec: FeatureSpec = DEFAULT_SPEC,
    ) -> None:
        self.version = version
        self.spec = spec
        self.vocabulary = vocabulary
        self._index = {feature: i for i, feature in enumerate(vocabulary)}
        self.idf = idf.astype(np.float32)
        self.weights = weights.astype(np.float32)
        self.intercept = intercept.astype(np.float32)
        self.heads = {head.name: head for head in heads}
        self.info = info or {}
        outputs = self.weights.shape[1]
        self._calibration_a = np.zeros(outputs, dtype=np.float32)
        self._calibration_b = np.zeros(outputs, dtype=np.float32)
        for head in heads:
            self._calibration_a[head.start : head.stop] = head.calibration_a
            self._calibration_b[head.start : head.stop] = head.calibration_b
        self._kinds = np.fromiter(
            (_feature_kind(f) for f in vocabulary), dtype=np.int8, count=len(vocabulary)
        )

    def vectorise(
        self, text: str, tokens: list[str | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sparse tf-idf row of a text as (feature indices, l2-normalised values)."""
        lookup = self._index.get
        counts: dict[int, int] = {}
        for feature, count in Counter(features(text, tokens, self.spec)).items():
            if (i := lookup(feature)) is not None:
                counts[i] = count
        if not counts:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32)
        indices = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        values = (1.0 + np.log(tf)) * self.idf[indices]  # sublinear tf, as in training
        values /= np.linalg.norm(values)
        return indices, values

    def predict(self, text: str, tokens: list[str | None] | None = None) -> Prediction:
        """Every head's calibrated probabilities for one text; explanations on demand."""
        indices, values = self.vectorise(text, tokens)
        rows = self.weights[indices]  # (k, outputs)
        scores = values @ rows + self.intercept
        # sklearn's Platt scaling, every output at once: expit(-(a f + b)).
        calibrated = (
            1.0 / (1.0 + np.exp(self._calibration_a * scores + self._calibration_b))
        ).tolist()
        heads = {}
        for name, head in self.heads.items():
            if head.binary:
                yes = calibrated[head.start]
                heads[name] = {head.classes[0]: 1.0 - yes, head.classes[1]: yes}
            else:
                part = calibrated[head.start : head.stop]
                total = sum(part)
                shares = [p / total for p in part] if total > 0 else [1 / len(part)] * len(part)
                heads[name] = dict(zip(head.classes, shares, strict=True))
        return Prediction(self, indices, values, rows, heads)

    def _weightiest(
        self, indices: np.ndarray, contributions: np.ndarray, top: int
    ) -> tuple[tuple[str, float], ...]:
        # Words first (a reader understands "骂人" better than the n-gram "骂人了"), then n-grams;
        # function words never. One sort of the row's few features, then masks instead of a walk.
        order = np.argsort(-contributions)
        ranked = contributions[order]
        ranked_features = indices[order]
        positive = ranked > 0
        kinds = self._kinds[ranked_features]
        vocabulary = self.vocabulary
        # Twice as many words as shown: a word and the same word marked as asked for are one.
        word_mask = positive & (kinds == _TELLING_WORD)
        words: dict[str, float] = {}
        for feature, weight in zip(
            ranked_features[word_mask][: 2 * top].tolist(),
            ranked[word_mask][: 2 * top].tolist(),
            strict=True,
        ):
            words.setdefault(vocabulary[feature][1:], weight)
        chosen = [(word, round(weight, 3)) for word, weight in words.items()][:top]
        if len(chosen) < top:
            gram_mask = positive & (kinds == _GRAM)
            for feature, weight in zip(
                ranked_features[gram_mask][: top - len(chosen)].tolist(),
                ranked[gram_mask][: top - len(chosen)].tolist(),
                strict=True,
            ):
                chosen.append((f"“{vocabulary[feature]}”", round(weight, 3)))
        return tuple(chosen)

    # --- artefact ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The artefact: a compressed npz without pickled objects (safe to load from a table)."""
        meta = {
            "format": ARTEFACT_FORMAT,
            "version": self.version,
            "info": self.info,
            "features": self.spec.to_json(),
            "heads": [
                {
                    "name": h.name,
                    "classes": list(h.classes),
                    "start": h.start,
                    "stop": h.stop,
                    "a": list(h.calibration_a),
                    "b": list(h.calibration_b),
                }
                for h in self.heads.values()
            ],
        }
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), np.uint8),
            vocabulary=np.frombuffer("\n".join(self.vocabulary).encode("utf-8"), np.uint8),
            idf=self.idf.astype(np.float32),
            weights=self.weights.astype(np.float16),  # halves the artefact; scores move < 1e-3
            intercept=self.intercept.astype(np.float32),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TextModel:
        """Load an artefact written by to_bytes."""
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
            if meta.get("format") != ARTEFACT_FORMAT:
                raise ValueError(f"not a {ARTEFACT_FORMAT} artefact: {meta.get('format')!r}")
            vocabulary = arrays["vocabulary"].tobytes().decode("utf-8").split("\n")
            return cls(
                version=meta["version"],
                vocabulary=vocabulary,
                idf=arrays["idf"],
                weights=arrays["weights"],
                intercept=arrays["intercept"],
                heads=[
                    Head(
                        name=h["name"],
                        classes=tuple(h["classes"]),
                        start=h["start"],
                        stop=h["stop"],
                        calibration_a=tuple(h["a"]),
                        calibration_b=tuple(h["b"]),
                    )
                    for h in meta["heads"]
                ],
                info=meta.get("info", {}),
                spec=FeatureSpec.from_json(meta.get("features")),
            )


class Prediction:
    """One text's probabilities per head, and the features that weighed, worked out on demand.

    Working out the weightiest features costs more than the probabilities, and a caller shows
    them for a few heads only.
    """

    def __init__(
        self,
        model: TextModel,
        indices: np.ndarray,
        values: np.ndarray,
        rows: np.ndarray,
        probabilities: dict[str, dict[str, float]],
    ) -> None:
        self._model = model
        self._indices = indices
        self._values = values
        self._rows = rows
        self.probabilities = probabilities

    def __contains__(self, head: str) -> bool:
        return head in self.probabilities

    def head(self, name: str, explain: bool = False, top: int = 5) -> HeadResult:
        """One head's result; with `explain`, the features that pushed its answer most."""
        probabilities = self.probabilities[name]
        pushed: tuple[tuple[str, float], ...] = ()
        if explain and len(self._indices):
            spec = self._model.heads[name]
            if spec.binary:
                column = spec.start
                sign = 1.0 if probabilities[spec.classes[1]] >= 0.5 else -1.0
            else:
                best = max(probabilities, key=probabilities.__getitem__)
                column, sign = spec.start + spec.classes.index(best), 1.0
            contributions = sign * self._values * self._rows[:, column]
            pushed = self._model._weightiest(self._indices, contributions, top)
        return HeadResult(probabilities=probabilities, top_features=pushed)


@lru_cache(maxsize=1)
def load_shipped_model() -> TextModel | None:
    """The model committed with the package (None if it was never trained)."""
    resource = resources.files(__package__).joinpath(SHIPPED_MODEL_RESOURCE)
    if not resource.is_file():
        return None
    return TextModel.from_bytes(resource.read_bytes())

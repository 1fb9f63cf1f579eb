"""Text analysis: jieba segmentation for Chinese, word tokens for English, keyword lookup."""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from math import inf, log
from typing import Any

from .rules import normalise_text

_HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Runs of Chinese, runs of ASCII letters/digits, and clause-ending punctuation (stops negation).
_SEGMENT = re.compile(rf"([{_HAN_CLASS}]+)|([a-z0-9]+)|([.!?;,。!?;,、:()\[\]\"“”‘’《》\n])")
_NON_WORD = re.compile(r"[^a-z0-9|]+")
_CLAUSE_PUNCT = re.compile(r"[.!?;,。!?;,:\n|]")
_EXCLAMATION = re.compile(r"!")
_LATIN = re.compile(r"[a-z]")

_CLAUSE_BREAK = None  # token placeholder between clauses
_OPAQUE_RUN = "\x00"  # stands for a Chinese run that holds no keyword; matches nothing

# One jieba tokenizer per process: loading its dictionary takes about a second.
_jieba_lock = threading.Lock()
_jieba_tokenizer: Any = None
_registered_words: set[str] = set()


def _tokenizer() -> Any:
    """The process-wide jieba tokenizer, loaded on first use."""
    global _jieba_tokenizer
    if _jieba_tokenizer is None:
        with _jieba_lock:
            if _jieba_tokenizer is None:
                with warnings.catch_warnings():
                    # jieba imports pkg_resources, which warns on recent setuptools.
                    warnings.simplefilter("ignore")
                    import jieba
                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _jieba_tokenizer = tokenizer
    return _jieba_tokenizer


def register_chinese_words(words: Iterable[str]) -> None:
    """Teach jieba the rules' Chinese keywords so multi-character terms come out as one token."""
    # Words stay registered for the life of the process: a keyword dropped from newer rules only
    # changes where jieba may split, never what matches, because matching uses the rules' own terms.
    tokenizer = _tokenizer()
    with _jieba_lock:
        for word in words:
            if word not in _registered_words:
                tokenizer.add_word(word)
                _registered_words.add(word)


def segment(text: str, chinese_candidates: re.Pattern[str] | None = None) -> list[str | None]:
    """Tokens of normalised text in order; None marks a clause break.

    With `chinese_candidates`, a Chinese run containing no possible keyword becomes one placeholder
    token instead of being segmented: no keyword can match inside it, and segmenting is the cost.
    """
    tokenizer = _tokenizer()
    frequencies = tokenizer.FREQ
    log_total = log(tokenizer.total)
    tokens: list[str | None] = []
    for match in _SEGMENT.finditer(text):
        han, word, _punct = match.groups()
        if han is not None:
            if chinese_candidates is not None and chinese_candidates.search(han) is None:
                tokens.append(_OPAQUE_RUN)
            else:
                tokens.extend(_cut_chinese(han, frequencies, log_total))
        elif word is not None:
            tokens.append(word)
        else:
            tokens.append(_CLAUSE_BREAK)
    return tokens


def _cut_chinese(run: str, frequencies: dict[str, int], log_total: float) -> list[str]:
    """jieba's most probable route over its dictionary, as cut(run, HMM=False), in one fused loop.

    HMM only discovers unknown words; keywords are registered, so the HMM-free route loses nothing.
    Fusing jieba's get_DAG/calc/cut halves the time on the HTTP write path; the unit tests check
    that the tokens equal jieba's own.
    """
    length = len(run)
    lookup = frequencies.get
    best_score = [0.0] * (length + 1)
    best_end = [0] * (length + 1)
    for start in range(length - 1, -1, -1):
        top_score = -inf
        top_end = start
        end = start
        count = lookup(run[start])
        while count is not None:
            if count:
                score = log(count) - log_total + best_score[end + 1]
                # jieba takes max over (score, end): on equal scores the longer word wins.
                if score >= top_score:
                    top_score, top_end = score, end
            end += 1
            if end == length:
                break
            count = lookup(run[start : end + 1])
        if top_score == -inf:
            # Not a dictionary word: a single character counted once, as jieba does.
            top_score = -log_total + best_score[start + 1]
        best_score[start] = top_score
        best_end[start] = top_end
    words = []
    position = 0
    while position < length:
        stop = best_end[position] + 1
        words.append(run[position:stop])
        position = stop
    return words


@dataclass(frozen=True, slots=True)
class Term:
    """One keyword of the rules: what it signals, how much, and whether negation can cancel it."""

    text: str
    dimension: str  # category | risk_flags | emotion | severity | impact
    label: str  # e.g. "product_quality", "safety", "angry", "serious", or the impact estimate
    weight: float
    negatable: bool


@dataclass(slots=True)
class TextAnalysis:
    """Terms a text matched, terms seen only under negation, and its exclamation marks."""

    matched: set[int]
    negated: set[int]
    exclamations: int


class TermIndex:
    """All keywords of a rule set, compiled for one pass over a complaint's tokens."""

    _CACHE_LIMIT = 50_000

    def __init__(
        self,
        terms: list[Term],
        negation_cues: Iterable[str],
        negation_window: int,
        rhetorical_endings: Iterable[str] = (),
        whole_words: Iterable[str] = (),
        negation_breaks: Iterable[str] = (),
        clause_cues: Iterable[str] = (),
        clause_cue_labels: Iterable[str] = (),
        prevention_prefixes: Iterable[str] = (),
        naming_followers: Iterable[str] = (),
        typo_min_length: int | None = None,
    ) -> None:
        self.terms = terms
        # Words kept whole by segmentation (rules' segmentation_words) that are no keyword
        # themselves carry none inside either: 多媒体 is not 媒体, 报警器 not 报警.
        self._whole_words = frozenset(whole_words)
        self._chinese: dict[str, list[int]] = {}
        self._english_words: dict[str, list[int]] = {}
        self._english_prefixes: dict[str, list[int]] = {}
        phrases: dict[str, list[int]] = {}
        for term_id, term in enumerate(terms):
            if _is_chinese(term.text):
                self._chinese.setdefault(term.text, []).append(term_id)
            elif term.text.endswith("*"):
                self._english_prefixes.setdefault(term.text[:-1], []).append(term_id)
            elif " " in term.text:
                phrases.setdefault(term.text, []).append(term_id)
            else:
                self._english_words.setdefault(term.text, []).append(term_id)
        self._chinese_lengths = sorted({len(text) for text in self._chinese}, reverse=True)
        self._chinese_candidates = (
            re.compile(
                "|".join(re.escape(text) for text in sorted(self._chinese, key=len, reverse=True))
            )
            if self._chinese
            else None
        )
        self._prefix_lengths = sorted({len(prefix) for prefix in self._english_prefixes})
        self._phrases = phrases
        self._phrase_pattern = (
            re.compile(
                r"(?<![a-z0-9])(?:"
                + "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
                + r")(?![a-z0-9])"
            )
            if phrases
            else None
        )
        cues = [normalise_text(cue) for cue in negation_cues]
        self._negation_cues = frozenset(cues)
        self._chinese_cues = tuple(cue for cue in cues if _is_chinese(cue))
        self._negation_window = negation_window
        # Words a negation cue never reaches past ("再不处理就发抖音": 就 starts the threat).
        self._negation_breaks = frozenset(normalise_text(b) for b in negation_breaks)
        self._rhetorical = frozenset(normalise_text(e) for e in rhetorical_endings)
        # Hypotheticals and hearsay: a cue earlier in the clause cancels these risk flags only.
        clause = [normalise_text(c) for c in clause_cues]
        self._clause_cues_zh = tuple(c for c in clause if _is_chinese(c))
        self._clause_cues_en = tuple(f" {c} " for c in clause if not _is_chinese(c))
        self._clause_cue_labels = frozenset(clause_cue_labels)
        # 防诈骗, "anti-fraud": a precaution; "fraud department": a thing. Risk words only.
        self._prevention = frozenset(normalise_text(c) for c in prevention_prefixes)
        self._prevention_zh = tuple(c for c in self._prevention if _is_chinese(c))
        self._followers = frozenset(normalise_text(c) for c in naming_followers)
        self._token_cache: dict[str, tuple[tuple[int, bool], ...]] = {}
        # English risk words with one letter missing, doubled or swapped ("poisning"): variant →
        # (term ids, whether the variant is a prefix stem). Risk words only, long words only.
        self._typo_min = typo_min_length
        self._typo_variants: dict[str, list[tuple[int, bool]]] = {}
        if typo_min_length is not None:
            for term_id, term in enumerate(terms):
                if term.dimension != "risk_flags" or _is_chinese(term.text) or " " in term.text:
                    continue
                prefix = term.text.endswith("*")
                word = term.text.rstrip("*")
                if len(word) < (typo_min_length - 1 if prefix else typo_min_length):
                    continue
                for variant in _typo_variants(word):
                    self._typo_variants.setdefault(variant, []).append((term_id, prefix))
        self._typo_lengths = sorted({len(v) for v in self._typo_variants}, reverse=True)
        register_chinese_words(self._chinese)

    def analyse(self, text: str, tokens: list[str | None] | None = None) -> TextAnalysis:
        """Match every keyword against one normalised complaint text.

        `tokens`: its segmentation, when the caller already has it (the model needs it too).
        """
        matched: set[int] = set()
        negated: set[int] = set()
        if tokens is None:
            tokens = segment(text, self._chinese_candidates)
        for position, token in enumerate(tokens):
            if token is None:
                continue
            hits = self._token_cache.get(token)
            if hits is None:
                hits = self._lookup_token(token)
            if not hits:
                continue
            preceded_by_negation: bool | None = None
            named: bool | None = None
            in_clause: bool | None = None
            for term_id, negated_inside in hits:
                term = self.terms[term_id]
                if not term.negatable:
                    matched.add(term_id)
                    continue
                if preceded_by_negation is None:
                    preceded_by_negation = self._negation_before(
                        tokens, position
                    ) and not self._rhetorical_clause(tokens, position)
                if term.dimension == "risk_flags":
                    if named is None:
                        named = self._named_thing(tokens, position)
                    if named:
                        negated.add(term_id)
                        continue
                    if term.label in self._clause_cue_labels:
                        if in_clause is None:
                            in_clause = self._clause_cue_before(tokens, position)
                        if in_clause:
                            negated.add(term_id)
                            continue
                if negated_inside or preceded_by_negation:
                    negated.add(term_id)
                else:
                    matched.add(term_id)
        if self._phrase_pattern is not None and _LATIN.search(text):
            # Clause punctuation stays as "|" so a negation never reaches across a clause.
            flat = " " + _NON_WORD.sub(" ", _CLAUSE_PUNCT.sub(" | ", text)) + " "
            for match in self._phrase_pattern.finditer(flat):
                ids = self._phrases[match.group()]
                flagged = [i for i in ids if self.terms[i].dimension == "risk_flags"]
                if flagged and self._phrase_named(flat, match.start(), match.end()):
                    negated.update(i for i in flagged if self.terms[i].negatable)
                    ids = [i for i in ids if i not in flagged or not self.terms[i].negatable]
                if flagged and self._phrase_clause_cued(flat, match.start()):
                    cancelled = [
                        i
                        for i in ids
                        if self.terms[i].label in self._clause_cue_labels
                        and self.terms[i].dimension == "risk_flags"
                        and self.terms[i].negatable
                    ]
                    negated.update(cancelled)
                    ids = [i for i in ids if i not in cancelled]
                if self._phrase_negated(flat, match.start()):
                    negated.update(i for i in ids if self.terms[i].negatable)
                    matched.update(i for i in ids if not self.terms[i].negatable)
                else:
                    matched.update(ids)
        negated -= matched
        return TextAnalysis(
            matched=matched, negated=negated, exclamations=len(_EXCLAMATION.findall(text))
        )

    def _lookup_token(self, token: str) -> tuple[tuple[int, bool], ...]:
        """Terms a token stands for: itself if a keyword, else keywords inside (jieba compounds)."""
        hits: list[tuple[int, bool]] = []
        if _is_chinese(token):
            exact = self._chinese.get(token)
            if exact is not None:
                hits.extend((term_id, False) for term_id in exact)
                # A token that is a keyword of one dimension may carry another dimension's
                # keyword inside: 被骗了 (a loss word of severity) is also 被骗 (fraud). Within
                # its own dimension the whole token decides: 态度 inside 服务态度 is not counted
                # twice, and 账户不安全 (a scam's words, fraud) is not 不安全 (safety).
                own = {self.terms[i].dimension for i in exact}
                hits.extend(
                    hit
                    for hit in self._chinese_inside(token)
                    if self.terms[hit[0]].dimension not in own
                )
            elif token not in self._whole_words:
                hits.extend(self._chinese_inside(token))
        else:
            hits.extend((term_id, False) for term_id in self._english_words.get(token, ()))
            for length in self._prefix_lengths:
                if length > len(token):
                    break
                hits.extend(
                    (term_id, False) for term_id in self._english_prefixes.get(token[:length], ())
                )
            if not hits and self._typo_min is not None and len(token) >= self._typo_min:
                hits.extend(
                    (term_id, False) for term_id in self._typo_lookup(token, self._typo_min)
                )
        result = tuple(hits)
        if len(self._token_cache) >= self._CACHE_LIMIT:
            self._token_cache.clear()
        self._token_cache[token] = result
        return result

    def _typo_lookup(self, token: str, min_length: int) -> list[int]:
        """Risk words this token misspells by one letter inside the word (first and last kept)."""
        found: list[int] = []
        # A letter missing or two swapped: the token (or its start, for a stem) is a variant.
        for length in self._typo_lengths:
            if length > len(token):
                continue
            for term_id, prefix in self._typo_variants.get(token[:length], ()):
                if prefix or length == len(token):
                    found.append(term_id)
        # A letter doubled or added: dropping one inner letter of the token gives the word.
        for position in range(1, len(token) - 1):
            shorter = token[:position] + token[position + 1 :]
            for term_id in self._english_words.get(shorter, ()):
                if self.terms[term_id].dimension == "risk_flags":
                    found.append(term_id)
            for length in self._prefix_lengths:
                if length > len(shorter) or length < min_length - 1:
                    continue
                for term_id in self._english_prefixes.get(shorter[:length], ()):
                    if self.terms[term_id].dimension == "risk_flags" and position < length:
                        found.append(term_id)
        return sorted(set(found))

    def negation_at_end(self, before: str) -> bool:
        """True when a negation cue ends this text (within the window, before any break)."""
        tokens = segment(before)
        return self._negation_before(tokens, len(tokens))

    def clause_cue_in(self, before: str) -> bool:
        """True when a hypothetical or hearsay cue stands in this text (one clause's start)."""
        if any(cue in before for cue in self._clause_cues_zh):
            return True
        english = " " + " ".join(_NON_WORD.sub(" ", before).split()) + " "
        return any(cue in english for cue in self._clause_cues_en)

    def _chinese_inside(self, token: str) -> list[tuple[int, bool]]:
        # A compound jieba kept whole (e.g. 服务态度) still carries the keywords inside it (态度),
        # but never a single character: 脏 is not inside 心脏, nor 烫 inside 麻辣烫.
        hits: list[tuple[int, bool]] = []
        for length in self._chinese_lengths:
            if length >= len(token) or length < 2:
                continue
            for start in range(len(token) - length + 1):
                ids = self._chinese.get(token[start : start + length])
                if ids is None:
                    continue
                negated_inside = (
                    token[:start].endswith(self._chinese_cues) if self._chinese_cues else False
                )
                # 防诈骗 kept whole by jieba: a precaution, so no risk flag inside it.
                prevented = bool(self._prevention_zh) and token[:start].endswith(
                    self._prevention_zh
                )
                hits.extend(
                    (
                        term_id,
                        negated_inside
                        or (prevented and self.terms[term_id].dimension == "risk_flags"),
                    )
                    for term_id in ids
                )
        return hits

    def _phrase_negated(self, flat: str, start: int) -> bool:
        # "not a safety issue", "no one was hurt": a cue among the words just before the phrase.
        before = flat[:start].split()[-self._negation_window :]
        for stop in ("|", *self._negation_breaks):
            if stop in before:
                before = before[len(before) - before[::-1].index(stop) :]
        return any(word in self._negation_cues for word in before)

    def _named_thing(self, tokens: list[str | None], position: int) -> bool:
        """防诈骗 / "anti fraud" (a precaution) or "fraud department" (a thing), not an event."""
        if self._prevention and position > 0 and tokens[position - 1] in self._prevention:
            return True
        if self._followers and position + 1 < len(tokens):
            return tokens[position + 1] in self._followers
        return False

    def _clause_cue_before(self, tokens: list[str | None], position: int) -> bool:
        """A hypothetical or hearsay cue earlier in the same clause ("如果…", "听说…", "if …")."""
        if not self._clause_cues_zh and not self._clause_cues_en:
            return False
        zh: list[str] = []
        en: list[str] = []
        for back in range(position - 1, -1, -1):
            token = tokens[back]
            if token is None:
                break
            (zh if _is_chinese(token) else en).append(token)
        chinese = "".join(reversed(zh))
        if any(cue in chinese for cue in self._clause_cues_zh):
            return True
        english = " " + " ".join(reversed(en)) + " "
        return any(cue in english for cue in self._clause_cues_en)

    def _phrase_named(self, flat: str, start: int, end: int) -> bool:
        before = flat[:start].split()[-1:]
        after = flat[end:].split()[:1]
        return bool(
            (before and before[0] in self._prevention) or (after and after[0] in self._followers)
        )

    def _phrase_clause_cued(self, flat: str, start: int) -> bool:
        if not self._clause_cues_en:
            return False
        clause = " " + flat[:start].rsplit("|", 1)[-1].strip() + " "
        return any(cue in clause for cue in self._clause_cues_en)

    def _rhetorical_clause(self, tokens: list[str | None], position: int) -> bool:
        # The clause's last token, up to the next break: "…不是骗钱吗" asks, it does not deny.
        if not self._rhetorical:
            return False
        last = None
        for token in tokens[position + 1 :]:
            if token is None:
                break
            last = token
        return last in self._rhetorical

    def _negation_before(self, tokens: list[str | None], position: int) -> bool:
        for back in range(1, self._negation_window + 1):
            if position - back < 0:
                return False
            previous = tokens[position - back]
            if previous is None or previous in self._negation_breaks:
                return False
            if previous in self._negation_cues:
                return True
        return False


def _typo_variants(word: str) -> set[str]:
    """The word with one inner letter dropped or two neighbouring letters swapped."""
    variants = set()
    for i in range(1, len(word) - 1):
        variants.add(word[:i] + word[i + 1 :])
        if i + 1 < len(word) - 1 and word[i] != word[i + 1]:
            variants.add(word[:i] + word[i + 1] + word[i] + word[i + 2 :])
    variants.discard(word)
    return variants


def term_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for normalised terms: Chinese as text, English as whole words."""
    unique = sorted(set(terms), key=len, reverse=True)
    chinese = [re.escape(term) for term in unique if _is_chinese(term)]
    english = [
        r"[^a-z0-9]+".join(re.escape(word) for word in term.split())
        for term in unique
        if not _is_chinese(term)
    ]
    parts = []
    if chinese:
        parts.append("|".join(chinese))
    if english:
        parts.append(r"(?<![a-z0-9])(?:" + "|".join(english) + r")(?![a-z0-9])")
    return re.compile("|".join(parts)) if parts else None


def _is_chinese(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)

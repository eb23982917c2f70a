"""The crisis judgement: would the crisis team have to act on this mention, and does it count as
negative for the plan and the digest?

Two readers look at a title. The lexicon (analysis/risk.py) finds claims a person can check, with
negation, rebuttals and publicity frames; the headline model (analysis/headline_model.py) was
learned from several thousand real hot-search and hot-list titles labelled one by one. A small
combiner, fitted on out-of-fold predictions (analysis/risk_training.py), weighs the two into one
P(crisis). Two thresholds on it, chosen by cross-validation, say `crisis` and `negative`.

A mention is judged by its head: a news item by its title, a post or review by its title and first
sentences. The model reads a head of several sentences sentence by sentence, and the likeliest crisis
among them speaks for the head, against thresholds of its own; the lexicon reads the head whole, so a
rebuttal in one sentence still answers the rumour in another. The body is supporting evidence: it
makes a mention a crisis only when at least BODY_SENTENCES of the sentences of its lead (the first
BODY_LEAD, where news tells its story) read as a crisis on their own. So a crisis told only in the
body is caught, while a body full of 科普 words, or a statute full of 调查 and 问责, around a harmless
title stays harmless. A patient review is one person's experience: it is a crisis only at
REVIEW_CRISIS (a death, an assault, a bribe); otherwise it is negative exactly when the review
sentiment model reads a complaint.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from yuqing.analysis.headline_model import NOT, HeadlineModel
from yuqing.analysis.risk import LexiconReading, RiskTagger, load_lexicon
from yuqing.resources import DATA

log = logging.getLogger(__name__)

SHIPPED_MODEL = DATA / "risk_model.npz"

HEAD_CHARS = 120  # a post's or review's head: its title and first sentences, up to this many characters
BODY_CHARS = 3000  # how much of a body is read for evidence
BODY_SENTENCES = 2  # body sentences that must each read as a crisis to make a crisis of the mention
BODY_BAR = 0.85  # ... each at least this combined score
BODY_LEAD = 10  # sentences of a body that can carry a crisis: its lead
MIN_SENTENCE_CHARS = 4  # a shorter piece (好气！) is not read as a sentence of its own
TITLE_CHARS = 30  # a text this short is a title, read whole (the labelled titles run to 25 characters:
#                   "一医院长期拖欠工资？当地回应" is one headline, not two sentences)
CATEGORY_SHARE = 0.3  # a second model category is reported when it has this share of P(crisis)
STRONG_CLAIM = 0.8  # a lexicon category is reported beside the model's when its claim is this strong
MAX_CATEGORIES = 3
LEXICON_CATEGORY_WEIGHT = 2.0  # how much a lexicon claim's strength counts in choosing the main category
REVIEW_KINDS = frozenset({"review"})
REVIEW_NEGATIVE = 0.5  # P(positive) under which a patient review is a complaint
REVIEW_CRISIS = 0.8  # the combined score a patient review needs to be a crisis (titles need the CV threshold)

_SENTENCE_RE = re.compile(r"[^。！？!?\n；;]+[。！？!?；;]*")


COMBINER_FEATURES = ("model_logit", "lexicon_score", "lexicon_crisis", "negated", "rebutted",
                     "accused_denial", "framed")


def logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def combiner_row(p_model: float, reading: LexiconReading) -> list[float]:
    """The combiner's inputs for one text, in COMBINER_FEATURES order."""
    return [logit(p_model), reading.score, float(reading.crisis), float(reading.negated),
            float(reading.rebutted), float(reading.accused_denial), float(reading.framed)]


@dataclass(frozen=True)
class Combiner:
    """Logistic regression weights over COMBINER_FEATURES, and the thresholds on its output: for a title
    (one sentence), and for a text of several sentences, whose likeliest sentence is read (each chosen
    by cross-validation; a text of several sentences has more chances of one that reads as a crisis)."""

    coef: tuple[float, ...]
    intercept: float
    crisis_threshold: float = 0.5
    negative_threshold: float = 0.5
    features: tuple[str, ...] = COMBINER_FEATURES
    several_crisis_threshold: float | None = None  # None: the title's
    several_negative_threshold: float | None = None

    def thresholds(self, several: bool) -> tuple[float, float]:
        """(crisis, negative) thresholds for a text of one sentence or of several."""
        if several and self.several_crisis_threshold is not None and self.several_negative_threshold is not None:
            return self.several_crisis_threshold, self.several_negative_threshold
        return self.crisis_threshold, self.negative_threshold

    def score(self, row: Sequence[float]) -> float:
        z = self.intercept + sum(c * x for c, x in zip(self.coef, row))
        return 1.0 / (1.0 + math.exp(-z)) if z > -35 else 0.0

    def as_meta(self) -> dict[str, object]:
        return {"features": list(self.features), "coef": [round(c, 6) for c in self.coef],
                "intercept": round(self.intercept, 6), "crisis_threshold": round(self.crisis_threshold, 4),
                "negative_threshold": round(self.negative_threshold, 4),
                **({"several_crisis_threshold": round(self.several_crisis_threshold, 4),
                    "several_negative_threshold": round(self.several_negative_threshold, 4)}
                   if self.several_crisis_threshold is not None and self.several_negative_threshold is not None
                   else {})}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Combiner:
        feats = tuple(str(f) for f in meta["features"])
        if feats != COMBINER_FEATURES:
            raise ValueError(f"combiner features {feats} are not {COMBINER_FEATURES}")
        several = ((float(meta["several_crisis_threshold"]), float(meta["several_negative_threshold"]))
                   if "several_crisis_threshold" in meta else (None, None))
        return cls(tuple(float(c) for c in meta["coef"]), float(meta["intercept"]),
                   float(meta["crisis_threshold"]), float(meta["negative_threshold"]), feats, *several)


@dataclass(frozen=True)
class Judgement:
    """The verdict on one text or mention, with what a person needs to check it."""

    crisis: bool
    score: float  # P(crisis), the combined judgement
    negative: bool
    categories: tuple[str, ...]  # main category first
    terms: tuple[str, ...]  # the lexicon's claim words
    model_score: float
    lexicon_score: float
    basis: str = "title"  # title, body, or review (negative from a review's sentiment)

    def as_record(self) -> dict[str, object]:
        """The `yuqing risk` line: crisis, score, negative, categories, terms."""
        return {"crisis": self.crisis, "score": round(self.score, 4), "negative": self.negative,
                "categories": list(self.categories), "terms": list(self.terms)}


NOTHING = Judgement(False, 0.0, False, (), (), 0.0, 0.0)


def names_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for the hospital's own names, longest first."""
    words = sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in words)) if words else None


def fold_names(text: str, pattern: re.Pattern[str] | None) -> str:
    """The hospital's own names read as "医院": the labelled titles name many hospitals, and a correction
    must teach what happened, not that our name is a crisis word."""
    return pattern.sub(OWN_NAME, text) if pattern is not None else text


OWN_NAME = "医院"


def model_units(text: str) -> list[str]:
    """What the model reads of a text longer than a title: its sentences when it has two or more, else
    the text whole."""
    if len(text) <= TITLE_CHARS:
        return [text]
    pieces = [m.group(0).strip() for m in _SENTENCE_RE.finditer(text)]
    sentences = [p for p in pieces if len(p) >= MIN_SENTENCE_CHARS]
    return sentences if len(sentences) >= 2 else [text]


def model_probs(model: HeadlineModel, texts: Sequence[str]) -> np.ndarray:
    """The model's class probabilities for each text: for a text of several sentences, those of the
    sentence likeliest to be a crisis (one batch for all sentences of all texts)."""
    return model_reading(model, texts)[0]


def model_reading(model: HeadlineModel, texts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
    """model_probs, and for each text whether it was read as several sentences."""
    units = [model_units(t) for t in texts]
    several = [len(us) > 1 for us in units]
    flat = [u for us in units for u in us]
    if not flat:
        return np.zeros((0, len(model.classes))), several
    probs = model.predict_proba(flat)
    if len(flat) == len(texts):
        return probs, several
    out = np.empty((len(texts), probs.shape[1]))
    pos, not_index = 0, model.not_index
    for i, us in enumerate(units):
        block = probs[pos:pos + len(us)]
        out[i] = block[int(np.argmin(block[:, not_index]))]
        pos += len(us)
    return out, several


class CrisisJudge:
    """Lexicon, headline model and combiner, loaded once and used for every mention."""

    def __init__(self, tagger: RiskTagger, model: HeadlineModel, combiner: Combiner,
                 own_names: Iterable[str] = ()) -> None:
        self.tagger = tagger
        self.model = model
        self.combiner = combiner
        self.own_names = tuple(own_names)
        self._names = names_pattern(self.own_names)
        self._model_cats = [k for k, c in enumerate(model.classes) if c != NOT]
        unknown = set(model.categories) - set(tagger.lexicon.categories)
        if unknown:
            raise ValueError(f"the crisis model knows categories the lexicon does not: {', '.join(sorted(unknown))}")

    @classmethod
    def load(cls, model_path: Path | None = None, lexicon_path: Path | None = None,
             extra_terms: Mapping[str, Sequence[str]] | None = None, own_names: Iterable[str] = ()) -> CrisisJudge:
        """The shipped (or given) model and lexicon, with a hospital's extra risk terms and its names."""
        path = Path(model_path) if model_path else SHIPPED_MODEL
        model = HeadlineModel.load(path)
        try:
            combiner = Combiner.from_meta(dict(model.meta["combiner"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"crisis model {path} has no usable combiner: {err}") from None
        return cls(RiskTagger(load_lexicon(lexicon_path, extra=extra_terms)), model, combiner, own_names)

    def with_model(self, model: HeadlineModel) -> CrisisJudge:
        """The same lexicon, combiner and names over another model (a retrained one)."""
        return CrisisJudge(self.tagger, model, self.combiner, self.own_names)

    def as_read(self, text: str) -> str:
        """A text as both readers see it: the hospital's own names folded."""
        return fold_names(text or "", self._names)

    # --- titles -------------------------------------------------------------------------------

    def judge(self, text: str) -> Judgement:
        """One title (or one sentence)."""
        return self.judge_many([text])[0]

    def judge_many(self, texts: Sequence[str]) -> list[Judgement]:
        """Many titles at once: the model reads them as one batch."""
        clean = [self.as_read(t) for t in texts]
        probs, several = model_reading(self.model, clean)
        return [self._verdict(text, row, self.tagger.read(text), many) if text.strip() else NOTHING
                for text, row, many in zip(clean, probs, several)]

    def _verdict(self, text: str, probs: np.ndarray, reading: LexiconReading, several: bool = False) -> Judgement:
        p_model = float(1.0 - probs[self.model.not_index])
        comb = self.combiner
        score = comb.score(combiner_row(p_model, reading))
        crisis_at, negative_at = comb.thresholds(several)
        negative = score >= negative_at
        crisis = score >= crisis_at
        categories = self._categories(probs, reading) if negative else ()
        return Judgement(crisis, round(score, 4), negative, categories, reading.terms, round(p_model, 4),
                         reading.score)

    def _categories(self, probs: np.ndarray, reading: LexiconReading) -> tuple[str, ...]:
        """The main category, a strong lexicon claim's category, and a close second of the model's."""
        cats = self._model_cats
        crisis_p = probs[cats]
        total = float(crisis_p.sum()) or 1.0
        ranked = sorted(zip(crisis_p.tolist(), (self.model.classes[k] for k in cats)), reverse=True)
        out = [main_category(probs, self.model.classes, reading.strength)]
        out += [c for c, w in reading.strength.items() if w >= STRONG_CLAIM and c not in out]
        out += [c for p, c in ranked if p / total >= CATEGORY_SHARE and c not in out]
        return tuple(out[:MAX_CATEGORIES])

    # --- mentions -----------------------------------------------------------------------------

    def judge_mention(self, title: str, text: str, kind: str = "news", sentiment: float | None = None) -> Judgement:
        """One mention: its head decides, its body can add a crisis, a review's sentiment can add negative."""
        return self.judge_mentions([(title, text, kind, sentiment)])[0]

    def judge_mentions(self, mentions: Sequence[tuple[str, str, str, float | None]]) -> list[Judgement]:
        """Many mentions (title, text, kind, sentiment) at once."""
        heads, bodies = zip(*(head_and_body(t, x, k) for t, x, k, _ in mentions)) if mentions else ((), ())
        verdicts = self.judge_many(list(heads))
        verdicts = self._with_bodies(verdicts, list(bodies))
        out = []
        for j, (_, _, kind, sentiment) in zip(verdicts, mentions):
            if kind in REVIEW_KINDS:
                j = _as_review(j, sentiment)
            out.append(j)
        return out

    def _with_bodies(self, verdicts: list[Judgement], bodies: list[str]) -> list[Judgement]:
        """Raise a head that is not a crisis to one when enough of its body's sentences are."""
        todo = [(i, body_sentences(b)) for i, (j, b) in enumerate(zip(verdicts, bodies)) if not j.crisis and b]
        todo = [(i, s) for i, s in todo if len(s) >= BODY_SENTENCES]
        if not todo:
            return verdicts
        flat = [self.as_read(s) for _, ss in todo for s in ss]
        p_model = self.model.crisis_probability(flat)
        pos = 0
        for i, sentences in todo:
            ps = p_model[pos:pos + len(sentences)]
            pos += len(sentences)
            # below 0.5 from the model, even the strongest lexicon claim cannot lift a sentence to BODY_BAR
            # through the combiner, so only the likely ones are read by the lexicon
            likely = [s for s, p in zip(sentences, ps) if p >= 0.5]
            if len(likely) < BODY_SENTENCES:
                continue
            strong = sorted((j for j in self.judge_many(likely) if j.score >= BODY_BAR), key=lambda j: -j.score)
            if len(strong) >= BODY_SENTENCES:
                verdicts[i] = _from_body(verdicts[i], strong[:BODY_SENTENCES])
        return verdicts

    def explain(self, text: str) -> dict[str, object]:
        """The verdict with both readers' parts and category names, for people checking a judgement."""
        j = self.judge(text)
        lex = self.tagger.lexicon
        evidence = self.model.evidence(self.as_read(text)) if j.negative else []  # not on the hot path
        return {**j.as_record(), "model": j.model_score, "lexicon": j.lexicon_score,
                "evidence": evidence, "names": {c: lex.display_name(c) for c in j.categories}}


def main_category(probs: np.ndarray, classes: Sequence[str], strength: Mapping[str, float]) -> str:
    """The crisis category a mention is mainly about: the model's log-probability of each category plus
    LEXICON_CATEGORY_WEIGHT times the strength of the lexicon's claim in it (a 收红包 the lexicon can
    point at decides between bribery and investigation). Chosen by cross-validation: 0.69 → 0.71."""
    best, best_score = "", -math.inf
    for k, c in enumerate(classes):
        if c == NOT:
            continue
        score = math.log(float(probs[k]) + 1e-9) + LEXICON_CATEGORY_WEIGHT * strength.get(c, 0.0)
        if score > best_score:
            best, best_score = c, score
    return best


def review_complaint(sentiment: float | None) -> bool:
    """Whether the review sentiment model reads a review as a complaint (unknown sentiment: no)."""
    return sentiment is not None and sentiment < REVIEW_NEGATIVE


def _as_review(j: Judgement, sentiment: float | None) -> Judgement:
    """A patient review: a crisis only when it is severe; negative when it complains, as the review
    sentiment model (trained on reviews) reads it. The title-trained crisis score alone would count a
    happy review with one grumble (停车有点难) as negative."""
    severe = j.score >= REVIEW_CRISIS
    if j.crisis and not severe:
        j = replace(j, crisis=False)
    if sentiment is None:
        return j
    complaint = review_complaint(sentiment)
    negative = severe or complaint
    if negative != j.negative:
        j = replace(j, negative=negative, categories=j.categories if negative else (),
                    basis="review" if complaint and not severe else j.basis)
    return j


def _from_body(head: Judgement, strong: Sequence[Judgement]) -> Judgement:
    """A head raised to a crisis by its body's sentences: their categories, terms and evidence."""
    first = strong[0]
    return Judgement(True, round(min(j.score for j in strong), 4), True,
                     first.categories or head.categories, _merged(head.terms, *(j.terms for j in strong)),
                     max(j.model_score for j in strong), max(j.lexicon_score for j in strong), basis="body")


def _merged(*groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for g in groups for t in g))


def first_sentences(text: str, limit: int = HEAD_CHARS) -> tuple[str, int]:
    """The opening sentences of a text, whole, up to about `limit` characters (at least one sentence),
    and the offset in the text where they end."""
    out, end = "", 0
    for m in _SENTENCE_RE.finditer(text):
        piece = m.group(0).strip()
        if not piece:
            continue
        if out and len(out) + len(piece) > limit:
            break
        out, end = out + piece, m.end()
        if len(out) >= limit:
            break
    return out, end


def head_and_body(title: str, text: str, kind: str) -> tuple[str, str]:
    """What decides (the head) and what supports (the body): a news item's title, a post's or
    review's title and first sentences; the body is the rest of the text."""
    title, text = (title or "").strip(), (text or "").strip()
    if kind == "news" and title:
        return title, text[:BODY_CHARS]
    opening, end = first_sentences(text, HEAD_CHARS - len(title)) if len(title) < HEAD_CHARS else ("", 0)
    head = f"{title}。{opening}" if title and opening else title or opening
    return head, text[end:][:BODY_CHARS]


def body_sentences(body: str) -> list[str]:
    """The lead's sentences worth reading: long enough to report something, the first BODY_LEAD of them."""
    out = []
    for m in _SENTENCE_RE.finditer(body):
        s = m.group(0).strip()
        if 8 <= len(s) <= 200:
            out.append(s)
            if len(out) >= BODY_LEAD:
                break
    return out

"""Training and measuring the crisis judgement on labelled titles: the shared real headlines
(../shared/data/risk/headlines.jsonl) and the headlines this project wrote (tests/data/risk_*.tsv).

One module for scripts/train_risk.py (which writes data/risk_model.npz), bench/bench_risk.py (which
prints the cross-validated figures) and the tests, so the folds, the combiner and the thresholds are
computed one way everywhere.

How the judgement is built, and why (each choice was made by 5-fold cross-validation on the shared
titles; the alternatives are in the README):
- the model: multinomial logistic regression over TF-IDF character 1-3-grams, one class for "not"
  and one per crisis category (C=30, n-grams seen in >= 2 titles). Word n-grams, NB scaling, 4-grams,
  a character CNN, a BiGRU and fastText-style embeddings did no better on ~5,000 titles;
- the headlines we wrote are added to training at half weight: they teach the publicity and 科普
  wording of news sites that hot-search titles lack, without moving the cross-validated figures;
- the combiner: a logistic regression over the model's logit and what the lexicon read (score,
  negation, rebuttal, the accused's denial, a frame), fitted on out-of-fold model probabilities of
  the shared titles only (the lexicon was tuned on the written ones, so there it looks too good);
- texts of several sentences (posts, reviews, long news heads): the judge reads them sentence by
  sentence (judge.model_units), so a crisis among ordinary sentences is not diluted, and holds them to
  thresholds of their own, chosen on held-out titles joined to ordinary titles of their fold. Training
  on such joined texts as well did not help them further and cost the titles a little, so it is not
  done (bench_risk.py, "Texts of several sentences");
- thresholds: crisis where the combined score's F1 is best; `negative` from the score at which at
  most NEGATIVE_FALSE_RATE of the non-crisis titles count.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from yuqing.analysis.headline_model import NOT, HeadlineModel
from yuqing.analysis.judge import COMBINER_FEATURES, Combiner, combiner_row, main_category, model_probs, model_reading
from yuqing.analysis.model_fit import Example, fit
from yuqing.analysis.risk import LexiconReading, RiskTagger
from yuqing.resources import CHECKOUT, PACKAGE_DIR

log = logging.getLogger(__name__)

_ROOT = CHECKOUT or PACKAGE_DIR  # training reads a checkout's ../shared and tests/data
SHARED_HEADLINES = _ROOT.parent / "shared" / "data" / "risk" / "headlines.jsonl"
WRITTEN_DIR = _ROOT / "tests" / "data"
WRITTEN_FILES = ("risk_dev.tsv", "risk_fresh_a.tsv", "risk_fresh_b.tsv", "risk_fresh_c.tsv",
                 "risk_fresh_d.tsv", "risk_headlines.tsv")

C = 30.0
MIN_DF = 2
WRITTEN_WEIGHT = 0.5
FOLDS = 5
COMBINER_C = 1.0
NEGATIVE_FALSE_RATE = 0.08  # share of non-crisis titles allowed to count as negative (target: <= 0.10)


@dataclass(frozen=True)
class Title:
    """One labelled title: crisis or not, its category (for a crisis), and where it came from."""

    id: str
    text: str
    crisis: bool
    category: str | None
    source: str

    @property
    def label(self) -> str:
        """The model's class for this title."""
        return (self.category or "") if self.crisis else NOT


def shared_available(path: Path = SHARED_HEADLINES) -> bool:
    """Whether the shared labelled headlines are on this machine."""
    return path.is_file()


def read_shared(path: Path = SHARED_HEADLINES, *, skips: bool = False) -> list[Title]:
    """The shared real titles labelled crisis or not ("skip" lines are not about care and are left out);
    with skips=True, only the "skip" lines instead, as non-crises (source "skip:…"), for the experiment
    that showed they do not help (bench_risk.py --with-skips)."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            label = row["label"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}:{n}: not a labelled headline ({err})") from None
        if label not in ("crisis", "not", "skip"):
            raise ValueError(f"{path}:{n}: label {label!r} is not crisis, not or skip")
        if (label == "skip") != skips:
            continue
        if skips:
            out.append(Title(str(row["id"]), str(row["text"]), False, None, f"skip:{row.get('source', '')}"))
            continue
        crisis = label == "crisis"
        out.append(Title(str(row["id"]), str(row["text"]), crisis, row.get("category") if crisis else None,
                         str(row.get("source", ""))))
    return out


def read_written(directory: Path = WRITTEN_DIR) -> list[Title]:
    """The headlines this project wrote (label<TAB>text lines); crises have no category yet."""
    out = []
    for name in WRITTEN_FILES:
        path = directory / name
        if not path.exists():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            label, text = line.split("\t", 2)[:2]
            out.append(Title(f"{name}:{n}", text.strip(), label.strip() == "1", None, name))
    return out


def _hash(text: str) -> int:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16)


def fold_of(titles: Sequence[Title], k: int = FOLDS) -> list[int]:
    """A stratified fold for each title, from a hash of its id: the same on every machine and run."""
    folds = [0] * len(titles)
    for crisis in (False, True):
        members = sorted((i for i, t in enumerate(titles) if t.crisis == crisis), key=lambda i: _hash("fold:" + titles[i].id))
        for rank, i in enumerate(members):
            folds[i] = rank % k
    return folds


def classes_of(titles: Sequence[Title]) -> tuple[str, ...]:
    """"not" first, then the crisis categories in the order the lexicon lists them."""
    from yuqing.analysis.risk import load_lexicon

    order = load_lexicon().categories
    seen = {t.category for t in titles if t.crisis and t.category}
    unknown = sorted(seen - set(order))
    if unknown:
        raise ValueError(f"labelled categories not in the lexicon: {', '.join(unknown)}")
    return (NOT, *[c for c in order if c in seen])


def _examples(titles: Sequence[Title], weight: float = 1.0) -> list[Example]:
    return [Example(t.text, t.label, weight) for t in titles]


def label_written(written: Sequence[Title], shared: Sequence[Title], classes: Sequence[str]) -> list[Title]:
    """Give the written crises the category a model trained on the shared titles reads in them."""
    crises = [t for t in written if t.crisis]
    if not crises:
        return list(written)
    model = fit(_examples(shared), classes, c=C, min_df=MIN_DF)
    probs = model.predict_proba([t.text for t in crises])
    guessed = {t.id: main_category(row, model.classes, {}) for t, row in zip(crises, probs)}
    return [Title(t.id, t.text, t.crisis, guessed.get(t.id), t.source) for t in written]


def joined_texts(title: Title, companions: Sequence[Title], rng: random.Random) -> str:
    """A title and its companions in a random order, as the sentences of one text."""
    parts = [title.text, *(c.text for c in companions)]
    rng.shuffle(parts)
    return "。".join(p.rstrip("。") for p in parts)


def train_model(shared: Sequence[Title], written: Sequence[Title], classes: Sequence[str],
                meta: dict[str, object] | None = None) -> HeadlineModel:
    """The headline model on shared titles (weight 1) and written ones (WRITTEN_WEIGHT)."""
    examples = _examples(shared) + _examples(written, WRITTEN_WEIGHT)
    return fit(examples, classes, c=C, min_df=MIN_DF, meta=meta)


def fold_model(shared: Sequence[Title], written: Sequence[Title], fold: int) -> tuple[HeadlineModel, list[Title]]:
    """A model trained on every fold of the shared titles but one (and the written ones), and the titles
    of the fold it never saw: one cross-validation round, for tests and quick checks."""
    folds = fold_of(shared)
    train = [t for t, f in zip(shared, folds) if f != fold]
    classes = classes_of(shared)
    model = train_model(train, label_written(written, train, classes), classes)
    return model, [t for t, f in zip(shared, folds) if f == fold]


# --- the combiner: model and lexicon into one score --------------------------------------------------


def fit_combiner(rows: np.ndarray, gold: np.ndarray, c: float = COMBINER_C) -> tuple[tuple[float, ...], float]:
    """L2 logistic regression (Newton steps: seven features converge in a few iterations)."""
    x = np.hstack([rows, np.ones((len(rows), 1))])
    w = np.zeros(x.shape[1])
    reg = np.ones(x.shape[1]) / c
    reg[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - gold) + reg * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return tuple(float(v) for v in w[:-1]), float(w[-1])


def best_f1_threshold(scores: np.ndarray, gold: np.ndarray) -> float:
    """The threshold with the best F1 (ties: the lower one, for recall)."""
    best, best_t = -1.0, 0.5
    for t in np.round(np.arange(0.05, 0.951, 0.01), 2):
        tp = float(np.sum((scores >= t) & gold))
        fp = float(np.sum((scores >= t) & ~gold))
        fn = float(np.sum((scores < t) & gold))
        f1 = 2 * tp / max(1.0, 2 * tp + fp + fn)
        if f1 > best + 1e-12:
            best, best_t = f1, float(t)
    return best_t


def negative_threshold(scores: np.ndarray, gold: np.ndarray, rate: float = NEGATIVE_FALSE_RATE) -> float:
    """The lowest score at which at most `rate` of the non-crisis titles count as negative."""
    quiet = np.sort(scores[~gold])
    if not len(quiet):
        return 0.5
    k = int(math.floor(rate * len(quiet)))
    return float(quiet[len(quiet) - k - 1]) + 1e-6 if k < len(quiet) else 0.0


def build_combiner(rows: np.ndarray, gold: np.ndarray, several_rows: np.ndarray | None = None,
                   several_gold: np.ndarray | None = None) -> Combiner:
    """Combiner weights and both thresholds, from out-of-fold rows of titles; with rows of texts of
    several sentences, their own two thresholds too (the weights stay the titles')."""
    coef, intercept = fit_combiner(rows, gold.astype(float))
    comb = Combiner(coef, intercept)
    crisis_t, neg_t = _thresholds(comb, rows, gold)
    several: tuple[float | None, float | None] = (None, None)
    if several_rows is not None and several_gold is not None and len(several_rows):
        several = _thresholds(comb, several_rows, several_gold)
    return Combiner(coef, intercept, crisis_t, neg_t, COMBINER_FEATURES, *several)


def _thresholds(comb: Combiner, rows: np.ndarray, gold: np.ndarray) -> tuple[float, float]:
    """(crisis at best F1, negative at NEGATIVE_FALSE_RATE, never above crisis) for these rows."""
    scores = np.array([comb.score(r) for r in rows])
    crisis_t = best_f1_threshold(scores, gold)
    return crisis_t, min(negative_threshold(scores, gold), crisis_t)


# --- cross-validation --------------------------------------------------------------------------------


@dataclass
class OutOfFold:
    """Out-of-fold results on the shared titles: model class probabilities and lexicon readings."""

    titles: list[Title]
    folds: list[int]
    probs: np.ndarray  # titles x classes
    classes: tuple[str, ...]
    readings: list[LexiconReading]
    models: list[HeadlineModel] = field(default_factory=list)  # one per fold, for measuring other texts

    @property
    def gold(self) -> np.ndarray:
        return np.array([t.crisis for t in self.titles])

    @property
    def p_model(self) -> np.ndarray:
        return 1.0 - self.probs[:, self.classes.index(NOT)]

    @property
    def lexicon_crisis(self) -> np.ndarray:
        return np.array([r.crisis for r in self.readings])

    def combiner_rows(self) -> np.ndarray:
        return np.array([combiner_row(p, r) for p, r in zip(self.p_model, self.readings)])


@dataclass
class Several:
    """Held-out titles joined to ordinary titles of their fold, as the model and lexicon read them."""

    texts: list[str]
    gold: np.ndarray
    folds: np.ndarray
    parts: np.ndarray  # how many titles each text joins
    rows: np.ndarray  # combiner rows
    split: np.ndarray  # whether the model read the text sentence by sentence (longer than a title)


SEVERAL_PARTS = (2, 3)


def joined_held_out(titles: Sequence[Title], folds: Sequence[int], parts: int) -> tuple[list[str], list[int]]:
    """Each title with parts - 1 non-crisis companions of its own fold (deterministic), and their indexes."""
    rng = random.Random(f"several:{parts}")
    texts, index = [], []
    for f in range(FOLDS):
        held = [i for i in range(len(titles)) if folds[i] == f]
        quiet = [titles[i] for i in held if not titles[i].crisis]
        for i in held:
            companions = [q for q in rng.sample(quiet, min(parts, len(quiet))) if q.id != titles[i].id][:parts - 1]
            if len(companions) == parts - 1:
                texts.append(joined_texts(titles[i], companions, rng))
                index.append(i)
    return texts, index


def several_of(titles: Sequence[Title], folds: Sequence[int], models: Sequence[HeadlineModel],
               tagger: RiskTagger, sentences: bool = True) -> Several:
    """The joined held-out texts of every fold, read by that fold's model (sentence by sentence, or
    with sentences=False whole, as the judgement did before) and by the lexicon."""
    texts: list[str] = []
    index: list[int] = []
    parts: list[int] = []
    for k in SEVERAL_PARTS:
        t, i = joined_held_out(titles, folds, k)
        texts += t
        index += i
        parts += [k] * len(t)
    fold_arr = np.array([folds[i] for i in index])
    p_model = np.zeros(len(texts))
    split = np.zeros(len(texts), dtype=bool)
    for f, model in enumerate(models):
        idx = np.flatnonzero(fold_arr == f)
        chunk = [texts[i] for i in idx]
        if sentences:
            probs, several = model_reading(model, chunk)
            split[idx] = several
        else:
            probs = model.predict_proba(chunk)
        p_model[idx] = 1.0 - probs[:, model.not_index]
    rows = np.array([combiner_row(float(p), tagger.read(t)) for p, t in zip(p_model, texts)])
    return Several(texts, np.array([titles[i].crisis for i in index]), fold_arr, np.array(parts), rows, split)


def out_of_fold(shared: Sequence[Title], written: Sequence[Title], tagger: RiskTagger,
                progress: Callable[[str], None] | None = None) -> OutOfFold:
    """Fit one model per fold (written titles always in training) and collect what it says on the held fold."""
    classes = classes_of(shared)
    folds = fold_of(shared)
    probs = np.zeros((len(shared), len(classes)))
    models = []
    for f in range(FOLDS):
        model, _ = fold_model(shared, written, f)
        held = [i for i, k in enumerate(folds) if k == f]
        probs[held] = model_probs(model, [shared[i].text for i in held])  # titles: read whole either way
        models.append(model)
        if progress:
            progress(f"fold {f + 1}/{FOLDS}: {len(shared) - len(held)} shared + {len(written)} written titles")
    return OutOfFold(list(shared), folds, probs, classes, [tagger.read(t.text) for t in shared], models)


def combined_out_of_fold(oof: OutOfFold) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combined scores, crisis and negative verdicts for each title, each fold judged by a combiner and
    thresholds fitted on the other folds only."""
    rows = oof.combiner_rows()
    gold = oof.gold
    folds = np.array(oof.folds)
    scores = np.zeros(len(gold))
    crisis = np.zeros(len(gold), dtype=bool)
    negative = np.zeros(len(gold), dtype=bool)
    for f in range(FOLDS):
        held = folds == f
        comb = build_combiner(rows[~held], gold[~held])
        s = np.array([comb.score(r) for r in rows[held]])
        scores[held] = s
        crisis[held] = s >= comb.crisis_threshold
        negative[held] = s >= comb.negative_threshold
    return scores, crisis, negative


def several_out_of_fold(oof: OutOfFold, several: Several, own_thresholds: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Crisis and negative verdicts on the joined texts of these folds (several_of), each fold by a combiner
    fitted on the other folds (with the thresholds for several sentences, or with own_thresholds=False the
    titles' ones)."""
    rows, gold, folds = oof.combiner_rows(), oof.gold, np.array(oof.folds)
    crisis = np.zeros(len(several.gold), dtype=bool)
    negative = np.zeros(len(several.gold), dtype=bool)
    for f in range(FOLDS):
        other = (several.folds != f) & several.split
        comb = build_combiner(rows[folds != f], gold[folds != f], several.rows[other] if own_thresholds else None,
                              several.gold[other] if own_thresholds else None)
        for i in np.flatnonzero(several.folds == f):
            crisis_at, negative_at = comb.thresholds(bool(several.split[i]))
            s = comb.score(several.rows[i])
            crisis[i], negative[i] = s >= crisis_at, s >= negative_at
    return crisis, negative


def precision_recall(pred: np.ndarray, gold: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 of boolean predictions."""
    tp = float(np.sum(pred & gold))
    fp = float(np.sum(pred & ~gold))
    fn = float(np.sum(~pred & gold))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def category_accuracy(oof: OutOfFold) -> tuple[float, int, Counter[tuple[str, str]]]:
    """How often the judgement's main category (judge.main_category: the model's probabilities with the
    lexicon's claims) is the labelled one, on the shared crises, out of fold; with the commonest
    confusions (labelled, given). Without readings, the model's most probable category."""
    right, total = 0, 0
    confusions: Counter[tuple[str, str]] = Counter()
    for i, (title, row) in enumerate(zip(oof.titles, oof.probs)):
        if not title.crisis or not title.category:
            continue
        given = main_category(row, oof.classes, oof.readings[i].strength if oof.readings else {})
        total += 1
        if given == title.category:
            right += 1
        else:
            confusions[(title.category, given)] += 1
    return (right / total if total else 0.0), total, confusions


_KEYWORD_RE = re.compile(r"死|亡|伤|打|砍|刺|感染|事故|纠纷|红包|回扣|受贿|骗保|乱收费|泄露|偷拍|拒诊|推诿|假药|过期|违规|"
                         r"违法|坠|火灾|调查|通报|停职|被查|曝光|确诊|投诉")


def keyword_baseline(text: str) -> bool:
    """A plain keyword list, the way a simple monitor would flag a crisis (the issue's baseline)."""
    return bool(_KEYWORD_RE.search(text))

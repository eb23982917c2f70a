#!/usr/bin/env python
"""Rebuild data/sentiment_model.npz from ../shared/data/sentiment (NB-scaled logistic regression, numpy only).

Usage:
    .venv/bin/python scripts/train_sentiment.py                 # train on train part, report held-out test
    .venv/bin/python scripts/train_sentiment.py --tune          # train on fit part, report dev (for tuning)
    .venv/bin/python scripts/train_sentiment.py --ablation      # table of what each feature family adds
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import multiprocessing as mp
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from yuqing.analysis.sentiment import (
    DEFAULT_MODEL_PATH,
    FeatureConfig,
    Featurizer,
    SentimentModel,
    _Weights,
    length_scale,
)
from yuqing.analysis.sentiment_data import CORPORA, TARGETS, Example, load_all, shared_available
from yuqing.analysis.text import make_tokenizer

log = logging.getLogger("train_sentiment")

SEED = 20240601


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (defaults = the shipped model)."""

    features: FeatureConfig = FeatureConfig()
    nb_scaling: bool = True  # NBSVM: scale binary features by NB log-count ratios
    linear: bool = True  # False: plain Naive Bayes (r·x + log prior ratio)
    nb_alpha: float = 1.0
    l2: float = 5e-6  # on the mean weighted log-loss (features are length-scaled, see FeatureConfig)
    corpus_balance: float = 0.5  # 0: every example weighs 1; 1: every corpus weighs the same in total
    min_df: int = 2
    max_features: int = 600_000
    iters: int = 300


# --------------------------------------------------------------------------- features


_FEAT: Featurizer | None = None


def _features_chunk(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Worker: features of one chunk with the fork-inherited featurizer."""
    assert _FEAT is not None
    return _FEAT.features(texts)


def featurize(feat: Featurizer, texts: Sequence[str], workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(doc, key) pairs for many texts, in parallel chunks, doc indices global."""
    global _FEAT
    _FEAT = feat
    size = 2000
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
    with mp.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_features_chunk, chunks, chunksize=1)
    docs = [d + i * size for i, (d, _) in enumerate(parts)]
    return np.concatenate(docs), np.concatenate([k for _, k in parts])


# --------------------------------------------------------------------------- optimisation


def lbfgs(fg: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, iters: int, m: int = 10) -> np.ndarray:
    """Minimise a smooth convex function with L-BFGS and Armijo backtracking (scipy is not a dependency)."""
    x = x0.copy()
    f, g = fg(x)
    s_hist: list[np.ndarray] = []
    y_hist: list[np.ndarray] = []
    for it in range(iters):
        q = g.copy()
        alphas = []
        for s, y in zip(reversed(s_hist), reversed(y_hist)):
            a = s.dot(q) / y.dot(s)
            alphas.append(a)
            q -= a * y
        if s_hist:
            q *= s_hist[-1].dot(y_hist[-1]) / y_hist[-1].dot(y_hist[-1])
        else:
            q /= max(np.linalg.norm(q), 1e-12)
        for (s, y), a in zip(zip(s_hist, y_hist), reversed(alphas)):
            b = y.dot(q) / y.dot(s)
            q += s * (a - b)
        d = -q
        gd = g.dot(d)
        if gd >= 0:  # not a descent direction: restart from steepest descent
            s_hist.clear(), y_hist.clear()
            d = -g / max(np.linalg.norm(g), 1e-12)
            gd = g.dot(d)
        step = 1.0
        while True:
            x_new = x + step * d
            f_new, g_new = fg(x_new)
            if f_new <= f + 1e-4 * step * gd or step < 1e-10:
                break
            step *= 0.5
        s_vec, y_vec = x_new - x, g_new - g
        if s_vec.dot(y_vec) > 1e-12:
            s_hist.append(s_vec)
            y_hist.append(y_vec)
            if len(s_hist) > m:
                s_hist.pop(0), y_hist.pop(0)
        rel = (f - f_new) / max(abs(f), 1e-12)
        x, f, g = x_new, f_new, g_new
        if it % 25 == 0:
            log.info("lbfgs iter %d loss %.5f |g| %.2e", it, f, np.linalg.norm(g))
        if rel < 1e-7 and it > 10:
            break
    return x


def train_logreg(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, y: np.ndarray, sw: np.ndarray, n_cols: int, l2: float, iters: int
) -> tuple[np.ndarray, float]:
    """L2 logistic regression on a sparse COO matrix; returns (weights, bias)."""
    n = len(y)
    sw = sw / sw.sum()
    sign = np.where(y > 0, 1.0, -1.0)

    def fg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-1], theta[-1]
        z = np.bincount(rows, weights=vals * w[cols], minlength=n) + b
        mz = -sign * z
        loss = np.sum(sw * np.logaddexp(0.0, mz)) + 0.5 * l2 * w.dot(w)
        dz = -sign * sw / (1.0 + np.exp(-mz))  # d loss / d z
        gw = np.bincount(cols, weights=vals * dz[rows], minlength=n_cols) + l2 * w
        return float(loss), np.append(gw, dz.sum())

    theta = lbfgs(fg, np.zeros(n_cols + 1), iters)
    return theta[:-1], float(theta[-1])


# --------------------------------------------------------------------------- model


def sample_weights(examples: Sequence[Example], balance: float) -> np.ndarray:
    """Per-example weights so small corpora (hotel) are not drowned by big ones (shopping, health)."""
    sizes = {name: sum(1 for e in examples if e.corpus == name) for name in CORPORA}
    mean = len(examples) / max(1, sum(1 for s in sizes.values() if s))
    return np.array([(mean / sizes[e.corpus]) ** balance for e in examples])


def fit(cfg: TrainConfig, feat: Featurizer, train: Sequence[Example], workers: int) -> _Weights:
    """Train one model and return its pruned weights."""
    t0 = time.time()
    doc, keys = featurize(feat, [e.text for e in train], workers)
    scale = length_scale(doc, len(train), cfg.features.length_power)
    log.info("featurised %d docs → %d features in %.1fs", len(train), len(keys), time.time() - t0)
    y = np.array([e.label for e in train], dtype=np.float64)
    sw = sample_weights(train, cfg.corpus_balance)

    vocab, df = np.unique(keys, return_counts=True)
    vocab = vocab[df >= cfg.min_df]
    col = np.searchsorted(vocab, keys)
    col[col == len(vocab)] = 0
    keep = vocab[col] == keys
    doc, col = doc[keep], col[keep]
    n_cols = len(vocab)

    pos = np.bincount(col, weights=(y * sw)[doc], minlength=n_cols) + cfg.nb_alpha
    neg = np.bincount(col, weights=((1 - y) * sw)[doc], minlength=n_cols) + cfg.nb_alpha
    r = np.log(pos / pos.sum()) - np.log(neg / neg.sum())
    log.info("vocabulary %d features (min_df %d)", n_cols, cfg.min_df)

    if not cfg.linear:
        prior = np.log((y * sw).sum() / ((1 - y) * sw).sum())
        return _prune(vocab, r, prior, cfg.max_features)
    vals = (r[col] if cfg.nb_scaling else np.ones(len(col))) * scale[doc]
    w, b = train_logreg(doc, col, vals, y, sw, n_cols, cfg.l2, cfg.iters)
    v = w * r if cfg.nb_scaling else w
    log.info("trained in %.1fs", time.time() - t0)
    return _prune(vocab, v, b, cfg.max_features)


def _prune(vocab: np.ndarray, v: np.ndarray, bias: float, max_features: int) -> _Weights:
    """Keep the max_features largest |weight| features (the rest contribute little) as float16."""
    v16 = v.astype(np.float16).astype(np.float32)
    keep = v16 != 0
    if keep.sum() > max_features:
        thresh = np.partition(np.abs(v16[keep]), -max_features)[-max_features]
        keep &= np.abs(v16) >= thresh
    return _Weights(vocab[keep].astype(np.uint32), v16[keep], float(bias))


def evaluate(model: SentimentModel, data: dict[str, list[Example]]) -> dict[str, float]:
    """Accuracy per corpus with the runtime scoring path."""
    out = {}
    for name, exs in data.items():
        scores = np.array(model.score_many([e.text for e in exs], workers=2))
        out[name] = float(np.mean((scores >= 0.5) == np.array([e.label for e in exs], dtype=bool)))
    return out


def run(cfg: TrainConfig, train: list[Example], heldout: dict[str, list[Example]],
        workers: int) -> tuple[SentimentModel, dict[str, float]]:
    """Train with cfg and evaluate on heldout."""
    feat = Featurizer(make_tokenizer(), cfg.features)
    weights = fit(cfg, feat, train, workers)
    model = SentimentModel(feat, weights)
    return model, evaluate(model, heldout)


_NB = dict(linear=False)
_RAW = dict(length_power=0.0)  # NB rows score plain sums of log-count ratios
ABLATIONS: list[tuple[str, TrainConfig]] = [
    ("NB, jieba word unigrams (SnowNLP's Bayes, retrained)",
     TrainConfig(features=FeatureConfig(word_ngrams=1, char_ngrams=(), negation_scope=0, lexicon=False, **_RAW), **_NB)),
    ("NB, + word bigrams", TrainConfig(features=FeatureConfig(char_ngrams=(), negation_scope=0, lexicon=False, **_RAW), **_NB)),
    ("NB, + negation scope", TrainConfig(features=FeatureConfig(char_ngrams=(), lexicon=False, **_RAW), **_NB)),
    ("NB, + char bigrams", TrainConfig(features=FeatureConfig(lexicon=False, **_RAW), **_NB)),
    ("NB, + polarity lexicon (all features)", TrainConfig(features=FeatureConfig(**_RAW), **_NB)),
    ("LR on binary features (no NB scaling), all features", TrainConfig(nb_scaling=False)),
    ("NB-scaled LR, no length scaling", TrainConfig(features=FeatureConfig(**_RAW), l2=1e-4)),
    ("NB-scaled LR, no char bigrams", TrainConfig(features=FeatureConfig(char_ngrams=()))),
    ("NB-scaled LR, no negation scope", TrainConfig(features=FeatureConfig(negation_scope=0))),
    ("NB-scaled LR, no word bigrams", TrainConfig(features=FeatureConfig(word_ngrams=1))),
    ("NB-scaled LR, no polarity lexicon", TrainConfig(features=FeatureConfig(lexicon=False))),
    ("NB-scaled LR, no corpus balancing", TrainConfig(corpus_balance=0.0)),
    ("NB-scaled LR, all features (shipped)", TrainConfig()),
]


def _table_row(name: str, acc: dict[str, float]) -> str:
    """One markdown row of per-corpus accuracies."""
    return f"| {name} | " + " | ".join(f"{acc[c]:.4f}" for c in CORPORA) + " |"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tune", action="store_true", help="train on the fit part and report the dev part")
    ap.add_argument("--ablation", action="store_true", help="print a table of feature-family contributions")
    ap.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH, help="where to write the model")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a TrainConfig/FeatureConfig field")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not shared_available():
        print("../shared/data/sentiment not found: cannot train", file=sys.stderr)
        return 2
    np.random.seed(SEED)

    train_part, eval_part = ("fit", "dev") if args.tune else ("train", "test")
    train_by = load_all(train_part)
    heldout = load_all(eval_part)
    train = [e for exs in train_by.values() for e in exs]
    log.info("training on %s part (%d docs), evaluating on %s part", train_part, len(train), eval_part)

    if args.ablation:
        print(f"\nAblation ({eval_part} part, accuracy)\n")
        print("| model | " + " | ".join(CORPORA) + " |")
        print("|---|" + "---|" * len(CORPORA))
        for name, cfg in ABLATIONS:
            _, acc = run(cfg, train, heldout, args.workers)
            print(_table_row(name, acc), flush=True)
        return 0

    cfg = _apply_overrides(TrainConfig(), args.set)
    t0 = time.time()
    model, acc = run(cfg, train, heldout, args.workers)
    if not args.no_save and not args.tune:
        meta = {"trained_on": train_part, "config": repr(cfg), "heldout_accuracy": acc}
        model.save(args.out, meta)
        log.info("wrote %s (%.1f MB, %d features)", args.out, args.out.stat().st_size / 1e6, len(model._w.keys))
    print(f"\nconfig: {cfg}")
    print(f"held-out ({eval_part}) accuracy per corpus, trained in {time.time() - t0:.0f}s:")
    for name in CORPORA:
        flag = "ok" if acc[name] >= TARGETS[name] else f"BELOW target {TARGETS[name]}"
        print(f"  {name:9s} n={len(heldout[name]):5d}  acc={acc[name]:.4f}  ({flag})")
    return 0


def _apply_overrides(cfg: TrainConfig, sets: Sequence[str]) -> TrainConfig:
    """Apply --set field=value to the train or feature config (values parsed as Python literals)."""
    import ast

    for item in sets:
        field, _, raw = item.partition("=")
        value = ast.literal_eval(raw)
        if field in {f.name for f in dataclasses.fields(FeatureConfig)}:
            cfg = dataclasses.replace(cfg, features=dataclasses.replace(cfg.features, **{field: value}))
        else:
            cfg = dataclasses.replace(cfg, **{field: value})
    return cfg


if __name__ == "__main__":
    sys.exit(main())

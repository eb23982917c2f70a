#!/usr/bin/env python
"""Rebuild data/risk_model.npz: the crisis tagger's learned headline model (numpy only).

A logistic regression over binary character 1-3-grams of a headline (features: analysis.risk.model_grams,
scaled by 1/sqrt(count)), L2-regularised, fitted by full-batch Adam from zeros: deterministic, ~10 s.

It is trained on the labelled headlines the lexicon is tuned on and nothing else: tests/data/
risk_dev.tsv (all), risk_fresh_a.tsv, risk_fresh_b.tsv (since v8), risk_fresh_c.tsv (since v9) and
risk_headlines.tsv batch 1. Held out, never read here: risk_headlines.tsv batch 6 and
risk_fresh_d.tsv (and later fresh batches).

Usage:
    .venv/bin/python scripts/train_risk.py            # train on everything above, write data/risk_model.npz
    .venv/bin/python scripts/train_risk.py --cv       # leave-one-batch-out figures (model alone, and with the lexicon)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analysis.risk import RiskModel, RiskTagger, headline, load_lexicon, model_grams  # noqa: E402

DATA = REPO / "tests" / "data"
OUT = REPO / "data" / "risk_model.npz"
ORDERS = (1, 2, 3)
C = 100.0          # inverse L2 strength per example; chosen by leave-one-batch-out CV (30 / 100 / 300)
EPOCHS = 300
LEARNING_RATE = 0.05
# (file, batch marker regex, which batches to take): the training material, by batch, for CV folds
TRAINING = (
    ("risk_dev.tsv", r"# dev batch (\d+):", None),
    ("risk_fresh_a.tsv", None, None),
    ("risk_fresh_b.tsv", None, None),
    ("risk_fresh_c.tsv", None, None),
    ("risk_headlines.tsv", r"# batch (\d+):", {"1"}),
)
HELD_OUT = ("risk_fresh_d.tsv", "risk_headlines.tsv batch 6")

Rows = list[tuple[bool, str]]


def read_groups() -> dict[str, Rows]:
    """Training rows grouped by file and batch (each batch is one CV fold)."""
    groups: dict[str, Rows] = {}
    for name, marker, keep in TRAINING:
        current = "1"
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            m = re.match(marker, line) if marker else None
            if m:
                current = m.group(1)
                continue
            if not line.strip() or line.startswith("#"):
                continue
            if keep is not None and current not in keep:
                continue
            label, text = line.split("\t", 1)
            groups.setdefault(f"{name}:{current}", []).append((label.strip() == "1", text.strip()))
    return groups


def fit(rows: Rows, c: float = C, epochs: int = EPOCHS) -> tuple[list[str], np.ndarray, float]:
    """Fit the regression; returns (n-grams, weights, bias)."""
    vocab: dict[str, int] = {}
    row_idx, col_idx, vals = [], [], []
    for i, (_, text) in enumerate(rows):
        grams = sorted(model_grams(headline(text), ORDERS))
        scale = 1.0 / max(1, len(grams)) ** 0.5
        for g in grams:
            row_idx.append(i)
            col_idx.append(vocab.setdefault(g, len(vocab)))
            vals.append(scale)
    r, cidx, v = np.array(row_idx), np.array(col_idx), np.array(vals)
    n, dim = len(rows), len(vocab)
    y = np.array([g for g, _ in rows], dtype=np.float64)
    w, b = np.zeros(dim), 0.0
    m_w, v_w, m_b, v_b = np.zeros(dim), np.zeros(dim), 0.0, 0.0
    lam = 1.0 / (c * n)
    for it in range(1, epochs + 1):
        z = np.bincount(r, weights=v * w[cidx], minlength=n) + b
        err = 1.0 / (1.0 + np.exp(-z)) - y
        gw = np.bincount(cidx, weights=v * err[r], minlength=dim) / n + lam * w
        gb = err.mean()
        m_w = 0.9 * m_w + 0.1 * gw
        v_w = 0.999 * v_w + 0.001 * gw * gw
        m_b = 0.9 * m_b + 0.1 * gb
        v_b = 0.999 * v_b + 0.001 * gb * gb
        w -= LEARNING_RATE * (m_w / (1 - 0.9 ** it)) / (np.sqrt(v_w / (1 - 0.999 ** it)) + 1e-8)
        b -= LEARNING_RATE * (m_b / (1 - 0.9 ** it)) / (np.sqrt(v_b / (1 - 0.999 ** it)) + 1e-8)
    grams = [""] * dim
    for g, j in vocab.items():
        grams[j] = g
    return grams, w, float(b)


def as_model(grams: Sequence[str], w: np.ndarray, b: float, like: RiskModel | None) -> RiskModel:
    """A RiskModel with the shipped thresholds (or the defaults)."""
    th = like or RiskModel({}, 0.0, ORDERS, 0.6, 0.5, 0.8, 80)
    return dataclasses.replace(th, weights=dict(zip(grams, w.tolist())), bias=b, orders=ORDERS)


def _prf(pairs: Sequence[tuple[bool, bool]]) -> str:
    tp = sum(p and g for g, p in pairs)
    fp = sum(p and not g for g, p in pairs)
    fn = sum(g and not p for g, p in pairs)
    return f"P {tp / max(1, tp + fp):.3f} R {tp / max(1, tp + fn):.3f} ({tp}/{fp}/{fn})"


def cross_validate(groups: dict[str, Rows]) -> None:
    """Leave one batch out: the model alone at several bars, and the tagger with the fold's model.

    The lexicon was tuned on all of these batches, so the fused figure flatters its recall; the
    model-alone figures and the false alarms the model adds are the honest part."""
    lex = load_lexicon()
    lexicon_only = RiskTagger(dataclasses.replace(lex, model=None))
    alone: list[tuple[bool, float]] = []
    fused: list[tuple[bool, bool]] = []
    added_fp: list[str] = []
    for held in groups:
        train = [row for k, rows in groups.items() if k != held for row in rows]
        model = as_model(*fit(train), like=lex.model)
        tagger = RiskTagger(dataclasses.replace(lex, model=model))
        for gold, text in groups[held]:
            alone.append((gold, model.probability(headline(text, model.head_chars))))
            pred = tagger.assess(text).crisis
            fused.append((gold, pred))
            if pred and not gold and not lexicon_only.assess(text).crisis:
                added_fp.append(f"{held}: {text}")
        print(f"  fold {held:<24} n={len(groups[held]):>3} done", file=sys.stderr)
    for bar in (0.5, 0.6, 0.7, 0.8):
        print(f"model alone, p >= {bar}: {_prf([(g, p >= bar) for g, p in alone])}")
    print(f"tagger (lexicon + fold model): {_prf(fused)}")
    print(f"lexicon only:                  {_prf([(g, lexicon_only.assess(t).crisis) for k in groups for g, t in groups[k]])}")
    print(f"false alarms the model added ({len(added_fp)}):")
    for line in added_fp:
        print("  " + line)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cv", action="store_true", help="leave-one-batch-out figures instead of writing the model")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    groups = read_groups()
    if args.cv:
        cross_validate(groups)
        return 0
    rows = [row for rows in groups.values() for row in rows]
    start = time.perf_counter()
    grams, w, b = fit(rows)
    keep = np.abs(w) >= 1e-4
    digest = hashlib.sha256()
    for name, _, _ in TRAINING:
        digest.update((DATA / name).read_bytes())
    meta = {"trained_on": [f"{n} ({'all' if k is None else 'batches ' + ','.join(sorted(k))})" for n, _, k in TRAINING],
            "held_out": list(HELD_OUT), "rows": len(rows), "positives": int(sum(g for g, _ in rows)),
            "data_sha256": digest.hexdigest(), "C": C, "epochs": EPOCHS, "orders": list(ORDERS)}
    np.savez_compressed(args.out, grams=np.array([g for g, k in zip(grams, keep) if k]),
                        weights=w[keep].astype(np.float32), bias=np.float64(b),
                        orders=np.array(ORDERS), meta=np.array(json.dumps(meta, ensure_ascii=False)))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB): {int(keep.sum())} n-grams from "
          f"{len(rows)} headlines ({meta['positives']} crisis) in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

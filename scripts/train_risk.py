#!/usr/bin/env python
"""Rebuild data/risk_model.npz, the learned half of the crisis judgement, from the labelled titles.

Reads ../shared/data/risk/headlines.jsonl (real Weibo and Baidu hot-search titles, labelled crisis /
not / skip with a category) and the headlines this project wrote (tests/data/risk_*.tsv, at half
weight). Then:
  1. fits one model per fold (5 folds over the shared titles) to get out-of-fold probabilities;
  2. fits the combiner (model + lexicon) and both thresholds on those out-of-fold rows;
  3. fits the shipped model on every title, with the Laplace precisions `yuqing retrain` needs;
  4. writes the model, the combiner, the thresholds and where they came from into one npz.
Deterministic: the same data give the same file. About a minute on two cores.

Usage:
    .venv/bin/python scripts/train_risk.py              # write data/risk_model.npz
    .venv/bin/python scripts/train_risk.py --out PATH
Figures: .venv/bin/python bench/bench_risk.py (5-fold cross-validation, baselines, speed).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from yuqing.analysis.judge import SHIPPED_MODEL
from yuqing.analysis.risk import RiskTagger
from yuqing.analysis.risk_training import (
    MIN_DF,
    SHARED_HEADLINES,
    WRITTEN_DIR,
    WRITTEN_FILES,
    WRITTEN_WEIGHT,
    C,
    build_combiner,
    classes_of,
    label_written,
    out_of_fold,
    read_shared,
    read_written,
    several_of,
    shared_available,
    train_model,
)


def data_hash(paths: Sequence[Path]) -> str:
    """One hash over the training files, so a model says exactly what it was built from."""
    h = hashlib.sha256()
    for p in paths:
        if p.exists():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=SHIPPED_MODEL)
    ap.add_argument("--shared", type=Path, default=SHARED_HEADLINES, help="the labelled headlines.jsonl")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not shared_available(args.shared):
        print(f"{args.shared} is absent: the model is trained on the shared labelled headlines", file=sys.stderr)
        return 1
    start = time.perf_counter()
    shared = read_shared(args.shared)
    written = read_written()
    classes = classes_of(shared)
    tagger = RiskTagger()
    oof = out_of_fold(shared, written, tagger, progress=lambda msg: print("  " + msg, file=sys.stderr))
    several = several_of(shared, oof.folds, oof.models, tagger)
    combiner = build_combiner(oof.combiner_rows(), oof.gold, several.rows[several.split], several.gold[several.split])
    labelled = label_written(written, shared, classes)
    meta = {
        "trained_on": {"shared": str(args.shared.name), "shared_titles": len(shared),
                       "shared_crises": sum(t.crisis for t in shared), "written_files": list(WRITTEN_FILES),
                       "written_titles": len(written), "written_weight": WRITTEN_WEIGHT},
        "data_sha256": data_hash([args.shared, *(WRITTEN_DIR / n for n in WRITTEN_FILES)]),
        "c": C, "min_df": MIN_DF, "combiner": combiner.as_meta(),
    }
    model = train_model(shared, labelled, classes, meta=meta)
    model.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB): {len(model.vocabulary)} n-grams x "
          f"{len(classes)} classes from {len(shared)} shared + {len(written)} written titles in "
          f"{time.perf_counter() - start:.0f} s; crisis at {combiner.crisis_threshold:.2f}, "
          f"negative at {combiner.negative_threshold:.3f} (several sentences: {combiner.several_crisis_threshold:.2f}, "
          f"{combiner.several_negative_threshold:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

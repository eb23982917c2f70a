#!/usr/bin/env python
"""Sentiment bench: held-out accuracy (ours vs stock SnowNLP), throughput, load time and peak RSS.

Usage: .venv/bin/python bench/bench_sentiment.py [--stock-sample 1000] [--skip-stock]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
sys.path.insert(0, str(REPO))

from yuqing.analysis.sentiment_data import CORPORA, TARGETS, Example, fixed_sample, load_all, shared_available

N_BATCH = 10_000
LONG_EVERY = 10  # every 10th document of the batch is long: ten reviews joined (~400-1,500 chars)


def mixed_batch(pool: Sequence[str], n: int = N_BATCH) -> list[str]:
    """Deterministic mix of short reviews and long multi-review texts, like a day of crawled items."""
    out = []
    for i in range(n):
        if i % LONG_EVERY == 0:
            out.append("".join(pool[(i * 7 + j * 131) % len(pool)] for j in range(10)))
        else:
            out.append(pool[(i * 7919) % len(pool)])
    return out


def _run_py(code: str, *args: str) -> dict:
    """Run code in a fresh interpreter (so start-up is counted) and parse the JSON it prints last."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


OURS_CODE = textwrap.dedent(
    """
    import time; t0 = time.perf_counter()
    import json, resource, sys
    sys.path.insert(0, ".")
    from yuqing.analysis.sentiment import SentimentModel
    texts = open(sys.argv[1], encoding="utf-8").read().split("\\n")
    m = SentimentModel.load()
    t_load = time.perf_counter() - t0
    m.score("医院服务很好")
    t_first = time.perf_counter() - t0
    scores = m.score_many(texts)
    t_total = time.perf_counter() - t0
    # VmHWM, not RUSAGE_SELF: Linux carries ru_maxrss over exec, so it would report the bench's own peak.
    hwm = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
    ru_kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"load": t_load, "first": t_first, "total": t_total, "n": len(scores),
                      "rss_mb": hwm / 1024, "child_rss_mb": ru_kids / 1024}))
    """
)

STOCK_CODE = textwrap.dedent(
    """
    import time; t0 = time.perf_counter()
    import json, sys
    from snownlp import SnowNLP
    SnowNLP("医院").sentiments
    t_start = time.perf_counter() - t0
    texts = open(sys.argv[1], encoding="utf-8").read().split("\\n")
    t1 = time.perf_counter()
    for t in texts:
        SnowNLP(t).sentiments
    print(json.dumps({"startup": t_start, "score": time.perf_counter() - t1, "n": len(texts)}))
    """
)


def bench_accuracy(stock_n: int, skip_stock: bool) -> None:
    """Per-corpus held-out accuracy: ours on the whole held-out part, ours and stock on a fixed sample."""
    from yuqing.analysis.sentiment import SentimentModel, stock_snownlp_scores

    model = SentimentModel.load()
    test = load_all("test")
    print("\n## Held-out accuracy (test part: key-bucketed 10% of each corpus, never trained on)\n")
    header = "| corpus | n held-out | ours (all) | target |"
    if not skip_stock:
        header += " n sample | ours (sample) | stock SnowNLP (sample) |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name in CORPORA:
        exs = test[name]
        acc_all = _accuracy(model.score_many([e.text for e in exs]), exs)
        row = f"| {name} | {len(exs)} | {acc_all:.4f} | {TARGETS[name]:.2f} |"
        if not skip_stock:
            sample = fixed_sample(exs, stock_n)
            ours = _accuracy(model.score_many([e.text for e in sample]), sample)
            stock = _accuracy(stock_snownlp_scores([e.text for e in sample]), sample)
            row += f" {len(sample)} | {ours:.4f} | {stock:.4f} |"
        print(row, flush=True)
    if not skip_stock:
        print(f"\nStock SnowNLP is slow, so it is scored on a fixed sample of at most {stock_n} held-out texts per corpus; "
              "'ours (sample)' is our model on exactly those texts.")


def _accuracy(scores: Sequence[float], exs: Sequence[Example]) -> float:
    """Share of examples whose thresholded score matches the label."""
    return sum((s >= 0.5) == (e.label == 1) for s, e in zip(scores, exs)) / max(1, len(exs))


def bench_speed(skip_stock: bool) -> None:
    """Throughput on 10,000 mixed texts in fresh interpreters, start-up included."""
    everything = load_all("all")
    pool = [e.text for exs in everything.values() for e in exs]
    batch = mixed_batch(pool)
    n_chars = sum(map(len, batch))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.txt"
        path.write_text("\n".join(t.replace("\n", " ") for t in batch), encoding="utf-8")
        _run_py(OURS_CODE, str(path))  # warm the OS page cache and jieba's dictionary cache once
        ours = _run_py(OURS_CODE, str(path))
        print(f"\n## Throughput: {N_BATCH} texts, {n_chars:,} chars ({N_BATCH // LONG_EVERY} long multi-review texts), "
              "fresh process\n")
        print(f"ours:  {ours['total']:.2f} s total (start-up included) → {N_BATCH / ours['total']:,.0f} docs/s, "
              f"{n_chars / ours['total']:,.0f} chars/s")
        print(f"ours:  import+load {ours['load']:.2f} s, load+first score {ours['first']:.2f} s (target < 2 s)")
        print(f"ours:  peak RSS {ours['rss_mb']:.0f} MB parent, {ours['child_rss_mb']:.0f} MB largest worker (target < 300 MB)")
        if skip_stock:
            return
        # same mix as the batch: every 10th short text and every 10th long one
        subset = batch[5::10] + batch[::LONG_EVERY * 10]
        sub_chars = sum(map(len, subset))
        spath = Path(tmp) / "subset.txt"
        spath.write_text("\n".join(t.replace("\n", " ") for t in subset), encoding="utf-8")
        stock = _run_py(STOCK_CODE, str(spath))
        est = stock["startup"] + stock["score"] * n_chars / sub_chars
        print(f"stock: timed on a 1-in-10 subset with the same short/long mix ({len(subset)} texts, {sub_chars:,} chars): "
              f"start-up {stock['startup']:.2f} s, "
              f"{sub_chars / stock['score']:,.0f} chars/s; extrapolated by characters to the full batch: {est:.1f} s")
        print(f"\nspeed-up, start-up included: {est / ours['total']:.1f}× (target ≥ 30×)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run all benches."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stock-sample", type=int, default=1000, help="held-out texts per corpus scored by stock SnowNLP")
    ap.add_argument("--skip-stock", action="store_true", help="leave out stock SnowNLP (it takes a minute or two)")
    args = ap.parse_args(argv)
    if not shared_available():
        print(f"SKIPPED: {SHARED}/data/sentiment not found; the sentiment bench needs the shared corpora.")
        return 0
    t0 = time.time()
    bench_accuracy(args.stock_sample, args.skip_stock)
    bench_speed(args.skip_stock)
    print(f"\n(bench took {time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

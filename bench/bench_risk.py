"""Crisis-risk tagger figures: precision/recall/F1 on the dev and eval sets, speed, and a naive baseline.

Usage: .venv/bin/python bench/bench_risk.py [--errors] [--lexicon PATH]
--errors lists the dev set's mistakes only: the eval set is for reporting, not for tuning.
The eval set is reported whole and per batch ("# batch N:" marker lines; lines before the first
marker are batch 1): batch 1 was looked at once (lexicon v1), the last batch never.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analysis.risk import RiskLexicon, RiskTagger, _normalize, load_lexicon  # noqa: E402

DEV = REPO / "tests" / "data" / "risk_dev.tsv"
EVAL = REPO / "tests" / "data" / "risk_headlines.tsv"


def read_labelled(path: Path) -> list[tuple[bool, str]]:
    """(is_crisis, text) rows of a `label<TAB>text` file; '#' lines are comments."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, text = line.split("\t", 1)
        rows.append((label.strip() == "1", text.strip()))
    return rows


def read_batches(path: Path) -> dict[str, list[tuple[bool, str]]]:
    """Rows of a labelled file grouped by its "# batch N:" markers (before the first: batch 1)."""
    batches: dict[str, list[tuple[bool, str]]] = {"batch 1": []}
    current = "batch 1"
    for line in path.read_text(encoding="utf-8").splitlines():
        marker = re.match(r"# batch (\d+):", line)
        if marker:
            current = f"batch {marker.group(1)}"
            batches.setdefault(current, [])
        elif line.strip() and not line.startswith("#"):
            label, text = line.split("\t", 1)
            batches[current].append((label.strip() == "1", text.strip()))
    return batches


def naive_baseline(lex: RiskLexicon) -> Callable[[str], bool]:
    """Any lexicon term or pattern anywhere: no masks, negation, rebuttals, co-signals or frames."""
    def predict(text: str) -> bool:
        norm = _normalize(text)
        if lex.terms_re is not None and lex.terms_re.search(norm):
            return True
        return any(rule.regex.search(norm) for rule in lex.patterns)
    return predict


def prf(rows: Sequence[tuple[bool, str]], predict: Callable[[str], bool]) -> tuple[float, float, float, int, int, int]:
    """Precision, recall, F1 and the tp/fp/fn counts of a predictor on labelled rows."""
    tp = fp = fn = 0
    for gold, text in rows:
        pred = predict(text)
        tp += pred and gold
        fp += pred and not gold
        fn += gold and not pred
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f, tp, fp, fn


def speed(tagger: RiskTagger, texts: Sequence[str], seconds: float = 2.0) -> float:
    """Headlines per second, single thread, repeating the texts for about `seconds`."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for t in texts:
            tagger.assess(t)
        n += len(texts)
    return n / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; with --errors, the dev set's false positives and negatives."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--errors", action="store_true", help="list dev-set mistakes")
    ap.add_argument("--lexicon", type=Path, default=None)
    args = ap.parse_args(argv)
    lex = load_lexicon(args.lexicon)
    tagger = RiskTagger(lex)
    naive = naive_baseline(lex)
    sets = {"dev": read_labelled(DEV), "eval": read_labelled(EVAL)}
    sets.update({f"eval/{k}": v for k, v in read_batches(EVAL).items()})
    print(f"{'set':<13} {'n':>4} {'pos':>4}  {'method':<6} {'P':>6} {'R':>6} {'F1':>6}  tp/fp/fn")
    for name, rows in sets.items():
        pos = sum(g for g, _ in rows)
        for method, fn_ in (("ours", lambda t: tagger.assess(t).crisis), ("naive", naive)):
            p, r, f, tp, fp, fnn = prf(rows, fn_)
            print(f"{name:<13} {len(rows):>4} {pos:>4}  {method:<6} {p:6.3f} {r:6.3f} {f:6.3f}  {tp}/{fp}/{fnn}")
    texts = [t for name in ("dev", "eval") for _, t in sets[name]]
    print(f"speed: {speed(tagger, texts):,.0f} headlines/s (single thread, {len(texts)} distinct texts)")
    if args.errors:
        for gold, text in sets["dev"]:
            res = tagger.assess(text)
            if res.crisis != gold:
                kind = "FN" if gold else "FP"
                print(f"{kind} {res.score:.2f} {text}  {list(res.terms)} {list(res.categories)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

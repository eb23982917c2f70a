"""Crisis-risk tagger figures: precision/recall/F1 per labelled set, speed, and two baselines.

Usage: .venv/bin/python bench/bench_risk.py [--errors] [--lexicon PATH] [--real PATH ...]

Methods: "ours" is the tagger as shipped (lexicon + learned headline model), "lexicon" the same
lexicon without the model, "naive" any lexicon term or pattern anywhere.
Sets, and what each figure means (the `status` column):
  dev          tuned   the lexicon and the model are tuned / trained on it (dev batches 1-8)
  fresh a      tuned   written before v7, run once with v6 (P 0.929 R 0.650), then tuned on
  fresh b      tuned   written with fresh a; run once on the frozen v7 (P 0.902 R 0.767), then tuned on (v8)
  eval/batch 1 seen    written before v1, its errors looked at once, never trained on
  eval/batch 6 UNSEEN  written after v6 froze; never tuned or trained on (v7 run: P 0.962 R 0.850)
  fresh c      tuned   written before b's errors were read; run once on frozen v8 (P 0.923 R 0.800), then tuned on (v9)
  fresh d      UNSEEN  written after c's errors were read, before any v9 change; run once on frozen v9
  real …       real    --real PATH (repeatable): real news headlines and hot-search titles kept outside
                       the repo (label<TAB>headline[<TAB>url]); reported, not part of "all UNSEEN"; a
                       missing file is reported and skipped
--errors lists mistakes on the tuned sets only: the others are for reporting, not for tuning.
"""

from __future__ import annotations

import argparse
import dataclasses
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
FRESH_A = REPO / "tests" / "data" / "risk_fresh_a.tsv"
FRESH_B = REPO / "tests" / "data" / "risk_fresh_b.tsv"
FRESH_C = REPO / "tests" / "data" / "risk_fresh_c.tsv"
FRESH_D = REPO / "tests" / "data" / "risk_fresh_d.tsv"


def read_labelled(path: Path) -> list[tuple[bool, str]]:
    """(is_crisis, text) rows of a `label<TAB>text[<TAB>url]` file; '#' lines are comments."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, text = line.split("\t", 2)[:2]
        rows.append((label.strip() == "1", text.strip()))
    return rows


def real_sets(paths: Sequence[Path]) -> dict[str, tuple[str, list[tuple[bool, str]]]]:
    """Labelled real-headline files by a short name ("real " + file stem), status "real"; absent or
    unreadable files are reported on stderr and skipped."""
    sets: dict[str, tuple[str, list[tuple[bool, str]]]] = {}
    for path in paths:
        try:
            rows = read_labelled(path)
        except (OSError, ValueError) as err:
            print(f"--real {path}: skipped ({err.__class__.__name__}: {err})", file=sys.stderr)
            continue
        name = "real " + path.stem.removeprefix("real_").removeprefix("risk_")
        sets[name] = ("real", rows)
    return sets


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


def labelled_sets() -> dict[str, tuple[str, list[tuple[bool, str]]]]:
    """Every labelled set by name, with its status: tuned, seen, or UNSEEN (never tuned on)."""
    batches = read_batches(EVAL)
    sets = {"dev": ("tuned", read_labelled(DEV)), "fresh a": ("tuned", read_labelled(FRESH_A)),
            "fresh b": ("tuned", read_labelled(FRESH_B)), "fresh c": ("tuned", read_labelled(FRESH_C))}
    sets.update({f"eval/{k}": ("seen" if k == "batch 1" else "UNSEEN", v) for k, v in batches.items()})
    if FRESH_D.exists():
        sets["fresh d"] = ("UNSEEN", read_labelled(FRESH_D))
    return sets


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; with --errors, the tuned sets' false positives and negatives."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--errors", action="store_true", help="list mistakes on the tuned sets")
    ap.add_argument("--lexicon", type=Path, default=None)
    ap.add_argument("--real", type=Path, action="append", default=[], metavar="PATH",
                    help="a label<TAB>headline[<TAB>url] file of real headlines (repeatable)")
    args = ap.parse_args(argv)
    lex = load_lexicon(args.lexicon)
    tagger = RiskTagger(lex)
    lexicon_only = RiskTagger(dataclasses.replace(lex, model=None))
    naive = naive_baseline(lex)
    sets = labelled_sets()
    sets.update(real_sets(args.real))
    methods: list[tuple[str, Callable[[str], bool]]] = [("ours", lambda t: tagger.assess(t).crisis)]
    if lex.model is not None:
        methods.append(("lexicon", lambda t: lexicon_only.assess(t).crisis))
    methods.append(("naive", naive))
    print(f"{'set':<13} {'status':<7} {'n':>4} {'pos':>4}  {'method':<7} {'P':>6} {'R':>6} {'F1':>6}  tp/fp/fn")
    for name, (status, rows) in sets.items():
        pos = sum(g for g, _ in rows)
        for method, fn_ in methods:
            p, r, f, tp, fp, fnn = prf(rows, fn_)
            print(f"{name:<13} {status:<7} {len(rows):>4} {pos:>4}  {method:<7} {p:6.3f} {r:6.3f} {f:6.3f}  {tp}/{fp}/{fnn}")
    unseen = [row for status, rows in sets.values() if status == "UNSEEN" for row in rows]
    for method, fn_ in methods:
        p, r, f, tp, fp, fnn = prf(unseen, fn_)
        print(f"{'all UNSEEN':<13} {'UNSEEN':<7} {len(unseen):>4} {sum(g for g, _ in unseen):>4}  {method:<7} "
              f"{p:6.3f} {r:6.3f} {f:6.3f}  {tp}/{fp}/{fnn}")
    texts = list(dict.fromkeys(t for _, rows in sets.values() for _, t in rows))
    print(f"speed: {speed(tagger, texts):,.0f} headlines/s (single thread, {len(texts)} distinct texts)")
    if args.errors:
        for name, (status, rows) in sets.items():
            if status != "tuned":
                continue
            for gold, text in rows:
                res = tagger.assess(text)
                if res.crisis != gold:
                    kind = "FN" if gold else "FP"
                    print(f"{name}: {kind} {res.score:.2f} {text}  {list(res.terms)} {list(res.categories)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

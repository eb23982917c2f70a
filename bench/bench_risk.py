"""Crisis judgement figures: 5-fold cross-validation on the shared real titles, baselines in the same
run, category accuracy, what counts as negative, and speed.

Usage: .venv/bin/python bench/bench_risk.py [--real PATH ...] [--holdback] [--errors N]

Cross-validation (the folds are stratified by a hash of each title's id, so every run is the same):
  combination  the shipped design: model + lexicon through the combiner; in each fold the model, the
               combiner and both thresholds are fitted on the other four folds only
  model        the headline model alone, P(crisis) against a best-F1 threshold chosen on the other folds
  lexicon      data/risk_lexicon.yaml alone (no model), as the tagger was before the shared titles
  keywords     a plain keyword list (死|伤|打|感染|事故|纠纷|红包|…): the issue's "keyword list" baseline
  any term     any lexicon term or pattern anywhere, with no negation, rebuttal or frame
Negative: the share of crises and of non-crisis titles that count as negative, against the review
sentiment model's "negative" (P(positive) < 0.5), which is what the pipeline used before.
--holdback trains on the 80% of the shared titles whose id hash is not 0 mod 5 and measures once on
the rest; the figures in the README were taken that way before any look at those titles.
--news-style judges fresh set d (news-style headlines written here, never tuned on) with a model trained
without it; --with-skips repeats the cross-validation with the "skip" titles added as non-crises.
Texts of several sentences: each held-out title joined as a sentence to one or two non-crisis titles of
its own fold (the label is the title's), judged the shipped way (the model reads each sentence of a text
longer than a title, the lexicon reads the whole, and the thresholds for several sentences come from
the other folds' joined texts) and the previous way (the model reading the whole text, at the titles'
thresholds).
--real PATH: label<TAB>headline files kept outside the repository, judged by the shipped model.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from yuqing.analysis.judge import CrisisJudge
from yuqing.analysis.risk import RiskLexicon, RiskTagger, _normalize, load_lexicon
from yuqing.analysis.risk_training import (
    FOLDS,
    SEVERAL_PARTS,
    OutOfFold,
    Title,
    best_f1_threshold,
    build_combiner,
    category_accuracy,
    classes_of,
    combined_out_of_fold,
    keyword_baseline,
    label_written,
    out_of_fold,
    precision_recall,
    read_shared,
    read_written,
    several_of,
    several_out_of_fold,
    shared_available,
    train_model,
)


def read_labelled(path: Path) -> list[tuple[bool, str]]:
    """(is_crisis, text) rows of a `label<TAB>text[<TAB>url]` file; '#' lines are comments."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, text = line.split("\t", 2)[:2]
        rows.append((label.strip() == "1", text.strip()))
    return rows


def naive_baseline(lex: RiskLexicon) -> Callable[[str], bool]:
    """Any lexicon term or pattern anywhere: no masks, negation, rebuttals, co-signals or frames."""
    def predict(text: str) -> bool:
        norm = _normalize(text)
        if lex.terms_re is not None and lex.terms_re.search(norm):
            return True
        return any(rule.regex.search(norm) for rule in lex.patterns)
    return predict


def _row(name: str, pred: np.ndarray, gold: np.ndarray, note: str = "") -> str:
    p, r, f = precision_recall(pred, gold)
    tp, fp, fn = int(np.sum(pred & gold)), int(np.sum(pred & ~gold)), int(np.sum(~pred & gold))
    return f"  {name:<13} P {p:.3f}  R {r:.3f}  F1 {f:.3f}   ({tp} tp / {fp} fp / {fn} fn){note}"


def model_alone(p: np.ndarray, gold: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """The model's verdicts, each fold at the threshold that is best on the other folds."""
    out = np.zeros(len(gold), dtype=bool)
    for f in range(FOLDS):
        held = folds == f
        out[held] = p[held] >= best_f1_threshold(p[~held], gold[~held])
    return out


def sentiment_negative(texts: Sequence[str]) -> np.ndarray | None:
    """The review sentiment model's negative (what the pipeline used before); None if it cannot load."""
    try:
        from yuqing.analysis.sentiment import THRESHOLD, SentimentModel

        model = SentimentModel.load()
    except Exception as err:  # noqa: BLE001 - the baseline is optional; say why it is missing
        print(f"  (sentiment baseline skipped: {err})")
        return None
    return np.array(model.score_many(list(texts), workers=1)) < THRESHOLD


@dataclass(frozen=True)
class Point:
    """One cut of a score: precision, recall, the share of non-crises above it, and the cut."""

    precision: float
    recall: float
    false_rate: float
    threshold: float


def curve(scores: np.ndarray, gold: np.ndarray) -> list[Point]:
    """Every cut of a score from the top (ties cut together), as precision/recall points."""
    order = np.argsort(-scores, kind="stable")
    s, g = scores[order], gold[order]
    tp, fp = np.cumsum(g), np.cumsum(~g)
    last = np.r_[s[1:] != s[:-1], True]  # a cut falls only after the last of equal scores
    n_pos, n_neg = max(1, int(g.sum())), max(1, int((~g).sum()))
    return [Point(tp[i] / (i + 1), tp[i] / n_pos, fp[i] / n_neg, float(s[i])) for i in np.flatnonzero(last)]


def operating_points(scores: np.ndarray, gold: np.ndarray) -> dict[str, Point]:
    """Where a score could be cut: best recall at precision >= 0.90, best precision at recall >= 0.90,
    precision = recall, and the most crises counted while at most 5/8/10/15/20% of non-crises are."""
    points = curve(scores, gold)
    out: dict[str, Point] = {}
    at_p = [p for p in points if p.precision >= 0.90]
    at_r = [p for p in points if p.recall >= 0.90]
    if at_p:
        out["precision >= 0.90"] = max(at_p, key=lambda p: p.recall)
    if at_r:
        out["recall >= 0.90"] = max(at_r, key=lambda p: p.precision)
    out["precision = recall"] = min(points, key=lambda p: abs(p.precision - p.recall))
    for rate in (0.05, 0.08, 0.10, 0.15, 0.20):
        within = [p for p in points if p.false_rate <= rate]
        if within:
            out[f"non-crises <= {rate:.2f}"] = max(within, key=lambda p: p.recall)
    return out


def print_operating_points(scores: np.ndarray, gold: np.ndarray) -> None:
    """The curve around the targets. One cut over the pooled out-of-fold scores: these are points of the
    curve, not the result of a threshold fitted on other folds."""
    print("\nOperating points of the combined score (out of fold, one cut over all folds):")
    for name, p in operating_points(scores, gold).items():
        print(f"  {name:<19} P {p.precision:.3f}  R {p.recall:.3f}  non-crises above {p.false_rate:.3f}  "
              f"(score >= {p.threshold:.2f})")
    print("  (for `negative`, R is the share of crises counted and 'non-crises above' the share of the rest)")


def cross_validation(shared: list[Title], written: list[Title], tagger: RiskTagger, errors: int) -> OutOfFold:
    """The 5-fold table, negative shares, category accuracy."""
    t0 = time.perf_counter()
    oof = out_of_fold(shared, written, tagger, progress=lambda m: print("   " + m, file=sys.stderr))
    gold = oof.gold
    folds = np.array(oof.folds)
    scores, crisis, negative = combined_out_of_fold(oof)
    texts = [t.text for t in shared]
    naive = naive_baseline(tagger.lexicon)
    print(f"\n5-fold cross-validation on {len(shared)} shared real titles ({int(gold.sum())} crises), "
          f"plus {len(written)} written titles in every training part ({time.perf_counter() - t0:.0f} s)")
    print(_row("combination", crisis, gold))
    print(_row("model", model_alone(oof.p_model, gold, folds), gold))
    print(_row("lexicon", oof.lexicon_crisis, gold))
    print(_row("keywords", np.array([keyword_baseline(t) for t in texts]), gold))
    print(_row("any term", np.array([naive(t) for t in texts]), gold))
    by_source: dict[str, list[int]] = {}
    for i, t in enumerate(shared):
        by_source.setdefault(t.source, []).append(i)
    for source, idx in sorted(by_source.items()):
        print(_row(f"  {source[:11]}", crisis[idx], gold[idx], "  (combination)"))
    print("\nNegative (for the plan and the digest):")
    print(f"  combination   crises negative {np.mean(negative[gold]):.3f} (target >= 0.95), "
          f"non-crisis negative {np.mean(negative[~gold]):.3f} (target <= 0.10)")
    sent = sentiment_negative(texts)
    if sent is not None:
        print(f"  sentiment     crises negative {np.mean(sent[gold]):.3f}, "
              f"non-crisis negative {np.mean(sent[~gold]):.3f}  (review sentiment < 0.5: the old rule)")
    print_operating_points(scores, gold)
    acc, n, confusions = category_accuracy(oof)
    lex_acc = np.mean([bool(r.strength) and max(r.strength, key=r.strength.__getitem__) == t.category
                       for t, r in zip(shared, oof.readings) if t.crisis])
    model_only = category_accuracy(OutOfFold(oof.titles, oof.folds, oof.probs, oof.classes, []))[0]
    print(f"\nCategory of the crises (main category = the label), out of fold: judgement {acc:.3f} on {n} crises; "
          f"model alone {model_only:.3f}; lexicon's strongest claim {lex_acc:.3f}")
    print("  commonest confusions (labelled → given): " +
          ", ".join(f"{a}→{b} {k}" for (a, b), k in confusions.most_common(6)))
    if errors:
        wrong = [i for i in np.argsort(-np.abs(scores - gold)) if crisis[i] != gold[i]][:errors]
        print(f"\nThe {len(wrong)} most confident mistakes (score, label, title):")
        for i in wrong:
            print(f"  {scores[i]:.2f} {'crisis' if gold[i] else 'not':<6} {shared[i].text}")
    return oof


def several_sentences(oof: OutOfFold, tagger: RiskTagger) -> None:
    """Held-out titles joined to one or two ordinary titles of their fold, judged the shipped way and the
    previous way (the same fold models reading the whole text, at the titles' thresholds), in one run."""
    several = several_of(oof.titles, oof.folds, oof.models, tagger)
    previous = several_of(oof.titles, oof.folds, oof.models, tagger, sentences=False)
    runs = {"shipped": several_out_of_fold(oof, several),
            "previous": several_out_of_fold(oof, previous, own_thresholds=False)}
    print(f"\nTexts of several sentences: each held-out title joined to ordinary titles of its fold "
          f"({np.mean([len(t) for t in several.texts]):.0f} characters on average)")
    print(f"  {'':34s} {'crisis P':>8s} {'R':>6s} {'F1':>6s}   negative: crises / non-crises")
    for parts in SEVERAL_PARTS:
        mine = several.parts == parts
        gold = several.gold[mine]
        print(f"  {parts} sentences: {np.mean(several.split[mine]):.0%} longer than a title, read sentence by sentence")
        for name, (crisis, negative) in runs.items():
            p, r, f1 = precision_recall(crisis[mine], gold)
            label = f"{parts} sentences, {name}"
            print(f"  {label:34s} {p:8.3f} {r:6.3f} {f1:6.3f}   {np.mean(negative[mine][gold]):.3f} / "
                  f"{np.mean(negative[mine][~gold]):.3f}")


def holdback(shared: list[Title], written: list[Title], tagger: RiskTagger) -> None:
    """Train on 80% of the shared titles (combiner by CV inside it) and measure once on the other 20%."""
    def held(t: Title) -> bool:
        return int(hashlib.sha1(t.id.encode()).hexdigest(), 16) % 5 == 0
    dev = [t for t in shared if not held(t)]
    test = [t for t in shared if held(t)]
    oof = out_of_fold(dev, written, tagger, progress=lambda m: print("   " + m, file=sys.stderr))
    combiner = build_combiner(oof.combiner_rows(), oof.gold)
    classes = classes_of(dev)
    model = train_model(dev, label_written(written, dev, classes), classes)
    judge = CrisisJudge(tagger, model, combiner)
    verdicts = judge.judge_many([t.text for t in test])
    gold = np.array([t.crisis for t in test])
    pred = np.array([v.crisis for v in verdicts])
    neg = np.array([v.negative for v in verdicts])
    print(f"\nHeld back: trained on {len(dev)} shared titles, measured once on the other {len(test)} "
          f"({int(gold.sum())} crises)")
    print(_row("combination", pred, gold))
    print(_row("lexicon", np.array([tagger.assess(t.text).crisis for t in test]), gold))
    print(f"  negative: crises {np.mean(neg[gold]):.3f}, non-crisis {np.mean(neg[~gold]):.3f}")


def news_style(shared: list[Title], written: list[Title], tagger: RiskTagger) -> None:
    """News-style headlines no model saw: fresh set d (written by us, never tuned on by the lexicon),
    judged by a model trained on the shared titles and the other written sets, with the shipped combiner."""
    fresh_d = [t for t in written if t.source == "risk_fresh_d.tsv"]
    rest = [t for t in written if t.source != "risk_fresh_d.tsv"]
    classes = classes_of(shared)
    judge = CrisisJudge.load().with_model(train_model(shared, label_written(rest, shared, classes), classes))
    verdicts = judge.judge_many([t.text for t in fresh_d])
    gold = np.array([t.crisis for t in fresh_d])
    print(f"\nNews-style headlines never trained on (fresh set d, {len(fresh_d)} titles, {int(gold.sum())} crises)")
    print(_row("combination", np.array([v.crisis for v in verdicts]), gold))
    print(_row("lexicon", np.array([tagger.assess(t.text).crisis for t in fresh_d]), gold))
    wrong = [(v.score, t) for v, t in zip(verdicts, fresh_d) if v.crisis and not t.crisis]
    print("  false alarms: " + "; ".join(t.text for _, t in sorted(wrong, key=lambda x: -x[0])[:6]))


def with_skips(shared: list[Title], written: list[Title], tagger: RiskTagger) -> None:
    """The same cross-validation with the 'skip' titles (celebrities in hospital, foreign systems, dramas)
    added to training as non-crises, at the written titles' weight: the experiment behind leaving them out."""
    skips = read_shared(skips=True)
    oof = out_of_fold(shared, written + skips, tagger, progress=lambda m: print("   " + m, file=sys.stderr))
    _, crisis, _ = combined_out_of_fold(oof)
    print(f"\nWith {len(skips)} skip titles as non-crises in every training part")
    print(_row("combination", crisis, oof.gold))


def shipped_figures(real: Sequence[Path]) -> None:
    """The shipped judge on the written sets (it was trained on them) and on --real files; speed, load, memory."""
    t0 = time.perf_counter()
    judge = CrisisJudge.load()
    load_s = time.perf_counter() - t0
    print(f"\nShipped judge (data/risk_model.npz) — loaded in {load_s:.2f} s")
    sets = {p.stem: read_labelled(p) for p in sorted((REPO / "tests" / "data").glob("risk_*.tsv"))}
    for p in real:
        try:
            sets["real " + p.stem] = read_labelled(p)
        except (OSError, ValueError) as err:
            print(f"  --real {p}: skipped ({err})")
    for name, rows in sets.items():
        gold = np.array([g for g, _ in rows])
        pred = np.array([j.crisis for j in judge.judge_many([t for _, t in rows])])
        note = "  (judged after training on it)" if not name.startswith("real ") else ""
        print(_row(name[:13], pred, gold, note))
    texts = [t for rows in sets.values() for _, t in rows] or ["医院"]
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 3.0:
        for i in range(0, len(texts), 200):
            judge.judge_many(texts[i:i + 200])
        n += len(texts)
    rate = n / (time.perf_counter() - start)
    lexicon_only = RiskTagger(load_lexicon())
    n2, start = 0, time.perf_counter()
    while time.perf_counter() - start < 1.0:
        for t in texts:
            lexicon_only.assess(t)
        n2 += len(texts)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lexicon_rate = n2 / (time.perf_counter() - start)
    print(f"  speed: {rate:,.0f} titles/s on one core (target >= 3,000; lexicon alone {lexicon_rate:,.0f}/s); "
          f"peak memory of this process {peak:.0f} MB")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, action="append", default=[], metavar="PATH",
                    help="a label<TAB>headline file of real headlines kept outside the repo (repeatable)")
    ap.add_argument("--holdback", action="store_true", help="also train on 80%% and measure on the held-back 20%%")
    ap.add_argument("--errors", type=int, default=0, metavar="N", help="list the N most confident CV mistakes")
    ap.add_argument("--news-style", action="store_true", help="also judge fresh set d with a model trained without it")
    ap.add_argument("--with-skips", action="store_true", help="also cross-validate with the skip titles as non-crises")
    args = ap.parse_args(argv)
    tagger = RiskTagger(load_lexicon())
    if shared_available():
        shared, written = read_shared(), read_written()
        oof = cross_validation(shared, written, tagger, args.errors)
        several_sentences(oof, tagger)
        if args.holdback:
            holdback(shared, written, tagger)
        if args.news_style:
            news_style(shared, written, tagger)
        if args.with_skips:
            with_skips(shared, written, tagger)
    else:
        print("../shared/data/risk/headlines.jsonl is absent: no cross-validated figures")
    shipped_figures(args.real)
    return 0


if __name__ == "__main__":
    sys.exit(main())

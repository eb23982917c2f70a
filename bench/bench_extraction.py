"""Benchmark article extraction on the hand-labelled Chinese pages in ../shared.

Prints, for the same decoded pages: char-level F1 of our extractor and of bare
trafilatura against cleaned/ (mean, median, min, count), plus trafilatura fed the raw
bytes for reference; author exact-match and date accuracy of ours; our pages/second.
Run: ``.venv/bin/python bench/bench_extraction.py``.

Scoring rules: an author/date label of "UNKNOWN"/"UNKNWON" means the page has none, so
the right answer is None; an empty label file means the page was never labelled and is
left out of that accuracy.  Authors match after folding whitespace.  A date matches when
the fields the label gives (year; year-month; year-month-day) equal ours.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from yuqing.crawler.encoding import decode_html
from yuqing.crawler.extract import char_f1, extract_article

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpora" / "cn_extraction"
UNKNOWN = {"UNKNOWN", "UNKNWON"}


@dataclass(frozen=True)
class Page:
    """One labelled page: raw bytes and its gold body/author/date labels."""

    name: str
    body: bytes
    text: str
    author: str
    date: str


def load_pages(corpus: Path = CORPUS) -> list[Page]:
    """All original/*.html with their cleaned/author/date labels, sorted by name."""
    pages = []
    for html in sorted((corpus / "original").glob("*.html")):
        def label(folder: str, stem: str = html.stem) -> str:
            return (corpus / folder / f"{stem}.txt").read_text("utf-8")
        pages.append(Page(html.stem, html.read_bytes(), label("cleaned"), label("author").strip(), label("date").strip()))
    return pages


def author_matches(gold: str, ours: str | None) -> bool | None:
    """Exact match after folding whitespace; None when the page has no label."""
    if not gold:
        return None
    if gold in UNKNOWN:
        return ours is None
    return ours is not None and " ".join(gold.split()) == " ".join(ours.split())


def date_matches(gold: str, ours: datetime | None) -> bool | None:
    """Compare the date fields the label gives (Y, Y-M or Y-M-D); None when unlabelled."""
    if not gold:
        return None
    if gold in UNKNOWN:
        return ours is None
    if ours is None:
        return False
    fields = [int(x) for x in gold.split()[0].split("-") if x.isdigit()]
    return fields == [ours.year, ours.month, ours.day][: len(fields)]


def _summary(name: str, scores: list[float]) -> str:
    """One line: mean, median, min and count of F1 scores."""
    return (
        f"{name:<22} mean={statistics.mean(scores):.4f} median={statistics.median(scores):.4f} "
        f"min={min(scores):.4f} n={len(scores)}"
    )


def _accuracy(name: str, results: list[bool | None]) -> str:
    """One line: share of labelled pages that matched."""
    judged = [r for r in results if r is not None]
    return f"{name:<22} {sum(judged)}/{len(judged)} = {sum(judged) / len(judged):.3f}"


def run(verbose: bool = False) -> int:
    """Score ours and bare trafilatura on every labelled page and print the figures."""
    import trafilatura

    pages = load_pages()
    ours_f1, traf_f1, traf_raw_f1, authors, dates = [], [], [], [], []
    elapsed = 0.0
    for page in pages:
        start = time.perf_counter()
        art = extract_article(page.body)
        elapsed += time.perf_counter() - start
        decoded, _ = decode_html(page.body)
        bare = trafilatura.extract(decoded) or ""
        ours_f1.append(char_f1(art.text, page.text))
        traf_f1.append(char_f1(bare, page.text))
        traf_raw_f1.append(char_f1(trafilatura.extract(page.body) or "", page.text))
        authors.append(author_matches(page.author, art.author))
        dates.append(date_matches(page.date, art.published_at))
        if verbose:
            print(f"{page.name[:8]} ours={ours_f1[-1]:.3f} traf={traf_f1[-1]:.3f} "
                  f"author={art.author!r} (gold {page.author!r}) date={art.published_at} (gold {page.date!r})")
    print(f"cn_extraction: {len(pages)} pages ({CORPUS})")
    print(_summary("char F1 ours", ours_f1))
    print(_summary("char F1 trafilatura", traf_f1) + "  (bare extract() on our decoded text)")
    print(_summary("  same, raw bytes", traf_raw_f1) + "  (trafilatura decoding the bytes itself)")
    print(_accuracy("author exact (ours)", authors))
    print(_accuracy("date match (ours)", dates))
    print(f"{'speed (ours)':<22} {len(pages) / elapsed:.1f} pages/s ({elapsed:.2f} s)")
    return 0


def main() -> int:
    """CLI entry: skip cleanly when ../shared is not there."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="per-page lines")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)  # it logs ERROR for "no text found"
    if not (CORPUS / "original").is_dir():
        print(f"SKIP: labelled corpus not found at {CORPUS} (needs ../shared beside the repo)")
        return 0
    return run(args.verbose)


if __name__ == "__main__":
    raise SystemExit(main())

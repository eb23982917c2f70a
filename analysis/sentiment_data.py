"""Labelled review corpora in ../shared and the one held-out split that training, bench and tests share."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from yuqing.analysis.text import normalize
from yuqing.resources import CHECKOUT, PACKAGE_DIR

log = logging.getLogger(__name__)

SHARED_DIR = (CHECKOUT or PACKAGE_DIR).parent / "shared"  # beside a checkout: training and tests only
SENTIMENT_DIR = SHARED_DIR / "data" / "sentiment"

# name → file stem in ../shared/data/sentiment/
CORPORA: dict[str, str] = {
    "hotel": "chnsenticorp_htl",
    "shopping": "online_shopping_10_cats",
    "health": "health_products_jd",
    "waimai": "waimai_10k",
}
# Accuracy targets on our held-out part (the brief's acceptance bar).
TARGETS: dict[str, float] = {"hotel": 0.91, "shopping": 0.93, "health": 0.95, "waimai": 0.90}

HELDOUT_PERCENT = 10  # buckets [0, 10) of 100 are test
DEV_PERCENT = 10  # buckets [10, 20) are a development split inside training, for tuning only

Part = Literal["train", "test", "dev", "fit", "all"]

_KEY_DROP_RE = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Example:
    """One labelled review; label 1 = pos, 0 = neg."""

    text: str
    label: int
    corpus: str


def shared_available() -> bool:
    """Whether ../shared with the sentiment corpora is present (absent on some machines)."""
    return all((SENTIMENT_DIR / f"{stem}.train.jsonl").is_file() for stem in CORPORA.values())


def split_key(text: str) -> str:
    """Normalised identity of a review: NFKC, lower-case, punctuation/symbols/spaces removed."""
    key = normalize(text).lower()
    return _KEY_DROP_RE.sub("", key)  # \w is letters and numbers only, so symbols and emoji go too


def bucket(text: str) -> int:
    """Stable 0..99 bucket of a review's key, identical across files, runs and machines."""
    digest = hashlib.md5(split_key(text).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") % 100


def part_of(text: str) -> str:
    """Which split a text belongs to: 'test' (held out), 'dev' (tuning) or 'fit' (rest of training)."""
    b = bucket(text)
    if b < HELDOUT_PERCENT:
        return "test"
    if b < HELDOUT_PERCENT + DEV_PERCENT:
        return "dev"
    return "fit"


def _in_part(text: str, part: Part) -> bool:
    """'train' = fit + dev; 'all' = everything."""
    if part == "all":
        return True
    p = part_of(text)
    if part == "train":
        return p != "test"
    return p == part


def load_corpus(name: str, part: Part = "train", shared: Path | None = None) -> list[Example]:
    """Examples of one corpus ('hotel', 'shopping', 'health', 'waimai') restricted to a split."""
    path = (shared or SHARED_DIR) / "data" / "sentiment" / f"{CORPORA[name]}.train.jsonl"
    out: list[Example] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            text, label = row["text"], row["label"]
            if label not in ("pos", "neg"):
                continue
            if _in_part(text, part):
                out.append(Example(text, 1 if label == "pos" else 0, name))
    log.debug("loaded %d %s examples of %s", len(out), part, name)
    return out


def load_all(part: Part = "train", shared: Path | None = None) -> dict[str, list[Example]]:
    """Every corpus restricted to one split, keyed by corpus name."""
    return {name: load_corpus(name, part, shared) for name in CORPORA}


def fixed_sample(examples: list[Example], n: int, seed: int = 0) -> list[Example]:
    """Deterministic sample of n examples (by hash order, so independent of Python's RNG)."""
    if len(examples) <= n:
        return list(examples)

    def order(ex: Example) -> bytes:
        return hashlib.md5(f"{seed}:{ex.text}".encode()).digest()

    return sorted(examples, key=order)[:n]

"""`yuqing sentiment [FILE]`: one document per input line in, one JSON score object per line out."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import nullcontext
from itertools import chain, islice
from pathlib import Path
from typing import TextIO

from yuqing.analysis.sentiment import PARALLEL_MIN_CHARS, SentimentModel, label

log = logging.getLogger(__name__)

# Lines per scoring batch: big enough for vectorised scoring and worker processes, small enough to stream.
CHUNK_LINES = 20_000


def _chunks(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    """Consecutive lists of up to size lines, so a huge input never sits in memory whole."""
    while True:
        chunk = list(islice(lines, size))
        if not chunk:
            return
        yield chunk


def _strip_eol(line: str) -> str:
    """The document on a line, without its line terminator (\\n, \\r\\n)."""
    return line.rstrip("\r\n")


def _line(score: float) -> str:
    """One output line; the label is taken from the printed (rounded) score so the two never disagree."""
    s = round(score, 6)
    return json.dumps({"score": s, "label": label(s)}, ensure_ascii=False) + "\n"


def run_sentiment(infile: TextIO, outfile: TextIO, model_path: Path | str | None = None,
                  extra_words: tuple[str, ...] = ()) -> int:
    """Score every line of infile and write {"score", "label"} JSON lines to outfile, in order; returns 0."""
    model = SentimentModel.load(Path(model_path) if model_path is not None else None, extra_words)
    n = 0
    chunks = _chunks(iter(infile), CHUNK_LINES)
    first = next(chunks, [])
    # One set of workers for the whole run (their token caches stay warm), and only for big inputs.
    big = len(first) == CHUNK_LINES or sum(map(len, first)) >= PARALLEL_MIN_CHARS
    with model.worker_pool() if big else nullcontext() as pool:
        for chunk in chain([first] if first else [], chunks):
            docs = [_strip_eol(line) for line in chunk]
            scores = model.score_many(docs, pool=pool) if pool is not None else model.score_many(docs)
            outfile.write("".join(_line(s) for s in scores))
            outfile.flush()
            n += len(docs)
    log.info("scored %d documents", n)
    return 0

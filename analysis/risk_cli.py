"""`yuqing risk [FILE]`: one document per line in, one JSON verdict per line out, in order."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TextIO

from yuqing.analysis.judge import CrisisJudge

log = logging.getLogger(__name__)

BATCH = 500  # lines judged together: the model reads a batch at once, output stays in input order


def run_risk(infile: TextIO, outfile: TextIO, lexicon_path: Path | str | None = None,
             model_path: Path | str | None = None, kind: str = "news") -> int:
    """Judge each input line as a title (kind news) or as a post's or review's text; an empty line gets
    a non-crisis verdict so output lines match input lines."""
    judge = CrisisJudge.load(Path(model_path) if model_path else None, Path(lexicon_path) if lexicon_path else None)
    sentiment = None
    if kind == "review":  # a review is negative when it complains, as the pipeline reads it: by its sentiment
        from yuqing.analysis.sentiment import SentimentModel

        sentiment = SentimentModel.load()
    count = crises = negatives = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal count, crises, negatives
        if kind == "news":
            verdicts = judge.judge_many(batch)
        else:
            scores = sentiment.score_many(batch, workers=1) if sentiment is not None else [None] * len(batch)
            verdicts = judge.judge_mentions([("", text, kind, s) for text, s in zip(batch, scores)])
        for v in verdicts:
            outfile.write(json.dumps(v.as_record(), ensure_ascii=False) + "\n")
            crises += v.crisis
            negatives += v.negative
        count += len(batch)
        batch.clear()

    for line in infile:
        batch.append(line.rstrip("\r\n"))
        if len(batch) >= BATCH:
            flush()
    flush()
    outfile.flush()
    log.info("risk: %d documents, %d crisis, %d negative", count, crises, negatives)
    return 0

"""`yuqing risk [FILE]`: one document per line in, one JSON verdict per line out, in order."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TextIO

from analysis.risk import RiskTagger, load_lexicon

log = logging.getLogger(__name__)


def run_risk(infile: TextIO, outfile: TextIO, lexicon_path: Path | str | None = None) -> int:
    """Tag each input line; an empty line gets a non-crisis verdict so output lines match input lines."""
    tagger = RiskTagger(load_lexicon(Path(lexicon_path) if lexicon_path else None))
    count = crises = 0
    for line in infile:
        text = line.rstrip("\r\n")
        res = tagger.assess(text)
        record = {"crisis": res.crisis, "categories": list(res.categories), "terms": list(res.terms)}
        outfile.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
        crises += res.crisis
    outfile.flush()
    log.info("risk: %d documents, %d crisis", count, crises)
    return 0

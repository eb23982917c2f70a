"""`yuqing extract FILE`: print one page's extracted article as a JSON object.

Output: ``{"title", "author", "published_at", "text"}`` with null where unknown and
``published_at`` as ISO 8601 (naive local time unless the page gave an offset).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TextIO

from yuqing.crawler.extract import Article, extract_article

log = logging.getLogger(__name__)


def article_json(article: Article) -> str:
    """The CLI's JSON rendering of an Article (one line, Chinese kept readable)."""
    published = article.published_at.isoformat() if article.published_at else None
    payload = {"title": article.title, "author": article.author, "published_at": published, "text": article.text}
    return json.dumps(payload, ensure_ascii=False)


def run_extract(path: Path, out: TextIO) -> int:
    """Extract the article in an HTML file (bytes, any encoding) and write its JSON; exit code."""
    try:
        body = Path(path).read_bytes()
    except OSError as exc:
        log.error("cannot read %s: %s", path, exc)
        return 1
    out.write(article_json(extract_article(body, url=str(path))) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m yuqing.crawler.extract_cli FILE` for use before the yuqing CLI wires it in."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m yuqing.crawler.extract_cli FILE", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_extract(Path(args[0]), sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())

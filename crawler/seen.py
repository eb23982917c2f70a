"""Article pages a web source already read that did not name the hospital, so the next poll skips them.

A list page keeps linking to the same articles for days; without this every poll would fetch
and extract all of them again (impolite to the site, and most of our CPU). Pages that did name
the hospital are in the store already (MentionURL); this file remembers the rest, per source,
in data_dir/run/seen-<id>.txt, one canonical-URL key per line, newest last, at most LIMIT.
"""

from __future__ import annotations

import os
from pathlib import Path

from scrapy.crawler import Crawler

from yuqing.crawler.context import context_of

#: Keys kept per source: far more than any list page links to, small enough to load in a blink.
LIMIT = 20_000


class SeenPages:
    """An ordered set of url_keys, loaded once per crawl and written back when the crawl ends."""

    def __init__(self, path: Path, limit: int = LIMIT):
        self.path = path
        self.limit = limit
        self._keys: dict[str, None] = {}
        self._dirty = False
        if path.exists():
            self._keys = dict.fromkeys(path.read_text(encoding="ascii", errors="ignore").split())

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str) -> None:
        """Remember one page (moved to the newest end if already known)."""
        self._keys.pop(key, None)
        self._keys[key] = None
        self._dirty = True

    def save(self) -> None:
        """Write the newest LIMIT keys, atomically, if anything changed."""
        if not self._dirty:
            return
        keep = list(self._keys)[-self.limit:]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("\n".join(keep) + "\n", encoding="ascii")
        os.replace(tmp, self.path)
        self._dirty = False


def seen_pages(crawler: Crawler) -> SeenPages | None:
    """This crawl's SeenPages (one per source), or None outside a configured run."""
    found = getattr(crawler, "_yuqing_seen", None)
    if found is not None:
        return found
    context = context_of(crawler)
    spider = getattr(crawler, "spider", None)
    if context is None or spider is None:
        return None
    path = Path(context.cfg.settings.data_dir) / "run" / f"seen-{spider.name}.txt"
    crawler._yuqing_seen = SeenPages(path)  # type: ignore[attr-defined]
    return crawler._yuqing_seen  # type: ignore[attr-defined]

"""Turns a spider's run into its source's health and remembered state, when the spider closes.

A run *fails* when none of the source's entry requests (feed, list page, first results or
reviews page) succeeded: consecutive_failures goes up, failing_since is set once, last_error
says why. A robots.txt refusal is a failure too, on purpose: the source yields nothing until
someone changes it or obtains the site's consent (obey_robots: false), and the operators'
"failing too long" alert is how they learn that. Faults on article pages are logged in
last_error but do not fail a source whose entry page worked. ETag/Last-Modified are kept only
after a successful run that was not cut short (a stop), and a reviews source's newest key only
after a run without faults, so nothing is skipped next time because of a fault or a stop this time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from yuqing.clock import Clock
from yuqing.crawler import UNCHANGED
from yuqing.crawler.context import context_of
from yuqing.models import SourceState
from yuqing.store import Store

log = logging.getLogger(__name__)


def ensure_state(sess: Any, source: Any) -> SourceState:
    """The source's row, created or brought in line with config (name, kind, url, tier)."""
    state = sess.get(SourceState, source.id)
    if state is None:
        state = SourceState(id=source.id, kind=source.kind, name=source.name, url=source.url, tier=source.tier,
                            consecutive_failures=0, pages_fetched=0, mentions_found=0, not_modified=0)
        sess.add(state)
    else:
        state.kind, state.name, state.url, state.tier = source.kind, source.name, source.url, source.tier
    return state


def outcome(stats: dict[str, Any]) -> str:
    """'ok', 'not_modified' or 'failed' for one run of one source: did any entry request succeed?"""
    ok = stats.get("yuqing/entry_ok", 0)
    if ok == 0:
        return "failed"
    if stats.get("yuqing/not_modified", 0) >= ok:
        return "not_modified"
    return "ok"


def mark_failed(state: SourceState, now: datetime, error: str) -> None:
    """One failed poll in the source's row: counted, dated, and why (its health and operator notices read it)."""
    state.last_fetch_at = now
    state.consecutive_failures = (state.consecutive_failures or 0) + 1
    state.failing_since = state.failing_since or now
    state.last_error, state.last_error_at = error, now


class SourceStateExtension:
    """Keeps SourceState right: health counters, validators, newest review key."""

    def __init__(self, crawler: Crawler, store: Store, clock: Clock):
        self.crawler = crawler
        self.store = store
        self.clock = clock
        self.progress: Callable[[str, str], None] | None = None  # told (source id, outcome) as each finishes

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SourceStateExtension:
        context = context_of(crawler)
        if context is None:
            raise NotConfigured("no CrawlContext: no store to keep source state in")
        ext = cls(crawler, context.store, context.clock)
        ext.progress = context.progress
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        source = getattr(spider, "source", None)
        if source is None:
            return
        with self.store.session() as sess:
            ensure_state(sess, source)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        source = getattr(spider, "source", None)
        if source is None:
            return
        stats = self.crawler.stats.get_stats()
        result = outcome(stats)
        error = stats.get("yuqing/last_error") or (None if reason == "finished" else f"crawl interrupted ({reason})")
        self.crawler.stats.set_value("yuqing/outcome", result)
        with self.store.session() as sess:
            self._record(ensure_state(sess, source), stats, result, error, getattr(spider, "remember", {}), reason)
        log.info("source %s: %s; pages %d, stored %d, reposts %d, duplicates %d, not naming us %d, errors %d%s",
                 source.id, result, stats.get("yuqing/pages", 0), stats.get("yuqing/stored", 0),
                 stats.get("yuqing/reposts", 0), stats.get("yuqing/duplicates", 0),
                 stats.get("yuqing/not_mentioning", 0), stats.get("yuqing/errors", 0),
                 f"; last error: {error}" if error else "", extra={UNCHANGED: result == "not_modified"})
        if self.progress is not None:  # the CLI's progress bar over many sources
            self.progress(source.id, result)

    def _record(self, state: SourceState, stats: dict[str, Any], result: str, error: str | None,
                remember: dict[str, str | None], reason: str) -> None:
        """Write one run's result into the source's row."""
        now = self.clock.now()
        state.last_fetch_at = now
        state.pages_fetched = (state.pages_fetched or 0) + stats.get("yuqing/pages", 0)
        state.not_modified = (state.not_modified or 0) + stats.get("yuqing/not_modified", 0)
        if result == "failed":
            mark_failed(state, now, error or f"no answer from the source (crawl {reason})")
            return
        state.last_success_at = now
        state.consecutive_failures = 0
        state.failing_since = None
        if error:
            state.last_error, state.last_error_at = error, now
        clean = not error and reason == "finished"
        for key in ("etag", "last_modified"):
            if key in remember and reason == "finished":  # a poll cut short keeps the old ones: refetched in full
                setattr(state, key, remember[key])
        if remember.get("newest_key") and clean:
            state.newest_key = remember["newest_key"]

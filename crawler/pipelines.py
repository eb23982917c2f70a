"""Item pipelines, in order: normalise, keep only pages naming the hospital, dedup, store.

Each item is stored in one short transaction: a new Mention with its MentionURL, or one more
MentionURL on the mention that already has the same content (a repost). The source's
mentions_found counter moves in the same transaction, so it never disagrees with the rows.
"""

from __future__ import annotations

from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from yuqing.crawler.canonical import canonical_url, content_hash, url_key
from yuqing.crawler.context import config_of, store_of
from yuqing.crawler.items import MentionItem
from yuqing.crawler.mention_filter import MentionMatcher
from yuqing.crawler.pages import fold_ws, to_utc
from yuqing.crawler.seen import seen_pages
from yuqing.models import Mention, MentionURL, SourceState
from yuqing.store import Store

#: More replacement characters than this share of the text means the decoding failed; fewer are
#: stray bytes in the page itself (real pages carry a few broken emoji), which are removed.
MAX_REPLACEMENT_SHARE = 0.05
#: Latin-1 letters standing where Chinese should be: UTF-8 or GBK read as Latin-1/cp1252.
MIN_MOJIBAKE_LATIN = 20
STAT = "yuqing/{}"


class _Pipeline:
    """Pipelines keep their crawler for settings and stats."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Any:
        return cls(crawler)

    def count(self, key: str) -> None:
        self.crawler.stats.inc_value(STAT.format(key))

    def store(self) -> Store:
        """The run's Store; a crawl without one cannot dedup or store."""
        store = store_of(self.crawler)
        if store is None:
            raise RuntimeError("no store: crawl through crawler.runner or the crawl worker, which give crawlers a CrawlContext")
        return store


class NormalizePipeline(_Pipeline):
    """Whitespace folded, times in UTC, and no mojibake ever reaches the store."""

    def process_item(self, item: MentionItem) -> MentionItem:
        item.title = fold_ws(item.title)
        item.author = fold_ws(item.author or "") or None
        item.text = "\n".join(line for line in (fold_ws(x) for x in item.text.splitlines()) if line)
        item.published_at = to_utc(item.published_at, config_of(self.crawler).settings.timezone)
        if not item.title and not item.text:
            self.count("empty")
            raise DropItem(f"no text at {item.url}")
        if is_mojibake(item.title + item.text):
            self.count("undecodable")
            raise DropItem(f"undecodable text (mojibake) at {item.url}", log_level="WARNING")
        item.title, item.text = item.title.replace("\ufffd", ""), item.text.replace("\ufffd", "")
        return item


def is_mojibake(text: str) -> bool:
    """True for text decoded with the wrong codec: many U+FFFD, or Latin-1 letters instead of hanzi."""
    if text.count("\ufffd") > max(2, MAX_REPLACEMENT_SHARE * len(text)):
        return True
    latin = sum(1 for ch in text if "\u00a0" <= ch <= "\u00ff")
    hanzi = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    return latin >= MIN_MOJIBAKE_LATIN and latin > hanzi


class MentionFilterPipeline(_Pipeline):
    """Pages that do not name the hospital are not stored; those that do record what matched."""

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.matcher = MentionMatcher(config_of(crawler).hospital)

    def process_item(self, item: MentionItem) -> MentionItem:
        found = self.matcher.match(item.title, item.text)
        if found is None:
            self.count("not_mentioning")
            self.remember_read(item)
            raise DropItem(f"does not mention the hospital: {item.url}")
        item.matched_names = found.names
        item.match_context = found.context
        return item

    def remember_read(self, item: MentionItem) -> None:
        """A web article (or one a feed entry links to) that does not name us need not be fetched again."""
        spider = self.crawler.spider
        read = getattr(spider, "kind", "") == "web" or item.url in getattr(spider, "articles_read", ())
        seen = seen_pages(self.crawler) if read else None
        if seen is not None:
            seen.add(url_key(canonical_url(item.url)))


class DedupPipeline(_Pipeline):
    """A URL already stored is skipped; the same text under a new URL is marked as a repost."""

    def process_item(self, item: MentionItem) -> MentionItem:
        item.canonical_url = canonical_url(item.url, keep_fragment=item.kind == "review")
        item.url_key = url_key(item.canonical_url)
        item.content_hash = content_hash(item.text, item.title, item.author, item.published_at)
        with self.store().session() as sess:
            if sess.scalar(select(MentionURL.id).where(MentionURL.url_key == item.url_key)) is not None:
                self.count("duplicates")
                raise DropItem(f"already stored: {item.canonical_url}")
            item.same_as_mention_id = sess.scalar(
                select(Mention.id).where(Mention.content_hash == item.content_hash).order_by(Mention.id).limit(1)
            )
        return item


class StorePipeline(_Pipeline):
    """One short transaction per item: a new mention, or a new URL on the mention it copies."""

    def process_item(self, item: MentionItem) -> MentionItem:
        try:
            with self.store().session() as sess:
                self._write(sess, item)
        except IntegrityError:
            # Another crawl stored the same URL between our check and our insert.
            self.count("duplicates")
            raise DropItem(f"already stored (concurrently): {item.canonical_url}") from None
        self.count("reposts" if item.same_as_mention_id else "stored")
        return item

    def _write(self, sess: Any, item: MentionItem) -> None:
        """Insert the rows for one item and move the source's counter."""
        mention_id = item.same_as_mention_id
        if mention_id is None:
            mention = Mention(
                url=item.canonical_url, source_id=item.source_id, kind=item.kind, title=item.title,
                text=item.text, author=item.author, rating=item.rating, published_at=item.published_at,
                fetched_at=item.fetched_at, content_hash=item.content_hash,
                matched_names=item.matched_names, match_context=item.match_context, platform=item.platform,
            )
            sess.add(mention)
            sess.flush()
            mention_id = mention.id
        sess.add(MentionURL(mention_id=mention_id, url=item.canonical_url, url_key=item.url_key,
                            source_id=item.source_id, seen_at=item.fetched_at))
        state = sess.get(SourceState, item.source_id)
        if state is not None:
            state.mentions_found = (state.mentions_found or 0) + 1
        sess.flush()

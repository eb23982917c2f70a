"""RSS/Atom sources: Scrapy fetches conditionally, feedparser parses the bytes, entries become items.

The source's ETag and Last-Modified are sent back as If-None-Match / If-Modified-Since, so an
unchanged feed costs one 304 and no body. Entries are stored from the feed's own title and
content (or summary), unless the source's ``fetch_articles`` says to read the linked article:
``auto`` (default) for summary-only entries (text under ``SUMMARY_CHARS`` characters),
``always`` for every entry, ``never`` for none. Only links within the source's own domains are
followed (robots.txt obeyed as usual), at most ``MAX_ARTICLES_PER_FEED`` per poll; the article
is extracted by crawler.extract and stored under the entry's link with the entry's title (and
the feed's time when the page states none). Articles already stored, or read before without
naming the hospital (crawler.seen), are not fetched again. When the article cannot be read the
entry is stored from the feed as before; a fault on an article page is counted and logged, but
the source still works.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from scrapy.http import Request, Response
from twisted.python.failure import Failure

from yuqing.crawler import UNCHANGED
from yuqing.crawler.feeds import FeedEntry, NotAFeed, parse_feed
from yuqing.crawler.items import MentionItem
from yuqing.crawler.pages import declared_charset, header
from yuqing.crawler.spiders.base import SourceSpider, request_of

#: An entry whose text (HTML stripped) is shorter than this is a summary, not the article.
SUMMARY_CHARS = 200
#: Articles followed from one feed poll at most; the rest are stored from the feed's text.
MAX_ARTICLES_PER_FEED = 100


class FeedSpider(SourceSpider):
    """One RSS 0.9x/1.0/2.0 or Atom feed."""

    kind = "rss"
    mention_kind = "news"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.articles_read: set[str] = set()  # entry links whose article was read (crawler.seen)

    def entry_requests(self) -> Iterable[Request]:
        yield self.request(self.source.url, self.parse_feed, entry=True, headers=self.conditional_headers(),
                           meta={"handle_httpstatus_list": [304]})

    def conditional_headers(self) -> dict[str, str]:
        """The validators the feed gave last time, so an unchanged feed answers 304."""
        headers = {}
        if self.state.etag:
            headers["If-None-Match"] = self.state.etag
        if self.state.last_modified:
            headers["If-Modified-Since"] = self.state.last_modified
        return headers

    def parse_feed(self, response: Response) -> Iterator[Any]:
        if response.status == 304:
            self.count("pages")
            self.count("not_modified")
            self.entry_succeeded()
            self.logger.info("source %s: feed not modified", self.source.id, extra={UNCHANGED: True})
            return
        entries = self.read_entries(response)
        if entries is None:
            return
        self.remember["etag"] = header(response, "ETag") or None
        self.remember["last_modified"] = header(response, "Last-Modified") or None
        followed = 0
        for entry in entries:
            url = response.urljoin(entry.link)
            item = self.item(url=url, title=entry.title, text=entry.text,
                             author=entry.author, published_at=entry.published_at)
            if followed < MAX_ARTICLES_PER_FEED and self.wants_article(entry, url):
                followed += 1
                request = self.request(url, self.parse_entry_article, meta={"skip_if_known": True, "feed_item": item})
                yield request.replace(errback=self.on_article_error)
            else:
                yield item

    def read_entries(self, response: Response, problem: str = "not a readable feed") -> list[FeedEntry] | None:
        """The feed's entries (the source answered), or None after counting its fault: binary, or not a feed."""
        if not self.usable(response):
            return None
        try:
            entries = parse_feed(response.body, header(response, "Content-Type"))
        except NotAFeed as err:
            self.fault(request_of(response), f"{problem}: {err}")
            return None
        self.entry_succeeded()
        return entries

    def wants_article(self, entry: FeedEntry, url: str) -> bool:
        """Whether the entry's linked article should be read (fetch_articles; own domains only)."""
        mode = self.source.fetch_articles
        if mode == "never" or (mode == "auto" and len(entry.text) >= SUMMARY_CHARS):
            return False
        return self.within_domains(url)

    def parse_entry_article(self, response: Response) -> Iterator[MentionItem]:
        """The full article behind a feed entry; the entry's own text when the page yields less."""
        feed_item: MentionItem = response.meta["feed_item"]
        if not self.usable(response):
            yield feed_item
            return
        from yuqing.crawler.extract import extract_article

        self.articles_read.add(feed_item.url)  # not fetched again if it does not name the hospital
        article = extract_article(response.body, url=response.url, declared_encoding=declared_charset(response))
        text = article.text or ""
        if len(text) <= len(feed_item.text):
            self.logger.info("source %s: no more article text than the feed's at %s", self.source.id, response.url)
            yield feed_item
            return
        yield self.item(url=feed_item.url, title=feed_item.title or article.title or "", text=text,
                        author=feed_item.author or article.author,
                        published_at=article.published_at or feed_item.published_at)

    def on_article_error(self, failure: Failure) -> Iterator[MentionItem]:
        """An article page failed: logged like any article fault, and the feed entry stored instead.

        An article already read (stored, or seen not to name the hospital) is not fetched; its
        entry goes on as it did before articles were followed (the pipelines drop a stored URL).
        """
        self.on_error(failure)
        request: Request = getattr(failure, "request", None) or failure.value.response.request  # type: ignore[union-attr]
        feed_item = request.meta.get("feed_item")
        if feed_item is not None:
            yield feed_item

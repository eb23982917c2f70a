"""RSS/Atom sources: Scrapy fetches conditionally, feedparser parses the bytes, entries become items.

The source's ETag and Last-Modified are sent back as If-None-Match / If-Modified-Since, so an
unchanged feed costs one 304 and no body. Entries are stored from the feed's own title and
content (or summary); their links are recorded, not fetched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from scrapy.http import Request, Response

from crawler.feeds import NotAFeed, parse_feed
from crawler.items import MentionItem
from crawler.pages import header
from crawler.spiders.base import SourceSpider


class FeedSpider(SourceSpider):
    """One RSS 0.9x/1.0/2.0 or Atom feed."""

    kind = "rss"
    mention_kind = "news"

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

    def parse_feed(self, response: Response) -> Iterator[MentionItem]:
        if response.status == 304:
            self.count("pages")
            self.count("not_modified")
            self.entry_succeeded()
            self.logger.info("source %s: feed not modified", self.source.id)
            return
        if not self.usable(response):
            return
        try:
            entries = parse_feed(response.body, header(response, "Content-Type"))
        except NotAFeed as err:
            self.fault(response.request, f"not a readable feed: {err}")
            return
        self.entry_succeeded()
        self.remember["etag"] = header(response, "ETag") or None
        self.remember["last_modified"] = header(response, "Last-Modified") or None
        for entry in entries:
            yield self.item(url=response.urljoin(entry.link), title=entry.title, text=entry.text,
                            author=entry.author, published_at=entry.published_at)

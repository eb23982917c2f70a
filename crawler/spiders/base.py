"""What every source spider shares: one configured source, its remembered state, and fault accounting.

Spiders only parse. Faults (timeouts, HTTP errors, size cap, off-domain redirects, robots.txt,
binary content) are classified here and counted in the crawler's stats under ``yuqing/``;
the SourceStateExtension turns those stats into the source's health when the spider closes.
A fault on an *entry* request (feed, list page, first results or reviews page) is a fault of
the source; a fault on an article page is counted and logged, but the source still works.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadTimeoutError, IgnoreRequest, ResponseDataLossError
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import DNSLookupError, TCPTimedOutError
from twisted.internet.error import TimeoutError as TwistedTimeout
from twisted.python.failure import Failure

from yuqing.clock import Clock, SystemClock
from yuqing.config import AppConfig, Source
from yuqing.crawler.canonical import within_domains
from yuqing.crawler.context import context_of
from yuqing.crawler.items import MentionItem, MentionKind
from yuqing.crawler.middlewares import AlreadyKnown, OffDomainRedirect
from yuqing.crawler.pages import binary_reason

STAT = "yuqing/{}"


@dataclass(frozen=True)
class SourceSnapshot:
    """What the store remembers about a source between polls, handed to its spider."""

    etag: str | None = None
    last_modified: str | None = None
    newest_key: str | None = None


def default_domains(source: Source) -> list[str]:
    """Links are followed only within the source's own domains (default: its URL's host)."""
    if source.allowed_domains:
        return [d.lower().strip(".") for d in source.allowed_domains]
    return [(urlsplit(source.url.replace("{query}", "q").replace("{page}", "1")).hostname or "").lower()]


def request_of(response: Response) -> Request:
    """The request a response answers; Scrapy sets it on every response a callback receives."""
    if response.request is None:
        raise ValueError(f"response without its request: {response.url}")
    return response.request


class SourceSpider(scrapy.Spider):
    """One configured source; subclasses say which requests to start with and how to parse."""

    kind: ClassVar[str] = ""
    mention_kind: ClassVar[MentionKind] = "news"
    cfg: AppConfig | None
    clock: Clock

    def __init__(self, source: Source, state: SourceSnapshot | None = None, **kwargs: Any):
        super().__init__(name=source.id, **kwargs)
        self.source = source
        self.state = state or SourceSnapshot()
        self.allowed_domains = default_domains(source)
        self.remember: dict[str, str | None] = {}  # etag / last_modified / newest_key to keep on success

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> SourceSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        context = context_of(crawler)
        spider.cfg = context.cfg if context is not None else None
        spider.clock = context.clock if context is not None else SystemClock()
        return spider

    @property
    def timezone(self) -> str:
        """The hospital's time zone, for pages that state local times."""
        return self.cfg.settings.timezone if self.cfg else "Asia/Shanghai"

    # --- requests ------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        for request in self.entry_requests():
            yield request

    def entry_requests(self) -> Iterable[Request]:
        """The source's first requests; a source fails when all of them fail."""
        raise NotImplementedError

    def request(self, url: str, callback: Callable[..., Any], *, entry: bool = False,
                meta: dict[str, Any] | None = None, **kwargs: Any) -> Request:
        """A request whose faults are classified and counted against this source."""
        return Request(url, callback=callback, errback=self.on_error,
                       meta={"entry": entry, **(meta or {})}, **kwargs)

    def within_domains(self, url: str) -> bool:
        """True for links inside the source's own domains."""
        return within_domains(url, self.allowed_domains)

    # --- accounting ----------------------------------------------------------------

    def count(self, key: str, n: int = 1) -> None:
        """Add to one of this source's counters (crawler stats under yuqing/)."""
        self.crawler.stats.inc_value(STAT.format(key), n)

    def entry_succeeded(self) -> None:
        """The source answered: it is healthy for this run."""
        self.count("entry_ok")

    def fault(self, request: Request, message: str, level: int = logging.WARNING) -> None:
        """Log a fault against the source and count it in its health."""
        entry = bool(request.meta.get("entry"))
        self.logger.log(level, "source %s: %s (%s)", self.source.id, message, request.url)
        self.count("errors")
        if entry:
            self.count("entry_failures")
        self.crawler.stats.set_value(STAT.format("last_error"), f"{message} ({request.url})")

    def on_error(self, failure: Failure) -> None:
        """Errback of every request: name the fault in words an operator understands."""
        request: Request = getattr(failure, "request", None) or failure.value.response.request  # type: ignore[union-attr]
        if failure.check(AlreadyKnown):
            self.count("skipped_known")
            return
        message = describe_failure(failure, request)
        if message.startswith("robots.txt") and not request.meta.get("entry"):
            # A site may keep some pages from robots; that is its right, not a fault of the source.
            self.count("robots_disallowed")
            self.logger.info("source %s: %s (%s)", self.source.id, message, request.url)
            return
        self.fault(request, message)

    def usable(self, response: Response) -> bool:
        """Count the page; refuse binary bodies (an image is never a mention)."""
        self.count("pages")
        reason = binary_reason(response)
        if reason:
            self.fault(request_of(response), reason)
            return False
        return True

    @property
    def item_kind(self) -> MentionKind:
        """'review' from review sources; 'post' from tier-4 sources (forums); else 'news'."""
        if self.mention_kind == "review":
            return "review"
        return "post" if self.source.tier == 4 else "news"

    def item(self, *, url: str, title: str, text: str, author: str | None = None,
             published_at: Any = None, rating: float | None = None) -> MentionItem:
        """A MentionItem from this source, stamped with the crawl clock."""
        return MentionItem(
            source_id=self.source.id, kind=self.item_kind, url=url, title=title or "", text=text or "",
            author=author or None, published_at=published_at, rating=rating, fetched_at=self.clock.now(),
        )


def describe_failure(failure: Failure, request: Request) -> str:
    """A fault in an operator's words: what went wrong, not a traceback."""
    value = failure.value
    if isinstance(value, HttpError):
        return f"HTTP {value.response.status}"
    if failure.check(OffDomainRedirect):
        return f"redirect off-domain to {urlsplit(str(value).rsplit(' ', 1)[-1]).hostname}"
    if failure.check(IgnoreRequest):
        text = str(value)
        if "robots.txt" in text:
            return "robots.txt disallows this URL (set obey_robots: false only with the site's consent)"
        if "offsite" in text.lower():
            came_from = (request.meta.get("redirect_urls") or [None])[0]
            where = urlsplit(request.url).hostname
            return f"redirect off-domain to {where}" if came_from else f"link off-domain to {where}"
        return f"request ignored: {text}"
    if failure.check(TwistedTimeout, TCPTimedOutError, DownloadTimeoutError):
        return f"timed out after {request.meta.get('download_timeout', '?')} s"
    if failure.check(DNSLookupError):
        return f"DNS lookup failed for {urlsplit(request.url).hostname}"
    text = str(value) or type(value).__name__
    if "max size" in text or "maxsize" in text.lower():
        return "response over the size cap (max_page_bytes)"
    if failure.check(ResponseDataLossError) or "_DataLoss" in repr(value) or "data loss" in text.lower():
        return "truncated response (connection closed before the end)"
    return f"{type(value).__name__}: {text[:200]}"

"""Downloader middlewares: skip articles already read; name redirects that leave the source's domains."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urljoin

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response
from sqlalchemy import select

from yuqing.crawler.canonical import canonical_url, url_key, within_domains
from yuqing.crawler.seen import seen_pages
from yuqing.models import MentionURL
from yuqing.store import Store

log = logging.getLogger(__name__)


class AlreadyKnown(IgnoreRequest):
    """The article was read before (stored as a mention, or seen not to name us): not fetched again."""


class SkipKnownMiddleware:
    """Requests marked skip_if_known are dropped when their canonical URL is stored or already seen."""

    def __init__(self, crawler: Crawler, store: Store):
        self.crawler = crawler
        self.store = store

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SkipKnownMiddleware:
        from yuqing.crawler.context import store_of

        store = store_of(crawler)
        if store is None:
            raise NotConfigured("no store configured")
        mw = cls(crawler, store)
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    def process_request(self, request: Request) -> Any:
        if not request.meta.get("skip_if_known"):
            return None
        key = url_key(canonical_url(request.url))
        seen = seen_pages(self.crawler)
        if seen is not None and key in seen:
            raise AlreadyKnown(f"already read, did not name the hospital: {request.url}")
        with self.store.session() as sess:
            known = sess.scalar(select(MentionURL.id).where(MentionURL.url_key == key))
        if known is not None:
            raise AlreadyKnown(f"already stored: {request.url}")
        return None

    def spider_closed(self) -> None:
        seen = seen_pages(self.crawler)
        if seen is not None:
            seen.save()


class OffDomainRedirect(IgnoreRequest):
    """A redirect that leaves the source's own domains; followed, it would crawl someone else's site."""


class OffDomainRedirectMiddleware:
    """Turns a redirect off the source's domains into a fault the spider's errback sees.

    Scrapy's OffsiteMiddleware drops such a redirect silently at scheduling time, so the
    source would look healthy while collecting nothing. Runs before RedirectMiddleware.
    """

    REDIRECTS = frozenset({301, 302, 303, 307, 308})

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OffDomainRedirectMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        location = response.headers.get("Location")
        if response.status not in self.REDIRECTS or not location:
            return response
        target = urljoin(request.url, location.decode("latin-1"))
        domains = getattr(self.crawler.spider, "allowed_domains", None) or []
        if domains and not within_domains(target, domains):
            raise OffDomainRedirect(f"redirect off-domain to {target}")
        return response

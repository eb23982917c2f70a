"""RSSHub sources: the hospital's own RSSHub instance, one feed per route and hospital name.

Route templates (Source.routes) are filled with each of the hospital's names where they hold
``{query}`` (Weibo keyword search, Bilibili video search), or fetched as written (an account's
timeline: the hospital's own Weibo, a local media account, a WeChat public account). Each feed is
parsed like an rss source's; an item keeps its author and its route's platform, and is a post.

RSSHub answers a route it cannot serve with its error page: 503 when the route needs a cookie or
other config, or the platform refused it; 403 when the platform rejected it; 404 for an unknown
route; 429 from a rate limit in front of it. Each is a fault of the source naming the route and
RSSHub's own message, so `yuqing sources` says why, instead of the source quietly finding nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from urllib.parse import quote

from scrapy.http import Request, Response

from yuqing.config import RsshubRoute
from yuqing.crawler.items import MentionItem
from yuqing.crawler.pages import header
from yuqing.crawler.spiders.base import request_of
from yuqing.crawler.spiders.feed import FeedSpider

#: Statuses whose body is read for RSSHub's message rather than failed blind by Scrapy.
RSSHUB_ERRORS = [403, 404, 429, 500, 502, 503]
#: RSSHub's error page puts its message in <code class="... details">; older versions send plain text.
_DETAILS = re.compile(r'<code[^>]*class="[^"]*details[^"]*"[^>]*>(.*?)</code>', re.S | re.I)
_TAGS = re.compile(r"<[^>]+>")
MESSAGE_CHARS = 160
HINTS = {
    403: "the platform rejected RSSHub (anti-crawling); try later or configure the route's cookie",
    404: "RSSHub does not know this route; check the path against docs.rsshub.app",
    429: "rate limited; poll this source less often (interval_minutes)",
    503: "the route needs a cookie or other config in RSSHub's environment, or the platform refused it",
}


def rsshub_message(status: int, body: bytes) -> str:
    """RSSHub's own error message from its error page (or JSON/text body), shortened for the source's last error."""
    text = body.decode("utf-8", "replace")
    found = _DETAILS.search(text)
    if found:
        text = found.group(1)
    elif "<html" in text.lower():
        text = ""
    message = " ".join(_TAGS.sub(" ", html.unescape(text)).split())
    return message[:MESSAGE_CHARS]


class RsshubSpider(FeedSpider):
    """One self-hosted RSSHub instance (Source.url) and the routes to read from it; feeds read as rss sources' are."""

    kind = "rsshub"
    mention_kind = "news"

    def route_urls(self) -> list[tuple[str, RsshubRoute]]:
        """Every (feed URL, route): templates filled with each hospital name, duplicates once."""
        base = self.source.url.rstrip("/")
        names = self.cfg.hospital.names if self.cfg else []
        out: dict[str, RsshubRoute] = {}
        for route in self.source.routes:
            paths = [route.path.replace("{query}", quote(n, safe="")) for n in names] if "{query}" in route.path \
                else [route.path]
            for path in paths:
                out.setdefault(base + path, route)
        return list(out.items())

    def entry_requests(self) -> Iterable[Request]:
        for url, route in self.route_urls():
            yield self.request(url, self.parse_route, entry=True,
                               meta={"route": route, "handle_httpstatus_list": RSSHUB_ERRORS, "dont_retry": True})

    def parse_route(self, response: Response) -> Iterator[MentionItem]:
        route: RsshubRoute = response.meta["route"]
        if response.status != 200:
            self.route_failed(response, route)
            return
        entries = self.read_entries(response, f"RSSHub route {route.path} ({route.platform}) sent no feed")
        for entry in entries or ():
            item = self.item(url=response.urljoin(entry.link), title=entry.title, text=entry.text,
                             author=entry.author, published_at=entry.published_at)
            item.kind, item.platform = "post", route.platform
            yield item

    def route_failed(self, response: Response, route: RsshubRoute) -> None:
        """RSSHub's error page, as a fault of the source naming the route, RSSHub's message and what to do."""
        self.count("pages")
        status = response.status
        message = rsshub_message(status, response.body)
        retry = header(response, "Retry-After")
        hint = HINTS.get(status, "RSSHub could not serve the route")
        said = f": {message}" if message else ""
        wait = f"; retry after {retry} s" if retry else ""
        self.fault(request_of(response), f"RSSHub HTTP {status} on route {route.path} ({route.platform}){said} ({hint}{wait})")

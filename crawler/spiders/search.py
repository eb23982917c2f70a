"""Search sources: a news or web search URL template filled with each of the hospital's names.

This is how mentions on sites nobody listed are found. ``{query}`` in the URL is replaced by
each name (URL-encoded; ambiguous aliases are not searched alone, they would only bring
noise the mention filter drops). Results pages may be RSS/Atom (each entry is a result) or
HTML: with ``selectors.item`` each matching element is a result (``selectors.title``,
``selectors.body`` inside it, its first link the URL); without selectors every link whose text
or surrounding block names the hospital is a result. A result is stored from its title and
snippet; the linked page on another site is recorded, not fetched (links are followed only
within the source's own domains). Pages: ``{page}`` in the template (1, 2, ...), else
rel="next" links or ``selectors.next_page``, up to ``max_pages``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

from parsel import Selector
from scrapy.http import Request, Response

from yuqing.crawler.feeds import NotAFeed, looks_like_feed, parse_feed
from yuqing.crawler.mention_filter import fold
from yuqing.crawler.pages import header, next_link, node_text, page_selector, select, select_text
from yuqing.crawler.spiders.base import SourceSpider, request_of

#: A block of text longer than this is a page section, not one result's snippet.
MAX_SNIPPET_CHARS = 600


class SearchSpider(SourceSpider):
    """One search engine or site search, queried with each of the hospital's names."""

    kind = "search"
    mention_kind = "news"

    def queries(self) -> list[str]:
        """Every hospital name worth searching for (ambiguous aliases need context, so not alone)."""
        hospital = self.cfg.hospital if self.cfg else None
        if hospital is None:
            return []
        return [name for name in hospital.names if name not in hospital.ambiguous_aliases]

    def page_url(self, query: str, page: int) -> str:
        """The template filled with one name and page number."""
        return self.source.url.replace("{query}", quote(query)).replace("{page}", str(page))

    def entry_requests(self) -> Iterable[Request]:
        for query in self.queries():
            yield self.request(self.page_url(query, 1), self.parse_results, entry=True,
                               meta={"query": query, "page": 1})

    def parse_results(self, response: Response) -> Iterator[Any]:
        if not self.usable(response):
            return
        try:
            results = list(self.results(response))
        except NotAFeed as err:
            self.fault(request_of(response), f"not a readable results feed: {err}")
            return
        if response.meta.get("entry"):
            self.entry_succeeded()
        yield from results
        if results:
            yield from self.next_page(response)

    def results(self, response: Response) -> Iterator[Any]:
        """Items from one results page, RSS/Atom or HTML."""
        if looks_like_feed(response.body, header(response, "Content-Type")):
            for entry in parse_feed(response.body, header(response, "Content-Type")):
                yield self.item(url=response.urljoin(entry.link), title=entry.title, text=entry.text,
                                author=entry.author, published_at=entry.published_at)
            return
        sel = page_selector(response)
        blocks = self.selected_results(sel) if self.source.selectors.item else self.generic_results(sel)
        for url, title, text in blocks:
            yield self.item(url=response.urljoin(url), title=title, text=text)

    def selected_results(self, sel: Selector) -> Iterator[tuple[str, str, str]]:
        """Results marked by selectors.item (title/body selectors inside each)."""
        sels = self.source.selectors
        for node in select(sel, sels.item or ""):
            href = node.xpath(".//a/@href").get()
            if not href:
                continue
            title = select_text(node, sels.title) or node_text(node.xpath(".//a")[0])
            yield href, title, select_text(node, sels.body) or node_text(node)

    def generic_results(self, sel: Selector) -> Iterator[tuple[str, str, str]]:
        """Every link whose text or surrounding block names one of the hospital's names."""
        names = [fold(q) for q in self.queries()]
        seen: set[str] = set()
        for link in sel.xpath("//body//a[@href]"):
            href = link.xpath("@href").get("").strip()
            title = node_text(link)
            block = link.xpath("ancestor::*[self::li or self::article or self::div or self::section"
                               " or self::tr or self::dd][1]")
            snippet = node_text(block[0]) if block else title
            if len(snippet) > MAX_SNIPPET_CHARS:
                snippet = title
            if not href or href in seen or href.startswith(("javascript:", "#", "mailto:")):
                continue
            if any(name in fold(snippet) for name in names):
                seen.add(href)
                yield href, title, snippet

    def next_page(self, response: Response) -> Iterator[Request]:
        """The next results page, up to max_pages, within the source's domains."""
        page = response.meta.get("page", 1)
        if page >= self.source.max_pages:
            return
        query = response.meta.get("query", "")
        if "{page}" in self.source.url:
            url = self.page_url(query, page + 1)
        else:
            nxt = next_link(page_selector(response), self.source.selectors.next_page)
            if not nxt:
                return
            url = response.urljoin(nxt)
        if self.within_domains(url):
            yield self.request(url, self.parse_results, meta={"query": query, "page": page + 1})

"""Web sources: a list page, then its article pages, extracted by crawler.extract.

Article links are ``selectors.links`` when configured, else every link in the page body
(outside nav/header/footer) whose text looks like a headline (at least
``MIN_HEADLINE_CHARS`` characters), within the source's own domains. Articles already stored
are not fetched again, nor are those read before that did not name the hospital (crawler.seen).
List pagination: ``selectors.next_page`` or rel="next", up to
``max_pages``. Title, body, author and publish time come from the extractor; per-site
``selectors`` (title, body, author, published_at) override it only where configured.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from parsel import Selector
from scrapy.http import Request, Response

from yuqing.crawler.canonical import canonical_url
from yuqing.crawler.pages import declared_charset, links, next_link, node_text, page_selector, parse_time, select_text
from yuqing.crawler.spiders.base import SourceSpider

#: Shorter link texts are navigation (首页, 更多, 下一页), not headlines.
MIN_HEADLINE_CHARS = 6
#: Articles followed from one list page at most; a list page is not a site map.
MAX_ARTICLES_PER_PAGE = 100
_CHROME = "ancestor::nav or ancestor::header or ancestor::footer"


class WebSpider(SourceSpider):
    """One news list page (and its next pages) and the articles it links to."""

    kind = "web"
    mention_kind = "news"

    def entry_requests(self) -> Iterable[Request]:
        yield self.request(self.source.url, self.parse_list, entry=True, meta={"list_page": 1})

    def parse_list(self, response: Response) -> Iterator[Request]:
        if not self.usable(response):
            return
        if response.meta.get("entry"):
            self.entry_succeeded()
        sel = page_selector(response)
        here = canonical_url(response.url)
        seen: set[str] = set()
        for href in self.article_links(sel):
            url = response.urljoin(href)
            canon = canonical_url(url) if url.startswith("http") else ""
            if not canon or canon == here or canon in seen or not self.within_domains(url):
                continue
            seen.add(canon)
            yield self.request(url, self.parse_article, meta={"skip_if_known": True})
            if len(seen) >= MAX_ARTICLES_PER_PAGE:
                break
        yield from self.next_list_page(response, sel)

    def article_links(self, sel: Selector) -> list[str]:
        """Configured links, else body links that read like headlines."""
        if self.source.selectors.links:
            return links(sel, self.source.selectors.links)
        found = []
        for link in sel.xpath(f"//body//a[@href][not({_CHROME})]"):
            if len(node_text(link)) >= MIN_HEADLINE_CHARS:
                found.append(link.xpath("@href").get("").strip())
        return found

    def next_list_page(self, response: Response, sel: Selector) -> Iterator[Request]:
        """The list's next page, within the source's domains, up to max_pages."""
        page = response.meta.get("list_page", 1)
        nxt = next_link(sel, self.source.selectors.next_page) if page < self.source.max_pages else None
        if nxt and self.within_domains(response.urljoin(nxt)):
            yield self.request(response.urljoin(nxt), self.parse_list, meta={"list_page": page + 1})

    def parse_article(self, response: Response) -> Iterator[Any]:
        if not self.usable(response):
            return
        from yuqing.crawler.extract import extract_article  # written alongside; imported when first needed

        article = extract_article(response.body, url=response.url, declared_encoding=declared_charset(response))
        title, text = article.title or "", article.text
        author, published = article.author, article.published_at
        sels = self.source.selectors
        if any((sels.title, sels.body, sels.author, sels.published_at)):
            sel = page_selector(response)
            title = select_text(sel, sels.title) or title
            text = select_text(sel, sels.body) or text
            author = select_text(sel, sels.author) or author
            published = parse_time(select_text(sel, sels.published_at), self.timezone) or published
        if not text:
            self.logger.log(logging.INFO, "source %s: no article text at %s", self.source.id, response.url)
        yield self.item(url=response.url, title=title, text=text, author=author, published_at=published)

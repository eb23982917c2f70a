"""Patient-review sources: review pages, newest first, paginated, stopping at the newest review stored.

The page format understood without any selectors (what ``yuqing demo`` serves):

* schema.org **Review microdata**: each review is an element with ``itemprop="review"`` or
  ``itemtype=".../Review"``; inside it ``itemprop="reviewBody"`` (or ``description``) is the
  text, ``itemprop="author"`` the author (its text, its ``content``, or a nested
  ``itemprop="name"``), ``itemprop="datePublished"`` the time (``content``, ``datetime`` or
  text; ISO 8601, or 2026-11-20 10:30 / 2026年11月20日 read in the hospital's time zone), and
  ``itemprop="ratingValue"`` the rating (``content`` or text);
* or **JSON-LD**: ``<script type="application/ld+json">`` holding Review objects (alone, in a
  list, in ``@graph``, or in an item's ``review`` list) with ``reviewBody``, ``author``
  (text or ``{"name"}``), ``datePublished`` and ``reviewRating.ratingValue``.

What the reviews are about (stored as each review's title, which the mention filter reads,
since patients rarely name the hospital in a review): ``itemReviewed``'s name, else the name
of the JSON-LD item holding the ``review`` list, else the ``itemprop="name"`` of the page's
top-level item (e.g. ``itemtype=".../Hospital"``), else the
first ``<h1>``, else ``<title>``.

Overrides from config ``selectors`` (CSS, or XPath when starting with ``/`` or ``./``):
``item`` (one element per review), and inside it ``body``, ``author``, ``published_at``,
``rating``; ``title`` for the subject; ``next_page`` for pagination.

Pagination: ``selectors.next_page``, else ``rel="next"`` (``<a>`` or ``<link>``), up to
``max_pages``. Reviews must be listed newest first: a review's key is a hash of author,
time and text; the crawl stops at the key stored as ``SourceState.newest_key`` from the last
run, and stores the newest key of this run when it ends without faults. Each review is
recorded at the source URL plus ``#review-<key>``, its stable address.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from parsel import Selector
from scrapy.http import Request, Response

from yuqing.crawler.canonical import normalise_text
from yuqing.crawler.pages import next_link, node_text, page_selector, parse_time, select, select_text
from yuqing.crawler.spiders.base import SourceSpider

log = logging.getLogger(__name__)

REVIEW_NODES = "//*[@itemprop='review' or contains(@itemtype, 'schema.org/Review')]"
_NOT_NESTED = "not(ancestor::*[@itemprop='review' or contains(@itemtype, 'schema.org/Review')])"


@dataclass(frozen=True)
class Review:
    """One patient review as found on a page."""

    text: str
    author: str | None
    published_at: datetime | None
    rating: float | None

    @property
    def key(self) -> str:
        """Stable identity: author, time and text (a review has no other)."""
        when = self.published_at.isoformat() if self.published_at else ""
        raw = "\x1f".join((normalise_text(self.author or ""), when, normalise_text(self.text)))
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


class ReviewsSpider(SourceSpider):
    """One hospital's page on a review site."""

    kind = "reviews"
    mention_kind = "review"

    def entry_requests(self) -> Iterable[Request]:
        yield self.request(self.source.url, self.parse_reviews, entry=True, meta={"page": 1})

    def parse_reviews(self, response: Response) -> Iterator[Any]:
        if not self.usable(response):
            return
        if response.meta.get("entry"):
            self.entry_succeeded()
        sel = page_selector(response)
        subject = page_subject(sel, self.source.selectors.title)
        reviews = self.reviews_on(sel)
        if response.meta.get("page") == 1 and reviews:
            self.remember["newest_key"] = reviews[0].key
        for review in reviews:
            if review.key == self.state.newest_key:
                self.logger.info("source %s: reached the newest review stored last time", self.source.id)
                return
            yield self.item(url=f"{self.source.url}#review-{review.key[:16]}", title=review_title(subject, review.text),
                            text=review.text,
                            author=review.author, published_at=review.published_at, rating=review.rating)
        page = response.meta.get("page", 1)
        nxt = next_link(sel, self.source.selectors.next_page) if reviews and page < self.source.max_pages else None
        if nxt and self.within_domains(response.urljoin(nxt)):
            yield self.request(response.urljoin(nxt), self.parse_reviews, meta={"page": page + 1})

    def reviews_on(self, sel: Selector) -> list[Review]:
        """Reviews by configured selectors, else microdata, else JSON-LD."""
        sels = self.source.selectors
        if sels.item:
            return [r for node in select(sel, sels.item) if (r := self.selected_review(node)) is not None]
        found = [r for node in sel.xpath(f"{REVIEW_NODES}[{_NOT_NESTED}]") if (r := self.microdata_review(node))]
        return found or [r for obj in json_ld_reviews(sel) if (r := self.json_ld_review(obj)) is not None]

    def selected_review(self, node: Selector) -> Review | None:
        """One review by the source's selectors."""
        sels = self.source.selectors
        text = select_text(node, sels.body) if sels.body else node_text(node)
        return self.review(text, select_text(node, sels.author), select_text(node, sels.published_at),
                           select_text(node, sels.rating))

    def microdata_review(self, node: Selector) -> Review | None:
        """One review from schema.org microdata."""
        author_node = node.xpath(".//*[@itemprop='author']")
        author = ""
        if author_node:
            name = author_node.xpath(".//*[@itemprop='name']")
            author = prop_value(name[0]) if name else prop_value(author_node[0])
        return self.review(first_prop(node, "reviewBody") or first_prop(node, "description"), author,
                           first_prop(node, "datePublished"), first_prop(node, "ratingValue"))

    def json_ld_review(self, obj: dict[str, Any]) -> Review | None:
        """One review from a JSON-LD object."""
        author = obj.get("author")
        if isinstance(author, dict):
            author = author.get("name")
        rating = obj.get("reviewRating")
        rating = rating.get("ratingValue") if isinstance(rating, dict) else rating
        return self.review(str(obj.get("reviewBody") or obj.get("description") or ""), str(author or ""),
                           str(obj.get("datePublished") or ""), str(rating) if rating is not None else "")

    def review(self, text: str, author: str, when: str, rating: str) -> Review | None:
        """A Review from raw strings; None when there is no text."""
        text = " ".join(text.split())
        if not text:
            return None
        return Review(text=text, author=" ".join(author.split()) or None,
                      published_at=parse_time(when, self.timezone), rating=to_float(rating))


def prop_value(node: Selector) -> str:
    """A microdata property's value: content, datetime, or text."""
    return (node.xpath("@content").get() or node.xpath("@datetime").get() or node_text(node)).strip()


def first_prop(node: Selector, name: str) -> str:
    """The first descendant property of that name ('' when absent)."""
    found = node.xpath(f".//*[@itemprop='{name}']")
    return prop_value(found[0]) if found else ""


def to_float(value: str | None) -> float | None:
    """A rating like '4', '4.5' or '4.5分'; None when there is none."""
    digits = "".join(ch for ch in (value or "") if ch.isdigit() or ch == ".")
    try:
        return float(digits) if digits else None
    except ValueError:
        return None


def json_ld_objects(sel: Selector) -> Iterator[dict[str, Any]]:
    """Every JSON object in the page's JSON-LD scripts, nested ones included."""
    for raw in sel.xpath("//script[@type='application/ld+json']/text()").getall():
        try:
            data = json.loads(raw)
        except ValueError:
            log.debug("unreadable JSON-LD skipped")
            continue
        yield from _walk(data)


def _walk(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        for value in data:
            yield from _walk(value)
    elif isinstance(data, dict):
        yield data
        for value in data.values():
            if isinstance(value, (list, dict)):
                yield from _walk(value)


def _is_type(obj: dict[str, Any], name: str) -> bool:
    kind = obj.get("@type")
    return name in (kind if isinstance(kind, list) else [kind])


def json_ld_reviews(sel: Selector) -> list[dict[str, Any]]:
    """JSON-LD Review objects in page order."""
    return [obj for obj in json_ld_objects(sel) if _is_type(obj, "Review")]


def review_title(subject: str, text: str, size: int = 24) -> str:
    """'Hospital：first words of the review', so a review reads as a headline in alerts and lists."""
    words = " ".join(text.split())
    snippet = words if len(words) <= size else words[:size] + "…"
    return snippet if not subject or words.startswith(subject) else f"{subject}：{snippet}"


def page_subject(sel: Selector, title_selector: str | None = None) -> str:
    """What the reviews are about: configured title, itemReviewed, the page's item name, h1, <title>."""
    candidates = [
        select_text(sel, title_selector),
        next((str(o["itemReviewed"].get("name", "")) for o in json_ld_objects(sel)
              if isinstance(o.get("itemReviewed"), dict)), ""),
        next((str(o.get("name", "")) for o in json_ld_objects(sel) if o.get("review") and o.get("name")), ""),
        next((prop_value(n) for n in sel.xpath("//*[@itemprop='itemReviewed']//*[@itemprop='name']")), ""),
        next((prop_value(n) for n in sel.xpath(f"//*[@itemprop='name'][{_NOT_NESTED}]")), ""),
        node_text(sel.xpath("//h1")[0]) if sel.xpath("//h1") else "",
        " ".join(sel.xpath("//title//text()").getall()).strip(),
    ]
    return next((" ".join(c.split()) for c in candidates if c and c.strip()), "")

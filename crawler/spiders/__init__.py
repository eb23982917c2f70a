"""One spider class per source kind; each spider instance crawls one configured source."""

from __future__ import annotations

from crawler.spiders.base import SourceSpider
from crawler.spiders.feed import FeedSpider
from crawler.spiders.reviews import ReviewsSpider
from crawler.spiders.search import SearchSpider
from crawler.spiders.web import WebSpider

SPIDERS: dict[str, type[SourceSpider]] = {
    "rss": FeedSpider,
    "search": SearchSpider,
    "web": WebSpider,
    "reviews": ReviewsSpider,
}

__all__ = ["SPIDERS", "SourceSpider", "FeedSpider", "SearchSpider", "WebSpider", "ReviewsSpider"]

"""One spider class per source kind; each spider instance crawls one configured source."""

from __future__ import annotations

from yuqing.crawler.spiders.base import SourceSpider
from yuqing.crawler.spiders.feed import FeedSpider
from yuqing.crawler.spiders.hotlist import HotListSpider
from yuqing.crawler.spiders.reviews import ReviewsSpider
from yuqing.crawler.spiders.rsshub import RsshubSpider
from yuqing.crawler.spiders.search import SearchSpider
from yuqing.crawler.spiders.web import WebSpider

SPIDERS: dict[str, type[SourceSpider]] = {
    "rss": FeedSpider,
    "search": SearchSpider,
    "web": WebSpider,
    "reviews": ReviewsSpider,
    "hotlist": HotListSpider,
    "rsshub": RsshubSpider,
}

__all__ = ["SPIDERS", "SourceSpider", "FeedSpider", "SearchSpider", "WebSpider", "ReviewsSpider", "HotListSpider",
           "RsshubSpider"]

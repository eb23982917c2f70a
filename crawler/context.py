"""What every component of one crawl shares: the hospital's config, the store, the clock and (for the
CLI) a progress callback. It rides on the Crawler and each component takes it in from_crawler, so
Scrapy's settings stay primitive values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from scrapy.crawler import Crawler

from yuqing.clock import Clock, SystemClock
from yuqing.config import AppConfig
from yuqing.store import Store

ATTRIBUTE = "yuqing_context"


@dataclass(frozen=True)
class CrawlContext:
    """The live objects of a crawl, handed to every crawler the runner or the worker makes."""

    cfg: AppConfig
    store: Store
    clock: Clock = field(default_factory=SystemClock)
    progress: Callable[[str, str], None] | None = None  # told (source id, outcome) as each source finishes


def attach(crawler: Crawler, context: CrawlContext) -> Crawler:
    """Give a crawler its context before it crawls (its components are built when it starts)."""
    setattr(crawler, ATTRIBUTE, context)
    return crawler


def context_of(crawler: Crawler) -> CrawlContext | None:
    """The crawler's context, or None for a crawler made outside the runner and the worker."""
    found = getattr(crawler, ATTRIBUTE, None)
    return found if isinstance(found, CrawlContext) else None


def config_of(crawler: Crawler) -> AppConfig:
    """The hospital's config; a crawler without a context cannot filter or store mentions."""
    context = context_of(crawler)
    if context is None:
        raise RuntimeError("this crawler has no CrawlContext: crawl through crawler.runner or the crawl worker")
    return context.cfg


def store_of(crawler: Crawler) -> Store | None:
    """The crawl's Store, or None without a context."""
    context = context_of(crawler)
    return context.store if context is not None else None

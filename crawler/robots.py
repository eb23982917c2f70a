"""robots.txt read once per site and kept for robots_cache_minutes, across every poll a process makes.

Scrapy's RobotsTxtMiddleware remembers a site's robots.txt for one crawler, that is one poll of one
source; the long-lived crawl worker polls each source every few minutes, so without this cache it
would fetch robots.txt once per poll. The cache is per process (per host and port) and only keeps
robots.txt files that were read: a site whose robots.txt could not be fetched is asked again next poll.
Polls that start while another poll is reading a site's robots.txt wait for that one read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.http import Request
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from yuqing.crawler.context import context_of


class RobotsCache:
    """Parsed robots.txt per netloc, each for `ttl` seconds from when it was fetched."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._entries: dict[str, tuple[Any, float]] = {}
        self._lock = threading.Lock()
        self.fetching: dict[str, list[Deferred[Any]]] = {}  # netloc -> polls waiting for the fetch under way

    def get(self, netloc: str) -> Any | None:
        """The parser still fresh for this site, else None."""
        with self._lock:
            found = self._entries.get(netloc)
            if found is None:
                return None
            parser, expires = found
            if self.clock() >= expires:
                del self._entries[netloc]
                return None
            return parser

    def put(self, netloc: str, parser: Any, ttl: float) -> None:
        """Keep a freshly read robots.txt for ttl seconds."""
        with self._lock:
            self._entries[netloc] = (parser, self.clock() + ttl)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


#: The process's cache, shared by every crawler the process runs.
ROBOTS = RobotsCache()


class CachedRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, answering from the process-wide cache while it is fresh."""

    def __init__(self, crawler: Any):
        super().__init__(crawler)
        context = context_of(crawler)
        minutes = context.cfg.settings.crawl.robots_cache_minutes if context is not None else 60
        self._ttl = minutes * 60.0

    async def robot_parser(self, request: Request) -> Any:
        netloc = urlparse_cached(request).netloc
        if netloc in self._parsers:
            return await super().robot_parser(request)
        cached = ROBOTS.get(netloc)
        if cached is None and netloc in ROBOTS.fetching:  # another poll is reading it right now: wait for that
            waiter: Deferred[Any] = Deferred()
            ROBOTS.fetching[netloc].append(waiter)
            cached = await maybe_deferred_to_future(waiter)
        if cached is not None:
            self._parsers[netloc] = cached
            self._stats.inc_value("yuqing/robots_cached")
            return cached
        ROBOTS.fetching.setdefault(netloc, [])
        parser = None
        try:
            parser = await super().robot_parser(request)
            if parser is not None:
                ROBOTS.put(netloc, parser, self._ttl)
        finally:
            for waiter in ROBOTS.fetching.pop(netloc, []):
                waiter.callback(parser)  # None (not read) makes each waiter read it itself
        return parser

"""Every Scrapy setting the crawler uses, in one place, derived from the hospital's config."""

from __future__ import annotations

from typing import Any

from yuqing.config import AppConfig, CrawlSettings, Source

#: Retries per request: enough for a blip, few enough that a dead site does not hold a run up.
RETRY_TIMES = 1
#: How long AutoThrottle may stretch the delay for a slow site, in seconds.
AUTOTHROTTLE_MAX_DELAY = 30.0

ITEM_PIPELINES = {
    "yuqing.crawler.pipelines.NormalizePipeline": 100,
    "yuqing.crawler.pipelines.MentionFilterPipeline": 200,
    "yuqing.crawler.hotlist_store.HotListUpdatePipeline": 250,  # an entry already on file: rank, heat, last seen
    "yuqing.crawler.pipelines.DedupPipeline": 300,
    "yuqing.crawler.pipelines.StorePipeline": 400,
    "yuqing.crawler.hotlist_store.HotListRecordPipeline": 450,  # a new entry: its first time on the list
}
EXTENSIONS = {
    "yuqing.crawler.extensions.SourceStateExtension": 500,
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.remote_control.RemoteControl": None,
}
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "yuqing.crawler.robots.CachedRobotsTxtMiddleware": 100,  # robots.txt kept across polls (crawler.robots)
    "yuqing.crawler.middlewares.SkipKnownMiddleware": 560,
    "yuqing.crawler.middlewares.OffDomainRedirectMiddleware": 650,  # sees 3xx before RedirectMiddleware (600)
}


def user_agent(crawl: CrawlSettings) -> str:
    """A User-Agent that names the monitor and how its operators can be reached."""
    if crawl.contact and crawl.contact not in crawl.user_agent:
        return f"{crawl.user_agent} (+{crawl.contact})"
    return crawl.user_agent


def build_settings(cfg: AppConfig) -> dict[str, Any]:
    """Scrapy settings for a run: politeness, limits, pipelines; primitive values only (the live objects
    travel on each crawler as its CrawlContext)."""
    crawl = cfg.settings.crawl
    return {
        "BOT_NAME": "yuqing",
        "USER_AGENT": user_agent(crawl),
        "ROBOTSTXT_OBEY": crawl.obey_robots,
        "CONCURRENT_REQUESTS": 32,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.per_domain_concurrency,
        "DOWNLOAD_DELAY": crawl.download_delay_seconds,
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": max(crawl.download_delay_seconds, 0.1),
        "AUTOTHROTTLE_MAX_DELAY": max(AUTOTHROTTLE_MAX_DELAY, crawl.download_delay_seconds),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(crawl.per_domain_concurrency),
        "DOWNLOAD_TIMEOUT": crawl.timeout_seconds,
        "DOWNLOAD_MAXSIZE": crawl.max_page_bytes,
        "DOWNLOAD_WARNSIZE": crawl.max_page_bytes // 2,
        "RETRY_TIMES": RETRY_TIMES,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "REDIRECT_MAX_TIMES": 5,
        "COOKIES_ENABLED": False,
        "DEFAULT_REQUEST_HEADERS": {
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5",
        },
        "ITEM_PIPELINES": ITEM_PIPELINES,
        "EXTENSIONS": EXTENSIONS,
        "DOWNLOADER_MIDDLEWARES": DOWNLOADER_MIDDLEWARES,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,  # no listening port on a hospital's server
        "LOG_LEVEL": "INFO",
        "STATS_DUMP": False,
        "LOGSTATS_INTERVAL": 0,  # the SourceStateExtension logs one line per source instead
        "DEFAULT_DROPITEM_LOG_LEVEL": "DEBUG",  # pages not naming the hospital are the normal case
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
    }


def source_settings(cfg: AppConfig, source: Source) -> dict[str, Any]:
    """What one source overrides: robots.txt only with the site's consent (Source.obey_robots)."""
    obey = cfg.settings.crawl.obey_robots if source.obey_robots is None else source.obey_robots
    return {"ROBOTSTXT_OBEY": obey}

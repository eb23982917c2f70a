"""Running crawls: many sources in one Scrapy process, and that process as a child of the daemon.

Scrapy's Twisted reactor cannot be restarted inside one process, so `crawl_sources` runs
once per process (it is what `python -m yuqing.crawler` and `yuqing crawl` call), and the daemon
uses `crawl_in_subprocess`. A source's crawl never overlaps itself: each holds
data_dir/run/crawl-<id>.lock for the run, taken without waiting; a second crawl of the same
source skips it with a log line.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from yuqing.clock import Clock, SystemClock
from yuqing.config import AppConfig, Source
from yuqing.models import SourceState
from yuqing.store import Store

if TYPE_CHECKING:
    from yuqing.crawler.context import CrawlContext

log = logging.getLogger(__name__)

#: Default limit for one crawl subprocess, in seconds.
SUBPROCESS_TIMEOUT = 1800
#: Scrapy loggers that say the same thing once per source (200 sources, 200 settings dumps).
QUIET_LOGGERS = ("scrapy.middleware", "scrapy.crawler", "scrapy.addons", "scrapy.utils.log", "scrapy.core.engine",
                 "scrapy.extensions.logstats", "scrapy.extensions.telnet")
#: After asking a crawl to stop (SIGTERM, which Scrapy handles gracefully), wait this long before killing it.
TERMINATE_GRACE = 15


@dataclass
class SourceRun:
    """One source's result in one run."""

    source_id: str
    kind: str
    outcome: str  # ok, not_modified, failed, skipped
    pages: int = 0
    stored: int = 0
    reposts: int = 0
    duplicates: int = 0
    skipped_known: int = 0  # article pages not fetched again: stored before, or read and not naming us
    not_mentioning: int = 0
    errors: int = 0
    last_error: str | None = None
    seconds: float = 0.0
    response_bytes: int = 0


@dataclass
class CrawlReport:
    """What a run did, per source."""

    runs: list[SourceRun] = field(default_factory=list)

    def __str__(self) -> str:
        if not self.runs:
            return "no sources crawled"
        lines = [f"{'source':24} {'outcome':12} {'pages':>5} {'new':>4} {'reposts':>7} {'dupes':>5} "
                 f"{'not us':>6} {'errors':>6}  last error"]
        for r in self.runs:
            lines.append(f"{r.source_id:24} {r.outcome:12} {r.pages:5d} {r.stored:4d} {r.reposts:7d} "
                         f"{r.duplicates:5d} {r.not_mentioning:6d} {r.errors:6d}  {r.last_error or ''}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"runs": [asdict(r) for r in self.runs]}

    def run(self, source_id: str) -> SourceRun:
        """One source's result by id."""
        return next(r for r in self.runs if r.source_id == source_id)


def select_sources(cfg: AppConfig, source_ids: list[str] | None) -> tuple[list[Source], list[SourceRun]]:
    """The enabled sources asked for (all enabled when None), and the asked-for ones skipped as disabled."""
    wanted = [cfg.source(sid) for sid in source_ids] if source_ids else list(cfg.sources.sources)
    skipped = []
    for src in wanted:
        if not src.enabled:
            log.info("source %s is disabled in %s; not crawled", src.id, cfg.config_dir / "sources.yaml")
            skipped.append(SourceRun(src.id, src.kind, "skipped", last_error="disabled"))
    return [s for s in wanted if s.enabled], skipped


def lock_path(cfg: AppConfig, source_id: str) -> Path:
    """data_dir/run/crawl-<id>.lock, held while a crawl of that source runs."""
    return Path(cfg.settings.data_dir) / "run" / f"crawl-{source_id}.lock"


ALREADY_CRAWLING = "already being crawled"


def try_lock(cfg: AppConfig, src: Source) -> FileLock | None:
    """The source's crawl lock, held, or None (logged) when a crawl of it is already running: one-off
    crawls, ticks and the daemon's worker never poll one source at once."""
    path = lock_path(cfg, src.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(blocking=False)
    except Timeout:
        log.info("source %s: a crawl of it is already running (%s held); skipped", src.id, path)
        return None
    return lock


def take_locks(cfg: AppConfig, sources: list[Source], stack: ExitStack) -> tuple[list[Source], list[SourceRun]]:
    """Lock each source without waiting; a source already being crawled is skipped."""
    free, busy = [], []
    for src in sources:
        lock = try_lock(cfg, src)
        if lock is None:
            busy.append(SourceRun(src.id, src.kind, "skipped", last_error=ALREADY_CRAWLING))
            continue
        stack.callback(lock.release)
        free.append(src)
    return free, busy


def snapshots(store: Store, sources: list[Source]) -> dict[str, Any]:
    """What each source's spider needs to remember from last time (validators, newest review)."""
    from yuqing.crawler.spiders.base import SourceSnapshot

    with store.session() as sess:
        found = {s.id: sess.get(SourceState, s.id) for s in sources}
    return {sid: SourceSnapshot(st.etag, st.last_modified, st.newest_key) if st else SourceSnapshot()
            for sid, st in found.items()}


def crawl_sources(cfg: AppConfig, source_ids: list[str] | None = None, store_url: str | None = None,
                  *, clock: Clock | None = None, progress: Callable[[str, str], None] | None = None) -> CrawlReport:
    """Crawl the given enabled sources in one CrawlerProcess in this process; once per process."""
    from yuqing.crawler.context import CrawlContext
    from yuqing.crawler.settings import build_settings

    sources, skipped = select_sources(cfg, source_ids)
    store = Store(store_url or cfg.database_url)
    report = CrawlReport(runs=list(skipped))
    with ExitStack() as stack:
        stack.callback(store.dispose)
        runnable, busy = take_locks(cfg, sources, stack)
        report.runs.extend(busy)
        if not runnable:
            return report
        context = CrawlContext(cfg, store, clock or SystemClock(), progress)
        crawlers = _run(context, build_settings(cfg), runnable, snapshots(store, runnable))
        report.runs.extend(_source_run(src, crawler) for src, crawler in crawlers)
    failed = sum(r.outcome == "failed" for r in report.runs)
    log.info("crawl finished: %d source(s), %d failed", len(report.runs), failed)
    log.debug("crawl report:\n%s", report)
    return report


def quiet_scrapy_loggers() -> None:
    """Per-crawler start-up chatter to WARNING; SourceStateExtension logs one line per source instead."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def source_crawler(context: CrawlContext, settings: dict[str, Any], src: Source, init_reactor: bool = False) -> Any:
    """The Crawler for one poll of one source: its spider, the run's settings with the source's own
    robots.txt choice above them, and the crawl's context."""
    from scrapy.crawler import Crawler
    from scrapy.settings import Settings

    from yuqing.crawler.context import attach
    from yuqing.crawler.settings import source_settings
    from yuqing.crawler.spiders import SPIDERS

    own = Settings(settings)
    own.setdict(source_settings(context.cfg, src), priority="spider")  # above the process-wide "project" values
    return attach(Crawler(SPIDERS[src.kind], own, init_reactor=init_reactor), context)


def _run(context: CrawlContext, settings: dict[str, Any], sources: list[Source],
         snaps: dict[str, Any]) -> list[tuple[Source, Any]]:
    """One Crawler per source (each with its own robots.txt choice), all in one reactor run."""
    from scrapy.crawler import CrawlerProcess

    # Log through Scrapy's handler unless the caller (the CLI) has set logging up already.
    process = CrawlerProcess({**settings, "LOG_INSTALL_ROOT_HANDLER": not logging.getLogger().handlers})
    quiet_scrapy_loggers()
    crawlers = []
    for i, src in enumerate(sources):
        crawler = source_crawler(context, settings, src, init_reactor=i == 0)
        process.crawl(crawler, source=src, state=snaps[src.id])
        crawlers.append((src, crawler))
    process.start()
    return crawlers


def _source_run(src: Source, crawler: Any) -> SourceRun:
    """A source's counts from its crawler's stats."""
    stats = crawler.stats.get_stats()

    def n(key: str) -> int:
        return int(stats.get(f"yuqing/{key}", 0))

    return SourceRun(
        source_id=src.id, kind=src.kind, outcome=stats.get("yuqing/outcome", "failed"), pages=n("pages"),
        stored=n("stored"), reposts=n("reposts"), duplicates=n("duplicates"), skipped_known=n("skipped_known"),
        not_mentioning=n("not_mentioning"), errors=n("errors"), last_error=stats.get("yuqing/last_error"),
        seconds=round(float(stats.get("elapsed_time_seconds", 0.0)), 3),
        response_bytes=int(stats.get("downloader/response_bytes", 0)),
    )


def crawl_command(config_dir: Path | str, source_ids: list[str], now: datetime | None = None) -> list[str]:
    """The command line of one crawl subprocess."""
    cmd = [sys.executable, "-m", "yuqing.crawler", str(config_dir), *source_ids]
    if now is not None:
        cmd += ["--now", now.isoformat()]
    return cmd


def crawl_in_subprocess(config_dir: Path | str, source_ids: list[str], env: dict[str, str] | None = None,
                        timeout: float | None = SUBPROCESS_TIMEOUT, *, now: datetime | None = None,
                        log_path: Path | None = None) -> int:
    """Run `python -m yuqing.crawler CONFIG_DIR IDS...` and return its exit code (124 when it overran timeout)."""
    cmd = crawl_command(config_dir, source_ids, now)
    log_file = open(log_path, "a", encoding="utf-8") if log_path else None
    try:
        return _wait_child(cmd, env, timeout, source_ids, log_file)
    finally:
        if log_file:
            log_file.close()


def _wait_child(cmd: list[str], env: dict[str, str] | None, timeout: float | None, source_ids: list[str],
                log_file: Any) -> int:
    with subprocess.Popen(cmd, env=dict(os.environ if env is None else env), stderr=log_file) as proc:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.error("crawl of %s overran %s s; stopping it", ", ".join(source_ids), timeout)
            return _stop(proc)


def _stop(proc: subprocess.Popen[Any]) -> int:
    """Ask the crawl to stop (Scrapy closes spiders and records health), then kill it if it won't."""
    proc.terminate()
    try:
        proc.wait(timeout=TERMINATE_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return 124


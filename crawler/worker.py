"""`python -m yuqing.crawler.worker CONFIG_DIR`: the daemon's long-lived crawl worker.

One process, started once by the daemon, imports Scrapy, SQLAlchemy and the config once and
keeps one Twisted reactor running; the daemon sends it source ids to poll and it runs each
poll as a Crawler in that reactor (CrawlerRunner), so a poll costs a request, not a process.
robots.txt is kept across polls (crawler.robots). Each poll holds the source's crawl lock,
as `yuqing crawl` does, so the two never crawl one source at once.

Protocol, one JSON object a line: on stdin {"crawl": "<source id>"} or {"stop": true};
on the original stdout {"done": {<SourceRun>}} per poll, then {"stopped": [ids abandoned]}.
Everything else the process writes (logs, Scrapy) goes to stderr. On "stop", on SIGTERM or
SIGINT, or when stdin closes (the daemon is gone), polls in flight are asked to close and
the process exits within STOP_GRACE seconds; a poll cut short stored each item in its own
transaction and keeps its old ETag, so its next poll fetches what it missed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import IO, Any

from yuqing.clock import Clock, ManualClock, SystemClock
from yuqing.config import AppConfig, ConfigError, load_config
from yuqing.crawler import UNCHANGED
from yuqing.store import Store

log = logging.getLogger("yuqing.crawler.worker")

#: Seconds polls in flight get to close after a stop, before the worker exits without them.
STOP_GRACE = 5.0
REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


def the_reactor() -> Any:
    """The installed Twisted reactor (its interface is untyped where we use it)."""
    from twisted.internet import reactor

    return reactor


class QuietUnchanged(logging.Filter):
    """Drops the INFO lines an unchanged poll writes (marked UNCHANGED where they are logged);
    `yuqing sources` counts those polls."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno != logging.INFO or not getattr(record, UNCHANGED, False)


class Worker:
    """Runs polls in the running reactor and reports each one's result as it ends."""

    def __init__(self, cfg: AppConfig, store: Store, clock: Clock, emit: Callable[[dict[str, Any]], None]):
        from scrapy.crawler import CrawlerRunner

        from yuqing.crawler.context import CrawlContext
        from yuqing.crawler.runner import quiet_scrapy_loggers
        from yuqing.crawler.settings import build_settings

        self.cfg, self.store, self.emit = cfg, store, emit
        self.context = CrawlContext(cfg, store, clock)
        settings = build_settings(cfg)
        settings["LOG_INSTALL_ROOT_HANDLER"] = False
        self.settings = settings
        self.runner = CrawlerRunner(settings)
        self.running: dict[str, Any] = {}
        self.stopping = False
        quiet_scrapy_loggers()

    def crawl(self, source_id: str) -> None:
        """Start one poll of one source; its result is emitted when it ends."""
        from yuqing.crawler.runner import ALREADY_CRAWLING, SourceRun, try_lock

        try:
            src = self.cfg.source(source_id)
        except KeyError:
            log.error("asked to crawl unknown source %r; ignored", source_id)
            self.emit({"done": asdict(SourceRun(source_id, "?", "failed", last_error="unknown source"))})
            return
        if self.stopping or source_id in self.running:
            self.emit({"done": asdict(SourceRun(src.id, src.kind, "skipped", last_error="not started"))})
            return
        lock = try_lock(self.cfg, src)
        if lock is None:
            self.emit({"done": asdict(SourceRun(src.id, src.kind, "skipped", last_error=ALREADY_CRAWLING))})
            return
        try:
            crawler = self._start(src)
        except Exception:
            lock.release()
            log.exception("source %s: the poll could not start", src.id)
            self.emit({"done": asdict(SourceRun(src.id, src.kind, "failed", last_error="poll could not start"))})
            return
        crawler.yuqing_lock = lock

    def _start(self, src: Any) -> Any:
        from yuqing.crawler.runner import snapshots, source_crawler

        crawler = source_crawler(self.context, self.settings, src)
        self.running[src.id] = crawler
        done = self.runner.crawl(crawler, source=src, state=snapshots(self.store, [src])[src.id])
        done.addErrback(lambda failure: log.error("source %s: poll crashed: %s", src.id, failure.getTraceback()))
        done.addBoth(lambda _: self._finished(src, crawler))
        return crawler

    def _finished(self, src: Any, crawler: Any) -> None:
        from yuqing.crawler.runner import SourceRun, _source_run

        self.running.pop(src.id, None)
        lock = getattr(crawler, "yuqing_lock", None)
        if lock is not None:
            lock.release()
        try:
            run = _source_run(src, crawler)
        except Exception:  # noqa: BLE001  (a crawler that failed before its stats existed is a failed poll)
            run = SourceRun(src.id, src.kind, "failed", last_error="poll crashed")
        self.emit({"done": asdict(run)})
        if self.stopping and not self.running:
            self._exit([])

    def stop(self, why: str) -> None:
        """Close every poll in flight, and exit when they have closed or STOP_GRACE has passed."""
        from scrapy.utils.defer import deferred_from_coro

        if self.stopping:
            return
        self.stopping = True
        log.info("crawl worker stopping (%s): %d poll(s) in flight", why, len(self.running))
        if not self.running:
            self._exit([])
            return
        for crawler in list(self.running.values()):
            deferred_from_coro(crawler.stop_async())
        the_reactor().callLater(STOP_GRACE, self._give_up)

    def _give_up(self) -> None:
        if self.running:
            log.warning("polls of %s did not close within %.0f s; left for their next poll", ", ".join(self.running),
                        STOP_GRACE)
        self._exit(list(self.running))

    def _exit(self, abandoned: list[str]) -> None:
        self.emit({"stopped": abandoned})
        reactor = the_reactor()
        if reactor.running:
            reactor.stop()


def read_commands(stream: IO[str], call: Callable[..., Any], worker: Worker) -> None:
    """Feed stdin's commands to the reactor thread; a closed stdin means the daemon is gone."""
    for line in stream:
        try:
            msg = json.loads(line)
        except ValueError:
            log.error("unreadable command ignored: %r", line[:200])
            continue
        if msg.get("stop"):
            call(worker.stop, "asked by the daemon")
        elif msg.get("crawl"):
            call(worker.crawl, str(msg["crawl"]))
    call(worker.stop, "the daemon closed its pipe")


def protocol_channel() -> Callable[[dict[str, Any]], None]:
    """A writer on the original stdout; fd 1 then points at stderr so nothing else can write there."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    lock = threading.Lock()

    def emit(msg: dict[str, Any]) -> None:
        with lock:
            try:
                out.write(json.dumps(msg, ensure_ascii=False, default=str) + "\n")
            except BrokenPipeError:
                pass  # the daemon is gone; stdin's end stops us

    return emit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yuqing.crawler.worker", description=__doc__.splitlines()[0])
    parser.add_argument("config_dir")
    parser.add_argument("--now", help="fixed crawl time, ISO 8601 with offset (tests and the demo)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    emit = protocol_channel()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(name)s] %(levelname)s: %(message)s")
    for handler in logging.root.handlers:
        handler.setLevel(logging.INFO)  # Scrapy sets its own loggers to DEBUG
        handler.addFilter(QuietUnchanged())
    try:
        cfg = load_config(args.config_dir)
    except ConfigError as err:
        print(f"config problems:\n{err}", file=sys.stderr)
        return 2
    from scrapy.utils.reactor import install_reactor

    install_reactor(REACTOR)
    reactor = the_reactor()
    clock: Clock = ManualClock(datetime.fromisoformat(args.now)) if args.now else SystemClock()
    store = Store(cfg.database_url)
    worker = Worker(cfg, store, clock, emit)
    call = reactor.callFromThread
    for sig in (signal.SIGTERM, signal.SIGINT):  # systemd and Ctrl-C signal the whole group: stop as asked
        signal.signal(sig, lambda signum, _frame: call(worker.stop, signal.Signals(signum).name))
    threading.Thread(target=read_commands, args=(sys.stdin, call, worker), name="commands", daemon=True).start()
    log.info("crawl worker ready (pid %d)", os.getpid())
    reactor.run(installSignalHandlers=False)
    store.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())

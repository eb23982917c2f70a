"""Benchmark the collection stage on 127.0.0.1: pages per second, and the cost of polling unchanged feeds.

1. Pages per second: the 62 real news pages in ../shared served behind list pages (each page
   under COPIES URLs, so reposts and dedup are exercised too), one web source, delays off.
   Reported from Scrapy's own elapsed time (crawl only) and from the subprocess wall time
   (what the daemon pays: interpreter, Scrapy and 1 crawler start-up included); then the
   next poll of the same lists, which fetches no article it has read before.
2. 200 unchanged feeds (the 3 real feeds in ../shared, cycled), 200 rss sources in one run:
   a first poll fills the store; then our poll (ETag / Last-Modified sent back, so 304s)
   against a baseline poll of the same 200 feeds fetched unconditionally (the server
   ignores validators). Bytes are counted by the server (status line, headers and body),
   robots.txt included (read once per site and run; shown separately).
3. The daemon's real polling path: `yuqing run` polling the same 200 unchanged feeds every
   30 s through its long-lived crawl worker, measured over --daemon-seconds: polls a minute,
   CPU (daemon and children, from /proc) per poll and in cores, robots.txt fetches; against the
   old path measured in the same run: one `python -m yuqing.crawler CONFIG SOURCE` process per
   poll, as the daemon ran it before (CPU per poll, and the cores that would take at this rate).

Run: ``nice -n 10 .venv/bin/python bench/bench_crawler.py`` (about three minutes).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPORA = SHARED / "corpora"

HOSPITAL = {"name": "武汉市金银潭医院", "aliases": ["金银潭医院", "禹州市人民医院", "南沙邮轮母港", "LongCat", "科技爱好者周刊"]}
PLAN = {"levels": [{"level": "IV", "notify": ["duty"], "channels": ["wecom"], "ack_minutes": 60}]}
CHANNELS = {"recipients": [{"id": "duty", "name": "值班员"}]}


@dataclass
class Counter:
    """Requests and bytes the server sent, by kind of path."""

    requests: int = 0
    bytes: int = 0
    robots_requests: int = 0
    robots_bytes: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, path: str, status: int, size: int) -> None:
        if path == "/robots.txt":
            self.robots_requests += 1
            self.robots_bytes += size
            return
        self.requests += 1
        self.bytes += size
        self.statuses[status] = self.statuses.get(status, 0) + 1


class BenchServer:
    """A counting HTTP server: fixed pages, and feeds that honour validators unless told not to."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, bytes]] = {}
        self.feeds: dict[str, bytes] = {}
        self.conditional = True
        self.counter = Counter()
        bench = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                status, headers, body = bench.answer(self.path, self.headers)
                head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                bench.counter.add(self.path.split("?")[0], status, len(head) + 40 + len(body))

            def log_message(self, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 1024  # the default 5 drops SYNs under 200 clients: seconds of TCP retries

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, path: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
        """A page, a feed (304 when the validators match and we are conditional), or 404."""
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"
        if path in self.feeds:
            etag, modified = f'"{abs(hash(path))}"', "Fri, 28 Nov 2025 00:14:06 GMT"
            meta = {"Content-Type": "application/rss+xml; charset=utf-8", "ETag": etag, "Last-Modified": modified}
            if self.conditional and (headers.get("If-None-Match") == etag or headers.get("If-Modified-Since") == modified):
                return 304, meta, b""
            return 200, meta, self.feeds[path]
        if path in self.pages:
            ctype, body = self.pages[path]
            return 200, {"Content-Type": ctype}, body
        return 404, {"Content-Type": "text/plain"}, b"not found"

    def reset(self) -> Counter:
        """The counts so far, and start counting afresh."""
        counted, self.counter = self.counter, Counter()
        return counted

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_config(root: Path, sources: list[dict[str, Any]], concurrency: int) -> Path:
    """A config directory for one benchmark: delays off, robots obeyed, one hospital."""
    cfg_dir = root / "config"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    crawl = {"contact": "bench@hospital.example", "download_delay_seconds": 0, "timeout_seconds": 10,
             "per_domain_concurrency": concurrency, "max_page_bytes": 5_242_880}
    files = {"settings": {"data_dir": "data", "crawl": crawl}, "hospital": HOSPITAL,
             "sources": {"sources": sources}, "plan": PLAN, "channels": CHANNELS}
    for name, data in files.items():
        (cfg_dir / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return cfg_dir


def crawl(cfg_dir: Path, db_url: str) -> tuple[dict[str, Any], float]:
    """One `python -m yuqing.crawler` run; its JSON report and wall time."""
    env = {**os.environ, "YUQING_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "yuqing.crawler", str(cfg_dir), "--json"], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"crawl failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def migrated(root: Path) -> str:
    """A fresh, migrated SQLite store."""
    from yuqing.store import Store

    url = f"sqlite:///{root / 'bench.db'}"
    Store.migrated(url).dispose()
    return url


def bench_pages(server: BenchServer, root: Path, copies: int, concurrency: int) -> None:
    """Pages per second through fetch, decode, extract, filter, dedup and store."""
    pages = sorted((CORPORA / "news_pages").glob("*/*.html"))
    per_list = 50
    links = []
    for copy in range(copies):
        for page in pages:
            path = f"/news/{copy}/{page.parent.name}-{page.stem}.html"
            server.pages[path] = ("text/html", page.read_bytes())
            links.append(path)
    chunks = [links[i:i + per_list] for i in range(0, len(links), per_list)]
    for n, chunk in enumerate(chunks, 1):
        items = "".join(f'<li><a href="{href}">第{n}页的一篇新闻报道标题</a></li>' for href in chunk)
        nxt = f'<a rel="next" href="/list/{n + 1}.html">下一页</a>' if n < len(chunks) else ""
        server.pages[f"/list/{n}.html"] = ("text/html; charset=utf-8",
                                           f"<html><body><ul>{items}</ul>{nxt}</body></html>".encode())
    source = {"id": "bench-web", "name": "bench", "kind": "web", "url": f"{server.base}/list/1.html",
              "max_pages": len(chunks)}
    cfg_dir = write_config(root / "pages", [source], concurrency)
    server.reset()
    db = migrated(root / "pages")
    report, wall = crawl(cfg_dir, db)
    run = report["runs"][0]
    articles = run["pages"] - len(chunks)
    print(f"\n== pages per second: {len(pages)} real news pages x {copies} URLs = {len(links)} articles, "
          f"{len(chunks)} list pages, concurrency {concurrency}, delays off")
    print(f"  pages fetched and processed   {run['pages']} ({articles} articles); stored {run['stored']} new, "
          f"{run['reposts']} reposts, {run['not_mentioning']} not naming the hospital, errors {run['errors']}")
    print(f"  crawl time (Scrapy elapsed)   {run['seconds']:.2f} s  -> {run['pages'] / run['seconds']:.1f} pages/s")
    print(f"  subprocess wall time          {wall:.2f} s  -> {run['pages'] / wall:.1f} pages/s (start-up included)")
    server.reset()
    again, again_wall = crawl(cfg_dir, db)
    counted = server.reset()
    print(f"  next poll of the same lists   {counted.requests} requests ({counted.bytes / 1024:.0f} KiB), "
          f"{again['runs'][0]['skipped_known']} articles skipped as already read, {again_wall:.2f} s wall")


def bench_feeds(server: BenchServer, root: Path, n_feeds: int) -> tuple[Path, str]:
    """Bytes and time per poll of unchanged feeds: conditional (ours) against unconditional."""
    feeds = sorted((CORPORA / "feeds").glob("*.xml"))
    sources = []
    for i in range(n_feeds):
        path = f"/feeds/{i}.xml"
        server.feeds[path] = feeds[i % len(feeds)].read_bytes()
        sources.append({"id": f"feed-{i:03d}", "name": f"feed {i}", "kind": "rss", "url": server.base + path,
                        "interval_seconds": 30})
    cfg_dir = write_config(root / "feeds", sources, 2)
    db = migrated(root / "feeds")
    server.reset()
    _, first_wall = crawl(cfg_dir, db)
    first = server.reset()
    ours_report, ours_wall = crawl(cfg_dir, db)
    ours = server.reset()
    server.conditional = False
    base_report, base_wall = crawl(cfg_dir, db)
    base = server.reset()
    server.conditional = True
    not_modified = sum(r["outcome"] == "not_modified" for r in ours_report["runs"])
    print(f"\n== {n_feeds} unchanged feeds ({len(feeds)} real feeds cycled), one poll = one subprocess, all sources in it")
    print(f"  first poll (fills the store)  {first.bytes / 1024:8.1f} KiB feeds  {first_wall:6.2f} s")
    for label, count, wall, rep in (("ours: conditional (304)", ours, ours_wall, ours_report),
                                    ("baseline: unconditional", base, base_wall, base_report)):
        crawl_s = max(r["seconds"] for r in rep["runs"])
        print(f"  {label:29} {count.bytes / 1024:8.1f} KiB feeds  {wall:6.2f} s wall  {crawl_s:5.2f} s crawling  "
              f"statuses {dict(sorted(count.statuses.items()))}  "
              f"(+ robots.txt {count.robots_requests} x, {count.robots_bytes / 1024:.1f} KiB)")
    print(f"  304s on our poll              {not_modified}/{n_feeds}; feed bytes saved "
          f"{100 * (1 - ours.bytes / max(base.bytes, 1)):.1f}%; "
          f"stored on either poll: {sum(r['stored'] for r in ours_report['runs'] + base_report['runs'])}")
    return cfg_dir, db


def bench_daemon(server: BenchServer, cfg_dir: Path, db: str, n_feeds: int, seconds: int) -> float:
    """`yuqing run` polling every feed every 30 s: polls a minute and CPU over `seconds` once all are polled."""
    from bench_alert_latency import tree_cpu

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("YUQING_")}, "YUQING_CONFIG_DIR": str(cfg_dir),
           "YUQING_DATABASE_URL": db, "PYTHONPATH": str(ROOT)}
    with open(cfg_dir.parent / "daemon.log", "w", encoding="utf-8") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "yuqing", "run"], env=env, stderr=log, cwd=cfg_dir.parent)
        try:
            time.sleep(45)  # every source polled once: robots.txt read, the models loaded
            server.reset()
            cpu0, t0 = tree_cpu(daemon.pid), time.monotonic()
            time.sleep(seconds)
            cpu, wall = tree_cpu(daemon.pid) - cpu0, time.monotonic() - t0
            counted = server.reset()
        finally:
            stop = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
    polls = counted.requests
    print(f"\n== the daemon's polling path: `yuqing run`, {n_feeds} unchanged feeds every 30 s, one crawl worker, "
          f"measured {wall:.0f} s")
    print(f"  polls a minute                {polls * 60 / wall:6.0f}  ({polls * 60 / wall / n_feeds:.2f} per feed; "
          f"asked for 2.00)  statuses {dict(sorted(counted.statuses.items()))}")
    print(f"  CPU, daemon + worker          {cpu / wall:6.3f} cores  ({1000 * cpu / max(polls, 1):.1f} ms per poll)")
    print(f"  robots.txt fetched            {counted.robots_requests} x in {wall:.0f} s (cached across polls)")
    print(f"  stop after SIGTERM            {time.monotonic() - stop:.1f} s (exit code {daemon.returncode})")
    return cpu / max(polls, 1)


def bench_old_path(cfg_dir: Path, db: str, n_feeds: int, polls: int, ours_per_poll: float) -> None:
    """The path the daemon took before the worker: one `python -m yuqing.crawler CONFIG SOURCE` per poll."""
    env = {**os.environ, "YUQING_DATABASE_URL": db, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    for i in range(polls):
        subprocess.run([sys.executable, "-m", "yuqing.crawler", str(cfg_dir), f"feed-{i % n_feeds:03d}"], env=env,
                       capture_output=True, check=True, cwd=ROOT)
    wall = (time.perf_counter() - start) / polls
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / polls
    print(f"  baseline: a process per poll  {cpu:.2f} CPU-s and {wall:.2f} s wall per poll ({polls} polls, unchanged "
          f"feeds); {n_feeds} feeds every 30 s would need {cpu * n_feeds / 30:.1f} cores, against "
          f"{ours_per_poll * n_feeds / 30:.3f} through the worker ({cpu / max(ours_per_poll, 1e-9):.0f}x less per poll)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=5, help="URLs per real news page (default 5)")
    parser.add_argument("--concurrency", type=int, default=8, help="per-domain concurrency for the pages run")
    parser.add_argument("--feeds", type=int, default=200, help="unchanged feeds to poll (default 200)")
    parser.add_argument("--daemon-seconds", type=int, default=60, help="how long the daemon's polling is measured")
    parser.add_argument("--old-polls", type=int, default=10, help="polls through the old process-per-poll path")
    args = parser.parse_args(argv)
    if not CORPORA.is_dir():
        print(f"needs the shared corpora at {CORPORA}", file=sys.stderr)
        return 2
    server = BenchServer()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench_pages(server, Path(tmp), args.copies, args.concurrency)
            cfg_dir, db = bench_feeds(server, Path(tmp), args.feeds)
            per_poll = bench_daemon(server, cfg_dir, db, args.feeds, args.daemon_seconds)
            bench_old_path(cfg_dir, db, args.feeds, args.old_polls, per_poll)
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Console page times with 100,000 mentions in the database, against the same pages at 1,000 (the baseline)
and the 300 ms target.

Fills a temporary SQLite store with mentions at ~70 an hour over about two months (about 1,500 events,
a third of them with incidents and their timelines, a few thousand outbox rows), starts the real console
(uvicorn on 127.0.0.1, in this process's thread), logs in, and times every page over real HTTP: median and
95th percentile of --repeat requests each, wall-clock, server and client on one machine.

Usage: .venv/bin/python bench/bench_web.py [--sizes 1000 100000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import logging
import random
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import insert

from yuqing.alerts.links import IncidentLinks
from yuqing.app.demo.servers import free_port
from yuqing.app.jobs import Runtime
from yuqing.app.web import auth
from yuqing.app.web.server import build, running
from yuqing.clock import ManualClock
from yuqing.config import AppConfig, load_config
from yuqing.models import Event, Incident, IncidentTransition, Mention, OutboxMessage, Role, SourceState
from yuqing.store import Store

CONFIG_ENV = {"YUQING_SMTP_USER": "bench", "YUQING_SMTP_PASSWORD": "bench", "YUQING_WECOM_CRISIS_KEY": "bench"}
SECRET = "bench-web-secret-" + "0" * 40
TARGET_MS = 300
PER_EVENT = 65  # mentions per event on average: 100,000 mentions make ~1,500 events
SEED = 20261205
TITLES = ["江城一院产妇死亡 家属质疑手术", "江城一院新门诊楼正式启用", "江城一院医生收红包被曝光", "江城一院开展义诊活动",
          "江城一院急诊排长队 患者等待三小时", "江城一院获评省级文明单位", "江城一院护士殴打患儿视频曝光",
          "江城一院专家解读冬季流感防治"]
CATEGORIES = [[], ["death_injury"], ["bribery"], [], ["service_attitude"], [], ["violence"], []]


def _config(port: int, data_dir: Path) -> AppConfig:
    cfg = load_config(REPO / "config", env=CONFIG_ENV)
    web = cfg.settings.web.model_copy(update={"public_url": f"http://127.0.0.1:{port}", "port": port})
    settings = cfg.settings.model_copy(update={"web": web, "data_dir": data_dir})
    return cfg.model_copy(update={"settings": settings})


def fill(store: Store, cfg: AppConfig, size: int, now: datetime) -> None:
    """size mentions at ~70 an hour up to now, grouped in events, with incidents, timelines and messages."""
    rng = random.Random(SEED)
    sources = [(s.id, s.tier) for s in cfg.sources.sources]
    with store.session() as sess:
        for sid, tier in sources:
            sess.add(SourceState(id=sid, kind="rss", name=sid, url=f"https://{sid}.example/", tier=tier))
    start = now - timedelta(hours=size / 70)
    n_events = max(1, size // PER_EVENT)
    with store.engine.begin() as conn:
        events = []
        for e in range(n_events):
            first = start + (now - start) * e / n_events
            kind = e % len(TITLES)
            events.append(dict(id=e + 1, headline=f"{TITLES[kind]}（{e}）", first_seen=first,
                               last_seen=first + timedelta(hours=6), mention_count=PER_EVENT,
                               negative_count=PER_EVENT // 3, crisis_count=3 if CATEGORIES[kind] else 0,
                               source_count=4, repost_count=10, velocity=3.0, baseline=1.0, top_tier=2,
                               risk_categories=CATEGORIES[kind], keywords=[], updated_at=first + timedelta(hours=6)))
        conn.execute(insert(Event), events)
        rows = []
        for i in range(size):
            e = min(i * n_events // size, n_events - 1)
            kind = e % len(TITLES)
            fetched = start + (now - start) * i / size
            negative = rng.random() < 0.3
            rows.append(dict(id=i + 1, url=f"https://news.example/{i}", source_id=sources[i % len(sources)][0],
                             kind="news", title=f"{TITLES[kind]} 第{i}条", text="正文" * 50, fetched_at=fetched,
                             content_hash=f"{i:064x}", matched_names=["江城一院"], match_context=TITLES[kind],
                             analyzed_at=fetched, sentiment=0.2 if negative else 0.8, negative=negative,
                             crisis=negative and bool(CATEGORIES[kind]), risk_score=0.5, about_us=True,
                             risk_categories=CATEGORIES[kind], risk_terms=[], keywords=[], event_id=e + 1))
            if len(rows) == 5000:
                conn.execute(insert(Mention), rows)
                rows = []
        if rows:
            conn.execute(insert(Mention), rows)
        incidents, transitions, messages = [], [], []
        for e in range(0, n_events, 3):
            at = events[e]["first_seen"] + timedelta(hours=1)
            status = "open" if e > n_events - 10 else "resolved"
            incidents.append(dict(id=len(incidents) + 1, event_id=e + 1, level=["IV", "III", "II"][e % 3],
                                  status=status, reason="负面提及 20 条（≥15）", opened_at=at, updated_at=at,
                                  ack_deadline=at + timedelta(minutes=30), escalations=0))
            for k, action in enumerate(("opened", "acknowledged", "note", "resolved")):
                transitions.append(dict(incident_id=len(incidents), at=at + timedelta(minutes=10 * k), action=action,
                                        to_status=status, to_level="III", actor="张敏", note="处理记录"))
            for k in range(4):
                messages.append(dict(dedup_key=f"incident:{len(incidents)}:{k}", channel="email",
                                     recipient="duty-officer", address="a@b", purpose="alert", subject="预警",
                                     body="正文", inline_images=[], incident_id=len(incidents),
                                     status="sent" if k else "dead", attempts=1, created_at=at, next_attempt_at=at,
                                     sent_at=at))
        conn.execute(insert(Incident), incidents)
        conn.execute(insert(IncidentTransition), transitions)
        conn.execute(insert(OutboxMessage), messages)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def _login(opener: urllib.request.OpenerDirector, base: str) -> None:
    page = opener.open(base + "/login").read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    data = urllib.parse.urlencode({"csrf": token, "username": "duty-officer", "password": "bench-password-1"})
    opener.open(base + "/login", data=data.encode()).read()


def time_pages(base: str, paths: list[str], repeat: int) -> dict[str, tuple[float, float]]:
    opener = _opener()
    _login(opener, base)
    out = {}
    for path in paths:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            with opener.open(base + path) as resp:
                resp.read()
                assert resp.status == 200, path
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        out[path] = (statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)])
    return out


def measure(size: int, repeat: int) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cfg = _config(port, Path(tmp))
        store = Store.migrated(f"sqlite:///{tmp}/bench.db")
        now = datetime(2026, 12, 5, 12, tzinfo=UTC)
        clock = ManualClock(now)
        fill(store, cfg, size, now)
        auth.set_password(store, cfg, clock, "duty-officer", "bench-password-1", Role.DUTY)
        rt = Runtime(cfg=cfg, store=store, clock=clock)
        open_id = max(1, (size // PER_EVENT) // 3)
        link = urllib.parse.urlsplit(IncidentLinks(SECRET, cfg.settings.web.public_url or "", 7)
                                     .url(open_id, "duty-officer", now)).path
        last_page = max(1, size // 50)
        paths = ["/", "/incidents", f"/incidents/{open_id}", link, "/mentions", "/mentions?negative=yes&crisis=yes",
                 "/mentions?q=" + urllib.parse.quote("红包"), "/mentions?category=violence", f"/mentions?page={last_page}",
                 f"/mentions?since={(now - timedelta(days=30)).date()}&until={now.date()}&tier=2",
                 "/events", f"/events/{size // PER_EVENT}",
                 "/sources", "/outbox", "/digests"]
        try:
            with running(rt, build(rt, {"YUQING_WEB_SECRET": SECRET}), port=port):
                return time_pages(f"http://127.0.0.1:{port}", paths, repeat)
        finally:
            store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = {size: measure(size, args.repeat) for size in args.sizes}
    sizes = sorted(results)
    print(f"console pages, median / p95 ms over {args.repeat} requests (target: under {TARGET_MS} ms)")
    header = "".join(f"{f'{s:,} mentions':>24}" for s in sizes)
    print(f"{'page':<52}{header}")
    worst = 0.0
    for path in results[sizes[0]]:
        key = re.sub(r"/i/\d+/[^/]+", "/i/<link>", path)
        cells = []
        for s in sizes:
            match = next(v for p, v in results[s].items() if re.sub(r"\d+", "#", p.split("/i/")[0]) ==
                         re.sub(r"\d+", "#", path.split("/i/")[0]) and ("/i/" in p) == ("/i/" in path))
            cells.append(f"{match[0]:>12.1f} / {match[1]:>7.1f}")
            worst = max(worst, match[1]) if s == sizes[-1] else worst
        print(f"{key[:50]:<52}{''.join(f'{c:>24}' for c in cells)}")
    verdict = "within" if worst < TARGET_MS else "OVER"
    print(f"slowest p95 at {sizes[-1]:,} mentions: {worst:.1f} ms ({verdict} the {TARGET_MS} ms target); "
          f"baseline: the same pages at {sizes[0]:,} mentions")


if __name__ == "__main__":
    main()

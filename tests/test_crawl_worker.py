"""The daemon's long-lived crawl worker, as an operator runs it: a real `yuqing run`, real feeds on 127.0.0.1,
a WeCom stand-in, real signals. Intervals are the real 30 s minimum, so the daemon tests take about a minute."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from yuqing.config import ConfigError, load_config
from yuqing.crawler.robots import RobotsCache
from yuqing.models import SourceState
from yuqing.store import Store

from .conftest import SECRETS, LocalHTTPServer, write_config_dir

YUQING = [sys.executable, "-m", "yuqing"]
CRISIS = "江城市第一人民医院急诊科发生伤医事件 一名护士被砍伤"


# --- config ---------------------------------------------------------------------


def _rss(i: int = 0, **extra: object) -> dict[str, object]:
    return {"id": f"feed-{i}", "name": f"源{i}", "kind": "rss", "url": f"http://127.0.0.1:9/{i}.xml", **extra}


def test_interval_seconds_down_to_thirty(tmp_path):
    cfg = load_config(write_config_dir(tmp_path, [_rss(0, interval_seconds=30), _rss(1, interval_minutes=2), _rss(2)]),
                      env=SECRETS)
    assert [s.poll_seconds for s in cfg.sources.sources] == [30, 120, 1800]


def test_interval_under_thirty_seconds_is_refused_naming_file_and_field(tmp_path):
    cfg_dir = write_config_dir(tmp_path, [_rss(0, interval_seconds=30), _rss(1, interval_seconds=10),
                                          _rss(2, interval_seconds=60, interval_minutes=1)])
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir, env=SECRETS)
    problems = err.value.problems
    assert any(p.startswith(f"{cfg_dir / 'sources.yaml'}: sources.1.interval_seconds:") and "30" in p for p in problems)
    assert any(f"{cfg_dir / 'sources.yaml'}: sources.2" in p and "not both" in p for p in problems)
    assert len(problems) == 2


# --- robots.txt cache -------------------------------------------------------------


def test_robots_cache_keeps_a_site_until_it_expires():
    now = [1000.0]
    cache = RobotsCache(clock=lambda: now[0])
    assert cache.get("example.org") is None
    parser = object()
    cache.put("example.org", parser, ttl=3600)
    now[0] += 3599
    assert cache.get("example.org") is parser
    assert cache.get("other.example.org") is None
    now[0] += 1
    assert cache.get("example.org") is None


# --- the daemon -------------------------------------------------------------------


class Feed:
    """An RSS feed with an ETag, answering 304 while unchanged; items can be added while it is served."""

    def __init__(self, server: LocalHTTPServer, path: str):
        self.items: list[str] = []
        self.version = 1
        self.requests = 0
        self.url = server.base + path
        server.routes[path] = self.answer

    def answer(self, handler: http.server.BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        self.requests += 1
        etag = f'"v{self.version}"'
        if handler.headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, b""
        entries = "".join(f"<item><title>{t}</title><link>{self.url}/{n}</link><description>{t}。</description></item>"
                          for n, t in enumerate(self.items))
        body = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
                f"<item><title>社区开展垃圾分类宣传活动</title><link>{self.url}/x</link>"
                f"<description>街道工作人员向居民讲解垃圾分类知识。</description></item>{entries}</channel></rss>")
        return 200, {"Content-Type": "application/rss+xml; charset=utf-8", "ETag": etag}, body.encode("utf-8")

    def add(self, title: str) -> None:
        self.items.append(title)
        self.version += 1


def _daemon_config(tmp_path: Path, sources: list[dict], wecom_url: str, timeout: int = 10) -> Path:
    """Analysis every hour and dispatch every hour: only the after-poll run can alert within the test."""
    cfg_dir = write_config_dir(tmp_path, sources, schedules={"analysis_minutes": 60, "dispatch_seconds": 3600},
                               crawl={"download_delay_seconds": 0, "timeout_seconds": timeout})
    plan = {"name": "test", "levels": [{"level": "IV", "min_negative_mentions": 1, "notify": ["duty"],
                                        "channels": ["wecom"], "ack_minutes": 120}]}
    channels = {"wecom_robots": {"room": {"key": "${YUQING_WECOM_CRISIS_KEY}", "base_url": wecom_url}},
                "recipients": [{"id": "duty", "name": "值班员", "wecom_robot": "room"}]}
    (cfg_dir / "plan.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")
    (cfg_dir / "channels.yaml").write_text(yaml.safe_dump(channels, allow_unicode=True), encoding="utf-8")
    return cfg_dir


class Daemon:
    """`yuqing run` in its own process, its log in a file, its children watched from /proc."""

    def __init__(self, cfg_dir: Path, log_path: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith("YUQING_")}
        self.env = {**env, **SECRETS, "YUQING_CONFIG_DIR": str(cfg_dir)}
        subprocess.run([*YUQING, "migrate"], env=self.env, check=True, capture_output=True, timeout=120)
        self.log_path = log_path
        self.log = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen([*YUQING, "run"], env=self.env, stderr=self.log)
        self.children_seen: set[int] = set()
        self.watching = True
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()

    def _watch(self) -> None:
        while self.watching:
            self.children_seen.update(children(self.proc.pid))
            time.sleep(0.1)

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def close(self) -> None:
        self.watching = False
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def children(pid: int) -> set[int]:
    """Process ids whose parent is pid."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def wait_for(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def wecom() -> Iterator[object]:
    from yuqing.app.demo.servers import WeComEndpoint

    endpoint = WeComEndpoint(valid_keys={SECRETS["YUQING_WECOM_CRISIS_KEY"]})
    endpoint.start()
    yield endpoint
    endpoint.stop()


def test_daemon_polls_on_intervals_in_one_worker_with_robots_cached_and_alerts_at_once(tmp_path, http_server, wecom):
    robots = []
    http_server.routes["/robots.txt"] = lambda h: (robots.append(1), (200, {"Content-Type": "text/plain"},
                                                                      b"User-agent: *\nDisallow: /private/\n"))[1]
    feeds = [Feed(http_server, f"/feed/{i}.xml") for i in range(2)]
    sources = [{"id": f"feed-{i}", "name": f"源{i}", "kind": "rss", "url": f.url, "interval_seconds": 30,
                "fetch_articles": "never"} for i, f in enumerate(feeds)]
    daemon = Daemon(_daemon_config(tmp_path, sources, wecom.url), tmp_path / "daemon.log")  # type: ignore[attr-defined]
    try:
        wait_for(lambda: all(f.requests >= 1 for f in feeds), 60, "the first poll of each feed")
        feeds[0].add(CRISIS)
        wait_for(lambda: all(f.requests >= 3 for f in feeds), 90, "three polls of each feed")
        wait_for(lambda: any(CRISIS in str(m) for m in wecom.messages), 30, "the WeCom alert")  # type: ignore[attr-defined]
        text = daemon.text()
        assert len(daemon.children_seen) == 1, f"polls started processes: {sorted(daemon.children_seen)}"
        assert children(daemon.proc.pid) == daemon.children_seen  # the one worker is still the same process
        assert "-m yuqing.crawler.worker" in " ".join(_cmdline(next(iter(daemon.children_seen))))
        assert len(robots) == 1, "robots.txt fetched again across polls"
        assert "source feed-0 stored 1 new mention(s): analysing now" in text
        assert "analysed 1 mention(s): 1 negative, 1 crisis" in text
        store = Store(f"sqlite:///{tmp_path / 'data' / 'yuqing.db'}")

        def states() -> dict[str, SourceState]:
            with store.session() as sess:
                return {s.id: s for s in sess.query(SourceState)}

        # the feed server counts a request before the worker has stored what the poll found: wait for the store
        wait_for(lambda: states()["feed-1"].not_modified >= 2, 30, "two unchanged polls recorded")
        assert states()["feed-0"].mentions_found == 1
        logged = daemon.text()  # the worker's lines reach the daemon's log, but not those of unchanged polls
        assert "source feed-0: ok; pages" in logged
        assert "feed not modified" not in logged and "not_modified; pages" not in logged
        store.dispose()
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(timeout=30) == 0
        assert "stopped cleanly" in daemon.text()
    finally:
        daemon.close()


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


def test_sigterm_stops_within_ten_seconds_with_hung_sources_and_a_dead_worker_is_restarted(tmp_path, http_server, wecom):
    release = threading.Event()
    hung: list[str] = []

    def hang(handler: http.server.BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        hung.append(handler.path)
        release.wait(120)  # accepts the connection and never answers (within the test)
        return 200, {"Content-Type": "application/rss+xml"}, b""

    for i in range(20):
        http_server.routes[f"/hung/{i}.xml"] = hang
    sources = [{"id": f"hung-{i:02d}", "name": f"慢{i}", "kind": "rss", "url": f"{http_server.base}/hung/{i}.xml",
                "interval_seconds": 30, "obey_robots": False} for i in range(20)]
    daemon = Daemon(_daemon_config(tmp_path, sources, wecom.url, timeout=120), tmp_path / "daemon.log")  # type: ignore[attr-defined]
    try:
        wait_for(lambda: len(hung) >= 16, 60, "16 polls hanging in the worker")
        first = next(p for p in children(daemon.proc.pid) if "yuqing.crawler.worker" in " ".join(_cmdline(p)))
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: "crawl worker (pid" in daemon.text() and "restarting it" in daemon.text(), 30, "the restart")
        died = next(line for line in daemon.text().splitlines() if "died with exit code" in line)
        assert f"pid {first})" in died and "hung-00" in died
        with Store(f"sqlite:///{tmp_path / 'data' / 'yuqing.db'}").session() as sess:
            recorded = sess.get(SourceState, "hung-00")
            assert recorded is not None and "crawl worker died" in (recorded.last_error or "")
            assert recorded.consecutive_failures == 1
        before = len(hung)
        wait_for(lambda: len(hung) > before, 40, "polls in the restarted worker")
        second = next(p for p in children(daemon.proc.pid) if "yuqing.crawler.worker" in " ".join(_cmdline(p)))
        assert second != first
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=10)  # the requirement itself: stopped within 10 s of SIGTERM
        assert code == 0, daemon.text()[-3000:]
        assert "stopped cleanly" in daemon.text()
        assert not os.path.exists(f"/proc/{second}") or "zombie" in Path(f"/proc/{second}/status").read_text()
    finally:
        release.set()
        daemon.close()


def test_a_burst_of_polls_with_new_mentions_triggers_one_more_run_not_one_each(monkeypatch):
    from yuqing.app import crawl_pool, jobs

    running, release, runs = threading.Event(), threading.Event(), []

    def analyze(rt: object, wait: float = 0.0) -> None:
        runs.append("analyze")
        running.set()
        release.wait(10)

    monkeypatch.setattr(jobs, "analyze", analyze)
    monkeypatch.setattr(jobs, "dispatch", lambda rt: runs.append("dispatch"))

    class Rt:
        def channel_senders(self) -> None:
            return None

    follow_up = crawl_pool.FollowUp(Rt())  # type: ignore[arg-type]
    follow_up.start()
    follow_up.after_poll({"source_id": "a", "stored": 0})
    follow_up.after_poll({"source_id": "a", "stored": 2})
    assert running.wait(10)
    for i in range(5):  # reported while the first run is going
        follow_up.after_poll({"source_id": f"s{i}", "stored": 1})
    release.set()
    wait_for(lambda: runs == ["analyze", "dispatch", "analyze", "dispatch"], 10, "the second run")
    time.sleep(0.5)
    follow_up.stop()
    assert runs == ["analyze", "dispatch", "analyze", "dispatch"]

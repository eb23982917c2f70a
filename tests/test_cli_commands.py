"""Every CLI subcommand as the duty officer and IT staff type it: real processes on a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from yuqing.config import load_config
from yuqing.models import SourceState
from yuqing.store import Store

from .conftest import SECRETS
from .test_analysis_pipeline import VIOLENCE_BODY, VIOLENCE_TITLE, add_mention

YUQING = [sys.executable, "-m", "yuqing"]


def _env(config_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUQING_")}
    return {**env, **SECRETS, "YUQING_CONFIG_DIR": str(config_dir)}


def _yuqing(config_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*YUQING, *args], env=_env(config_dir), capture_output=True, text=True, timeout=180,
                          input=stdin)


@pytest.fixture
def seeded(config_dir: Path) -> Path:
    """A migrated database with one crisis mention, analysed by `yuqing analyze` into an incident."""
    assert _yuqing(config_dir, "migrate").returncode == 0
    cfg = load_config(config_dir, env=SECRETS)
    store = Store(cfg.database_url)
    with store.session() as sess:
        sess.add(SourceState(id="local-forum", kind="web", name="本地论坛", url="https://bbs.example", tier=4))
    add_mention(store, VIOLENCE_TITLE, VIOLENCE_BODY, datetime.now(UTC) - timedelta(minutes=30),
                source="local-forum")
    store.dispose()
    analysed = _yuqing(config_dir, "analyze")
    assert analysed.returncode == 0, analysed.stderr
    assert "analysed 1 mention(s): 1 negative, 1 crisis" in analysed.stdout
    assert "事件 1 已开启 Ⅲ级（较大）：风险类别：暴力事件" in analysed.stdout and "IncidentChange(" not in analysed.stdout
    return config_dir


def test_an_incident_from_alert_to_resolution(seeded: Path) -> None:
    listed = _yuqing(seeded, "incidents", "list")
    assert listed.returncode == 0 and VIOLENCE_TITLE[:10] in listed.stdout and "open" in listed.stdout
    shown = _yuqing(seeded, "incidents", "show", "1")
    assert shown.returncode == 0 and "history:" in shown.stdout and "opened" in shown.stdout
    acked = _yuqing(seeded, "incidents", "ack", "1", "--by", "张敏", "--note", "已联系急诊科")
    assert acked.returncode == 0 and "已确认事件 1" in acked.stdout
    again = _yuqing(seeded, "incidents", "ack", "1", "--by", "刘洋")
    assert again.returncode == 0 and "无需重复确认" in again.stdout
    responded = _yuqing(seeded, "incidents", "respond", "1", "--by", "张敏", "--note", "官微发布情况通报")
    assert responded.returncode == 0 and "公开回应" in responded.stdout
    resolved = _yuqing(seeded, "incidents", "resolve", "1", "--by", "刘洋", "--note", "已处置")
    assert resolved.returncode == 0, resolved.stderr
    assert "已结案事件 1" in resolved.stdout
    twice = _yuqing(seeded, "incidents", "resolve", "1", "--by", "刘洋")
    assert twice.returncode == 0 and "无需重复结案" in twice.stdout
    assert "no open incidents" in _yuqing(seeded, "incidents", "list").stdout
    everything = _yuqing(seeded, "incidents", "list", "--all")
    assert "resolved" in everything.stdout
    missing = _yuqing(seeded, "incidents", "ack", "99", "--by", "张敏")
    assert missing.returncode == 1 and "没有编号为 99" in missing.stderr
    nobody = _yuqing(seeded, "incidents", "ack", "1", "--by", " ")
    assert nobody.returncode == 1


def test_outbox_dispatch_digest_and_tick(seeded: Path) -> None:
    pending = _yuqing(seeded, "outbox", "list")
    assert pending.returncode == 0 and "pending" in pending.stdout and "alert" in pending.stdout
    assert "no dead messages" in _yuqing(seeded, "outbox", "list", "--status", "dead").stdout
    assert "requeued 0 message(s)" in _yuqing(seeded, "outbox", "requeue").stdout
    dispatched = _yuqing(seeded, "dispatch")  # the example config's mail server is not reachable here
    assert dispatched.returncode == 1 and "could not be delivered" in dispatched.stderr, dispatched.stderr
    assert "pending" in _yuqing(seeded, "outbox", "list").stdout  # kept and retried, never lost
    digest = _yuqing(seeded, "digest", "--period-end", "2030-01-07 08:00")
    assert digest.returncode == 0, digest.stderr
    assert "written to" in digest.stdout
    tick = _yuqing(seeded, "tick")
    # every job ran; an undeliverable message is kept for retry, not a failed job
    assert tick.returncode == 0 and "failed; the other jobs go on" not in tick.stderr, tick.stderr


def test_sources_and_crawl_with_no_sources(seeded: Path) -> None:
    assert "no sources configured" in _yuqing(seeded, "sources").stdout
    crawled = _yuqing(seeded, "crawl")
    assert crawled.returncode == 0 and "no sources to crawl" in crawled.stdout
    unknown = _yuqing(seeded, "crawl", "no-such-source")
    assert unknown.returncode == 1 and "no-such-source" in unknown.stderr


def test_contract_commands(config_dir: Path, tmp_path: Path) -> None:
    scored = _yuqing(config_dir, "sentiment", stdin="医生很耐心，服务很好\n排队三个小时没人管\n")
    assert scored.returncode == 0
    first, second = (json.loads(x) for x in scored.stdout.splitlines())
    assert first["label"] == "pos" and second["label"] == "neg"
    page = tmp_path / "page.html"
    page.write_bytes("<html><head><meta charset='gbk'><title>江城一院新闻</title></head><body><article><h1>江城一院开展义诊</h1>"
                     "<p>江城市第一人民医院今天在社区开展义诊活动，为三百余名居民免费测量血压。</p></article></body></html>"
                     .encode("gbk"))
    extracted = _yuqing(config_dir, "extract", str(page))
    assert extracted.returncode == 0, extracted.stderr
    article = json.loads(extracted.stdout)
    assert set(article) == {"title", "author", "published_at", "text"} and "义诊" in (article["text"] or "")


def test_a_bad_digest_schedule_fails_check_config_but_not_the_alerts(seeded: Path) -> None:
    settings = seeded / "settings.yaml"
    settings.write_text(settings.read_text(encoding="utf-8") + "schedules:\n  digest_cron: '0 8 * * funday'\n",
                        encoding="utf-8")
    checked = _yuqing(seeded, "check-config")
    assert checked.returncode == 1 and "schedules.digest_cron" in checked.stderr and "1 problem(s)" in checked.stderr
    tick = _yuqing(seeded, "tick")  # still analyses, escalates and dispatches; only the digest is off
    assert "digest_cron" in tick.stderr and "alerts go on" in tick.stderr
    assert "job analyze failed" not in tick.stderr and "job dispatch failed" not in tick.stderr


def test_crawl_prints_one_line_per_problem_honours_quiet_and_fails_when_a_source_fails(tmp_path: Path,
                                                                                        http_server) -> None:
    """No Scrapy banner, debug dumps or tracebacks; -q leaves warnings only; exit 1 when a source failed."""
    from .conftest import write_config_dir

    http_server.serve("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    http_server.serve("/feed.xml", '<?xml version="1.0"?><rss version="2.0"><channel><title>江城日报</title>'
                      '<item><title>江城市第一人民医院开展义诊</title><link>http://127.0.0.1/a/1</link>'
                      '<description>江城市第一人民医院组织专家义诊。</description></item></channel></rss>',
                      "application/rss+xml")
    sources = [{"id": "daily", "kind": "rss", "name": "江城日报", "url": http_server.base + "/feed.xml", "tier": 3},
               {"id": "dead", "kind": "rss", "name": "停刊的报纸", "url": "http://127.0.0.1:9/feed.xml", "tier": 3}]
    config_dir = write_config_dir(tmp_path, sources=sources)
    assert _yuqing(config_dir, "migrate").returncode == 0
    crawled = _yuqing(config_dir, "crawl")
    assert crawled.returncode == 1, crawled.stderr
    assert "daily" in crawled.stdout and "ok" in crawled.stdout and "failed" in crawled.stdout
    assert "1 of 2 source(s) failed: dead" in crawled.stderr
    assert "crawling 2 source(s)" in crawled.stderr  # progress over many sources
    assert "source dead: DownloadConnectionRefusedError" in crawled.stderr
    for noise in ("Traceback", "DEBUG", "Overridden settings", "Versions:", "Gave up retrying"):
        assert noise not in crawled.stderr, noise
    quiet = _yuqing(config_dir, "-q", "crawl", "dead")
    assert quiet.returncode == 1 and " INFO " not in quiet.stderr and "source dead:" in quiet.stderr
    assert "crawling" not in quiet.stderr
    good = _yuqing(config_dir, "-q", "crawl", "daily")
    assert good.returncode == 0, good.stderr

"""One story across platforms: the Weibo hot-search entry, the Weibo posts about it (through RSSHub) and the
local paper's report are one event; each platform counts as a source, the best rank is kept, and the plan
raises the incident when the story is on a hot list (II) and again when it climbs into the top 10 (I).

Crawled from recorded payloads on a local server, analysed with the shipped models, as the daemon would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from yuqing.alerts.digest import collect, render_digest
from yuqing.alerts.hot_lists import hot_list_appearances
from yuqing.alerts.incidents import sync_incidents
from yuqing.analysis.pipeline import analyze_new, load_models
from yuqing.app.jobs import Runtime
from yuqing.app.reports import source_table
from yuqing.clock import ManualClock
from yuqing.config import AppConfig, load_config
from yuqing.models import Event, Incident, Mention
from yuqing.store import Store

from .conftest import REPO, SECRETS, LocalHTTPServer, write_config_dir
from .test_crawler_support import FAST_CRAWL, run_crawl, source

DATA = REPO / "tests" / "data" / "hotlists"
POLL_1 = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # the posts are from 01:05-01:31, the paper's report 01:50
POLL_2 = POLL_1 + timedelta(minutes=5)
NAMES = ["江城市第一人民医院", "江城第一人民医院", "江城市一院", "江城一院", "市一院"]
HOT_TITLE = "江城市第一人民医院回应产妇死亡"


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, AppConfig, ManualClock, LocalHTTPServer, Path]]:
    root = tmp_path_factory.mktemp("story")
    srv = LocalHTTPServer()
    srv.serve("/weibo-hot", (DATA / "weibo_poll1.json").read_bytes(), "application/json;charset=utf-8")
    keyword = (DATA / "rsshub_weibo_keyword.xml").read_bytes()
    for name in NAMES:
        srv.serve(f"/rsshub/weibo/keyword/{quote(name, safe='')}", keyword, "application/xml; charset=utf-8")
    srv.serve("/rsshub/weibo/user/5512345678", (DATA / "rsshub_weibo_user.xml").read_bytes(), "application/xml")
    srv.serve("/jiangcheng/rss.xml", (DATA / "news_report.xml").read_bytes(), "application/rss+xml; charset=utf-8")
    cfg_dir = write_config_dir(root, [
        source("hot-weibo", "hotlist", f"{srv.base}/weibo-hot", platform="weibo", tier=2, interval_minutes=5),
        source("social", "rsshub", f"{srv.base}/rsshub", tier=4, routes=[
            {"path": "/weibo/keyword/{query}", "platform": "weibo"},
            {"path": "/weibo/user/5512345678", "platform": "weibo"}]),
        source("jiangcheng-daily", "rss", f"{srv.base}/jiangcheng/rss.xml", tier=3, fetch_articles="never"),
    ], crawl=FAST_CRAWL)
    cfg = load_config(cfg_dir, env=SECRETS)
    store = Store.migrated(cfg.database_url)
    try:
        with pytest.MonkeyPatch.context() as env:  # the crawl subprocess loads the same config
            for name, value in SECRETS.items():
                env.setenv(name, value)
            yield store, cfg, ManualClock(POLL_1), srv, cfg_dir
    finally:
        store.dispose()
        srv.close()


def hot_event(store: Store) -> Event:
    with store.session() as sess:
        mention = sess.scalars(select(Mention).where(Mention.source_id == "hot-weibo")).one()
        event = sess.get(Event, mention.event_id)
        assert event is not None
        return event


def incident(store: Store, event_id: int) -> Incident:
    with store.session() as sess:
        return sess.scalars(select(Incident).where(Incident.event_id == event_id)).one()


def test_the_story_across_platforms_is_one_event_and_the_plan_follows_its_rank(story) -> None:  # type: ignore[no-untyped-def]
    store, cfg, clock, srv, cfg_dir = story
    first = run_crawl(cfg_dir, store, now=POLL_1)
    assert {sid: first[sid]["stored"] for sid in ("hot-weibo", "social", "jiangcheng-daily")} == {
        "hot-weibo": 1, "social": 3, "jiangcheng-daily": 1}
    models = load_models(cfg)
    clock.set(POLL_1 + timedelta(minutes=1))
    analyze_new(store, cfg, clock, models=models)
    sync_incidents(store, cfg, clock)

    event = hot_event(store)
    with store.session() as sess:
        members = {(m.source_id, m.platform) for m in sess.scalars(select(Mention).where(Mention.event_id == event.id))}
    assert ("jiangcheng-daily", None) in members and ("social", "weibo") in members
    assert event.source_count == 3  # the hot list, the Weibo posts, the paper
    assert (event.hot_rank, event.hot_heat, event.hot_platforms) == (23, 210_433, ["weibo"])
    opened = incident(store, event.id)
    assert opened.level == "II"
    assert "登上全国热榜：微博热搜第 23 名（预案：上榜即启动）" in opened.reason

    srv.serve("/weibo-hot", (DATA / "weibo_poll2.json").read_bytes(), "application/json;charset=utf-8")
    second = run_crawl(cfg_dir, store, ["hot-weibo"], now=POLL_2)
    assert second["hot-weibo"]["stored"] == 0
    clock.set(POLL_2 + timedelta(minutes=1))
    analyze_new(store, cfg, clock, models=models)  # no new mention: the climb alone re-measures the event
    changes = sync_incidents(store, cfg, clock)
    raised = incident(store, event.id)
    assert [c.to_level for c in changes] == ["I"] and raised.level == "I"
    assert "登上全国热榜：微博热搜第 7 名（预案：前 10 名）" in raised.reason
    assert hot_event(store).hot_rank == 7


def test_digest_sources_and_console_show_the_time_on_the_list(story) -> None:  # type: ignore[no-untyped-def]
    store, cfg, clock, _, _ = story
    [shown] = hot_list_appearances(store, POLL_1 - timedelta(days=1))
    assert (shown.list_name, shown.best_rank, shown.rank, shown.peak_heat, shown.polls) == ("微博热搜", 7, 7, 1_286_550, 2)
    assert shown.time_on_list == timedelta(minutes=5) and shown.event_id == hot_event(store).id
    assert shown.to_dict()["time_on_list_seconds"] == 300
    with store.session() as sess:
        data = collect(sess, cfg, POLL_1 - timedelta(days=3), POLL_1 + timedelta(days=4), clock.now())
    [row] = data.hot_lists
    assert (row["list_name"], row["best_rank"], row["on_list"], row["title"]) == ("微博热搜", 7, "5 分钟", HOT_TITLE)
    data.hot_lists.append({**row, "title": "<script>alert(1)</script>热搜", "url": ""})  # scraped text is untrusted
    rendered = render_digest(data)
    assert "微博热搜 最高第 7 名，热度 1286550，在榜 5 分钟" in rendered.text and HOT_TITLE in rendered.text
    assert "<h3>热榜上榜</h3>" in rendered.html and "<script>alert(1)" not in rendered.html
    assert "&lt;script&gt;" in rendered.html and "**热榜上榜**" in rendered.markdown
    table = source_table(Runtime(cfg=cfg, store=store, clock=clock))
    assert "on hot lists (last 7 days)" in table and "微博热搜" in table and "5 分钟" in table


def test_topic_tags_come_from_hashtags_quoted_titles_and_the_entry_itself() -> None:
    from yuqing.analysis.topics import topic_tags

    topics = ["江城市第一人民医院回应产妇死亡"]
    assert topic_tags("江城市第一人民医院回应产妇死亡", "", [], on_hot_list=True) == ["#江城市第一人民医院回应产妇死亡#"]
    names = ["江城市第一人民医院", "江城一院"]
    assert topic_tags("", "有网友发帖 #江城一院停车难# 排队一小时 #每日一拍#", topics, names=names) == ["#江城一院停车难#"]
    quoted = topic_tags("媒体报道", "据报道，“江城市第一人民医院回应产妇死亡”登上热搜", topics)
    assert quoted == ["#江城市第一人民医院回应产妇死亡#"]
    assert topic_tags("江城一院开展义诊", "居民纷纷点赞", topics) == []  # same hospital, another story: no tag


def test_hot_lists_and_rsshub_are_relays_never_outlets(story) -> None:  # type: ignore[no-untyped-def]
    from yuqing.analysis.events import Reach

    _, cfg, _, _, _ = story
    reach = Reach.from_sources(cfg.sources.sources)
    assert [o.source_id for o in reach.outlets] == ["jiangcheng-daily"]  # an RSSHub base URL would claim every page
    assert reach.tier("hot-weibo") == 2 and reach.tier("social") == 4


def test_the_console_shows_hot_list_appearances(story, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from contextlib import contextmanager

    from .web_support import WEB_SECRET, add_accounts, console_config, free_port, run_console

    store, cfg, clock, _, _ = story
    port = free_port()
    local = console_config(cfg, port)
    monkeypatch.setenv("YUQING_WEB_SECRET", WEB_SECRET)
    add_accounts(local, store, clock)
    with contextmanager(run_console)(local, store, clock, port) as console:
        client = console.client()
        client.login("duty-officer")
        event_id = hot_event(store).id
        for path in ("/", "/sources", f"/events/{event_id}"):
            page = client.get(path).text
            assert "微博热搜" in page and "第 7 名" in page and HOT_TITLE in page, path

"""Hot lists and RSSHub against recorded payloads on a local server, polled twice as the daemon would.

The payloads in tests/data/hotlists/ have the structure each platform serves (SOURCES.md there says
where each comes from). The hospital is the shipped example's: 江城市第一人民医院, 江城一院, ...
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from yuqing.crawler.hotlists import HotListFormatError, parse_hot_list
from yuqing.crawler.spiders.rsshub import rsshub_message
from yuqing.models import HotListEntry
from yuqing.store import Store

from .conftest import REPO, LocalHTTPServer
from .test_crawler_support import NOW, mentions, run_crawl, source, state, write_config

DATA = REPO / "tests" / "data" / "hotlists"
HOSPITAL = {"name": "江城市第一人民医院", "aliases": ["江城一院", "江城市一院", "市一院"], "ambiguous_aliases": ["市一院"],
            "context_words": ["江城"], "excluded": ["海城市一院"]}
NAMES = ["江城市第一人民医院", "江城市一院", "江城一院", "市一院"]
LISTS = {  # platform: (fixture, content type, rank of the hospital's entry, heat)
    "weibo": ("weibo_poll1.json", "application/json;charset=utf-8", 23, 210_433),
    "baidu": ("baidu.html", "text/html; charset=utf-8", 6, 3_800_000),
    "douyin": ("douyin.json", "application/json; charset=utf-8", 3, 9_512_000),
    "zhihu": ("zhihu.json", "application/json; charset=utf-8", 5, 6_240_000),
    "toutiao": ("toutiao.json", "application/json; charset=utf-8", 2, 27_483_821),
    "bilibili": ("bilibili.json", "application/json; charset=utf-8", 2, 1_818_000),
}
LATER = NOW + timedelta(minutes=5)
XHS = "/xiaohongshu/user/5a1b2c3d4e5f/notes"
PLATFORM_ROUTES = {  # RSSHub route: (recorded output, platform)
    "/freewechat/profile/MzI5NTUxNzk3OA==": ("rsshub_wechat.xml", "wechat"),
    "/douyin/user/MS4wLjABAAAA_example": ("rsshub_douyin_user.xml", "douyin"),
    "/xiaohongshu/user/5a1b2c3d4e5f/notes": ("rsshub_xiaohongshu_user.xml", "xiaohongshu"),
    "/zhihu/topic/19550994": ("rsshub_zhihu_topic.xml", "zhihu"),
    "/bilibili/vsearch/{query}": ("rsshub_bilibili_vsearch.xml", "bilibili"),
}
Polled = tuple[Store, dict, dict, Path, LocalHTTPServer]


def rsshub_routes(srv: LocalHTTPServer) -> None:
    """RSSHub's answers: a Weibo keyword feed for every name, an account timeline, a 503 and a 429."""
    keyword = (DATA / "rsshub_weibo_keyword.xml").read_bytes()
    for name in NAMES:
        srv.serve(f"/rsshub/weibo/keyword/{quote(name, safe='')}", keyword, "application/xml; charset=utf-8")
    srv.serve("/rsshub/weibo/user/5512345678", (DATA / "rsshub_weibo_user.xml").read_bytes(), "application/xml; charset=utf-8")
    srv.serve(f"/rsshub{XHS}", (DATA / "rsshub_503.html").read_bytes(), status=503)
    srv.serve("/limited/douyin/user/MS4wLjABAAAA", "Too Many Requests", "text/plain", status=429,
              headers={"Retry-After": "600"})
    for route, (name, _) in PLATFORM_ROUTES.items():
        for path in ([route.replace("{query}", quote(n, safe="")) for n in NAMES] if "{query}" in route else [route]):
            srv.serve(f"/platforms{path}", (DATA / name).read_bytes(), "application/xml; charset=utf-8")


def sources(srv: LocalHTTPServer) -> list[dict]:
    found = [source(f"hot-{p}", "hotlist", f"{srv.base}/{p}", platform=p, tier=2, interval_minutes=5) for p in LISTS]
    found.append(source("rsshub-social", "rsshub", f"{srv.base}/rsshub/", tier=4, routes=[
        {"path": "/weibo/keyword/{query}", "platform": "weibo"},
        {"path": "/weibo/user/5512345678", "platform": "weibo", "name": "医院官方微博"},
        {"path": XHS, "platform": "xiaohongshu"},
    ]))
    found.append(source("rsshub-platforms", "rsshub", f"{srv.base}/platforms", tier=4,
                        routes=[{"path": path, "platform": platform} for path, (_, platform) in PLATFORM_ROUTES.items()]))
    found.append(source("rsshub-limited", "rsshub", f"{srv.base}/limited", tier=4,
                        routes=[{"path": "/douyin/user/MS4wLjABAAAA", "platform": "douyin"}]))
    return found


@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Polled]:
    """Every list and RSSHub polled; then Weibo's list polled again (climbed), then once in a changed format."""
    root = tmp_path_factory.mktemp("hotlists")
    srv = LocalHTTPServer()
    for platform, (name, ctype, _, _) in LISTS.items():
        srv.serve(f"/{platform}", (DATA / name).read_bytes(), ctype)
    rsshub_routes(srv)
    cfg_dir = write_config(root, HOSPITAL, sources(srv))
    store = Store.migrated(f"sqlite:///{root / 'yuqing.db'}")
    try:
        first = run_crawl(cfg_dir, store)
        srv.serve("/weibo", (DATA / "weibo_poll2.json").read_bytes(), LISTS["weibo"][1])
        second = run_crawl(cfg_dir, store, ["hot-weibo"], now=LATER)
        yield store, first, second, cfg_dir, srv
    finally:
        srv.close()


def entries(store: Store) -> dict[str, HotListEntry]:
    with store.session() as sess:
        return {e.platform: e for e in sess.scalars(select(HotListEntry))}


def test_every_hot_list_yields_its_entry_naming_the_hospital(polled: Polled) -> None:
    store, first, _, _, _ = polled
    found = entries(store)
    assert set(found) == set(LISTS)
    for platform, (_, _, rank, heat) in LISTS.items():
        run = first[f"hot-{platform}"]
        assert run["outcome"] == "ok" and run["stored"] == 1, (platform, run)
        entry = found[platform]
        assert entry.first_seen_at == NOW and entry.source_id == f"hot-{platform}"
        if platform != "weibo":  # weibo's was moved by the second poll
            assert (entry.rank, entry.best_rank, entry.heat, entry.last_seen_at) == (rank, rank, heat, NOW), platform
        [mention] = mentions(store, f"hot-{platform}")
        assert mention.platform == platform and mention.kind == "news" and "产妇" in mention.title
    assert mentions(store, "hot-bilibili")[0].author == "江城新闻眼"


def test_a_later_poll_moves_rank_heat_and_last_seen_instead_of_storing_again(polled: Polled) -> None:
    store, _, second, _, _ = polled
    run = second["hot-weibo"]
    assert run["outcome"] == "ok" and run["stored"] == 0 and run["duplicates"] == 0
    assert len(mentions(store, "hot-weibo")) == 1
    weibo = entries(store)["weibo"]
    assert (weibo.rank, weibo.best_rank, weibo.heat, weibo.peak_heat) == (7, 7, 1_286_550, 1_286_550)
    assert (weibo.first_seen_at, weibo.last_seen_at, weibo.rose_at, weibo.polls) == (NOW, LATER, LATER, 2)


def test_rsshub_items_keep_author_and_platform(polled: Polled) -> None:
    store, first, _, _, _ = polled
    found = {m.url: m for m in mentions(store, "rsshub-social")}
    assert set(found) == {"https://weibo.com/2803301701/PbXy1a2b3", "https://weibo.com/6012345678/PbXz9c8d7",
                          "https://weibo.com/5512345678/PbXw5e6f7"}  # not the 海城市一院 post
    official = found["https://weibo.com/5512345678/PbXw5e6f7"]
    assert (official.author, official.platform, official.kind) == ("江城市第一人民医院", "weibo", "post")
    assert found["https://weibo.com/6012345678/PbXz9c8d7"].author == "小鱼不吃鱼"
    assert first["rsshub-social"]["not_mentioning"] >= 1


def test_every_platform_route_keeps_its_platform_and_author(polled: Polled) -> None:
    store, first, _, _, _ = polled
    assert first["rsshub-platforms"]["outcome"] == "ok" and first["rsshub-platforms"]["errors"] == 0
    found = {m.platform: (m.author, m.kind) for m in mentions(store, "rsshub-platforms")}
    assert found == {"wechat": ("江城晚报", "post"), "douyin": ("江城身边事", "post"),
                     "xiaohongshu": ("江城宝妈日记", "post"), "zhihu": ("医法观察", "post"), "bilibili": ("江城新闻眼", "post")}


def test_an_rsshub_503_is_reported_against_the_source(polled: Polled) -> None:
    store, first, _, _, _ = polled
    social = state(store, "rsshub-social")  # other routes worked: ok, but the failing route is named
    assert first["rsshub-social"]["outcome"] == "ok"
    assert social.last_error is not None
    assert f"RSSHub HTTP 503 on route {XHS} (xiaohongshu)" in social.last_error
    assert "ConfigNotFoundError: Xiaohongshu RSS is disabled" in social.last_error and "cookie" in social.last_error
    limited = state(store, "rsshub-limited")  # its only route is rate limited: the source is failing
    assert first["rsshub-limited"]["outcome"] == "failed" and limited.consecutive_failures == 1
    assert "RSSHub HTTP 429" in (limited.last_error or "") and "retry after 600 s" in (limited.last_error or "")


def test_a_list_whose_format_changed_fails_its_source_with_the_missing_key(polled: Polled) -> None:
    store, _, _, cfg_dir, srv = polled
    srv.serve("/weibo", (DATA / "weibo_changed.json").read_bytes(), LISTS["weibo"][1])
    report = run_crawl(cfg_dir, store, ["hot-weibo"], now=LATER + timedelta(minutes=5))
    assert report["hot-weibo"]["outcome"] == "failed" and report["hot-weibo"]["stored"] == 0
    weibo = state(store, "hot-weibo")
    assert weibo.consecutive_failures == 1
    assert "weibo hot list format changed: no data.realtime in the response" in (weibo.last_error or "")


@pytest.mark.parametrize("platform, body, says", [
    ("weibo", b'{"ok":-100,"msg":"\\u8bf7\\u5148\\u767b\\u5f55","data":{}}', "weibo refused the hot list: ok=-100 请先登录"),
    ("bilibili", b'{"code":-352,"message":"-352","ttl":1}', "bilibili refused the hot list: code=-352"),
    ("douyin", b'{"status_code":0,"data":{"word_list":[]}}', "douyin hot list is empty"),
    ("zhihu", b'{"data":[{"card_id":"Q_1","detail_text":"1 \\u4e07\\u70ed\\u5ea6"}]}', "entries of data have no 'target.title'"),
    ("toutiao", b"<html><body>\xe9\xaa\x8c\xe8\xaf\x81</body></html>", "toutiao hot list is not JSON"),
    ("baidu", b"<html><body>ok</body></html>", "no <!--s-data:...--> block"),
])
def test_changed_or_refused_lists_are_errors_not_empty(platform: str, body: bytes, says: str) -> None:
    with pytest.raises(HotListFormatError) as err:
        parse_hot_list(platform, body)
    assert says in str(err.value)


def test_rsshub_message_is_read_from_its_error_page() -> None:
    message = rsshub_message(503, (DATA / "rsshub_503.html").read_bytes())
    assert message.startswith("ConfigNotFoundError: Xiaohongshu RSS is disabled due to the lack of")
    assert "relevant config" in message and "<" not in message
    assert rsshub_message(429, b"Too Many Requests") == "Too Many Requests"
    assert rsshub_message(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>") == ""


def test_config_names_what_a_hotlist_or_rsshub_source_lacks(tmp_path: Path) -> None:
    import yaml

    from yuqing.config import ConfigError, load_config

    from .conftest import SECRETS, write_config_dir

    bad = write_config_dir(tmp_path / "bad", [
        source("hot", "hotlist", "https://weibo.com/ajax/side/hotSearch"),
        source("hub", "rsshub", "http://127.0.0.1:1200"),
        source("hub2", "rsshub", "http://127.0.0.1:1200", routes=[{"path": "weibo/keyword/{query}", "platform": "weibo"}]),
    ])
    with pytest.raises(ConfigError) as err:
        load_config(bad, env=SECRETS)
    problems = str(err.value)
    assert "sources.0: Value error, a hotlist source needs platform" in problems
    assert "sources.1: Value error, an rsshub source needs routes" in problems
    assert "sources.2.routes.0.path: String should match pattern '^/'" in problems
    # the commented RSSHub example in the shipped sources.yaml is valid once uncommented
    text = (REPO / "config" / "sources.yaml").read_text(encoding="utf-8")
    block = text[text.index("  # - id: social-rsshub"):]
    example = yaml.safe_load("\n".join(line.replace("  # ", "  ", 1) for line in block.splitlines()
                                       if line.startswith("  #   ") or line.startswith("  # - ")))
    good = write_config_dir(tmp_path / "good", example)
    [hub] = [s for s in load_config(good, env=SECRETS).sources.sources if s.kind == "rsshub"]
    assert {r.platform for r in hub.routes} == {"weibo", "wechat", "douyin", "xiaohongshu", "zhihu", "bilibili"}


def test_an_entry_whose_page_another_source_stored_still_gets_its_time_on_the_list(tmp_path: Path) -> None:
    from yuqing.crawler.canonical import canonical_url, url_key
    from yuqing.models import Mention, MentionURL, SourceState

    page = canonical_url("https://www.douyin.com/hot/2203199")
    srv = LocalHTTPServer()
    try:
        srv.serve("/douyin", (DATA / "douyin.json").read_bytes(), "application/json")
        cfg_dir = write_config(tmp_path, HOSPITAL, [source("hot-douyin", "hotlist", f"{srv.base}/douyin", platform="douyin")])
        store = Store.migrated(f"sqlite:///{tmp_path / 'yuqing.db'}")
        with store.session() as sess:
            sess.add(SourceState(id="news-search", kind="search", name="新闻搜索", url="https://s.example/?q={query}", tier=3))
            sess.flush()
            stored = Mention(url=page, source_id="news-search", title="江城一院产妇死亡 家属发声", text="", fetched_at=NOW,
                             content_hash="0" * 64, matched_names=["江城一院"])
            stored.urls.append(MentionURL(url=page, url_key=url_key(page), source_id="news-search", seen_at=NOW))
            sess.add(stored)
            sess.flush()
            known = stored.id
        report = run_crawl(cfg_dir, store)
        assert report["hot-douyin"]["outcome"] == "ok" and report["hot-douyin"]["stored"] == 0
        entry = entries(store)["douyin"]
        assert (entry.mention_id, entry.rank, entry.first_seen_at) == (known, 3, NOW)
        with store.session() as sess:
            assert sess.query(Mention).count() == 1 and sess.query(MentionURL).count() == 1
        store.dispose()
    finally:
        srv.close()

"""RSS/Atom sources against the real feeds in ../shared, polled twice: the second poll costs 304s.

The test hospital's names are words that really occur in those feeds (LongCat in Meituan's
feed, 科技爱好者周刊 in Ruan Yifeng's RSS and Atom feeds, which carry the same posts).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from yuqing.config import Hospital
from yuqing.crawler.feeds import parse_feed
from yuqing.crawler.mention_filter import MentionMatcher
from yuqing.store import Store

from .conftest import SHARED, LocalHTTPServer
from .test_crawler_support import CORPORA, NOW, mentions, run_crawl, source, state, urls, write_config

FEEDS = CORPORA / "feeds"
HOSPITAL = {"name": "科技爱好者周刊", "aliases": ["LongCat"], "excluded": ["LongCat-Flash"]}
ETAG = '"meituan-v1"'
LAST_MODIFIED = "Fri, 28 Nov 2025 00:14:06 GMT"
LATER = NOW + timedelta(minutes=30)


def conditional(body: bytes, etag: str | None = None, last_modified: str | None = None) -> Any:
    """A feed route that answers 304 when the crawler sends back the validators it was given."""
    def route(handler: Any) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/rss+xml; charset=utf-8"}
        if etag:
            headers["ETag"] = etag
        if last_modified:
            headers["Last-Modified"] = last_modified
        fresh = (etag and handler.headers.get("If-None-Match") == etag) or (
            last_modified and handler.headers.get("If-Modified-Since") == last_modified)
        return (304, headers, b"") if fresh else (200, headers, body)
    return route


def _slow(handler: Any) -> tuple[int, dict[str, str], bytes]:
    time.sleep(2.5)
    return 200, {"Content-Type": "application/rss+xml"}, b"<rss/>"


# Real servers send all of these; each must be parsed or failed with a reason, never crash.
MALFORMED = ("\n\n  <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel><title>t</title>"
             "<item><title>LongCat & 江城</title><link>http://127.0.0.1/m1</link>"
             "<description>LongCat 团队 <b>未闭合的标签</description></item></channel></rss>")
BROKEN = {
    "feed-down": ("/down.xml", "HTTP 503"),
    "feed-slow": ("/slow.xml", "timed out"),
    "feed-html": ("/not-a-feed.xml", "not a readable feed"),
    "feed-photo": ("/photo.xml", "binary content"),
    # cut off mid-item: feedparser flags it and returns one entry with no link; a failure, not a healthy poll
    "feed-truncated": ("/truncated.xml", "not well-formed"),
}
TRUNCATED = '<?xml version="1.0"?><rss version="2.0"><channel><title>江城日报</title><item><title>江城一院 &nbsp; 新'



@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, dict, dict, LocalHTTPServer]]:
    """Two polls of the real feeds and the broken ones, each poll one subprocess."""
    if not (SHARED / "corpora").is_dir():
        pytest.skip(f"needs the shared corpora at {SHARED} (absent on this machine)")
    root = tmp_path_factory.mktemp("feeds")
    srv = LocalHTTPServer()
    srv.serve("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    srv.routes["/meituan.xml"] = conditional((FEEDS / "meituan.rss.xml").read_bytes(), etag=ETAG)
    srv.routes["/ruanyifeng.xml"] = conditional((FEEDS / "ruanyifeng.rss.xml").read_bytes(), last_modified=LAST_MODIFIED)
    srv.serve("/ruanyifeng.atom", (FEEDS / "ruanyifeng.atom.xml").read_bytes(), "application/atom+xml")
    srv.serve("/malformed.xml", MALFORMED, "application/rss+xml")
    srv.serve("/down.xml", "unavailable", status=503)
    srv.routes["/slow.xml"] = _slow
    srv.serve("/not-a-feed.xml", "<html><body><p>维护中</p></body></html>", "text/html; charset=utf-8")
    srv.serve("/photo.xml", b"\x89PNG\r\n\x1a\n" + bytes(500), "image/png")
    srv.serve("/truncated.xml", TRUNCATED, "application/rss+xml")
    sources = [source("meituan", "rss", srv.base + "/meituan.xml"),
               source("ruanyifeng-rss", "rss", srv.base + "/ruanyifeng.xml"),
               source("ruanyifeng-atom", "rss", srv.base + "/ruanyifeng.atom"),
               source("malformed", "rss", srv.base + "/malformed.xml")]
    sources += [source(sid, "rss", srv.base + path) for sid, (path, _) in BROKEN.items()]
    cfg_dir = write_config(root, HOSPITAL, sources)
    store = Store.migrated(f"sqlite:///{root / 'yuqing.db'}")
    first = run_crawl(cfg_dir, store)
    first_requests = len(srv.requests)
    second = run_crawl(cfg_dir, store, now=LATER)
    srv.first_requests = first_requests  # type: ignore[attr-defined]
    yield store, first, second, srv
    srv.close()
    store.dispose()


def ruanyifeng(store: Store) -> list[Any]:
    """Mentions from either of the blog's feeds (they run at once; either may see a post first)."""
    return mentions(store, "ruanyifeng-rss") + mentions(store, "ruanyifeng-atom")


def expected_titles(feed: str) -> set[str]:
    """Entries of a real feed the hospital's matcher accepts (the matcher is tested on its own)."""
    matcher = MentionMatcher(Hospital(**HOSPITAL))
    return {e.title for e in parse_feed((FEEDS / feed).read_bytes()) if matcher.match(e.title, e.text)}


def test_real_feeds_with_whitespace_before_the_xml_declaration_are_parsed(polled):
    store, first, _, _ = polled
    assert (FEEDS / "meituan.rss.xml").read_bytes()[:1].isspace()
    stored = {m.title for m in mentions(store, "meituan")}
    assert stored == expected_titles("meituan.rss.xml")
    assert 5 <= len(stored) < 10  # items not naming us (ICCV, 数据库) are not stored
    assert first["meituan"]["not_mentioning"] == 10 - len(stored)
    ruan = {m.title for m in ruanyifeng(store)}
    assert ruan == expected_titles("ruanyifeng.rss.xml") | expected_titles("ruanyifeng.atom.xml")


def test_mentions_keep_what_matched_and_when(polled):
    store, _, _, _ = polled
    weekly = next(m for m in ruanyifeng(store) if "375" in m.title)
    assert weekly.matched_names == ["科技爱好者周刊"] and "科技爱好者周刊" in weekly.match_context
    assert weekly.published_at.isoformat() == "2025-11-28T00:14:06+00:00"  # +0800 in the feed
    assert weekly.url == "http://www.ruanyifeng.com/blog/2025/11/weekly-issue-375.html"
    assert weekly.fetched_at == NOW and weekly.kind == "news"


def test_excluded_look_alike_alone_is_not_a_mention(polled):
    store, _, _, _ = polled
    titles = {m.title for m in mentions(store, "meituan")}
    # Every LongCat in the Omni post is inside the excluded LongCat-Flash; the Thinking post
    # also says "美团 LongCat 团队", which counts.
    assert not any(t.startswith("LongCat-Flash-Omni") for t in titles)
    assert any(t.startswith("LongCat-Flash-Thinking") for t in titles)


def test_the_same_post_in_two_feeds_is_stored_once(polled):
    store, first, _, _ = polled
    both = expected_titles("ruanyifeng.rss.xml") & expected_titles("ruanyifeng.atom.xml")
    assert len(both) == 2
    titles = [m.title for m in ruanyifeng(store)]
    assert len(titles) == len(set(titles))
    assert first["ruanyifeng-rss"]["duplicates"] + first["ruanyifeng-atom"]["duplicates"] == len(both)


def test_malformed_xml_is_read_leniently(polled):
    store, first, _, _ = polled
    found = mentions(store, "malformed")
    assert first["malformed"]["outcome"] == "ok" and len(found) == 1
    assert found[0].matched_names == ["LongCat"]


def test_second_poll_sends_validators_and_gets_304(polled):
    store, _, second, srv = polled
    later = srv.requests[srv.first_requests:]
    meituan = [h for _, path, h in later if path == "/meituan.xml"]
    ruan = [h for _, path, h in later if path == "/ruanyifeng.xml"]
    assert meituan[0].get("If-None-Match") == ETAG
    assert ruan[0].get("If-Modified-Since") == LAST_MODIFIED
    for sid in ("meituan", "ruanyifeng-rss"):
        assert second[sid]["outcome"] == "not_modified" and second[sid]["stored"] == 0
        health = state(store, sid)
        assert health.not_modified == 1 and health.last_success_at == LATER and health.consecutive_failures == 0
    assert state(store, "meituan").etag == ETAG
    assert state(store, "ruanyifeng-rss").last_modified == LAST_MODIFIED


def test_unchanged_content_without_validators_stores_nothing_new(polled):
    store, first, second, _ = polled
    assert second["malformed"]["stored"] == 0 and second["malformed"]["duplicates"] == 1
    assert len(urls(store)) == sum(first[s]["stored"] + first[s]["reposts"] for s in first if s != "_log")


@pytest.mark.parametrize("sid", sorted(BROKEN))
def test_failing_feeds_count_consecutive_failures(polled, sid):
    store, first, second, _ = polled
    assert first[sid]["outcome"] == second[sid]["outcome"] == "failed"
    health = state(store, sid)
    assert health.consecutive_failures == 2
    assert health.failing_since == NOW and health.last_error_at == LATER  # first failure kept
    assert BROKEN[sid][1] in health.last_error
    assert health.last_success_at is None


def test_healthy_feeds_are_not_held_up_by_failing_ones(polled):
    _, first, _, _ = polled
    assert all(first[s]["outcome"] == "ok" for s in ("meituan", "ruanyifeng-rss", "ruanyifeng-atom", "malformed"))


# --- summary-only feeds: the linked article is read (fetch_articles) ---------------------------

CITY_HOSPITAL = {"name": "江城市第一人民医院", "aliases": ["江城一院"]}
SUMMARY_PUBDATE = "Sun, 22 Nov 2026 02:00:00 GMT"


def _summary_feed(links: list[tuple[str, str]]) -> str:
    """An RSS feed whose entries carry one sentence each, none naming the hospital."""
    items = "".join(f"<item><title>{title}</title><link>{link}</link><pubDate>{SUMMARY_PUBDATE}</pubDate>"
                    f"<description>&lt;p&gt;本市卫生系统今日发布一则新的消息。&lt;/p&gt;</description></item>"
                    for link, title in links)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>江城晚报</title>'
            f"<link>http://127.0.0.1/</link>{items}</channel></rss>")


def _article(title: str, lead: str) -> str:
    """A news page whose body (several paragraphs) names the hospital; it states no time."""
    paragraphs = "".join(f"<p>{lead}{sentence}</p>" for sentence in (
        "江城市第一人民医院心内科团队完成了全市首例新型介入手术，患者术后恢复良好，已于本周出院回家。",
        "据医院介绍，这项技术创伤小、恢复快，今后将在更多科室推广，让更多患者在家门口就能得到治疗。",
        "市卫生健康委员会相关负责人表示，将继续支持江城一院等医疗机构开展新技术、新项目的临床应用。",
        "记者在现场看到，前来咨询的市民络绎不绝，医护人员耐心解答了大家关心的各种问题和注意事项。"))
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}_江城晚报</title></head><body>'
            f'<div class="nav"><a href="/">首页</a> | 新闻 | 健康</div><div class="article"><h1>{title}</h1>'
            f'<div class="content">{paragraphs}</div></div><div class="footer">版权所有 江城晚报</div></body></html>')


@pytest.fixture(scope="module")
def summaries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, dict, dict, LocalHTTPServer]]:
    """Summary-only feeds polled twice: articles on the feed's own server, one off-domain, one failing."""
    root = tmp_path_factory.mktemp("summaries")
    srv = LocalHTTPServer()
    off = f"http://localhost:{srv.port}"  # the same server under another host name: off the source's domains
    srv.serve("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    srv.serve("/summary.xml", _summary_feed([
        ("/articles/a1.html", "新型介入手术在我市成功开展"), ("/articles/a2.html", "微创技术惠及更多患者"),
        (f"{off}/articles/off.html", "外站的一篇报道"), ("/articles/broken.html", "服务器出错的报道"),
        ("/private/p1.html", "robots.txt 不许抓的报道")]), "application/rss+xml")
    srv.serve("/never.xml", _summary_feed([("/articles/n1.html", "不读全文的报道")]), "application/rss+xml")
    srv.routes["/cond.xml"] = conditional(_summary_feed([("/articles/c1.html", "条件请求的报道")]).encode(),
                                          etag='"cond-v1"')
    for name in ("a1", "a2", "off", "n1", "c1"):
        srv.serve(f"/articles/{name}.html", _article(f"报道{name}", f"【{name}】"))
    srv.serve("/private/p1.html", _article("不许抓", "【p1】"))
    srv.serve("/articles/broken.html", "服务器错误", status=500)
    sources = [source("summary", "rss", srv.base + "/summary.xml"),
               source("summary-never", "rss", srv.base + "/never.xml", fetch_articles="never"),
               source("summary-cond", "rss", srv.base + "/cond.xml")]
    cfg_dir = write_config(root, CITY_HOSPITAL, sources)
    store = Store.migrated(f"sqlite:///{root / 'yuqing.db'}")
    first = run_crawl(cfg_dir, store)
    srv.first_requests = len(srv.requests)  # type: ignore[attr-defined]
    second = run_crawl(cfg_dir, store, now=LATER)
    yield store, first, second, srv
    srv.close()
    store.dispose()


def _paths(requests: list[tuple[str, str, dict[str, str]]]) -> list[str]:
    return [path for _, path, _ in requests]


def test_summary_only_entries_are_stored_from_the_full_article(summaries):
    store, first, _, _ = summaries
    found = {m.url.rsplit("/", 1)[-1]: m for m in mentions(store, "summary")}
    assert set(found) == {"a1.html", "a2.html"}
    a1 = found["a1.html"]
    assert a1.title == "新型介入手术在我市成功开展"  # the feed entry's title
    assert "【a1】江城市第一人民医院心内科团队" in a1.text and "全市首例新型介入手术" in a1.text
    assert "本市卫生系统今日发布" not in a1.text and "版权所有" not in a1.text
    assert a1.matched_names and a1.published_at.isoformat() == "2026-11-22T02:00:00+00:00"  # the feed's time
    assert first["summary"]["stored"] == 2 and first["summary"]["outcome"] == "ok"
    assert {m.url.rsplit("/", 1)[-1] for m in mentions(store, "summary-cond")} == {"c1.html"}


def test_off_domain_and_robots_disallowed_articles_are_not_fetched(summaries):
    _, _, _, srv = summaries
    paths = _paths(srv.requests)
    assert "/articles/a1.html" in paths and "/articles/a2.html" in paths
    assert "/articles/off.html" not in paths and "/private/p1.html" not in paths


def test_fetch_articles_never_stores_the_feed_text_only(summaries):
    store, first, _, srv = summaries
    assert mentions(store, "summary-never") == []
    assert first["summary-never"]["not_mentioning"] == 1 and first["summary-never"]["outcome"] == "ok"
    assert "/articles/n1.html" not in _paths(srv.requests)


def test_a_failing_article_page_does_not_fail_the_source(summaries):
    store, first, _, srv = summaries
    assert "/articles/broken.html" in _paths(srv.requests[:srv.first_requests])
    assert not any("broken" in m.url for m in mentions(store))
    assert first["summary"]["errors"] == 1 and "HTTP 500" in first["summary"]["last_error"]
    health = state(store, "summary")
    assert health.consecutive_failures == 0 and health.last_success_at == LATER
    assert "HTTP 500" in health.last_error


def test_articles_already_read_are_not_fetched_again_and_304_costs_nothing_more(summaries):
    store, first, second, srv = summaries
    later = _paths(srv.requests[srv.first_requests:])
    assert {p for p in later if p.startswith("/articles/")} == {"/articles/broken.html"}  # the failed one only
    assert second["summary"]["stored"] == 0 and second["summary"]["skipped_known"] == 2
    assert second["summary-cond"]["outcome"] == "not_modified" and later.count("/cond.xml") == 1
    assert len(mentions(store)) == 3

"""Web sources against real Chinese news pages served locally, with every fault a real site throws.

One crawl subprocess runs all the sources of this module, the healthy one among six broken
ones, so the run also shows that one failing source holds no other up. The hospital's names
are words that really occur in the corpus pages (a test config, not a real hospital).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from yuqing.store import Store

from .conftest import SHARED, LocalHTTPServer
from .test_crawler_support import CORPORA, NOW, mentions, run_crawl, source, state, urls, write_config

NEWS = CORPORA / "news_pages"
GBK = CORPORA / "cn_extraction" / "original"
GBK_PAGES = {"asco": "4fa9dfe4-874c-4c43-9260-6ea22710852c", "qigong": "c268c1b4-6864-45a1-bcaa-ec0922eb10d1"}
HOSPITAL = {
    "name": "武汉市金银潭医院",
    # Each alias occurs in real corpus pages: toutiao/5, ifeng/1, thepaper/2 = thepaper/4 (a real
    # repost under two URLs), and the GBK pages 4fa9dfe4 and c268c1b4.
    "aliases": ["金银潭医院", "禹州市人民医院", "南沙邮轮母港", "美国临床肿瘤学会", "陈建民"],
    "doctors": ["汪勇"],
}
ROBOTS = "User-agent: *\nDisallow: /private/\n"
TEN_MB = 10 * 1024 * 1024


def _slow(handler: Any) -> tuple[int, dict[str, str], bytes]:
    """Answers after the crawl's 1 s timeout has passed."""
    time.sleep(2.5)
    return 200, {"Content-Type": "text/html; charset=utf-8"}, b"<html><body>too late</body></html>"


def _list_page(links: list[tuple[str, str]]) -> str:
    """A news list page with headline links plus the navigation a real one has."""
    items = "".join(f'<li><a href="{href}">{title}</a></li>' for href, title in links)
    return (f'<html><head><meta charset="utf-8"><title>新闻</title></head><body>'
            f'<nav><a href="/">首页</a> <a href="/news/163-1.html">导航里的长链接不算新闻标题</a></nav>'
            f'<ul class="list">{items}</ul><a href="https://elsewhere.example.com/x.html">别的网站的一篇新闻报道</a>'
            f'<a href="/list2.html" rel="next">下一页</a></body></html>')


def serve_site(srv: LocalHTTPServer) -> None:
    """Real pages behind our own list pages, and one fixture per fault."""
    srv.serve("/robots.txt", ROBOTS, "text/plain")
    for site, name in (("toutiao", "5"), ("ifeng", "1"), ("thepaper", "2"), ("thepaper", "4"), ("163", "1")):
        srv.serve(f"/news/{site}-{name}.html", (NEWS / site / f"{name}.html").read_bytes())
    for key, stem in GBK_PAGES.items():  # GBK bytes, while the server claims UTF-8
        srv.serve(f"/gbk/{key}.html", (GBK / f"{stem}.html").read_bytes(), "text/html; charset=utf-8")
    page = (NEWS / "toutiao" / "5.html").read_bytes()
    cut = page.find("却连一顿大米饭".encode())  # mid-article: the rest of the page never arrives
    srv.serve("/news/truncated.html", page[:cut])
    srv.serve("/news/big.html", b"<html><body>" + b"x" * TEN_MB + b"</body></html>")
    srv.serve("/news/away.html", b"", status=302, headers={"Location": f"http://localhost:{srv.port}/news/toutiao-5.html"})
    srv.serve("/news/photo.html", b"\x89PNG\r\n\x1a\n" + bytes(2000), "image/png")
    srv.serve("/news/broken.html", "服务器错误", status=500)
    srv.routes["/news/slow.html"] = _slow
    srv.serve("/private/secret.html", (NEWS / "ifeng" / "1.html").read_bytes())
    srv.serve("/list.html", _list_page([
        ("/news/toutiao-5.html?utm_source=weixin&spm=a2c4.1&from=timeline#comments", "顺丰小哥汪勇连升3级国家授予特别奖"),
        ("/news/toutiao-5.html?share_token=abc", "同一篇报道换了分享参数的链接"),
        ("/news/ifeng-1.html", "女童眼睛被塞几十片纸无法用科学解释"),
        ("/news/thepaper-2.html", "定了广州南沙邮轮母港即将开通"),
        ("/news/thepaper-4.html?utm_medium=social", "定了广州南沙邮轮母港即将开通（转载）"),
        ("/news/163-1.html", "多地项目连环爆雷狂奔的龙湖集团"),
        ("/gbk/asco.html", "美国临床肿瘤学会第40届年会落幕"),
        ("/gbk/qigong.html", "2004中国十大科技骗局"),
        ("/news/truncated.html", "一个只传了一半的页面"),
        ("/news/big.html", "一个十兆字节的超大页面"),
        ("/news/away.html", "一个跳转到别的网站的链接"),
        ("/news/photo.html", "其实是一张图片的链接"),
        ("/news/broken.html", "服务器出错的新闻页面"),
        ("/news/slow.html", "服务器迟迟不回答的页面"),
        ("/private/secret.html", "robots.txt 不许抓的页面"),
    ]))
    srv.serve("/list2.html", _list_page([("/news/ifeng-1.html#top", "第二页上又出现的同一篇报道")]).replace('rel="next"', ""))
    # A source the site has consented to (obey_robots: false) may read under /private/.
    srv.serve("/private/consent-list.html",
              '<html><body><a href="/private/consent.html">经网站同意抓取的一篇新闻</a></body></html>')
    srv.serve("/private/consent.html", (NEWS / "cjn" / "1.html").read_bytes())
    # Broken sources: each list page fails in its own way.
    srv.serve("/private/list.html", _list_page([("/news/toutiao-5.html", "被禁止的列表页上的新闻")]))
    srv.serve("/broken-list.html", "维护中", status=500)
    srv.routes["/slow-list.html"] = _slow
    srv.serve("/away-list.html", b"", status=301, headers={"Location": f"http://localhost:{srv.port}/list.html"})
    srv.serve("/big-list.html", b"<html><body>" + b"y" * TEN_MB + b"</body></html>")
    srv.serve("/photo-list.html", b"\x89PNG\r\n\x1a\n" + bytes(2000), "image/png")


BROKEN = {
    "robots": ("/private/list.html", "robots.txt disallows"),
    "down": ("/broken-list.html", "HTTP 500"),
    "slow": ("/slow-list.html", "timed out"),
    "moved": ("/away-list.html", "redirect off-domain to localhost"),
    "huge": ("/big-list.html", "over the size cap"),
    "photo": ("/photo-list.html", "binary content (image/png)"),
}


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, dict[str, Any], LocalHTTPServer]]:
    """One crawl of the healthy news source and six broken ones, in one subprocess."""
    if not (SHARED / "corpora").is_dir():
        pytest.skip(f"needs the shared corpora at {SHARED} (absent on this machine)")
    root = tmp_path_factory.mktemp("web")
    srv = LocalHTTPServer()
    serve_site(srv)
    sources = [source("news", "web", srv.base + "/list.html", max_pages=2)]
    sources += [source(f"web-{key}", "web", srv.base + path) for key, (path, _) in BROKEN.items()]
    sources.append(source("web-consent", "web", srv.base + "/private/consent-list.html", obey_robots=False))
    cfg_dir = write_config(root, HOSPITAL, sources)
    store = Store.migrated(f"sqlite:///{root / 'yuqing.db'}")
    report = run_crawl(cfg_dir, store)
    srv.cfg_dir = cfg_dir  # type: ignore[attr-defined]
    yield store, report, srv
    srv.close()
    store.dispose()


def srv_config(crawled: tuple[Store, dict[str, Any], LocalHTTPServer]) -> Path:
    """The module's config directory."""
    return crawled[2].cfg_dir  # type: ignore[attr-defined]


def _by_url(store: Store) -> dict[str, Any]:
    return {u.url.split("/", 3)[3]: u for u in urls(store)}


def test_real_pages_naming_the_hospital_are_stored(crawled):
    store, report, _ = crawled
    stored = {m.url.split("/", 3)[3]: m for m in mentions(store, "news")}
    assert "news/toutiao-5.html" in stored and "news/ifeng-1.html" in stored
    assert "news/163-1.html" not in stored  # names no alias of ours: not stored
    toutiao = stored["news/toutiao-5.html"]
    assert toutiao.matched_names[0] == "金银潭医院" and "金银潭医院" in toutiao.match_context
    assert toutiao.title.startswith("顺丰小哥汪勇连升3级")
    assert toutiao.published_at is not None and toutiao.published_at.tzinfo is not None
    assert toutiao.fetched_at == NOW
    assert report["news"]["outcome"] == "ok" and report["news"]["not_mentioning"] >= 1


def test_gbk_pages_claiming_utf8_come_out_right(crawled):
    store, _, _ = crawled
    by_path = {m.url.split("/", 3)[3]: m for m in mentions(store, "news")}
    for key, word in (("asco", "美国临床肿瘤学会"), ("qigong", "陈建民")):
        m = by_path[f"gbk/{key}.html"]
        gold = (SHARED / "corpora/cn_extraction/cleaned" / f"{GBK_PAGES[key]}.txt").read_text(encoding="utf-8")
        assert word in m.text and "\ufffd" not in m.text + m.title
        assert gold.split()[0][:20] in m.text  # the labelled body's opening words, not mojibake


def test_tracking_parameters_and_fragments_are_stripped(crawled):
    store, _, srv = crawled
    stored = _by_url(store)
    assert "news/toutiao-5.html" in stored
    assert not any("utm_" in u or "spm" in u or "share_token" in u or "#" in u for u in stored)
    fetched = [path for _, path, _ in srv.requests if path.startswith("/news/toutiao-5.html")]
    assert len(fetched) == 1  # two shared links to one article: fetched once


def test_a_repost_under_two_urls_is_one_mention(crawled):
    store, report, _ = crawled
    reposted = [m for m in mentions(store, "news") if "南沙邮轮母港" in m.matched_names]
    assert len(reposted) == 1
    assert sorted(u.url.rsplit("/", 1)[1] for u in reposted[0].urls) == ["thepaper-2.html", "thepaper-4.html"]
    assert report["news"]["reposts"] == 1


def test_truncated_html_is_still_read(crawled):
    store, _, _ = crawled
    stored = {m.url.rsplit("/", 1)[1]: m for m in mentions(store, "news")}
    part, whole = stored["truncated.html"].text, stored["toutiao-5.html"].text
    assert "金银潭医院" in part and len(part) < len(whole) * 0.7
    assert part.splitlines()[0] == whole.splitlines()[0]


def test_faulty_article_pages_are_logged_against_the_source(crawled):
    store, report, srv = crawled
    log = report["_log"]
    assert "over the size cap" in log and "redirect off-domain to localhost" in log
    assert "binary content (image/png)" in log and "HTTP 500" in log and "timed out" in log
    assert report["news"]["errors"] == 5
    paths = {path for _, path, _ in srv.requests}
    assert "/private/secret.html" not in paths  # robots.txt obeyed
    assert not any(p.startswith("/x.html") for p in paths)  # off-domain links not followed
    health = state(store, "news")
    assert health.consecutive_failures == 0 and health.last_success_at == NOW
    assert health.last_error and health.last_error_at == NOW
    assert health.mentions_found == len(urls(store))
    assert health.pages_fetched == report["news"]["pages"] >= 9


def test_user_agent_names_the_monitor_and_a_contact(crawled):
    _, _, srv = crawled
    agents = {headers.get("User-Agent") for _, _, headers in srv.requests}
    assert agents == {"yuqing-monitor/0.1 (test) (+it@hospital.example)"}


@pytest.mark.parametrize("key", sorted(BROKEN))
def test_a_broken_source_fails_alone_with_the_reason(crawled, key):
    store, report, _ = crawled
    run = report[f"web-{key}"]
    assert run["outcome"] == "failed" and BROKEN[key][1] in run["last_error"]
    health = state(store, f"web-{key}")
    assert health.consecutive_failures == 1 and health.failing_since == NOW
    assert BROKEN[key][1] in health.last_error and health.last_error_at == NOW
    assert health.last_success_at is None and health.mentions_found == 0


def test_robots_txt_can_be_overridden_for_one_source(crawled):
    _, report, srv = crawled
    run = report["web-consent"]
    assert run["outcome"] == "ok" and run["pages"] == 2 and run["not_mentioning"] == 1
    assert "/private/consent.html" in {path for _, path, _ in srv.requests}


def test_next_poll_does_not_fetch_articles_already_read(crawled):
    """Runs last: a second poll of the news list re-fetches only the articles that failed."""
    store, first, srv = crawled
    before = len(srv.requests)
    second = run_crawl(srv_config(crawled), store, ["news"], now=NOW + timedelta(minutes=30))
    fetched = {path.split("?")[0] for _, path, _ in srv.requests[before:]}
    assert fetched == {"/robots.txt", "/list.html", "/list2.html", "/news/big.html", "/news/away.html",
                       "/news/photo.html", "/news/broken.html", "/news/slow.html"}
    run = second["news"]
    assert run["skipped_known"] == first["news"]["stored"] + first["news"]["reposts"] + first["news"]["not_mentioning"]
    assert run["stored"] == 0 and run["outcome"] == "ok"

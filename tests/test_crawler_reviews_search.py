"""Reviews (microdata, JSON-LD, selectors; paginated; stop at the newest stored) and search sources.

Uses the shipped example hospital (江城市第一人民医院, its aliases, the ambiguous 市一院 and the
excluded 海城市一院) against fixture pages, polled twice: one new review in between.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from filelock import FileLock

from yuqing.config import load_config
from yuqing.crawler.runner import crawl_in_subprocess, lock_path
from yuqing.store import Store

from .conftest import REPO, LocalHTTPServer
from .test_crawler_support import NOW, mentions, run_crawl, source, state, write_config

HOSPITAL = yaml.safe_load((REPO / "config" / "hospital.yaml").read_text(encoding="utf-8"))
LATER = NOW + timedelta(hours=1)

OLD_REVIEWS = [  # newest first, as review sites list them
    ("张女士", "2026-11-22T20:10:00+08:00", 5, "心血管内科的医生很耐心，讲得很清楚。"),
    ("匿名用户", "2026-11-22T09:00:00+08:00", 1, "排队两个小时，挂号处态度恶劣。"),
    ("李先生", "2026-11-21T18:30:00+08:00", 4, "服务很好"),
    ("王阿姨", "2026-11-21T08:00:00+08:00", 4, "服务很好"),
    ("陈先生", "2026-11-20T10:00:00+08:00", 2, "停车太难，绕了三圈。"),
]
NEW_REVIEW = ("小雨妈妈", "2026-11-23T07:45:00+08:00", 1, "产科护士半夜叫不应，家属很着急。")


def microdata_page(reviews: list[tuple[str, str, int, str]], next_href: str | None, name: str) -> str:
    """Review microdata in the format the reviews spider documents (what `yuqing demo` serves)."""
    items = "".join(
        f'<div itemprop="review" itemscope itemtype="https://schema.org/Review">'
        f'<span itemprop="author">{author}</span><time itemprop="datePublished" datetime="{when}">{when[:10]}</time>'
        f'<span itemprop="reviewRating" itemscope itemtype="https://schema.org/Rating">'
        f'<meta itemprop="ratingValue" content="{rating}"></span><p itemprop="reviewBody">{text}</p></div>'
        for author, when, rating, text in reviews)
    nxt = f'<a rel="next" href="{next_href}">下一页</a>' if next_href else ""
    return (f'<html><head><meta charset="utf-8"><title>{name} 患者评价</title></head>'
            f'<body itemscope itemtype="https://schema.org/Hospital"><h1 itemprop="name">{name}</h1>'
            f'{items}{nxt}</body></html>')


def json_ld_page() -> str:
    data = {"@context": "https://schema.org", "@type": "Hospital", "name": "江城一院",
            "review": [{"@type": "Review", "author": {"@type": "Person", "name": "赵先生"},
                        "datePublished": "2026-11-22 15:00", "reviewBody": "夜里急诊科只有一个医生。",
                        "reviewRating": {"@type": "Rating", "ratingValue": "2"}},
                       {"@type": "Review", "author": "钱女士", "datePublished": "2026年11月21日 9:30",
                        "reviewBody": "骨科手术很成功，感谢医护人员。", "reviewRating": {"ratingValue": 5}}]}
    return (f'<html><head><meta charset="utf-8"><title>点评</title>'
            f'<script type="application/ld+json">{json.dumps(data, ensure_ascii=False)}</script></head>'
            f'<body><div id="app"></div></body></html>')


def selector_page(page: int) -> str:
    """A site with its own markup: reviews found only by the source's selectors."""
    rows = {1: [("周同学", "2026/11/22 11:00", "4.5分", "儿科候诊区很干净。")],
            2: [("吴大爷", "2026/11/19 16:20", "3分", "取药窗口太少。")]}[page]
    items = "".join(f'<li class="c-item"><b class="c-user">{a}</b><i class="c-time">{t}</i>'
                    f'<em class="c-score">{s}</em><div class="c-text">{x}</div></li>' for a, t, s, x in rows)
    more = '<a class="more" href="/sel?page=2">更多</a>' if page == 1 else ""
    return f'<html><body><h2 class="hosp">江城市第一人民医院</h2><ul>{items}</ul>{more}</body></html>'


def search_rss(query: str, base: str) -> bytes:
    """A news search's RSS answer: results for the full name only."""
    items = ""
    if query == "江城市第一人民医院":
        items = ("<item><title>江城市第一人民医院开展义诊</title><link>https://news.example.net/a/1?utm_source=rss</link>"
                 "<description>江城市第一人民医院组织专家走进社区。</description>"
                 "<pubDate>Sun, 22 Nov 2026 02:00:00 GMT</pubDate></item>"
                 "<item><title>海城市一院新大楼启用</title><link>https://news.example.net/a/2</link>"
                 "<description>海城市一院新门诊大楼启用。</description></item>")
    head = '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>搜索</title>'
    return f"{head}{items}</channel></rss>".encode()


def search_html(handler: Any) -> tuple[int, dict[str, str], bytes]:
    """An HTML search: results in <li>, two pages for the hospital's short name."""
    query = parse_qs(urlsplit(handler.path).query)
    kw, page = query.get("kw", [""])[0], int(query.get("page", ["1"])[0])
    rows = ""
    if kw == "江城一院":
        rows = (f'<li><a href="https://bbs.example.org/t/{page}01">网友{page}：江城一院 产科 夜里叫不应护士</a>'
                f'<p>第{page}位网友发帖称在江城一院产科……</p></li>'
                f'<li><a href="https://bbs.example.org/t/{page}02">周末去哪儿玩</a><p>江边公园的菊花开了。</p></li>')
    body = f'<html><body><div class="nav"><a href="/">首页</a></div><ul class="results">{rows}</ul></body></html>'
    return 200, {"Content-Type": "text/html; charset=utf-8"}, body.encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Reviews and search sources crawled twice; a new review appears between the polls."""
    root = tmp_path_factory.mktemp("reviews")
    srv = LocalHTTPServer()
    phase = {"new": False}

    def reviews(handler: Any) -> tuple[int, dict[str, str], bytes]:
        page = int(parse_qs(urlsplit(handler.path).query).get("page", ["1"])[0])
        shown = ([NEW_REVIEW] if phase["new"] else []) + OLD_REVIEWS
        chunk = shown[(page - 1) * 3: page * 3]
        nxt = f"/reviews?page={page + 1}" if len(shown) > page * 3 else None
        return 200, {"Content-Type": "text/html; charset=utf-8"}, microdata_page(chunk, nxt, "江城市第一人民医院").encode()

    srv.serve("/robots.txt", "User-agent: *\nDisallow:\n", "text/plain")
    srv.routes["/reviews"] = reviews
    srv.serve("/other-hospital", microdata_page(OLD_REVIEWS[:2], None, "海城市一院"))
    srv.serve("/ld", json_ld_page())
    srv.routes["/sel"] = lambda h: (200, {"Content-Type": "text/html; charset=utf-8"},
                                    selector_page(int(parse_qs(urlsplit(h.path).query).get("page", ["1"])[0])).encode())
    srv.routes["/search"] = lambda h: (200, {"Content-Type": "application/rss+xml"},
                                       search_rss(parse_qs(urlsplit(h.path).query).get("q", [""])[0], srv.base))
    srv.routes["/find"] = search_html
    selectors = {"item": "li.c-item", "body": ".c-text", "author": ".c-user", "published_at": ".c-time",
                 "rating": ".c-score", "next_page": "a.more", "title": "h2.hosp"}
    sources = [
        source("reviews-md", "reviews", srv.base + "/reviews", max_pages=5),
        source("reviews-other", "reviews", srv.base + "/other-hospital"),
        source("reviews-ld", "reviews", srv.base + "/ld"),
        source("reviews-sel", "reviews", srv.base + "/sel", selectors=selectors),
        source("search-rss", "search", srv.base + "/search?q={query}&format=rss"),
        source("search-html", "search", srv.base + "/find?kw={query}&page={page}", max_pages=2, tier=4),
    ]
    cfg_dir = write_config(root, HOSPITAL, sources)
    store = Store.migrated(f"sqlite:///{root / 'yuqing.db'}")
    first = run_crawl(cfg_dir, store)
    first_requests = len(srv.requests)
    phase["new"] = True
    second = run_crawl(cfg_dir, store, ["reviews-md"], now=LATER)
    yield {"store": store, "first": first, "second": second, "srv": srv, "cfg_dir": cfg_dir,
           "second_requests": srv.requests[first_requests:]}
    srv.close()
    store.dispose()


def test_microdata_reviews_are_stored_with_rating_author_and_time(world):
    found = mentions(world["store"], "reviews-md")[:5]
    assert [m.author for m in found] == [r[0] for r in OLD_REVIEWS]
    first = found[0]
    assert first.kind == "review" and first.rating == 5.0 and first.text == OLD_REVIEWS[0][3]
    assert first.published_at.isoformat() == "2026-11-22T12:10:00+00:00"
    assert first.title == "江城市第一人民医院：" + OLD_REVIEWS[0][3][:24] + ("…" if len(OLD_REVIEWS[0][3]) > 24 else "")
    assert first.matched_names == ["江城市第一人民医院"]
    assert first.url.startswith(world["srv"].base + "/reviews#review-")


def test_two_short_identical_reviews_by_different_patients_stay_two(world):
    same = [m for m in mentions(world["store"], "reviews-md") if m.text == "服务很好"]
    assert len(same) == 2 and len({m.content_hash for m in same}) == 2


def test_reviews_of_a_look_alike_hospital_are_not_stored(world):
    assert mentions(world["store"], "reviews-other") == []
    assert world["first"]["reviews-other"]["not_mentioning"] == 2


def test_json_ld_reviews(world):
    found = {m.author: m for m in mentions(world["store"], "reviews-ld")}
    assert set(found) == {"赵先生", "钱女士"}
    assert found["赵先生"].rating == 2.0 and found["钱女士"].rating == 5.0
    assert found["钱女士"].published_at.isoformat() == "2026-11-21T01:30:00+00:00"  # 9:30 in Asia/Shanghai
    assert found["赵先生"].title.startswith("江城一院：夜里急诊科")


def test_selectors_override_for_a_site_with_its_own_markup(world):
    found = mentions(world["store"], "reviews-sel")
    assert [(m.author, m.rating) for m in found] == [("周同学", 4.5), ("吴大爷", 3.0)]
    assert found[1].published_at.isoformat() == "2026-11-19T08:20:00+00:00"


def test_second_poll_stores_only_the_new_review_and_stops_there(world):
    assert world["second"]["reviews-md"]["stored"] == 1
    newest = mentions(world["store"], "reviews-md")[-1]
    assert newest.author == "小雨妈妈" and newest.fetched_at == LATER
    pages = [path for _, path, _ in world["second_requests"] if path.startswith("/reviews")]
    assert pages == ["/reviews"]  # page 2 was not fetched: the newest stored review was on page 1
    assert state(world["store"], "reviews-md").newest_key is not None
    assert len(mentions(world["store"], "reviews-md")) == 6


def test_rss_search_queries_every_unambiguous_name(world):
    queries = {parse_qs(urlsplit(p).query)["q"][0] for _, p, _ in world["srv"].requests if p.startswith("/search")}
    assert queries == {"江城市第一人民医院", "江城市一院", "江城第一人民医院", "江城一院"}  # not 市一院 alone
    found = mentions(world["store"], "search-rss")
    assert [m.url for m in found] == ["https://news.example.net/a/1"]  # tracking stripped; look-alike dropped


def test_html_search_paginates_to_max_pages_and_never_leaves_the_domain(world):
    found = mentions(world["store"], "search-html")
    assert sorted(m.url for m in found) == ["https://bbs.example.org/t/101", "https://bbs.example.org/t/201"]
    assert "江城一院" in found[0].text and found[0].kind == "post"  # tier 4: forums
    pages = sorted(p for _, p, _ in world["srv"].requests if p.startswith("/find?kw=%E6%B1%9F%E5%9F%8E%E4%B8%80%E9%99%A2"))
    assert [parse_qs(urlsplit(p).query)["page"][0] for p in pages] == ["1", "2"]
    assert world["first"]["search-html"]["outcome"] == "ok"


def test_a_source_already_being_crawled_is_skipped(world, capfd):
    cfg = load_config(world["cfg_dir"])
    store: Store = world["store"]
    before = state(store, "reviews-ld").last_fetch_at
    env = {**os.environ, "YUQING_DATABASE_URL": store.url, "PYTHONPATH": str(REPO)}
    with FileLock(str(lock_path(cfg, "reviews-ld"))):
        code = crawl_in_subprocess(world["cfg_dir"], ["reviews-ld"], env=env, timeout=60, now=LATER)
    assert code == 0
    assert "reviews-ld: a crawl of it is already running" in capfd.readouterr().err
    assert state(store, "reviews-ld").last_fetch_at == before


def test_crawl_in_subprocess_reports_config_errors(tmp_path: Path):
    assert crawl_in_subprocess(tmp_path / "missing", [], timeout=60) == 2

"""The crawler's pure parts: canonical URLs, content hashes, the mention filter, settings, health rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from parsel import Selector

from yuqing.config import Hospital
from yuqing.crawler.canonical import canonical_url, content_hash, url_key, within_domains
from yuqing.crawler.feeds import NotAFeed, clean_xml, looks_like_feed, parse_feed
from yuqing.crawler.health import source_health
from yuqing.crawler.mention_filter import MentionMatcher
from yuqing.crawler.pages import html_to_text, parse_time
from yuqing.crawler.pipelines import is_mojibake
from yuqing.crawler.settings import build_settings, source_settings, user_agent
from yuqing.crawler.spiders.reviews import json_ld_reviews, page_subject, to_float
from yuqing.models import SourceState

# --- canonical URLs ----------------------------------------------------------------


@pytest.mark.parametrize("raw, canonical", [
    ("HTTP://News.Example.COM:80/a/b.html?z=1&utm_source=wx&spm=a.b&from=timeline#comments",
     "http://news.example.com/a/b.html?z=1"),
    ("https://m.example.cn:443/s?b=2&a=1&share_token=x&shareId=9&isappinstalled=0", "https://m.example.cn/s?a=1&b=2"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com:8443/x", "https://example.com:8443/x"),
    ("http://example.com/新闻?q=江城 一院", "http://example.com/%E6%96%B0%E9%97%BB?q=%E6%B1%9F%E5%9F%8E+%E4%B8%80%E9%99%A2"),
    ("https://mp.weixin.qq.com/s?__biz=MzA&mid=1&idx=1&sn=abc&chksm=ff&scene=21#wechat_redirect",
     "https://mp.weixin.qq.com/s?__biz=MzA&idx=1&mid=1&sn=abc"),
])
def test_canonical_url(raw, canonical):
    assert canonical_url(raw) == canonical


def test_one_article_under_share_links_has_one_key():
    a = canonical_url("https://news.example.com/a.html?utm_medium=social#top")
    b = canonical_url("https://NEWS.example.com:443/a.html?from=groupmessage")
    assert url_key(a) == url_key(b) and len(url_key(a)) == 64


def test_review_anchor_is_kept_only_when_asked():
    url = "https://reviews.example.com/h/1#review-abc"
    assert canonical_url(url) == "https://reviews.example.com/h/1"
    assert canonical_url(url, keep_fragment=True) == url


def test_within_domains():
    assert within_domains("https://news.example.org/a", ["example.org"])
    assert within_domains("http://127.0.0.1:8080/a", ["127.0.0.1"])
    assert not within_domains("https://evil-example.org/a", ["example.org"])
    assert not within_domains("javascript:void(0)", ["example.org"])


# --- content hash ------------------------------------------------------------------


def test_content_hash_ignores_width_case_and_whitespace():
    text = "江城市第一人民医院心血管内科团队成功完成我市首例机器人辅助冠状动脉搭桥手术，患者术后第三天即下床活动，ABC。"
    variant = " 江城市第一人民医院心血管内科团队成功完成我市首例机器人辅助冠状动脉搭桥手术，\n患者术后第三天即下床活动，ａｂｃ。"
    assert content_hash(text) == content_hash(variant)


def test_short_texts_also_hash_author_and_time():
    when = datetime(2026, 11, 21, tzinfo=UTC)
    assert content_hash("服务很好", "江城一院", "李先生", when) != content_hash("服务很好", "江城一院", "王阿姨", when)
    assert content_hash("服务很好", "江城一院", "李先生", when) == content_hash("服务很好", "江城一院", "李先生", when)


# --- the mention filter (the shipped example hospital) -------------------------------


@pytest.fixture
def matcher(config):
    return MentionMatcher(config.hospital)


@pytest.mark.parametrize("text, names", [
    ("江城市第一人民医院开展义诊", ["江城市第一人民医院"]),
    ("江城一院获评省级文明单位", ["江城一院"]),
    ("ＪＣ日报：江城一院　产科", ["江城一院"]),  # full-width text folded
    ("江城市一院急诊科", ["江城市一院"]),  # not also 市一院: it is part of the longer name
    ("我们江城的市一院这次做得不错", ["市一院"]),  # ambiguous alias with 江城 close by
    ("江城市第一人民 医院发生纠纷", ["江城市第一人民医院"]),  # a line break inside the name
])
def test_names_that_count(matcher, text, names):
    found = matcher.match("", text)
    assert found is not None and found.names == names


@pytest.mark.parametrize("text", [
    "海城市一院新门诊大楼今日正式启用",  # excluded look-alike
    "海城市第一人民医院负责人介绍",
    "江城市第一人民医院旧址对游客开放",  # excluded: a tourist site
    "市一院今天开了新门诊",  # ambiguous alias without a context word
    "王建国医生获得表彰",  # a doctor's name alone is not enough
    "江城今天有雨。" + "天气" * 20 + "市一院开新门诊",  # context word too far away
])
def test_names_that_do_not_count(matcher, text):
    assert matcher.match("", text) is None


def test_match_reports_where_and_context(matcher):
    found = matcher.match("网友爆料：江城一院产妇术后死亡", "其亲属在江城市第一人民医院产科剖宫产后大出血。" + "后" * 50)
    assert found.field == "title" and found.names == ["江城一院", "江城市第一人民医院"]
    assert found.context == "网友爆料:江城一院产妇术后死亡"
    long_text = "甲" * 40 + "江城一院" + "乙" * 40
    ctx = matcher.match("", long_text).context
    assert ctx == "甲" * 30 + "江城一院" + "乙" * 30


def test_a_look_alike_next_to_the_real_name_still_counts(matcher):
    assert matcher.match("", "海城市一院和江城一院签约").names == ["江城一院"]


def test_latin_aliases_match_case_insensitively():
    m = MentionMatcher(Hospital(name="江城医院", aliases=["JCH"]))
    assert m.match("jch 新闻", "").names == ["JCH"]
    assert m.match("江城醫院", "") is None  # traditional characters are a different name unless listed


# --- pages, feeds, reviews ----------------------------------------------------------


@pytest.mark.parametrize("raw, iso", [
    ("2026-11-22T20:10:00+08:00", "2026-11-22T12:10:00+00:00"),
    ("2026-11-22 20:10", "2026-11-22T12:10:00+00:00"),
    ("2026年11月22日 20:10", "2026-11-22T12:10:00+00:00"),
    ("2026/11/22", "2026-11-21T16:00:00+00:00"),
    ("发布时间：2026-11-22 20:10:05 来源：江城日报", "2026-11-22T12:10:05+00:00"),
])
def test_parse_time_reads_local_times_in_the_hospital_zone(raw, iso):
    assert parse_time(raw, "Asia/Shanghai").isoformat() == iso


def test_parse_time_gives_up_quietly():
    assert parse_time("昨天", "Asia/Shanghai") is None and parse_time(None, "Asia/Shanghai") is None


def test_leading_whitespace_and_bom_before_xml_declaration():
    feed = ("\ufeff\n  <?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
            "<item><title>江城一院</title><link>http://x.example/1</link></item></channel></rss>").encode("utf-8")
    assert clean_xml(feed).startswith(b"<?xml")
    assert [e.title for e in parse_feed(feed)] == ["江城一院"]
    assert looks_like_feed(feed)


@pytest.mark.parametrize("declaration, header", [
    (' encoding="gb2312"', ""),
    (' encoding="gb2312"', "application/rss+xml; charset=utf-8"),  # the server contradicts the feed
    ("", "application/rss+xml"),  # a GBK feed that declares nothing
    ("", "text/xml; charset=utf-8"),  # a GBK feed whose server claims UTF-8
])
def test_gbk_feeds_come_out_right(declaration, header):
    feed = (f'<?xml version="1.0"{declaration}?><rss version="2.0"><channel><title>t</title>'
            "<item><title>江城一院义诊</title><link>http://x.example/1</link>"
            "<description>&lt;p&gt;心血管内科&lt;/p&gt;</description></item></channel></rss>").encode("gbk")
    entry = parse_feed(feed, header)[0]
    assert entry.title == "江城一院义诊" and entry.text == "心血管内科"


def test_not_a_feed():
    with pytest.raises(NotAFeed):
        parse_feed(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert not looks_like_feed(b"<!DOCTYPE html><html><body></body></html>", "text/html")


def test_html_to_text_keeps_paragraphs():
    assert html_to_text("<p>第一段</p><p>第二段<script>x()</script></p>") == "第一段\n第二段"


def test_mojibake_is_recognised():
    text = "江城市第一人民医院发生医疗纠纷，家属质疑抢救延误。" * 3
    assert not is_mojibake(text)
    assert not is_mojibake(text + "\ufffd\ufffd")  # a broken emoji in the page itself
    assert is_mojibake(text.encode("gbk").decode("utf-8", "replace"))
    assert is_mojibake(text.encode("gbk").decode("latin-1"))
    assert is_mojibake(text.encode("utf-8").decode("cp1252", "replace"))


def test_review_page_subject_and_json_ld():
    sel = Selector(text='<html><head><title>点评网</title><script type="application/ld+json">'
                        '{"@graph": [{"@type": "Review", "reviewBody": "好", '
                        '"itemReviewed": {"@type": "Hospital", "name": "江城一院"}}]}</script></head><body></body></html>')
    assert page_subject(sel) == "江城一院"
    assert [r["reviewBody"] for r in json_ld_reviews(sel)] == ["好"]
    assert page_subject(Selector(text="<html><head><title>江城一院 评价</title></head></html>")) == "江城一院 评价"
    assert to_float("4.5分") == 4.5 and to_float("") is None


# --- settings and health ------------------------------------------------------------


def test_settings_come_from_config(config):
    settings = build_settings(config)
    crawl = config.settings.crawl
    assert settings["USER_AGENT"] == "yuqing-monitor/0.1 (hospital public-opinion monitor) (+it@hospital.example)"
    assert settings["ROBOTSTXT_OBEY"] is True and settings["DOWNLOAD_MAXSIZE"] == crawl.max_page_bytes
    assert settings["DOWNLOAD_TIMEOUT"] == crawl.timeout_seconds and settings["AUTOTHROTTLE_ENABLED"]
    assert settings["CONCURRENT_REQUESTS_PER_DOMAIN"] == crawl.per_domain_concurrency
    assert settings["TELNETCONSOLE_ENABLED"] is False and settings["REMOTE_CONTROL_ENABLED"] is False
    assert list(settings["ITEM_PIPELINES"]) == [
        "yuqing.crawler.pipelines.NormalizePipeline", "yuqing.crawler.pipelines.MentionFilterPipeline",
        "yuqing.crawler.hotlist_store.HotListUpdatePipeline",
        "yuqing.crawler.pipelines.DedupPipeline", "yuqing.crawler.pipelines.StorePipeline",
        "yuqing.crawler.hotlist_store.HotListRecordPipeline"]
    primitive = (str, int, float, bool, type(None), list, dict)
    assert all(isinstance(v, primitive) for v in settings.values())  # live objects ride on the crawler instead


def test_robots_can_be_overridden_per_source(config):
    src = config.sources.sources[0]
    assert source_settings(config, src) == {"ROBOTSTXT_OBEY": True}
    assert source_settings(config, src.model_copy(update={"obey_robots": False})) == {"ROBOTSTXT_OBEY": False}


def test_user_agent_is_not_doubled(config):
    crawl = config.settings.crawl.model_copy(update={"user_agent": "yuqing (+it@hospital.example)"})
    assert user_agent(crawl) == "yuqing (+it@hospital.example)"


def test_every_component_gets_the_crawl_context_from_its_crawler(config, store, clock):
    """The config, store and clock reach the spider, the pipelines, the middlewares and the extension
    through the crawler (from_crawler), not through settings."""
    from scrapy.crawler import Crawler
    from scrapy.settings import Settings

    from yuqing.crawler.context import CrawlContext, attach, config_of, store_of
    from yuqing.crawler.extensions import SourceStateExtension
    from yuqing.crawler.middlewares import SkipKnownMiddleware
    from yuqing.crawler.pipelines import StorePipeline
    from yuqing.crawler.spiders import SPIDERS

    src = config.sources.sources[0]
    crawler = attach(Crawler(SPIDERS[src.kind], Settings(build_settings(config))), CrawlContext(config, store, clock))
    assert config_of(crawler) is config and store_of(crawler) is store
    spider = SPIDERS[src.kind].from_crawler(crawler, source=src)
    assert spider.cfg is config and spider.clock is clock
    assert StorePipeline.from_crawler(crawler).store() is store
    assert SkipKnownMiddleware.from_crawler(crawler).store is store
    ext = SourceStateExtension.from_crawler(crawler)
    assert ext.store is store and ext.clock is clock
    bare = Crawler(SPIDERS[src.kind], Settings(build_settings(config)))
    assert store_of(bare) is None
    with pytest.raises(RuntimeError, match="CrawlContext"):
        config_of(bare)


def test_health_rows_for_every_configured_source(config, store, clock):
    with store.session() as sess:
        sess.add(SourceState(id="jiangcheng-daily", kind="rss", name="江城日报 RSS", url="u", tier=3,
                             consecutive_failures=3, failing_since=clock.now(), last_error="HTTP 503",
                             last_fetch_at=clock.now(), mentions_found=7, pages_fetched=9, not_modified=2))
    rows = {r.id: r for r in source_health(config, store)}
    assert [r.id for r in source_health(config, store)] == [s.id for s in config.sources.sources]
    daily = rows["jiangcheng-daily"]
    assert (daily.status, daily.consecutive_failures, daily.last_error, daily.mentions_found) == ("failing", 3, "HTTP 503", 7)
    assert rows["patient-reviews"].enabled is False and rows["patient-reviews"].status == "never polled"

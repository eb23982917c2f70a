"""The weekly digest: rendered once per period, self-contained, escaped, and sent to digest_to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from yuqing.alerts.digest import build_digest, period_for
from yuqing.alerts.incidents import acknowledge, mark_responded, sync_incidents
from yuqing.alerts.outbox import dispatch, enqueue
from yuqing.models import DigestRun, Mention, OutboxMessage, SourceState
from yuqing.store import Store

from .alerts_support import add_sources, cfg, make_event, outbox, payload, robot_contents, senders, smtp, wecom  # noqa: F401

EVIL = "<script>alert('周报')</script>医院"
WEEK_START = datetime(2026, 11, 15, 16, 0, tzinfo=UTC)  # Monday 16 Nov 00:00 Beijing


def mentions(store, start: datetime, day_counts: list[tuple[int, int]], tag: str) -> None:
    """(total, negative) mentions on each day from start, published at 10:00 local."""
    with store.session() as sess:
        for day, (total, negative) in enumerate(day_counts):
            for i in range(total):
                when = start + timedelta(days=day, hours=10)
                sess.add(Mention(url=f"https://jiangcheng-daily.example/{tag}/{day}/{i}", source_id="jiangcheng-daily",
                                 title="t", fetched_at=when, published_at=when, content_hash=f"{tag}{day}-{i}",
                                 negative=i < negative, sentiment=0.1 if i < negative else 0.9))


def prepare(store, clock, cfg) -> None:
    add_sources(store)
    mentions(store, WEEK_START, [(4, 1), (6, 0), (2, 0), (0, 0), (5, 2), (3, 0), (0, 0)], "this")  # 20, 3 negative
    mentions(store, WEEK_START - timedelta(days=7), [(2, 0)] * 5, "last")  # 10, none negative
    clock.set(WEEK_START + timedelta(days=4, hours=3))
    eid = make_event(store, clock, headline=EVIL, mentions=4, negative=3, titles=[EVIL] * 4)
    sync_incidents(store, cfg, clock)
    clock.advance(minutes=12)
    acknowledge(store, 1, "张敏", clock)
    clock.advance(minutes=50)
    mark_responded(store, 1, "刘洋", clock)
    with store.session() as sess:
        enqueue(sess, clock.now(), dedup_key="dead-one", channel="email", recipient="vp", address="x@y", purpose="alert",
                subject="旧消息", body="b")
        sess.scalar(select(OutboxMessage).where(OutboxMessage.dedup_key == "dead-one")).status = "dead"
        state = sess.get(SourceState, "news-search")
        state.failing_since, state.consecutive_failures, state.last_error = clock.now(), 4, "DNS <b>error</b>"
        sess.execute(OutboxMessage.__table__.update().where(OutboxMessage.purpose == "alert",
                                                             OutboxMessage.dedup_key != "dead-one").values(status="sent"))
    assert eid == 1
    clock.set(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))  # Monday 09:00 Beijing


def test_default_period_is_the_last_local_week(config, clock):
    start, end = period_for(config, clock.now(), None)
    assert (start, end) == (WEEK_START, WEEK_START + timedelta(days=7))
    start, end = period_for(config, datetime(2026, 11, 22, 15, 59, tzinfo=UTC), None)  # Sunday 23:59
    assert end == WEEK_START


def test_digest_rendered_once_and_sent_to_digest_to(store, clock, cfg, senders, smtp, wecom, tmp_path):
    cfg = cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"digest_dir": tmp_path / "digests"})})
    prepare(store, clock, cfg)
    before = len(outbox(store))
    run = build_digest(store, cfg, clock)
    assert run.period_start == WEEK_START
    html = (tmp_path / "digests" / "yuqing-digest-20261116-20261123.html").read_text(encoding="utf-8")
    assert run.path.endswith("yuqing-digest-20261116-20261123.html")
    assert (tmp_path / "digests" / "yuqing-digest-20261116-20261123.txt").exists()

    # figures: 20 this week (the event's own 4 mentions are fetched on Friday too) vs 10 last week
    summary = run.summary
    assert summary["total"] == 24 and summary["total_change"] == "+14 条（+140%）"
    assert summary["negative_share"] == "25.0%"  # 6 of 24
    assert summary["negative_change"] == "+25.0 个百分点"
    assert summary["incidents"] == 1 and summary["median_tta"] == "12 分钟" and summary["median_ttr"] == "1 小时 2 分钟"
    assert [d["total"] for d in summary["days"]] == [4, 6, 2, 0, 9, 3, 0]

    # self-contained, chart inline, scraped text escaped, problems listed
    assert "<svg" in html and "<script" not in html and "&lt;script&gt;" in html
    assert 'src="http' not in html and "<link" not in html
    assert "12 分钟（张敏）" in html and "Ⅳ级（一般）" in html
    assert "DNS &lt;b&gt;error&lt;/b&gt;" in html and "旧消息" in html

    new = outbox(store)[before:]
    assert sorted((r.channel, r.recipient) for r in new) == [
        ("email", "duty-officer"), ("email", "head-publicity"), ("email", "vp"), ("wecom", "crisis-room")]
    assert all(r.purpose == "digest" for r in new)
    assert "<script" not in payload(next(r for r in new if r.channel == "wecom"))["markdown"]["content"]

    # again, and after a restart: the same run, not rendered again, nothing sent twice
    html_file = tmp_path / "digests" / "yuqing-digest-20261116-20261123.html"
    html_file.rename(tmp_path / "kept.html")
    assert build_digest(store, cfg, clock).id == run.id
    assert not html_file.exists()
    restarted = Store(store.url)
    clock.advance(hours=2)
    assert build_digest(restarted, cfg, clock).id == run.id
    restarted.dispose()
    assert len(outbox(store)) == before + 4
    with store.session() as sess:
        assert sess.scalar(select(func.count()).select_from(DigestRun)) == 1

    dispatch(store, cfg, clock, senders)
    digests = [m for m in smtp.messages if "舆情周报" in m["Subject"]]
    assert sorted(m["To"] for m in digests) == [
        "chenli@hospital.example", "liuyang@hospital.example", "zhangmin@hospital.example"]
    # the chart travels as a PNG part the HTML shows by Content-ID: mail clients drop inline SVG
    html_mail = digests[0].get_body(("html",)).get_content()
    assert 'src="cid:daily-chart"' in html_mail and "<svg" not in html_mail
    pictures = [p for p in digests[0].walk() if p.get_content_type() == "image/png"]
    assert len(pictures) == 1 and pictures[0]["Content-ID"] == "<daily-chart>"
    from io import BytesIO

    from PIL import Image

    chart = Image.open(BytesIO(pictures[0].get_content()))
    assert chart.format == "PNG" and chart.size == (1280, 480)
    assert any("舆情周报" in c for c in robot_contents(wecom))


def test_next_week_is_a_new_digest(store, clock, cfg, tmp_path):
    cfg = cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"digest_dir": tmp_path})})
    add_sources(store)
    mentions(store, WEEK_START - timedelta(days=7), [(1, 0)], "early")  # monitoring began before this week
    first = build_digest(store, cfg, clock)
    clock.advance(days=7)
    second = build_digest(store, cfg, clock)
    assert second.id != first.id and second.period_start == first.period_end
    assert second.summary["total"] == 0 and second.summary["total_change"] == "持平（均为 0）"


def test_no_digest_for_weeks_before_anything_was_collected(store, clock, cfg, tmp_path):
    """A fresh install's first tick must not mail last week's empty digest to leadership."""
    cfg = cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"digest_dir": tmp_path / "digests"})})
    add_sources(store)
    mentions(store, WEEK_START + timedelta(days=8), [(1, 0)], "later")  # the first mention came after the week
    before = len(outbox(store))
    run = build_digest(store, cfg, clock)
    assert run.path == "" and "nothing was collected" in run.summary["skipped"]
    assert len(outbox(store)) == before and not (tmp_path / "digests").exists()
    assert build_digest(store, cfg, clock).id == run.id  # the week is done: not tried again every tick


def test_digests_of_two_databases_never_share_a_folder(cfg, tmp_path):
    from yuqing.alerts.digest import digest_dir

    one = cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"data_dir": tmp_path,
                                                                              "database_url": "sqlite:///a/yuqing.db"})})
    two = cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"data_dir": tmp_path,
                                                                              "database_url": "sqlite:///b/yuqing.db"})})
    assert digest_dir(one) != digest_dir(two)
    assert digest_dir(one).parent == tmp_path / "digests" and digest_dir(one).name.startswith("yuqing-")


def test_the_digest_links_headlines_and_shows_keywords_coverage_and_satisfaction(store, clock, cfg, tmp_path):
    cfg = cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"digest_dir": tmp_path})})
    prepare(store, clock, cfg)
    with store.session() as sess:
        for i in range(3):  # publicity that landed, and reviews with stars
            when = WEEK_START + timedelta(days=1, hours=i)
            sess.add(Mention(url=f"https://province-health-news.example/good/{i}", source_id="province-health-news",
                             title=f"江城一院获评省级文明单位{i}", fetched_at=when, published_at=when,
                             content_hash=f"good{i}", negative=False, sentiment=0.95, keywords=["文明单位", "省级"]))
            sess.add(Mention(url=f"https://jiangcheng-daily.example/review/{i}", source_id="jiangcheng-daily",
                             kind="review", title="点评", fetched_at=when, published_at=when, content_hash=f"rev{i}",
                             negative=i == 0, sentiment=0.2 if i == 0 else 0.9, rating=2.0 if i == 0 else 5.0,
                             keywords=["文明单位"]))
        sess.add(Mention(url="javascript:alert(1)", source_id="news-search", title="<b>好</b>新闻",
                         fetched_at=WEEK_START + timedelta(days=2), content_hash="js", negative=False, sentiment=0.99))
    run = build_digest(store, cfg, clock)
    html = open(run.path, encoding="utf-8").read()
    text = open(run.path.replace(".html", ".txt"), encoding="utf-8").read()
    assert "文明单位（6）" in html and "文明单位（6）" in text  # the week's keywords
    assert next(line for line in text.splitlines() if "文明单位（6）" in line).startswith("热词：")
    assert "省卫生健康新闻" in html and 'href="https://province-health-news.example/good/' in html
    assert 'href="javascript' not in html and "&lt;b&gt;好&lt;/b&gt;新闻" in html  # only http(s) links, escaped
    assert "66.7%" in html and "4.0" in html  # two of three reviews satisfied, mean 4 stars
    assert 'rel="noopener noreferrer"' in html
    assert "WenQuanYi Micro Hei" in html and "Noto Sans CJK SC" in html  # a CJK font list, page and chart


def test_the_plain_text_digest_keeps_one_item_per_line(store, clock, cfg, tmp_path):
    cfg = cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"digest_dir": tmp_path})})
    prepare(store, clock, cfg)
    run = build_digest(store, cfg, clock)
    lines = open(run.path.replace(".html", ".txt"), encoding="utf-8").read().splitlines()
    urls = [line for line in lines if "://" in line and "正面报道" not in line]
    assert urls and all(line.startswith("   http") for line in urls)  # each event's link on its own line
    assert "四、本周热词、正面报道与患者满意度" in lines and "五、主要来源" in lines

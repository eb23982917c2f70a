"""The analysis stage end to end on a real store with the real models: incremental, batched, crash-safe."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache

import pytest
from sqlalchemy import func, select

import yuqing.analysis.pipeline as pipeline
from tests.conftest import REPO, SECRETS
from yuqing.analysis.pipeline import AnalysisModels, analyze_new, load_models
from yuqing.analysis.simhash import to_unsigned
from yuqing.config import AppConfig
from yuqing.models import Event, Mention, MentionURL, SourceState
from yuqing.store import Store

UNKNOWN_SOURCE = "local-forum"  # not in config/sources.yaml: tier 4
_serial = itertools.count(1)

# --- stories used here and in test_events.py ------------------------------------------------

DEATH_TITLE = "网友爆料：江城一院产妇剖宫产术后死亡 家属质疑抢救延误"
DEATH_BODY = (
    "昨夜，网友“小雨妈妈”发帖称，其亲属在江城市第一人民医院产科剖宫产后大出血，"
    "家属多次呼叫医生无人理会，延误抢救导致产妇死亡。家属质疑医院隐瞒病情，要求公开病历、讨说法。"
    "帖子称医生态度冷漠，事发后医院拒绝给出解释。"
)
CLINIC_TITLE = "江城市第一人民医院开展社区义诊 为高血压患者免费检查"
CLINIC_BODY = (
    "重阳节前夕，江城市第一人民医院组织心血管内科、骨科专家走进社区开展义诊，"
    "为三百余名高血压、糖尿病患者免费测量血压血糖并讲解用药知识，居民纷纷点赞。"
)
VIOLENCE_TITLE = "江城一院急诊科医生遭醉酒男子殴打 警方已介入"
VIOLENCE_BODY = (
    "昨晚十一点，江城市第一人民医院急诊科一名值班医生在处置病人时，被一名醉酒男子殴打致头部受伤，"
    "诊室电脑被砸坏。派出所民警赶到后将打人者控制，目前受伤医生已接受缝合，案件正在进一步处理中。"
)
RUMOUR_TITLE = "网传江城一院儿科输液致患儿死亡"
RUMOUR_BODY = (
    "近日，有网帖称江城市第一人民医院儿科一名三岁患儿输液后死亡，家属质疑护士打错针，"
    "并称医院隐瞒真相。该帖子在本地微信群中大量转发。"
)
REBUTTAL_TITLE = "江城一院辟谣：“儿科输液致患儿死亡”系谣言"
REBUTTAL_BODY = (
    "针对网传“江城市第一人民医院儿科输液致患儿死亡”一事，江城市第一人民医院发布情况说明：经核实，"
    "该患儿在我院儿科输液治疗后病情好转，已于昨日康复出院，网传内容不实。"
    "医院已向公安机关报案，请广大市民不信谣、不传谣。"
)

REPOST_SITES = ["江城日报", "本地生活圈", "江城热线", "新浪新闻", "网易健康", "今日头条"]
REPOST_SOURCES = ["jiangcheng-daily", "news-search", "patient-reviews", UNKNOWN_SOURCE]


def repost_copies(title: str, body: str, n: int) -> list[tuple[str, str, str]]:
    """n copies as other sites carry a story: 转载 headers, retitled, source/editor footers, links."""
    heads = ["", "本文转载自{site}，", "【{site}讯】", "转自：{site} "]
    titles = [title, "转载｜" + title, "【关注】" + title, title + "_{site}", "转：" + title]
    feet = ["", "（来源：{site}）", "责任编辑：刘芳", " 原文链接：http://www.example.com/a/{i}.html",
            "（记者 周洁）", " 版权所有 未经授权禁止转载"]
    out = []
    for i in range(n):
        site = REPOST_SITES[i % len(REPOST_SITES)]
        text = heads[i % len(heads)].format(site=site) + body + feet[i % len(feet)].format(site=site, i=i)
        if i % 4 == 1:
            text = text.replace("，", ", ")  # half-width punctuation, as some sites re-encode
        out.append((titles[i % len(titles)].format(site=site), text, REPOST_SOURCES[i % len(REPOST_SOURCES)]))
    return out


# --- helpers -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def shared_models() -> AnalysisModels:
    """The real models, loaded once per test session (about two seconds)."""
    from yuqing.config import load_config

    return load_models(load_config(REPO / "config", env=SECRETS))


@pytest.fixture
def models() -> AnalysisModels:
    return shared_models()


def add_sources(store: Store, cfg: AppConfig) -> None:
    """Source rows for every configured source and one unknown forum (mentions reference them)."""
    with store.session() as sess:
        for src in cfg.sources.sources:
            sess.add(SourceState(id=src.id, kind=src.kind, name=src.name, url=src.url, tier=src.tier))
        sess.add(SourceState(id=UNKNOWN_SOURCE, kind="web", name="本地论坛", url="https://bbs.example", tier=4))


def add_mention(
    store: Store,
    title: str,
    text: str,
    at: datetime,
    source: str = "jiangcheng-daily",
    extra_urls: Sequence[str] = (),
    analysed: bool = False,
) -> int:
    """Store one mention (and its URLs) as the crawler would; analysed=True marks background history."""
    n = next(_serial)
    url = f"https://{source}.example/{n}.html"
    with store.session() as sess:
        m = Mention(url=url, source_id=source, title=title, text=text, published_at=at,
                    fetched_at=at + timedelta(minutes=5), content_hash=hashlib.sha256(f"{n}{text}".encode()).hexdigest(),
                    matched_names=["江城一院"], analyzed_at=at + timedelta(minutes=6) if analysed else None)
        for i, src in enumerate([source, *extra_urls]):
            u = url if i == 0 else f"https://{src}.example/{n}-{i}.html"
            m.urls.append(MentionURL(url=u, url_key=hashlib.sha256(u.encode()).hexdigest(), source_id=src,
                                     seen_at=at + timedelta(minutes=5 + i)))
        sess.add(m)
        sess.flush()
        return m.id


def mention(store: Store, mention_id: int) -> Mention:
    with store.session() as sess:
        return sess.get(Mention, mention_id)


def event_of(store: Store, mention_id: int) -> Event:
    with store.session() as sess:
        m = sess.get(Mention, mention_id)
        assert m.event_id is not None, f"mention {mention_id} has no event"
        return sess.get(Event, m.event_id)


def count(store: Store, model: type) -> int:
    with store.session() as sess:
        return sess.scalar(select(func.count()).select_from(model))


# --- tests -------------------------------------------------------------------------------------


def test_scores_tags_and_fingerprints_every_new_mention(store, config, clock, models):
    add_sources(store, config)
    t0 = clock.now() - timedelta(hours=2)
    death = add_mention(store, DEATH_TITLE, DEATH_BODY, t0, source=UNKNOWN_SOURCE)
    clinic = add_mention(store, CLINIC_TITLE, CLINIC_BODY, t0 + timedelta(minutes=10))
    report = analyze_new(store, config, clock, models=models)

    assert (report.analysed, report.crisis, report.events_opened, report.events_updated) == (2, 1, 2, 0)
    assert str(report).startswith("analysed 2 mention(s)")
    d, c = mention(store, death), mention(store, clinic)
    assert d.analyzed_at == clock.now() and c.analyzed_at == clock.now()
    scores = models.sentiment.score_many([f"{DEATH_TITLE}。{DEATH_BODY}", f"{CLINIC_TITLE}。{CLINIC_BODY}"])
    assert [d.sentiment, c.sentiment] == pytest.approx(scores)  # title + body, as the model scores them
    assert report.negative == sum(s < 0.5 for s in scores) and d.negative == (scores[0] < 0.5)
    assert d.crisis and "death_injury" in d.risk_categories and "死亡" in "".join(d.risk_terms)
    assert not c.crisis and c.risk_categories == [] and c.negative == (scores[1] < 0.5)
    assert d.simhash is not None and -(2**63) <= d.simhash < 2**63  # signed int64 in the store
    for m in (d, c):
        assert m.keywords and not {"江城一院", "江城市第一人民医院", "医院", "江城"} & set(m.keywords)
    assert "义诊" in c.keywords and "剖宫产" in d.keywords
    assert sorted(report.event_ids) == sorted({d.event_id, c.event_id})


def test_second_run_touches_only_new_mentions(store, config, clock, models):
    add_sources(store, config)
    t0 = clock.now() - timedelta(hours=3)
    first = [add_mention(store, DEATH_TITLE, DEATH_BODY, t0, source=UNKNOWN_SOURCE),
             add_mention(store, CLINIC_TITLE, CLINIC_BODY, t0 + timedelta(minutes=20))]
    analyze_new(store, config, clock, models=models)
    before = {i: mention(store, i).analyzed_at for i in first}
    death_event = event_of(store, first[0])

    clock.advance(minutes=30)
    copy_title, copy_body, source = repost_copies(DEATH_TITLE, DEATH_BODY, 2)[1]
    later = [add_mention(store, copy_title, copy_body, clock.now() - timedelta(minutes=10), source=source),
             add_mention(store, VIOLENCE_TITLE, VIOLENCE_BODY, clock.now() - timedelta(minutes=5))]
    report = analyze_new(store, config, clock, models=models)

    assert report.analysed == 2 and report.events_opened == 1 and report.events_updated == 1
    assert {i: mention(store, i).analyzed_at for i in first} == before  # old mentions untouched
    assert mention(store, later[0]).repost_of_id == first[0]
    assert event_of(store, later[0]).id == death_event.id
    assert event_of(store, later[0]).mention_count == 2
    assert death_event.id in report.event_ids and event_of(store, first[1]).id not in report.event_ids
    assert analyze_new(store, config, clock, models=models).analysed == 0  # nothing new: nothing done


def test_batches_report_progress_and_match_one_big_batch(store, config, clock, models, tmp_path):
    add_sources(store, config)
    t0 = clock.now() - timedelta(hours=5)
    copies = repost_copies(DEATH_TITLE, DEATH_BODY, 9)
    stories = [(DEATH_TITLE, DEATH_BODY, UNKNOWN_SOURCE), *copies, (CLINIC_TITLE, CLINIC_BODY, "jiangcheng-daily")]
    for i, (title, body, source) in enumerate(stories):
        add_mention(store, title, body, t0 + timedelta(minutes=10 * i), source=source)
    seen: list[tuple[int, int]] = []
    report = analyze_new(store, config, clock, models=models, batch_size=4, progress=lambda d, t: seen.append((d, t)))

    assert seen == [(4, 11), (8, 11), (11, 11)] and report.batches == 3
    assert (report.analysed, report.reposts, report.events_opened) == (11, 9, 2)
    with store.session() as sess:
        counts = sorted(sess.scalars(select(Event.mention_count)))
    assert counts == [1, 10]  # batch boundaries do not split the story


def test_a_crash_mid_batch_leaves_no_half_written_batch(store, config, clock, models, monkeypatch):
    add_sources(store, config)
    t0 = clock.now() - timedelta(hours=5)
    ids = [add_mention(store, t, b, t0 + timedelta(minutes=7 * i), source=s)
           for i, (t, b, s) in enumerate(repost_copies(DEATH_TITLE, DEATH_BODY, 6))]
    ids.append(add_mention(store, VIOLENCE_TITLE, VIOLENCE_BODY, t0 + timedelta(hours=1)))
    real_refresh = pipeline.refresh_events
    calls = itertools.count()

    def failing_refresh(*args, **kwargs):
        if next(calls) == 1:
            raise RuntimeError("disk full")
        return real_refresh(*args, **kwargs)

    monkeypatch.setattr(pipeline, "refresh_events", failing_refresh)
    with pytest.raises(RuntimeError, match="disk full"):
        analyze_new(store, config, clock, models=models, batch_size=4)

    analysed = [i for i in ids if mention(store, i).analyzed_at is not None]
    assert analysed == ids[:4]  # the first batch committed whole
    assert all(mention(store, i).event_id is None and mention(store, i).simhash is None for i in ids[4:])
    assert count(store, Event) == 1  # the second batch's new event was rolled back with it
    assert event_of(store, ids[0]).mention_count == 4

    monkeypatch.setattr(pipeline, "refresh_events", real_refresh)
    report = analyze_new(store, config, clock, models=models, batch_size=4)
    assert report.analysed == 3 and count(store, Event) == 2
    assert event_of(store, ids[0]).mention_count == 6 and event_of(store, ids[0]).repost_count == 5


def test_a_url_found_later_updates_its_event_without_new_mentions(store, config, clock, models):
    add_sources(store, config)
    first = add_mention(store, DEATH_TITLE, DEATH_BODY, clock.now() - timedelta(hours=1), source=UNKNOWN_SOURCE)
    analyze_new(store, config, clock, models=models)
    ev = event_of(store, first)
    assert (ev.repost_count, ev.source_count, ev.top_tier) == (0, 1, 4)

    clock.advance(minutes=20)  # the crawler finds an exact copy at provincial media: same mention, new URL
    with store.session() as sess:
        url = "https://health.example.gov.cn/news/copy.html"
        sess.add(MentionURL(mention_id=first, url=url, url_key=hashlib.sha256(url.encode()).hexdigest(),
                            source_id="province-health-news", seen_at=clock.now()))
    clock.advance(minutes=5)
    report = analyze_new(store, config, clock, models=models)

    assert report.analysed == 0 and report.event_ids == [ev.id] and report.events_updated == 1
    ev = event_of(store, first)
    assert (ev.repost_count, ev.source_count, ev.top_tier, ev.mention_count) == (1, 2, 2, 1)
    assert to_unsigned(mention(store, first).simhash) is not None


def _story_day(store: Store, cfg: AppConfig, clock) -> dict[str, int]:
    """A day with a story and its copies, a rewrite at provincial media, a rumour and its rebuttal, a free clinic."""
    add_sources(store, cfg)
    t0 = clock.now() - timedelta(hours=8)
    ids = {"death": add_mention(store, DEATH_TITLE, DEATH_BODY, t0, source=UNKNOWN_SOURCE, extra_urls=["news-search"])}
    for i, (title, body, source) in enumerate(repost_copies(DEATH_TITLE, DEATH_BODY, 4)[1:]):
        ids[f"copy{i}"] = add_mention(store, title, body, t0 + timedelta(minutes=20 * (i + 1)), source=source)
    ids["rumour"] = add_mention(store, RUMOUR_TITLE, RUMOUR_BODY, t0 + timedelta(hours=2), source=UNKNOWN_SOURCE)
    ids["rebuttal"] = add_mention(store, REBUTTAL_TITLE, REBUTTAL_BODY, t0 + timedelta(hours=3),
                                  source="province-health-news")
    ids["clinic"] = add_mention(store, CLINIC_TITLE, CLINIC_BODY, t0 + timedelta(hours=4))
    return ids


def _outcome(store: Store, ids: dict[str, int]) -> tuple:
    """What analysis decided, independent of database ids."""
    by_event: dict[int, list[str]] = {}
    for name, mention_id in ids.items():
        by_event.setdefault(mention(store, mention_id).event_id, []).append(name)
    with store.session() as sess:
        measures = sorted(
            (e.mention_count, e.negative_count, e.crisis_count, e.source_count, e.repost_count, e.top_tier,
             round(e.velocity, 6), round(e.baseline, 6), e.headline, tuple(e.risk_categories), tuple(e.keywords))
            for e in sess.scalars(select(Event))
        )
    return sorted(sorted(v) for v in by_event.values()), measures


def test_postgresql_gives_the_same_events_as_sqlite(store, config, clock, models):
    from tests.postgres_support import postgres_url, why_unavailable

    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    start = clock.now()
    ids = _story_day(store, config, clock)
    analyze_new(store, config, clock, models=models, batch_size=3)
    expected = _outcome(store, ids)
    assert expected[0] == [["clinic"], ["copy0", "copy1", "copy2", "death"], ["rebuttal", "rumour"]]
    with postgres_url() as url:
        pg = Store.migrated(url)
        try:
            clock.set(start)
            pg_ids = _story_day(pg, config, clock)
            analyze_new(pg, config, clock, models=models, batch_size=3)
            assert _outcome(pg, pg_ids) == expected
        finally:
            pg.dispose()

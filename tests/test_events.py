"""Grouping mentions into events and measuring them: the hard cases the crisis team relies on."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from tests.test_analysis_pipeline import (  # noqa: F401  (models is a fixture)
    CLINIC_BODY,
    CLINIC_TITLE,
    DEATH_BODY,
    DEATH_TITLE,
    REBUTTAL_BODY,
    REBUTTAL_TITLE,
    RUMOUR_BODY,
    RUMOUR_TITLE,
    UNKNOWN_SOURCE,
    VIOLENCE_BODY,
    VIOLENCE_TITLE,
    add_mention,
    add_sources,
    event_of,
    mention,
    models,
    repost_copies,
)
from yuqing.analysis.events import BASELINE_FLOOR, VELOCITY_HOURS, EventGrouper, MentionFacts
from yuqing.analysis.pipeline import analyze_new
from yuqing.models import Event, Mention
from yuqing.store import Store

# Same story as DEATH_*, rewritten by other outlets (not copies: no simhash match).
BANNER_TITLE = "江城一院产妇死亡事件：家属拉横幅讨说法"
BANNER_BODY = (
    "今天上午，在江城市第一人民医院门诊楼前，数名家属拉起横幅，称产妇在该院剖宫产术后死亡，"
    "质疑医院抢救延误、隐瞒病情，要求医院给出说法并赔偿。围观群众众多，现场一度混乱。"
)
PROVINCE_TITLE = "江城一院产妇死亡事件追踪：卫健委介入调查 涉事医生已停职"
PROVINCE_BODY = (
    "记者从江城市卫健委获悉，针对网传江城市第一人民医院产妇剖宫产术后死亡一事，"
    "市卫健委已成立调查组介入调查，涉事医生已被停职。家属质疑医院延误抢救、隐瞒病情，"
    "要求公开病历并追究责任。医院方面表示将积极配合调查，调查结果将及时向社会公布。"
)
# A different death at the same hospital on the same day: shares 死亡, 家属, 讨说法, 抢救 — not the story.
GASTRO_TITLE = "江城一院一男子做完胃镜后死亡 家属讨说法"
GASTRO_BODY = (
    "昨日下午，52岁的市民张先生在江城市第一人民医院消化内科接受无痛胃镜检查，检查结束约半小时后"
    "突发呼吸困难，经抢救无效死亡。家属认为麻醉过程存在问题，要求医院公开监控并给出说法。"
)


def events(store: Store) -> list[Event]:
    with store.session() as sess:
        return list(sess.scalars(select(Event).order_by(Event.id)))


def test_one_story_reposted_30_times_is_one_event_with_30_reposts(store, config, clock, models):
    add_sources(store, config)
    t0 = clock.now() - timedelta(hours=10)
    original = add_mention(store, DEATH_TITLE, DEATH_BODY, t0, source=UNKNOWN_SOURCE)
    copies = [add_mention(store, title, body, t0 + timedelta(minutes=15 * (i + 1)), source=source)
              for i, (title, body, source) in enumerate(repost_copies(DEATH_TITLE, DEATH_BODY, 30))]
    report = analyze_new(store, config, clock, models=models)

    (ev,) = events(store)
    assert (report.events_opened, report.reposts) == (1, 30)
    assert (ev.mention_count, ev.repost_count, ev.crisis_count) == (31, 30, 31)
    assert ev.negative_count == sum(mention(store, i).negative for i in [original, *copies]) >= 30
    assert all(mention(store, c).repost_of_id == original for c in copies)  # the first copy, never a chain
    assert ev.source_count == 4 and ev.top_tier == 3  # the forum, the daily, search and reviews
    assert ev.headline == DEATH_TITLE
    assert set(ev.risk_categories) >= {"death_injury"} and "剖宫产" in ev.keywords
    assert ev.first_seen == t0 and ev.last_seen == t0 + timedelta(minutes=450)


def test_rewritten_coverage_of_the_story_joins_it_without_being_a_repost(store, config, clock, models):
    add_sources(store, config)
    t0 = clock.now() - timedelta(hours=6)
    forum = add_mention(store, DEATH_TITLE, DEATH_BODY, t0, source=UNKNOWN_SOURCE)
    banner = add_mention(store, BANNER_TITLE, BANNER_BODY, t0 + timedelta(hours=1))
    province = add_mention(store, PROVINCE_TITLE, PROVINCE_BODY, t0 + timedelta(hours=3), source="province-health-news")
    analyze_new(store, config, clock, models=models)

    assert event_of(store, forum).id == event_of(store, banner).id == event_of(store, province).id
    assert mention(store, banner).repost_of_id is None and mention(store, province).repost_of_id is None
    ev = event_of(store, forum)
    assert (ev.mention_count, ev.repost_count, ev.top_tier, ev.source_count) == (3, 0, 2, 3)
    assert ev.headline == PROVINCE_TITLE  # each story carried once: the highest tier heads the event


def test_different_stories_on_the_same_day_are_different_events(store, config, clock, models):
    add_sources(store, config)
    t0 = clock.now() - timedelta(hours=8)
    death = add_mention(store, DEATH_TITLE, DEATH_BODY, t0, source=UNKNOWN_SOURCE)
    gastro = add_mention(store, GASTRO_TITLE, GASTRO_BODY, t0 + timedelta(minutes=40))
    violence = add_mention(store, VIOLENCE_TITLE, VIOLENCE_BODY, t0 + timedelta(hours=1))
    clinic = add_mention(store, CLINIC_TITLE, CLINIC_BODY, t0 + timedelta(hours=2))
    banner = add_mention(store, BANNER_TITLE, BANNER_BODY, t0 + timedelta(hours=3))
    report = analyze_new(store, config, clock, models=models)

    ids = {name: event_of(store, m).id for name, m in
           [("death", death), ("gastro", gastro), ("violence", violence), ("clinic", clinic), ("banner", banner)]}
    assert report.events_opened == 4 and len(set(ids.values())) == 4
    assert ids["banner"] == ids["death"]
    assert "violence" in event_of(store, violence).risk_categories
    assert event_of(store, clinic).crisis_count == 0 and event_of(store, clinic).risk_categories == []


def test_a_rumour_and_its_rebuttal_are_one_event_and_the_rebuttal_is_no_crisis(store, config, clock, models):
    add_sources(store, config)
    t0 = clock.now() - timedelta(hours=5)
    rumour = add_mention(store, RUMOUR_TITLE, RUMOUR_BODY, t0, source=UNKNOWN_SOURCE)
    rebuttal = add_mention(store, REBUTTAL_TITLE, REBUTTAL_BODY, t0 + timedelta(hours=2))
    analyze_new(store, config, clock, models=models)

    r, b = mention(store, rumour), mention(store, rebuttal)
    assert r.crisis and not b.crisis and b.risk_categories == []
    assert r.event_id == b.event_id  # the rebuttal is the same story: the team sees both sides together
    ev = event_of(store, rumour)
    assert (ev.mention_count, ev.crisis_count) == (2, 1)
    assert "death_injury" in ev.risk_categories  # from the rumour; the rebuttal adds nothing


def test_velocity_against_the_hospitals_own_baseline(store, config, clock, models):
    add_sources(store, config)
    now = clock.now()
    quiet_end = now - timedelta(hours=VELOCITY_HOURS)
    for k in range(400):  # one mention an hour for the past 16 days: the usual rate is 1/h
        add_mention(store, f"日常报道{k}", f"江城一院日常新闻第{k}篇", quiet_end - timedelta(hours=k + 0.5), analysed=True)
    stories = [(DEATH_TITLE, DEATH_BODY, UNKNOWN_SOURCE), *repost_copies(DEATH_TITLE, DEATH_BODY, 11)]
    first = [add_mention(store, t, b, now - timedelta(hours=3) + timedelta(minutes=15 * i), source=s)
             for i, (t, b, s) in enumerate(stories)][0]
    analyze_new(store, config, clock, models=models)

    ev = event_of(store, first)
    assert ev.velocity == 12 / VELOCITY_HOURS  # 12 mentions in the last 6 hours
    assert ev.baseline == 1.0  # 336 mentions in the 14 days before them
    assert ev.velocity_ratio == 2.0 and ev.updated_at == now


def test_a_quiet_hospitals_baseline_is_floored(store, config, clock, models):
    add_sources(store, config)
    first = add_mention(store, DEATH_TITLE, DEATH_BODY, clock.now() - timedelta(hours=1), source=UNKNOWN_SOURCE)
    analyze_new(store, config, clock, models=models)
    ev = event_of(store, first)
    assert ev.baseline == BASELINE_FLOOR and ev.velocity == 1 / VELOCITY_HOURS


def test_top_tier_follows_config_tiers_and_unknown_sources_are_forums(store, config, clock, models):
    add_sources(store, config)
    t0 = clock.now() - timedelta(hours=4)
    first = add_mention(store, DEATH_TITLE, DEATH_BODY, t0, source=UNKNOWN_SOURCE, extra_urls=["patient-reviews"])
    analyze_new(store, config, clock, models=models)
    ev = event_of(store, first)
    assert (ev.top_tier, ev.source_count, ev.repost_count) == (4, 2, 1)  # the extra URL is a repost

    title, body, _ = repost_copies(DEATH_TITLE, DEATH_BODY, 2)[1]
    add_mention(store, title, body, t0 + timedelta(hours=1), source="jiangcheng-daily",
                extra_urls=["province-health-news"])
    clock.advance(minutes=10)
    analyze_new(store, config, clock, models=models)
    ev = event_of(store, first)
    assert (ev.top_tier, ev.source_count, ev.repost_count, ev.mention_count) == (2, 4, 3, 2)


def test_the_most_carried_story_heads_the_event(store, config, clock, models):
    add_sources(store, config)
    t0 = clock.now() - timedelta(hours=6)
    forum = add_mention(store, DEATH_TITLE, DEATH_BODY, t0, source=UNKNOWN_SOURCE)
    add_mention(store, PROVINCE_TITLE, PROVINCE_BODY, t0 + timedelta(hours=1), source="province-health-news")
    analyze_new(store, config, clock, models=models)
    assert event_of(store, forum).headline == PROVINCE_TITLE  # carried once each: highest tier wins

    for i, (title, body, source) in enumerate(repost_copies(DEATH_TITLE, DEATH_BODY, 3)[1:]):
        add_mention(store, title, body, t0 + timedelta(hours=2, minutes=i), source=source)
    analyze_new(store, config, clock, models=models)
    assert event_of(store, forum).headline == DEATH_TITLE  # now carried three times


def test_a_mention_after_the_window_opens_a_new_event(store, config, clock, models):
    add_sources(store, config)
    window = timedelta(hours=config.settings.event_window_hours)
    t0 = clock.now() - window - timedelta(hours=10)
    first = add_mention(store, DEATH_TITLE, DEATH_BODY, t0, source=UNKNOWN_SOURCE)
    inside = add_mention(store, BANNER_TITLE, BANNER_BODY, t0 + timedelta(hours=2))
    analyze_new(store, config, clock, models=models)

    late_copy = add_mention(store, DEATH_TITLE, DEATH_BODY + "（来源：江城热线）", t0 + timedelta(hours=2) + window
                            + timedelta(hours=1), source="news-search")
    report = analyze_new(store, config, clock, models=models)
    assert event_of(store, inside).id == event_of(store, first).id
    assert report.events_opened == 1 and event_of(store, late_copy).id != event_of(store, first).id
    assert mention(store, late_copy).repost_of_id is None  # the old copy left the window with its event


def test_grouping_is_the_same_in_one_run_or_one_run_per_mention(store, config, clock, models, tmp_path):
    stream = [(DEATH_TITLE, DEATH_BODY, UNKNOWN_SOURCE), (CLINIC_TITLE, CLINIC_BODY, "jiangcheng-daily"),
              *repost_copies(DEATH_TITLE, DEATH_BODY, 4)[1:], (GASTRO_TITLE, GASTRO_BODY, "news-search"),
              (BANNER_TITLE, BANNER_BODY, "news-search"), (RUMOUR_TITLE, RUMOUR_BODY, UNKNOWN_SOURCE),
              (VIOLENCE_TITLE, VIOLENCE_BODY, "jiangcheng-daily"), (REBUTTAL_TITLE, REBUTTAL_BODY, "jiangcheng-daily"),
              (PROVINCE_TITLE, PROVINCE_BODY, "province-health-news")]
    start = clock.now()

    def partition(st: Store, one_by_one: bool) -> list[list[int]]:
        add_sources(st, config)
        clock.set(start)
        for i, (title, body, source) in enumerate(stream):
            add_mention(st, title, body, start + timedelta(minutes=20 * i), source=source)
            if one_by_one:
                clock.set(start + timedelta(minutes=20 * i + 10))
                analyze_new(st, config, clock, models=models)
        clock.set(start + timedelta(hours=6))
        analyze_new(st, config, clock, models=models)
        with st.session() as sess:
            rows = sess.execute(select(Mention.id, Mention.event_id).order_by(Mention.id)).all()
        first_id = rows[0].id
        groups: dict[int, list[int]] = {}
        for mention_id, event_id in rows:
            groups.setdefault(event_id, []).append(mention_id - first_id)
        return sorted(groups.values())

    other = Store.migrated(f"sqlite:///{tmp_path / 'incremental.db'}")
    try:
        together, apart = partition(store, False), partition(other, True)
    finally:
        other.dispose()
    assert together == apart
    assert together == [[0, 2, 3, 4, 6, 10], [1], [5], [7, 9], [8]]


def _facts(i: int, when: datetime, keywords: tuple[str, ...]) -> MentionFacts:
    return MentionFacts(id=i, when=when, keywords=keywords)


def test_the_grouper_forgets_events_behind_the_window(models, clock):
    window = timedelta(hours=72)
    grouper = EventGrouper(window, models.keywords)
    t0 = clock.now()
    for day in range(30):  # a new story every 6 hours for a month, each mentioned twice
        for n in range(4):
            at = t0 + timedelta(hours=24 * day + 6 * n)
            words = (f"s{day}a{n}", f"s{day}b{n}", f"s{day}c{n}")  # no shared sub-words between stories
            first = grouper.place(_facts(2 * (4 * day + n), at, words))
            again = grouper.place(_facts(2 * (4 * day + n) + 1, at + timedelta(minutes=30), words))
            assert first.opened and not again.opened and again.state is first.state
    assert len(grouper.states) <= 4 * 3 + 4  # three days of stories, not thirty
    assert max(len(p) for p in grouper._postings.values()) == 1


def test_a_provincial_page_found_through_search_counts_as_provincial(store, config, clock, models):
    add_sources(store, config)
    found = add_mention(store, PROVINCE_TITLE, PROVINCE_BODY, clock.now() - timedelta(hours=2), source="news-search")
    with store.session() as sess:  # the search result links straight to the provincial outlet's own page
        url = sess.get(Mention, found).urls[0]
        url.url = "https://health.example.gov.cn/news/2026/1123/p-death.html"
    analyze_new(store, config, clock, models=models)
    ev = event_of(store, found)
    assert (ev.top_tier, ev.source_count) == (2, 2)  # news-search found it; province-health-news published it


def test_routine_reviews_sharing_common_words_do_not_snowball_into_one_event(store, config, clock, models):
    add_sources(store, config)
    reviews = ["在江城一院骨科看病，医生态度不错，就是排队时间有点长。", "江城一院产科护士态度很好，环境干净，排队不久。",
               "江城一院挂号排队两个小时，医生态度一般，希望改进。", "江城一院儿科医生很耐心，态度不错，推荐。",
               "江城一院急诊科排队太久，服务态度差，等了一晚上。", "江城一院停车难，排队久，医生态度还行。",
               "江城一院眼科检查很仔细，态度不错，排队也不算久。", "江城一院食堂饭菜一般，护士态度不错。"]
    t0 = clock.now() - timedelta(hours=6)
    ids = [add_mention(store, "", text, t0 + timedelta(minutes=20 * i), source="patient-reviews")
           for i, text in enumerate(reviews)]
    report = analyze_new(store, config, clock, models=models)
    assert report.events_opened == len(reviews)  # 态度, 排队, 不错 are everyone's words, not a story
    assert all(event_of(store, i).headline.startswith("在江城一院") or event_of(store, i).headline.startswith("江城一院")
               for i in ids)  # a review has no title: its first characters head its event

"""Analysis backfill figures: documents per second and peak memory at 10,000 and 100,000 mentions.

Builds synthetic but realistic mentions into a temporary SQLite store — patient reviews from
the real review corpora in ../shared (set at the hospital's departments), news and forum posts
around crisis and publicity stories, and ~10% reposts of earlier posts with other 转载 headers,
titles and source footers — at a steady ~70 mentions an hour, then runs ``analyze_new`` as one
backfill in a fresh subprocess per size (so peak RSS is that size's own). Prints docs/s, peak
RSS, the time share of each step, and a naive pairwise grouping timed on 2,000 mentions and
extrapolated, against the measured grouping step, to show the grouping is not quadratic.

Usage: .venv/bin/python bench/bench_analysis.py [--sizes 10000 100000] [--keep DIR] [--sentiment-model PATH]
(docs/s is wall-clock; cpu s is the run's own CPU time, for machines other jobs share.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import insert, select

from yuqing.clock import ManualClock
from yuqing.config import AppConfig, load_config
from yuqing.models import Mention, MentionURL, SourceState
from yuqing.store import Store

log = logging.getLogger("bench_analysis")

SHARED = REPO.parent / "shared" / "data" / "sentiment"
CORPORA = ["chnsenticorp_htl", "waimai_10k", "health_products_jd"]
CONFIG_ENV = {"YUQING_SMTP_USER": "bench", "YUQING_SMTP_PASSWORD": "bench", "YUQING_WECOM_CRISIS_KEY": "bench"}
PER_HOUR = 70  # mentions an hour: a busy city hospital; the 72 h window then holds ~5,000
STORIES_PER_DAY = 10  # distinct news stories a day, each carried by dozens of posts and reposts
START = datetime(2026, 1, 1, tzinfo=UTC)
NAIVE_SAMPLE = 2000
SEED = 20261123

EXTRA_DEPARTMENTS = ["消化内科", "神经外科", "眼科", "皮肤科", "口腔科", "妇科", "呼吸内科", "内分泌科", "泌尿外科", "耳鼻喉科"]
SURNAMES = ("张李王刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈"
            "曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭")
SLOTS = {
    "who": ["一名产妇", "七旬老人", "三岁患儿", "五旬男子", "一名孕妇", "一名大学生", "八旬老太", "一名外卖员",
            "一名教师", "两岁女童", "一名环卫工", "一名退休职工", "一名货车司机", "六岁男孩", "一名高三学生",
            "一名快递员", "一名农民工", "九旬老人", "一名护士长", "一名出租车司机"],
    "person": [f"{x}{y}" for x in SURNAMES for y in ("先生", "女士", "阿姨", "大爷")],
    "doctor": [f"{x}某" for x in SURNAMES],
    "proc": ["剖宫产", "无痛胃镜", "静脉输液", "阑尾切除手术", "全身麻醉", "骨折复位", "心脏支架手术", "拔牙",
             "扁桃体手术", "白内障手术", "腰椎穿刺", "肾结石碎石", "甲状腺切除", "疝气修补", "胆囊切除",
             "冠脉造影", "宫腔镜检查", "人工关节置换", "鼻窦手术", "痔疮手术", "包皮环切", "肝穿刺活检",
             "骨髓穿刺", "激光祛斑", "种植牙", "近视矫正", "血液透析", "化疗", "支气管镜", "结肠镜"],
    "symptom": ["大出血", "呼吸困难", "高烧不退", "意识模糊", "心跳骤停", "伤口化脓", "过敏性休克", "抽搐",
                "肺栓塞", "急性肾衰", "败血症", "脑出血"],
    "place": ["门诊楼前", "住院部大厅", "急诊科门口", "医院正门", "行政楼下", "挂号大厅", "停车场入口"],
    "amount": ["两千", "五千", "八千", "一万二", "三万", "六千八", "四万五", "九千", "一万八", "七千三"],
    "when": ["昨日", "前天晚上", "本月初", "上周五", "今天凌晨", "周日下午", "上周三", "元旦前后"],
    "street": ["东湖街道", "滨江社区", "城南社区", "光明街道", "桃源小区", "新华社区", "柳岸花园", "青石镇",
               "白鹭洲社区", "金沙街道", "南山村", "红星社区", "望江小区", "梅林街道", "翠湖社区"],
    "prize": ["省级临床重点专科", "全国改善医疗服务示范科室", "省科技进步二等奖", "市级青年文明号",
              "全国巾帼文明岗", "省医学会优秀学科", "市科学技术一等奖", "全国五一劳动奖状"],
}
# How outlets phrase one kind of story: a story fixes its phrasing, so two stories of one kind share less.
PHRASES = {
    "died": ["死亡", "身亡", "离世", "不幸去世"],
    "delay": ["延误抢救", "抢救不及时", "处置不当", "拖延救治"],
    "hide": ["隐瞒病情", "篡改病历", "推卸责任", "拒绝沟通"],
    "take": ["收受红包", "收红包", "索要红包", "私收红包"],
    "report": ["举报", "投诉", "曝光", "反映"],
    "office": ["纪委", "监察室", "纪检部门", "卫健委"],
    "penalty": ["暂停执业", "停职", "停职检查", "调离岗位"],
    "hit": ["殴打", "打伤", "袭击", "拳打脚踢"],
    "police": ["警方", "派出所民警", "公安机关", "巡逻民警"],
    "overcharge": ["乱收费", "重复收费", "收费过高", "多收费"],
    "insurance": ["医保报销被拒", "医保不给报", "无法使用医保", "自费比例过高"],
    "won": ["获评", "荣获", "入选", "被授予"],
    "activity": ["义诊", "健康咨询", "免费体检", "健康讲座"],
    "new": ["新技术", "新术式", "微创技术", "首例手术"],
}
# Story types: titles and sentences an outlet picks from; a story fixes its slots and phrasing, so its
# mentions share them, while two stories of one type share only some of the type's vocabulary.
STORY_TYPES: dict[str, tuple[list[str], list[str]]] = {
    "death": (["{who}在{hosp}{proc}后{died} 家属质疑{delay}", "{hosp}{who}{proc}后{died} {person}家属讨说法",
               "{person}{proc}后{died} {hosp}回应"],
              ["{who}{person}{when}在{hosp}{dept}接受{proc}，术后出现{symptom}。",
               "{person}的家属称多次呼叫值班医生{doctor}无人理会。",
               "{person}最终{died}，家属质疑{delay}、{hide}。", "{hosp}回应称已成立调查组，{dept}主治医生{doctor}已{penalty}。",
               "事发后，{person}的家属在{place}拉起横幅。", "{office}已介入调查{person}{died}一事。"]),
    "bribe": (["{hosp}{dept}主任{doctor}被{report}{take}", "{person}实名{report}{hosp}{dept}医生{doctor}{take}"],
              ["{person}称，其家人在{dept}做{proc}前，主任{doctor}{take}。", "{report}人{person}提供了转账记录，金额{amount}元。",
               "{hosp}{office}已介入调查，{doctor}已{penalty}。", "{person}表示，送了{amount}元后{proc}才被安排。"]),
    "violence": (["{hosp}{dept}医生{doctor}遭患者家属{hit}", "{dept}医生被{hit} {hosp}：已报警"],
                 ["{when}，{hosp}{dept}医生{doctor}在为{who}处置{symptom}时，遭家属{hit}。",
                  "{doctor}头部受伤缝了{amount}针，{police}已将打人者控制。", "{hosp}表示坚决反对暴力伤医。",
                  "监控显示，打人者在{place}推搡{doctor}。"]),
    "fees": (["{person}反映{hosp}{dept}{overcharge}", "{proc}花费{amount}元 {person}质疑{hosp}{overcharge}"],
             ["{person}反映在{hosp}{dept}做{proc}花费{amount}元，清单中{overcharge}。", "{person}说，{insurance}。",
              "{hosp}物价办表示将核查{person}的收费清单。", "{person}质疑{dept}给{who}开了不必要的检查。"]),
    "award": (["{hosp}{dept}{won}{prize}", "{dept}{won}{prize} {hosp}再获殊荣"],
              ["近日，{prize}名单公布，{hosp}{dept}榜上有名。", "该科室近年来开展{proc}等{new}，{doctor}团队功不可没。",
               "{dept}年门诊量突破{amount}人次。"]),
    "clinic": (["{hosp}{dept}专家走进{street}开展{activity}", "{hosp}{activity}进{street} {dept}专家送健康"],
               ["{when}，{hosp}组织{dept}专家走进{street}开展{activity}。", "{dept}专家{doctor}为居民讲解{proc}前后注意事项。",
                "{street}居民{person}说，希望多举办此类活动。"]),
    "tech": (["{hosp}{dept}成功完成{proc}{new}", "{hosp}{dept}开展{proc}{new} {who}术后恢复良好"],
             ["近日，{hosp}{dept}{doctor}团队为{who}{person}成功实施{proc}。", "{person}术后恢复良好，已于{when}出院。",
              "{doctor}介绍，该{new}创伤小、恢复快。"]),
}
CRISIS_TYPES = ["death", "bribe", "violence", "fees"]
FILLER = ["医院方面表示将积极配合调查。", "目前，相关工作正在进一步处理中。", "本报将持续关注事件进展。", ""]
REPOST_HEADS = ["", "本文转载自{site}，", "【{site}讯】", "转自：{site} ", "据{site}报道，"]
REPOST_TITLES = ["{t}", "转载｜{t}", "【关注】{t}", "{t}_{site}", "转：{t}"]
REPOST_FEET = ["", "（来源：{site}）", "责任编辑：刘芳", " 原文链接：http://www.example.com/a/{n}.html", "（记者 周洁）"]
SITES = ["江城日报", "本地生活圈", "江城热线", "新浪新闻", "网易健康", "今日头条", "澎湃新闻"]
FORUMS = ["local-forum", "city-bbs", "tieba-jiangcheng"]


@dataclass
class Generated:
    """One synthetic mention and the story it truly belongs to (for grouping quality)."""

    title: str
    text: str
    source: str
    at: datetime
    kind: str
    story: int


@dataclass
class Story:
    """A story several outlets write about within a few days."""

    id: int
    kind: str
    slots: dict[str, str]
    until: datetime


def review_sentences() -> list[str]:
    """Real review texts from ../shared (or a stub list when the corpora are absent)."""
    out: list[str] = []
    for stem in CORPORA:
        path = SHARED / f"{stem}.train.jsonl"
        if not path.is_file():
            continue
        with path.open(encoding="utf-8") as fh:
            out.extend(t for t in (json.loads(line)["text"] for line in fh if line.strip()) if 8 <= len(t) <= 300)
    if not out:
        log.warning("no review corpora at %s: using a handful of stock sentences", SHARED)
        out = ["排队时间太长了，希望改进。", "医生很耐心，解释得很清楚。", "环境干净，护士态度好。"]
    return out


class MentionStream:
    """Reviews (55%), news and posts about current stories (35%), reposts of recent posts (10%)."""

    def __init__(self, cfg: AppConfig, rng: random.Random) -> None:
        self.rng = rng
        self.names = cfg.hospital.names
        self.departments = [*cfg.hospital.departments, *EXTRA_DEPARTMENTS]
        self.sources = [s.id for s in cfg.sources.sources] + FORUMS
        self.sentences = review_sentences()
        self.stories: list[Story] = []
        self.recent_posts: list[Generated] = []
        self.next_story = 0

    def _story_id(self) -> int:
        self.next_story += 1
        return self.next_story

    def _current_story(self, at: datetime) -> Story:
        """A story still being written about, or a new one (about STORIES_PER_DAY, a crisis two times in five)."""
        rng = self.rng
        self.stories = [s for s in self.stories if s.until > at]
        if not self.stories or rng.random() < STORIES_PER_DAY / (PER_HOUR * 24 * 0.35):
            kind = rng.choice(CRISIS_TYPES) if rng.random() < 0.4 else rng.choice(["award", "clinic", "tech"])
            slots = {k: rng.choice(v) for k, v in (SLOTS | PHRASES).items()}
            slots.update(hosp=rng.choice(self.names), dept=rng.choice(self.departments))
            self.stories.append(Story(self._story_id(), kind, slots, at + timedelta(hours=rng.uniform(6, 60))))
        weights = [3.0 if s.kind in CRISIS_TYPES else 1.0 for s in self.stories]
        return rng.choices(self.stories, weights)[0]

    def _post(self, at: datetime) -> Generated:
        rng = self.rng
        story = self._current_story(at)
        titles, sentences = STORY_TYPES[story.kind]
        slots = {**story.slots, "hosp": rng.choice(self.names)}  # outlets name the hospital differently
        chosen = rng.sample(sentences, k=rng.randint(2, len(sentences)))
        body = "".join(x.format(**slots) for x in chosen) + rng.choice(FILLER)
        post = Generated(rng.choice(titles).format(**slots), body, rng.choice(self.sources), at, "news", story.id)
        self.recent_posts = (self.recent_posts + [post])[-300:]
        return post

    def _review(self, at: datetime) -> Generated:
        rng = self.rng
        text = f"在{rng.choice(self.names)}{rng.choice(self.departments)}看病，{rng.choice(self.sentences)}"
        return Generated("", text, "patient-reviews", at, "review", self._story_id())

    def _repost(self, at: datetime, n: int) -> Generated:
        rng = self.rng
        post = rng.choice(self.recent_posts)
        site = rng.choice(SITES)
        title = rng.choice(REPOST_TITLES).format(t=post.title, site=site)
        text = rng.choice(REPOST_HEADS).format(site=site) + post.text + rng.choice(REPOST_FEET).format(site=site, n=n)
        return Generated(title, text, rng.choice(self.sources), at, "news", post.story)

    def generate(self, n: int) -> Iterator[Generated]:
        """n mentions in time order at about PER_HOUR an hour."""
        at = START
        for i in range(n):
            at += timedelta(seconds=self.rng.expovariate(PER_HOUR / 3600))
            roll = self.rng.random()
            if roll < 0.10 and self.recent_posts:
                yield self._repost(at, i)
            elif roll < 0.45:
                yield self._post(at)
            else:
                yield self._review(at)


def build_store(url: str, cfg: AppConfig, n: int) -> tuple[datetime, list[int]]:
    """A migrated store of n unanalysed mentions with their URL rows; returns the last time and true story ids."""
    store = Store.migrated(url)
    stream = MentionStream(cfg, random.Random(SEED))
    with store.session() as sess:
        for sid in [s.id for s in cfg.sources.sources] + FORUMS:
            tier = cfg.source(sid).tier if sid not in FORUMS else 4
            sess.add(SourceState(id=sid, kind="web", name=sid, url=f"https://{sid}.example", tier=tier))
    last = START
    stories: list[int] = []
    batch_m: list[dict] = []
    for i, g in enumerate(stream.generate(n), start=1):
        stories.append(g.story)
        url = f"https://{g.source}.example/{i}.html"
        batch_m.append({"id": i, "url": url, "source_id": g.source, "kind": g.kind, "title": g.title, "text": g.text,
                        "published_at": g.at, "fetched_at": g.at + timedelta(minutes=3),
                        "content_hash": hashlib.sha256(g.text.encode()).hexdigest(), "matched_names": [],
                        "match_context": "", "risk_categories": [], "risk_terms": [], "keywords": []})
        last = g.at
        if len(batch_m) == 5000:
            _insert(store, batch_m)
            batch_m = []
    if batch_m:
        _insert(store, batch_m)
    store.dispose()
    return last, stories


def _insert(store: Store, rows: list[dict]) -> None:
    with store.session() as sess:
        sess.execute(insert(Mention), rows)
        sess.execute(insert(MentionURL), [
            {"mention_id": r["id"], "url": r["url"], "url_key": hashlib.sha256(r["url"].encode()).hexdigest(),
             "source_id": r["source_id"], "seen_at": r["fetched_at"]} for r in rows])


def naive_grouping_seconds(url: str, n: int) -> float:
    """Pairwise grouping (every mention against every earlier one) on n analysed mentions."""
    from yuqing.analysis.simhash import hamming, to_unsigned

    store = Store(url)
    with store.session() as sess:
        rows = sess.execute(select(Mention.simhash, Mention.keywords).order_by(Mention.id).limit(n)).all()
    store.dispose()
    items = [(to_unsigned(s), {k: 1.0 for k in kw}) for s, kw in rows]
    start = time.perf_counter()
    for i, (sig, vec) in enumerate(items):
        for other_sig, other_vec in items[:i]:
            if sig is not None and other_sig is not None and hamming(sig, other_sig) <= 3:
                break
            dot = sum(1.0 for k in vec if k in other_vec)
            if dot and dot / math.sqrt(len(vec) * len(other_vec)) >= 0.25:
                break
    return time.perf_counter() - start


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children: immune to other jobs sharing the machine."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child(url: str, now: str, sentiment_model: str) -> None:
    """Run one backfill in this process and print its figures as JSON (peak RSS is this process's own)."""
    from yuqing.analysis.pipeline import analyze_new, load_models

    cfg = load_config(REPO / "config", env=CONFIG_ENV)
    t0 = time.perf_counter()
    models = load_models(cfg, sentiment_path=Path(sentiment_model))
    load_s = time.perf_counter() - t0
    rss_models = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store = Store(url)
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    report = analyze_new(store, cfg, ManualClock(datetime.fromisoformat(now)), models=models)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    store.dispose()
    print(json.dumps({
        "analysed": report.analysed, "events": report.events_opened, "reposts": report.reposts,
        "crisis": report.crisis, "negative": report.negative, "wall": wall, "cpu": cpu, "load": load_s,
        "seconds": report.seconds, "rss_models_kb": rss_models,
        "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


def run_size(n: int, workdir: Path, sentiment_model: Path) -> dict:
    """Build a store of n mentions, then analyse it in a child process."""
    cfg = load_config(REPO / "config", env=CONFIG_ENV)
    path = workdir / f"bench_{n}.db"
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    t0 = time.perf_counter()
    last, stories = build_store(url, cfg, n)
    built = time.perf_counter() - t0
    out = subprocess.run([sys.executable, __file__, "--child", url, (last + timedelta(hours=1)).isoformat(),
                          str(sentiment_model)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"analysis of {n:,} mentions failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(n=n, url=url, built=built, quality=bcubed(url, stories), news_quality=bcubed(url, stories, "news"))
    return result


def bcubed(url: str, stories: list[int], kind: str | None = None) -> tuple[float, float]:
    """B-cubed precision and recall of the events against the generator's true stories (of one kind of mention)."""
    store = Store(url)
    with store.session() as sess:
        rows = sess.execute(select(Mention.event_id, Mention.kind).order_by(Mention.id)).all()
    store.dispose()
    keep = [i for i, r in enumerate(rows) if kind is None or r.kind == kind]
    events, truth = [rows[i].event_id for i in keep], [stories[i] for i in keep]
    pairs = Counter(zip(events, truth))
    per_event, per_story = Counter(events), Counter(truth)
    precision = sum(c * c / per_event[e] for (e, _), c in pairs.items()) / len(events)
    recall = sum(c * c / per_story[s] for (_, s), c in pairs.items()) / len(events)
    return precision, recall


def report(results: list[dict], naive: tuple[int, float] | None) -> None:
    """Print the figures as a table."""
    print(f"{'mentions':>9} {'docs/s':>8} {'wall s':>7} {'cpu s':>7} {'peak MB':>8} {'models MB':>9} "
          f"{'events':>7} {'reposts':>8} {'crisis':>7} {'B3 P/R':>9}  step shares")
    for r in results:
        steps = r["seconds"]
        total = sum(steps.values()) or 1.0
        shares = " ".join(f"{k} {100 * v / total:.0f}%" for k, v in steps.items())
        print(f"{r['n']:>9,} {r['analysed'] / r['wall']:>8,.0f} {r['wall']:>7.1f} {r['cpu']:>7.1f} "
              f"{r['rss_peak_kb'] / 1024:>8.0f} "
              f"{r['rss_models_kb'] / 1024:>9.0f} {r['events']:>7,} {r['reposts']:>8,} {r['crisis']:>7,} "
              f"{r['quality'][0]:>4.2f}/{r['quality'][1]:.2f}  {shares}")
    for r in results:
        (p, rc), (np_, nr) = r["quality"], r["news_quality"]
        print(f"grouping quality at {r['n']:,} (B-cubed against the generator's stories): all mentions "
              f"P {p:.2f} R {rc:.2f}; news and posts only P {np_:.2f} R {nr:.2f}")
    if len(results) >= 2:
        a, b = results[0], results[-1]
        growth = b["seconds"]["grouping"] / max(a["seconds"]["grouping"], 1e-9)
        print(f"grouping step: {a['seconds']['grouping']:.2f} s at {a['n']:,} → {b['seconds']['grouping']:.2f} s at "
              f"{b['n']:,} ({growth:.1f}× for {b['n'] / a['n']:.0f}× the mentions)")
    if naive:
        n, secs = naive
        for r in results:
            est = secs * (r["n"] / n) ** 2
            print(f"naive pairwise grouping: {secs:.2f} s on {n:,} mentions → ~{est:,.0f} s extrapolated to "
                  f"{r['n']:,} (measured grouping: {r['seconds']['grouping']:.2f} s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--keep", type=Path, help="keep the bench databases in this directory")
    ap.add_argument("--sentiment-model", type=Path, default=None,
                    help="sentiment model .npz (default: the shipped data/sentiment_model.npz)")
    ap.add_argument("--child", nargs=3, metavar=("URL", "NOW", "MODEL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.child:
        child(*args.child)
        return 0
    from yuqing.analysis.sentiment import DEFAULT_MODEL_PATH

    model = args.sentiment_model or DEFAULT_MODEL_PATH
    if not model.is_file():
        print(f"no sentiment model at {model}: build it with scripts/train_sentiment.py "
              f"or pass --sentiment-model PATH", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="yuqing-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = []
        for n in args.sizes:
            print(f"building and analysing {n:,} mentions …", file=sys.stderr, flush=True)
            results.append(run_size(n, workdir, model))
        sample = min(NAIVE_SAMPLE, results[0]["n"])
        naive = (sample, naive_grouping_seconds(results[0]["url"], sample))
        report(results, naive)
    return 0


if __name__ == "__main__":
    sys.exit(main())

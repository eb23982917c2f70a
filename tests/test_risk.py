"""Crisis-risk tagging: categories, negation, rebuttals, publicity frames, the learned headline model,
config terms, CLI, accuracy on tuned and unseen sets, speed."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import pytest
import yaml

from yuqing.analysis.risk import RiskAssessment, RiskTagger, load_lexicon

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
sys.path.insert(0, str(REPO))
from bench.bench_risk import curve, naive_baseline, operating_points, read_labelled  # noqa: E402

FRESH = {name: DATA / f"risk_fresh_{name}.tsv" for name in "abcd"}


@pytest.fixture(scope="module")
def tagger() -> RiskTagger:
    """The shipped lexicon, compiled once for the module."""
    return RiskTagger(load_lexicon())


@pytest.mark.parametrize("text, category", [
    ("产妇剖宫产后大出血身亡 家属质疑医院延误抢救", "death_injury"),
    ("医疗事故鉴定结果出炉 医院负全责", "malpractice_dispute"),
    ("患者家属殴打护士被拘", "violence"),
    ("女子就医遭医生索要红包 卫健委介入", "bribery"),
    ("医院挂床住院骗保被查处 追回资金300万", "fees_fraud"),
    ("某医院血透室发生丙肝感染事件 院长被免职", "infection"),
    ("实习医生偷拍女患者 已被停职", "privacy"),
    ("孕妇因没带身份证被拒收 医院致歉", "service_attitude"),
    ("医院被查出使用过期药品 罚款10万", "drug_safety"),
    ("无资质人员冒充医生做手术 医院被吊销执业许可证", "misconduct"),
    ("住院部凌晨起火 数十名患者紧急疏散", "safety_accident"),
    ("某医院副院长接受纪律审查和监察调查", "investigation"),
])
def test_each_category_is_detected(tagger: RiskTagger, text: str, category: str) -> None:
    assert_crisis_of(tagger, text, category)


def assert_crisis_of(tagger: RiskTagger, text: str, category: str) -> None:
    """The text is a crisis of this category; on failure, show how the tagger read it."""
    res = tagger.assess(text)
    assert res.crisis, tagger.explain(text)
    assert category in res.categories, res


@pytest.mark.parametrize("text", [
    "未发生医疗事故",
    "不存在收受红包",
    "没有发现感染",
    "卫健委：经调查 该院未发生医疗事故",
    "医院澄清：不存在收受红包行为 网传消息不实",
    "官方辟谣：某医院并未发生院内感染",
    "智慧医院上线 挂号缴费不再排长队",
])
def test_negated_claims_do_not_count(tagger: RiskTagger, text: str) -> None:
    res = tagger.assess(text)
    assert not res.crisis, res
    assert res.terms == (), res


def test_negation_needs_the_same_clause(tagger: RiskTagger) -> None:
    assert not tagger.assess("未发生医疗事故").crisis
    res = tagger.assess("调查未结束，医疗事故责任待定")
    assert res.crisis and "医疗事故" in res.terms


def test_rebuttal_is_not_a_crisis_but_the_claim_is(tagger: RiskTagger) -> None:
    assert not tagger.assess("网传某医院患者死亡系谣言").crisis
    assert not tagger.assess("医院辟谣：网传“护士打错针致婴儿死亡”不实").crisis
    assert not tagger.assess("警方辟谣：网传“医院有人砍医生”系谣言 造谣者被处罚").crisis
    claim = tagger.assess("患者死亡 家属质疑")
    assert claim.crisis
    assert claim.categories == ("death_injury", "malpractice_dispute")


@pytest.mark.parametrize("text", [
    "医院否认医疗事故 家属坚称手术操作失误",
    "医院否认，家属坚称手术有问题",
    "家属否认医院说法：孩子入院时还能说话",
])
def test_a_dispute_survives_a_denial(tagger: RiskTagger, text: str) -> None:
    res = tagger.assess(text)
    assert res.crisis and "malpractice_dispute" in res.categories, res


@pytest.mark.parametrize("text", [
    "义诊 为高血压患者",
    "义诊进社区 为高血压患者送健康",
    "降低患者死亡率",
    "我院胸痛中心使急性心梗患者死亡率下降30%",
    "高血压患者如何预防中风？专家支招",
    "成功抢救心脏骤停患者 家属送来锦旗",
    "医院召开第三季度死亡病例讨论会",
    "医保新政：门诊报销比例提高至70%",
    "医院获评全国文明单位",
    "三甲医院成功完成首例机器人手术",
    "冬季流感高发 专家提醒",
    "医生拒收红包 悄悄存入患者住院账户",
    "医院举行防暴恐应急演练 保障医护安全",
])
def test_publicity_mentioning_illness_is_not_a_crisis(tagger: RiskTagger, text: str) -> None:
    assert not tagger.assess(text).crisis


def test_death_after_failed_rescue_needs_blame(tagger: RiskTagger) -> None:
    plain = tagger.assess("男子突发心梗 抢救无效死亡")
    assert not plain.crisis and plain.categories == ("death_injury",)
    blamed = tagger.assess("男子突发心梗送医 抢救无效死亡 家属质疑医院延误")
    assert blamed.crisis and "malpractice_dispute" in blamed.categories


def test_a_weak_term_needs_a_cosignal(tagger: RiskTagger) -> None:
    assert not tagger.assess("流感患者激增 医院儿科排长队").crisis
    assert tagger.assess("儿科急诊排长队 家长等候5小时 医院：增派人手").crisis
    assert not tagger.assess("男子突发疾病死亡").crisis
    assert tagger.assess("男子突发疾病死亡 涉事医院被指延误").crisis


def test_a_frame_in_another_sentence_does_not_hide_a_claim(tagger: RiskTagger) -> None:
    text = "某医院发生医疗事故致患者死亡。医院提醒广大市民注意冬季保暖。"
    assert tagger.assess(text).crisis
    assert not tagger.assess("医院提醒：如何避免医疗纠纷").crisis


def test_a_rescue_outcome_does_not_hide_an_attack(tagger: RiskTagger) -> None:
    assert tagger.assess("一名医生在诊室遭持刀袭击 经抢救脱离危险").crisis
    assert not tagger.assess("女子产后大出血 多学科协作保住子宫").crisis


def test_a_rumour_mentioned_late_in_an_article_does_not_cancel_its_opening(tagger: RiskTagger) -> None:
    text = "市一院一名产妇术后死亡，家属质疑医院延误抢救。" + "院方表示正在调查。" * 20 + "有关“医生逃跑”的说法系谣言。"
    assert tagger.assess(text).crisis


def test_full_width_and_case_are_normalised(tagger: RiskTagger) -> None:
    assert tagger.assess("男子在医院输液后感染ＨＩＶ？院方回应").terms == tagger.assess(
        "男子在医院输液后感染HIV?院方回应").terms


def test_assessment_is_frozen_with_stable_category_order(tagger: RiskTagger) -> None:
    res = tagger.assess("医生收红包被举报 涉事医生已停职 家属质疑")
    assert isinstance(res, RiskAssessment)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.crisis = False  # type: ignore[misc]
    order = tagger.lexicon.categories
    assert list(res.categories) == sorted(res.categories, key=order.index)
    assert 0.0 <= res.score <= 1.0
    assert tagger.assess("") == RiskAssessment(False, (), (), 0.0)


def test_extra_terms_from_config() -> None:
    base = RiskTagger(load_lexicon())
    assert not base.assess("门诊挂号机全坏了").crisis
    tagger = RiskTagger(load_lexicon(extra={"service_attitude": ["挂号机全坏了"]}))
    res = tagger.assess("门诊挂号机全坏了")
    assert res.crisis and res.categories == ("service_attitude",) and res.terms == ("挂号机全坏了",)
    weak = RiskTagger(load_lexicon(extra={"service_attitude": ["挂号机全坏了:0.5"]}))
    assert not weak.assess("门诊挂号机全坏了").crisis
    assert weak.assess("门诊挂号机全坏了 患者投诉").crisis


def test_shipped_hospital_config_terms_load() -> None:
    terms = yaml.safe_load((REPO / "config" / "hospital.yaml").read_text(encoding="utf-8"))["risk_terms"]
    tagger = RiskTagger(load_lexicon(extra=terms))
    assert tagger.assess("患者质疑天价药费").crisis


def test_unknown_category_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="fees_fruad"):
        load_lexicon(extra={"fees_fruad": ["天价"]})


def test_bad_lexicon_file_names_itself(tmp_path: Path) -> None:
    bad = tmp_path / "lex.yaml"
    bad.write_text("categories:\n  x:\n    name: X\n    patterns:\n      - re: '(unclosed'\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lex.yaml"):
        load_lexicon(bad)
    with pytest.raises(ValueError, match="categories"):
        (tmp_path / "empty.yaml").write_text("threshold: 0.5\n", encoding="utf-8")
        load_lexicon(tmp_path / "empty.yaml")


def prf(rows: list[tuple[bool, str]], predict) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Precision and recall of a predictor on labelled rows."""
    tp = sum(1 for g, t in rows if g and predict(t))
    fp = sum(1 for g, t in rows if not g and predict(t))
    fn = sum(1 for g, t in rows if g and not predict(t))
    return tp / max(1, tp + fp), tp / max(1, tp + fn)


def _scores(tagger: RiskTagger, rows: list[tuple[bool, str]]) -> tuple[float, float]:
    """Precision and recall of the lexicon's own crisis flag."""
    return prf(rows, lambda t: tagger.assess(t).crisis)


def test_eval_set_is_realistic() -> None:
    rows = read_labelled(DATA / "risk_headlines.tsv")
    assert len(rows) >= 200
    assert 0.35 <= sum(g for g, _ in rows) / len(rows) <= 0.45
    dev = {t for _, t in read_labelled(DATA / "risk_dev.tsv")}
    assert not dev & {t for _, t in rows}, "dev and eval overlap"


def test_fresh_batches_are_realistic_and_disjoint() -> None:
    """Each fresh batch: 150 headlines, 40% crisis, no line shared with any other set."""
    seen = {t for f in ("risk_dev.tsv", "risk_headlines.tsv") for _, t in read_labelled(DATA / f)}
    for name, path in FRESH.items():
        rows = read_labelled(path)
        texts = {t for _, t in rows}
        assert len(rows) == len(texts) == 150, name
        assert sum(g for g, _ in rows) == 60, name
        assert not texts & seen, f"fresh {name} overlaps another set"
        seen |= texts


@pytest.mark.parametrize("name, precision, recall", [
    ("risk_dev.tsv", 0.98, 0.9), ("risk_fresh_a.tsv", 0.98, 0.93), ("risk_fresh_b.tsv", 0.98, 0.83),
    ("risk_fresh_c.tsv", 0.98, 0.78), ("risk_headlines.tsv", 0.96, 0.86),
])
def test_the_lexicon_keeps_its_figures_on_the_sets_it_was_tuned_on(tagger: RiskTagger, name: str,
                                                                    precision: float, recall: float) -> None:
    """The lexicon alone (precise, and what a person can read) as it stood when the learned model took over
    recall: 1.0 / 0.93, 1.0 / 0.97, 1.0 / 0.87, 1.0 / 0.82, 0.99 / 0.90. A lexicon edit that breaks
    negation, rebuttals or frames shows up here first."""
    p, r = _scores(tagger, read_labelled(DATA / name))
    assert p >= precision and r >= recall, (p, r)


def test_the_lexicon_beats_the_naive_baseline_on_precision(tagger: RiskTagger) -> None:
    rows = read_labelled(DATA / "risk_headlines.tsv")
    ours, _ = _scores(tagger, rows)
    naive, _ = prf(rows, naive_baseline(tagger.lexicon))
    assert ours >= naive + 0.2, (ours, naive)


def test_speed_floor(tagger: RiskTagger) -> None:
    """Bench figure is ~11k/s; the floor only catches a pathological regex on a shared CI machine."""
    texts = [t for _, t in read_labelled(DATA / "risk_headlines.tsv")]
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for t in texts:
            tagger.assess(t)
        best = max(best, len(texts) / (time.perf_counter() - start))
    assert best >= 2500, best


# --- structural claims added in v7-v9 ------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "孩子发烧被当成感冒 最后确诊脑膜炎",                   # misdiagnosis told as a story
    "男子被诊断“肺癌”切掉半个肺 术后病理显示良性",
    "医院被取消三甲资格",                                   # sanctions in any wording
    "市中心医院等级复审未通过 由三甲降为二甲",
    "一医院因医疗废物混入生活垃圾被罚20万",
    "窗帘破损 女子在病房换衣服被隔壁看得一清二楚",         # privacy
    "男子在医院大厅突发疾病倒地 十几分钟无医护上前",       # neglect
    "病理报告被弄混 女子被误做乳房切除",                   # mix-ups
    "关于我院一患者离院后死亡的情况说明",                   # the institution's own statement
])
def test_structural_claims_catch_long_tail_wording(tagger: RiskTagger, text: str) -> None:
    res = tagger.assess(text)
    assert res.crisis and res.categories, res


@pytest.mark.parametrize("text", [
    "这5种癌症早期症状容易被误认为胃病",                   # health education about misdiagnosis
    "AI辅助诊断在基层医院推广 漏诊率下降",                 # a rate, not an incident
    "宝宝留置针怎么护理？护士教你几招",                     # 留置 is a cannula here, not detention
    "八旬老人在家摔倒骨折 医院微创手术三天下地",           # a fall at home, treated at hospital
    "卫健委：医疗机构不得以任何理由拒收危重病人",           # a prohibition reaches its clause
    "医院出台规定：医生收受红包一律严肃处理",               # a conditional: a rule, not an incident
    "国家医保局：将严查医院违规收费",                       # an announced campaign
    "网传“某医院抽血针头重复使用” 院方：均为一次性耗材 已报警",  # rumour and denial
])
def test_look_alikes_of_the_new_claims_are_not_crises(tagger: RiskTagger, text: str) -> None:
    assert not tagger.assess(text).crisis, tagger.explain(text)


def test_a_reading_says_what_the_judgement_weighs(tagger: RiskTagger) -> None:
    """The lexicon's reading carries the signals the combiner weighs, beside score, categories and terms."""
    crisis = tagger.read("医生被曝收受患者红包 医院：已停职调查")
    assert crisis.score >= 0.9 and {"bribery", "investigation"} <= set(crisis.strength) and "停职" in crisis.terms
    assert not (crisis.negated or crisis.rebutted or crisis.framed)
    assert tagger.read("医院未发生医疗事故").negated
    assert tagger.read("网传某医院医生收红包系谣言").rebutted
    assert tagger.read("冬季流感高发 专家提醒预防感染").framed
    assert tagger.read("").score == 0.0
    json.dumps(dataclasses.asdict(crisis), ensure_ascii=False)  # plain values


def test_operating_points_read_the_curve_where_the_targets_are() -> None:
    """The bench's curve points: ten crises above ten quiet titles but one of each swapped near the cut."""
    import numpy as np

    scores = np.array([0.99 - 0.01 * i for i in range(20)])
    gold = np.array([True] * 9 + [False, True] + [False] * 9)
    points = operating_points(scores, gold)
    assert points["precision >= 0.90"].recall == pytest.approx(1.0)  # 10 of 11 above the cut are crises
    assert points["precision >= 0.90"].precision == pytest.approx(10 / 11)
    assert points["non-crises <= 0.05"].recall == pytest.approx(0.9)  # no quiet title may pass: stop at 9
    assert points["non-crises <= 0.10"].false_rate == pytest.approx(0.1)
    tied = curve(np.array([0.5, 0.5, 0.1]), np.array([True, False, True]))
    assert [(p.precision, p.recall) for p in tied] == [(0.5, 0.5), (2 / 3, 1.0)]  # equal scores cut together

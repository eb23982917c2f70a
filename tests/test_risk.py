"""Crisis-risk tagging: categories, negation, rebuttals, publicity frames, the learned headline model,
config terms, CLI, accuracy on tuned and unseen sets, speed."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from analysis.risk import RiskAssessment, RiskTagger, load_lexicon
from analysis.risk_cli import run_risk

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
sys.path.insert(0, str(REPO))
from bench.bench_risk import naive_baseline, prf, read_batches, read_labelled  # noqa: E402

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


def test_cli_contract() -> None:
    lines = ["患者家属殴打护士被拘", "", "义诊 为高血压患者", "网传某医院患者死亡系谣言"]
    out = io.StringIO()
    assert run_risk(io.StringIO("\n".join(lines) + "\n"), out) == 0
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(records) == len(lines)
    assert all(set(r) == {"crisis", "categories", "terms"} for r in records)
    assert records[0]["crisis"] is True and "violence" in records[0]["categories"]
    assert records[1] == {"crisis": False, "categories": [], "terms": []}
    assert records[2]["crisis"] is False and records[3]["crisis"] is False
    assert "殴打护士" in out.getvalue()  # ensure_ascii=False: Chinese as is


def test_cli_command(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("女子就医遭医生索要红包 卫健委介入\n医院获评全国文明单位\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "yuqing", "risk", str(src)], cwd=REPO,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert proc.returncode == 0, proc.stderr
    first, second = (json.loads(x) for x in proc.stdout.splitlines())
    assert first["crisis"] and "bribery" in first["categories"]
    assert second == {"crisis": False, "categories": [], "terms": []}


def _scores(tagger: RiskTagger, rows: list[tuple[bool, str]]) -> tuple[float, float]:
    """Precision and recall of the tagger's crisis flag."""
    p, r, *_ = prf(rows, lambda t: tagger.assess(t).crisis)
    return p, r


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


def test_dev_set_figures(tagger: RiskTagger) -> None:
    p, r = _scores(tagger, read_labelled(DATA / "risk_dev.tsv"))
    assert p >= 0.95 and r >= 0.95, (p, r)


def test_eval_batch_1_precision_and_recall(tagger: RiskTagger) -> None:
    """Batch 1 was written before the lexicon; its first run (v1) was 0.979/0.979 and 4 errors were then seen."""
    p, r = _scores(tagger, read_batches(DATA / "risk_headlines.tsv")["batch 1"])
    assert p >= 0.9 and r >= 0.9, (p, r)


def _unseen() -> list[tuple[bool, str]]:
    """The sets never tuned or trained on: eval batch 6 and fresh batch d."""
    batches = read_batches(DATA / "risk_headlines.tsv")
    return batches[list(batches)[-1]] + read_labelled(FRESH["d"])


def test_eval_holdout_precision_and_recall_floor(tagger: RiskTagger) -> None:
    """Eval batch 6 was never tuned or trained on (v9: 0.964/0.900): precision meets the target, recall is guarded."""
    batches = read_batches(DATA / "risk_headlines.tsv")
    p, r = _scores(tagger, batches[list(batches)[-1]])
    assert p >= 0.9 and r >= 0.85, (p, r)


def test_fresh_unseen_batch_floor(tagger: RiskTagger) -> None:
    """Fresh batch d, run once on the frozen v9 (0.904/0.783): precision meets the target, recall is guarded."""
    p, r = _scores(tagger, read_labelled(FRESH["d"]))
    assert p >= 0.9 and r >= 0.75, (p, r)


def test_fresh_batches_first_runs_are_kept_as_tuning_material(tagger: RiskTagger) -> None:
    """Fresh a, b and c were each run once blind (0.929/0.650 v6, 0.902/0.767 v7, 0.923/0.800 v8), then tuned on."""
    for name in "abc":
        p, r = _scores(tagger, read_labelled(FRESH[name]))
        assert p >= 0.95 and r >= 0.95, (name, p, r)


@pytest.mark.xfail(strict=False, reason="recall on unseen headlines is ~0.8 (fresh b 0.77, c 0.80, d 0.78; "
                                        "eval batch 6 0.88): the 0.9 target is not met on fresh wording")
def test_unseen_sets_reach_the_targets(tagger: RiskTagger) -> None:
    p, r = _scores(tagger, _unseen())
    assert p >= 0.9 and r >= 0.9, (p, r)


def test_eval_set_overall_precision(tagger: RiskTagger) -> None:
    p, r = _scores(tagger, read_labelled(DATA / "risk_headlines.tsv"))
    assert p >= 0.9 and r >= 0.9, (p, r)


def test_beats_the_naive_baseline_on_precision(tagger: RiskTagger) -> None:
    rows = read_labelled(DATA / "risk_headlines.tsv")
    ours, _ = _scores(tagger, rows)
    naive, *_ = prf(rows, naive_baseline(tagger.lexicon))
    assert ours >= naive + 0.2, (ours, naive)


def test_the_model_adds_recall_on_unseen_sets(tagger: RiskTagger) -> None:
    """What the learned part is for: on the unseen sets it adds recall (0.617 → 0.842) without losing precision."""
    rows = _unseen()
    lexicon_only = RiskTagger(dataclasses.replace(tagger.lexicon, model=None))
    p, r = _scores(tagger, rows)
    p0, r0 = _scores(lexicon_only, rows)
    assert r >= r0 + 0.15 and p >= p0 - 0.02, (p, r, p0, r0)


def test_speed_floor(tagger: RiskTagger) -> None:
    """Bench figure is ~7-12k/s; the floor only catches a pathological regex on a shared CI machine."""
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


# --- the learned headline model ------------------------------------------------------------------

def test_the_shipped_model_is_loaded(tagger: RiskTagger) -> None:
    model = tagger.lexicon.model
    assert model is not None and len(model.weights) > 1000
    assert 0.5 <= model.with_claim <= model.alone <= model.in_frame <= 1.0 and model.alone <= model.uncued


def test_the_model_catches_what_the_lexicon_misses(tagger: RiskTagger) -> None:
    text = "#医生连续值班32小时后倒在手术台旁#"
    lexicon_only = RiskTagger(dataclasses.replace(tagger.lexicon, model=None))
    assert not lexicon_only.assess(text).crisis
    res = tagger.assess(text)
    assert res.crisis and res.score >= 0.5 and res.categories == () and res.terms == ()


@pytest.mark.parametrize("text", [
    "网传某医院护士打骂患儿 警方：视频系外省幼儿园事件",     # a rebuttal stops the model
    "医院辟谣：网传“医生手术中离开去吃饭”系多年前旧闻",
    "疫苗接种后无人出现严重不良反应",                       # negated in the headline
    "男子突发疾病死亡",                                     # a death needs blame: the model defers
    "女子在家中猝死",
    "男子在医院停车场捡到钱包 交还失主",                     # no cue, and below the uncued bar
])
def test_the_model_never_overrides_rebuttal_negation_or_the_death_rule(tagger: RiskTagger, text: str) -> None:
    assert not tagger.assess(text).crisis, tagger.explain(text)


def test_the_model_reads_the_headline_only(tagger: RiskTagger) -> None:
    head = "#医生连续值班32小时后倒在手术台旁#"
    body = "院方表示正在调查。" * 30
    assert tagger.assess(head + "。" + body).crisis
    # a neutral title is not made a crisis by what the model would make of a later sentence
    assert not tagger.assess("医院举办职工书画展。" + head + "。" + body).crisis
    # a rebuttal deep in a long body does not silence the headline; one near it does
    assert tagger.assess(head + "。" + body + "有关说法系谣言。").crisis
    assert not tagger.assess(head + "。医院辟谣：系谣言").crisis


def test_verdicts_are_plain_python_values(tagger: RiskTagger) -> None:
    res = tagger.assess("#医生连续值班32小时后倒在手术台旁#")
    assert type(res.crisis) is bool and type(res.score) is float
    json.dumps(dataclasses.asdict(res))
    assert "model" in tagger.explain("医院举办职工书画展")


def test_a_missing_model_file_means_lexicon_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = yaml.safe_load((REPO / "data" / "risk_lexicon.yaml").read_text(encoding="utf-8"))
    data["model"]["file"] = "no_such_model.npz"
    lex_path = tmp_path / "lex.yaml"
    lex_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with caplog.at_level("WARNING"):
        lex = load_lexicon(lex_path)
    assert lex.model is None and "no_such_model.npz" in caplog.text
    assert not RiskTagger(lex).assess("#医生连续值班32小时后倒在手术台旁#").crisis


def test_a_broken_model_file_or_setting_is_a_clear_error(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "data" / "risk_lexicon.yaml").read_text(encoding="utf-8"))
    (tmp_path / "risk_model.npz").write_bytes(b"not a model")
    lex_path = tmp_path / "lex.yaml"
    lex_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="risk_model.npz"):
        load_lexicon(lex_path)
    data["model"]["defer_to"] = ["death_injruy"]
    lex_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="death_injruy"):
        load_lexicon(lex_path)


def test_the_shipped_model_is_rebuilt_exactly_from_the_tuning_sets(tmp_path: Path) -> None:
    """scripts/train_risk.py is deterministic: the shipped .npz is what the labelled files give (not stale),
    and it never reads the unseen sets."""
    np = pytest.importorskip("numpy")
    sys.path.insert(0, str(REPO / "scripts"))
    import train_risk  # noqa: PLC0415

    files = {name for name, _, _ in train_risk.TRAINING}
    assert "risk_fresh_d.tsv" not in files
    assert all(keep is not None and "6" not in keep for name, _, keep in train_risk.TRAINING if name == "risk_headlines.tsv")
    out = tmp_path / "m.npz"
    assert train_risk.main(["--out", str(out)]) == 0
    with np.load(out) as new, np.load(REPO / "data" / "risk_model.npz") as shipped:
        assert (new["grams"] == shipped["grams"]).all()
        assert np.array_equal(new["weights"], shipped["weights"]) and float(new["bias"]) == float(shipped["bias"])


# --- rules learnt from real headlines (examples written for the tests, not the real titles) ---

def test_traditional_characters_match_the_simplified_lexicon(tagger: RiskTagger) -> None:
    from analysis.risk import _normalize
    assert _normalize("醫院護士被打") == "医院护士被打"
    assert _normalize("賠償17萬餘元") == "赔偿17万余元"
    assert _normalize("显著 著名 其余") == "显著 著名 其余"  # simplified text is left alone
    res = tagger.assess("某醫院護士查房時遭病人家屬毆打 打人者被拘")
    assert res.crisis and "violence" in res.categories, res
    assert not tagger.assess("某醫院舉行義診活動 市民踴躍參與").crisis


@pytest.mark.parametrize("text", [
    # rumour intros and punished rumour-mongers
    "男子造谣称某医院发生院内感染 被警方行政拘留",
    "网民谎称县医院有医生收红包 已被依法处理",
    "某医院多名患者感染？警方：造谣者已被行拘",
    # internal documents, surveys, rules and announced campaigns
    "2023年度院感工作总结",
    "全院医院感染现患率横断面调查报告",
    "医疗纠纷处理奖惩办法",
    "医院有权利拒收欠费病人吗",
    "我市开展医美乱象专项整治行动",
    "医院住院楼开展消防疏散演练",
    # commentary and legal questions
    "护士收不收红包应有明确规定",
    "医生该不该收患者的感谢红包",
    "手术出现并发症医院是否要赔偿",
    "医疗机构能否拒绝无证件的急诊病人",
    "病人术后感染的原因有哪些",
    "从一起病历外泄事件看医院信息安全",
    "医院推诿病人:为什么?",
    "医院推诿病人怎么办",
    "同样是漏诊 两起官司有输有赢",
    "医生下班途中施救算不算违法",
    # rebuttals, reference and academic titles, refused red envelopes
    "卫健委辟谣某县医院护士集体辞职后患者无人照看",
    "院方辟谣 医生收受药企回扣致患者死亡的流言",
    "某院医疗事故认定是指什么",
    "医疗过错责任要符合哪些条件",
    "简述医院感染暴发的处理流程",
    "医护人员收红包的原因及对策",
    "一例术后漏诊引发医疗纠纷的病例报告",
    "胆囊术后误诊致医患纠纷2例分析",
    "护士收受红包,为何结局截然不同?",
    "病人硬塞红包致谢 主任医师婉拒并转存住院费",
    "一个被退还的红包背后",
    "医院拒收急诊病人算不算违法",
    "隆鼻失败后能否主张精神损害赔偿",
])
def test_look_alikes_in_real_headline_wording_are_not_crises(tagger: RiskTagger, text: str) -> None:
    assert not tagger.assess(text).crisis, tagger.explain(text)


@pytest.mark.parametrize("text, category", [
    ("七旬患者从县医院住院楼坠亡 警方已介入", "death_injury"),
    ("男子爬上医院楼顶扬言跳楼 消防到场", "death_injury"),
    ("肿瘤科病人相继跳楼 医院加装防护网", "death_injury"),
    ("苦等救护车一小时未到 老人在家中离世", "service_attitude"),
    ("转运途中救护车停车吃饭 延误抢救引质疑", "service_attitude"),
    ("市医院门诊楼配电室起火 数百名患者紧急疏散", "safety_accident"),
    ("女子在诊所更衣室发现针孔镜头", "privacy"),
    ("这家医美机构的整形医生没有执业资格", "misconduct"),
    ("口腔诊所乱象：种植牙收费不透明", "investigation"),
    ("某区医院急诊平均要等9.5小时 市民叫苦", "service_attitude"),
    ("儿童医院候诊等到天亮", "service_attitude"),
    ("口腔医院挂号比抢演唱会门票还难", "service_attitude"),
    ("专家门诊“通宵排号”现象调查", "service_attitude"),
    ("县医院门诊等候时间延长到5小时", "service_attitude"),
    ("六旬老人诊所打点滴 两小时后身亡", "death_injury"),
    ("幼儿挂水亡 家属讨说法", "death_injury"),
    ("某医院住院病人堕楼", "death_injury"),
    ("老人未断气被当死亡送太平间", "death_injury"),
    ("省卫健委调查组进驻涉事医院", "investigation"),
    ("国家医保局工作组赴某市核查医院骗保", "investigation"),
    ("拘留3人!警方通报医院门口医闹事件 对暴力伤医零容忍", "violence"),
    ("夫妇养育十年发现孩子被医院抱错", "malpractice_dispute"),
    ("医院停车费比挂号费还贵 市民质疑", "fees_fraud"),
    ("某医院新生儿病房又现超级细菌", "infection"),
    # Hong Kong and Taiwan official wording
    ("台中某醫院爆醫療疏失 病患術後癱瘓", "malpractice_dispute"),
    ("急診護理師遭醉漢襲擊 院方報警", "violence"),
    ("醫委會紀律聆訊 外科醫生專業失當被除牌", "investigation"),
])
def test_real_headline_wording_is_caught(tagger: RiskTagger, text: str, category: str) -> None:
    assert_crisis_of(tagger, text, category)


def test_question_words_frame_their_own_clause_only(tagger: RiskTagger) -> None:
    assert tagger.assess("产妇术中身亡之死：为何没有第一时间告知家属").crisis
    assert tagger.assess("家属苦等救护车一小时未到，老人去世 急救调度如何改进？").crisis
    assert not tagger.assess("为什么有些病容易被误诊？").crisis
    assert not tagger.assess("医务人员如何应对暴力伤医").crisis


def test_bench_reads_real_headline_files_and_skips_missing_ones(tmp_path: Path) -> None:
    from bench.bench_risk import real_sets
    path = tmp_path / "real_x.tsv"
    path.write_text("# comment\n1\t某医院护士被打\thttp://example.invalid/1\n0\t医院举行义诊\n", encoding="utf-8")
    sets = real_sets([path, tmp_path / "absent.tsv"])
    assert sets == {"real x": ("real", [(True, "某医院护士被打"), (False, "医院举行义诊")])}


@pytest.mark.parametrize("text", [
    "患者家属举报医生收红包 医院：查没查都会公布",
    "男子术后死亡 家属质疑医院是否尽责",
    "男子从医院看病回家后死亡 家属质疑",
    "患者术后死亡 家属质问:为什么不早告知?",
    "女子整容失败鼻子歪斜 该怎样维权",
    "孕妇被医院拒收 家属该怎么办",
    "流浪汉之死谁之责",
    "某市中心医院挂号太难 患者凌晨排队",
])
def test_incidents_beside_a_question_still_count(tagger: RiskTagger, text: str) -> None:
    assert tagger.assess(text).crisis, tagger.explain(text)


def test_the_accused_partys_clarification_and_an_open_inquiry(tagger: RiskTagger) -> None:
    # the accused hospital explains the allegation away: the headline is the clarification
    assert not tagger.assess("医院回应“护士收取患者财物”:系代收的餐费").crisis
    assert not tagger.assess("网传患者死亡被隐瞒 院方回应称系正常病故").crisis
    assert not tagger.assess("护士推搡老人视频系剪辑,涉事医院回应称系误解").crisis
    # …but an outside inquiry named after its own denial keeps the dispute open
    assert tagger.assess("网传患者术后死亡被隐瞒 医院称不实 市卫健委已介入调查").crisis
    assert tagger.assess("网传患者术后死亡被隐瞒,医院称不实:已尽力抢救 市卫健委已介入调查").crisis
    # an authority's rebuttal still covers what follows its header
    assert not tagger.assess("辟谣:某医院发生院感系谣言 警方已介入调查").crisis


def test_a_returned_red_envelope_is_good_news(tagger: RiskTagger) -> None:
    assert not tagger.assess("患者塞给护士的红包被退回到住院账户").crisis
    assert not tagger.assess("家属送给医生的两千元红包充入了患者住院费用").crisis
    assert tagger.assess("医生收红包被举报 事后退还").crisis


# --- maternal deaths and disputes turned protests ---

@pytest.mark.parametrize(("text", "crisis"), [
    ("某县医院一产妇剖宫产后突发心衰离世", True),
    ("女子在镇卫生院产下女婴后大出血身亡", True),
    ("因医疗纠纷引发数百人聚集抗议", True),
    ("产后出血是孕产妇死亡的首要原因", False),
    ("我市孕产妇死亡率降至历史新低", False),
])
def test_maternal_deaths_and_disputes_turned_protests(tagger: RiskTagger, text: str, crisis: bool) -> None:
    assert tagger.assess(text).crisis is crisis, tagger.explain(text)

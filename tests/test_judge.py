"""The crisis judgement: learned from real titles, combined with the lexicon, judged on titles and bodies."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from yuqing.analysis.headline_model import HeadlineModel
from yuqing.analysis.judge import (
    COMBINER_FEATURES,
    SHIPPED_MODEL,
    TITLE_CHARS,
    Combiner,
    CrisisJudge,
    head_and_body,
    model_units,
)
from yuqing.analysis.model_fit import Example, fit
from yuqing.analysis.risk_cli import run_risk
from yuqing.analysis.risk_training import (
    WRITTEN_DIR,
    WRITTEN_FILES,
    Title,
    category_accuracy,
    fold_model,
    joined_held_out,
    keyword_baseline,
    precision_recall,
    read_shared,
    read_written,
    shared_available,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def judge() -> CrisisJudge:
    return CrisisJudge.load()


@pytest.fixture(scope="module")
def held_out() -> dict[str, object]:
    """A model trained on four fifths of the shared real titles (and the written ones), judged on the
    fifth it never saw, with the shipped lexicon and combiner."""
    if not shared_available():
        pytest.skip("needs ../shared/data/risk/headlines.jsonl (the shared labelled titles; absent here)")
    model, test = fold_model(read_shared(), read_written(), 0)
    shipped = CrisisJudge.load()
    judge = shipped.with_model(model)
    verdicts = judge.judge_many([t.text for t in test])
    return {"test": test, "verdicts": verdicts, "judge": judge, "model": model, "lexicon": shipped.tagger}


def test_unseen_real_titles_are_judged_well(held_out: dict) -> None:  # type: ignore[type-arg]
    """On real titles it never trained on: near 0.85 precision and recall (the README's 5-fold figures),
    far above the lexicon alone and a keyword list, which miss about half the crises."""
    test, verdicts = held_out["test"], held_out["verdicts"]
    gold = np.array([t.crisis for t in test])
    p, r, f1 = precision_recall(np.array([v.crisis for v in verdicts]), gold)
    assert p >= 0.80 and r >= 0.80 and f1 >= 0.83, (p, r, f1)
    _, lex_r, lex_f1 = precision_recall(np.array([held_out["lexicon"].assess(t.text).crisis for t in test]), gold)
    _, _, kw_f1 = precision_recall(np.array([keyword_baseline(t.text) for t in test]), gold)
    assert r >= lex_r + 0.2 and f1 >= lex_f1 + 0.15 and f1 >= kw_f1 + 0.3, (f1, lex_f1, kw_f1)


def test_negative_means_negative_on_unseen_real_titles(held_out: dict) -> None:  # type: ignore[type-arg]
    """Negative is the judgement's, not review sentiment's: few ordinary headlines count (target <= 10%;
    the sentiment rule counted about 9 in 10), and most crises do."""
    test, verdicts = held_out["test"], held_out["verdicts"]
    negative = np.array([v.negative for v in verdicts])
    gold = np.array([t.crisis for t in test])
    assert negative[~gold].mean() <= 0.12, negative[~gold].mean()
    assert negative[gold].mean() >= 0.85, negative[gold].mean()
    assert all(v.negative for v in verdicts if v.crisis)


def test_categories_are_right_on_unseen_real_crises(held_out: dict) -> None:  # type: ignore[type-arg]
    """The main category is the labelled one for about 7 in 10 crises (12 categories; the lexicon's
    strongest claim manages under 4 in 10)."""
    test, verdicts = held_out["test"], held_out["verdicts"]
    pairs = [(t.category, v.categories[0]) for t, v in zip(test, verdicts) if t.crisis and v.categories]
    assert len(pairs) >= 0.8 * sum(t.crisis for t in test)
    accuracy = sum(a == b for a, b in pairs) / len(pairs)
    assert accuracy >= 0.6, accuracy


def test_category_accuracy_helper_counts_the_main_category() -> None:
    from yuqing.analysis.risk_training import OutOfFold, Title

    titles = [Title("a", "x", True, "violence", "t"), Title("b", "y", True, "bribery", "t"), Title("c", "z", False, None, "t")]
    classes = ("not", "violence", "bribery")
    probs = np.array([[0.1, 0.8, 0.1], [0.1, 0.6, 0.3], [0.9, 0.05, 0.05]])
    oof = OutOfFold(titles, [0, 1, 2], probs, classes, [])
    acc, n, confusions = category_accuracy(oof)
    assert (acc, n) == (0.5, 2) and confusions[("bribery", "violence")] == 1


@pytest.mark.parametrize("text", [
    "患者家属持刀砍伤医生 嫌疑人已被刑拘",                 # staff as victim
    "护士殴打患儿视频曝光 涉事护士已被停职",               # staff as offender
    "网传江城一院产妇死亡 医院：已成立调查组",             # a rumour not refuted, an inquiry open
    "男子被诊断为癌症切掉半个肺 病理显示良性 医院回应",
    "女子体检时被医生偷拍 医院称已报警",
    "日本一医院护士杀害多名住院老人被判死刑",             # a specific care incident abroad
    "湖北一医院贩卖出生证6人被批捕",                       # the missed wording
    "医院门口号贩子倒卖专家号",
])
def test_crises_in_many_wordings(judge: CrisisJudge, text: str) -> None:
    j = judge.judge(text)
    assert j.crisis and j.negative and j.categories, judge.explain(text)


@pytest.mark.parametrize("text", [
    "网传某医院护士打骂患儿系谣言 警方：视频系外省幼儿园事件",  # a rebuttal and the rumour it rebuts
    "医院辟谣：网传“医生手术中离开去吃饭”系多年前旧闻",
    "疫苗接种后无人出现严重不良反应",                         # negation
    "冬季流感高发 专家提醒：这些人要尽早接种疫苗",           # publicity that talks about illness
    "世界艾滋病日：我院开展防治宣传 呼吁关爱感染者",
    "医生科普：心梗发作时如何自救 死亡率可降低一半",
    "英国初级医生举行罢工要求加薪",                           # a foreign health system in general
    "医保局：骗保行为一经查实将严肃处理",                     # a rule, not an incident
    "国家医保局发布新版医保药品目录",                         # insurance policy
    "医院新门诊楼正式启用",
    "男子偶遇20年前恩人医生下跪感谢",
])
def test_look_alikes_are_neither_crisis_nor_negative(judge: CrisisJudge, text: str) -> None:
    j = judge.judge(text)
    assert not j.crisis and not j.negative and j.categories == (), judge.explain(text)


def test_a_nurse_hitting_a_child_is_violence_by_staff_not_against_it(judge: CrisisJudge) -> None:
    """The plan raises levels by category: the category is violence, and its name covers staff as offenders."""
    from yuqing.alerts.plan import risk_name

    j = judge.judge("护士殴打患儿视频曝光")
    assert j.categories[0] == "violence"
    assert "医护打人" in risk_name("violence") and "医护打人" in judge.tagger.lexicon.display_name("violence")


def test_verdicts_explain_themselves(judge: CrisisJudge) -> None:
    out = judge.explain("医生被曝收受患者红包 医院：已停职调查")
    assert out["crisis"] and "bribery" in out["categories"] and "收受患者红包" in out["terms"]
    assert out["evidence"] and out["names"]["bribery"].startswith("红包")
    assert 0.0 <= out["model"] <= 1.0 and 0.0 <= out["lexicon"] <= 1.0


# --- titles and bodies ------------------------------------------------------------------------------

KEPU_BODY = ("流感病毒感染后可能引起肺炎，严重者可导致死亡。老年人确诊流感后应及时就医。医院感染科专家提醒，"
             "接种疫苗是预防感染最有效的方法。儿童感染后出现高热、抽搐应立即送医。每年因流感死亡的人数不容忽视。")
CRISIS_BODY = ("12日晚，一名产妇在江城一院剖宫产术后大出血死亡，家属质疑医院抢救延误。13日上午，数十名家属在医院门口"
               "拉横幅讨说法。市卫健委已介入调查，涉事医生已被停职。")


def test_a_body_full_of_kepu_words_does_not_make_a_harmless_title_a_crisis(judge: CrisisJudge) -> None:
    j = judge.judge_mention("秋冬季呼吸道疾病防治指南", KEPU_BODY, "news")
    assert not j.crisis and not j.negative and j.basis == "title"


def test_a_crisis_told_only_in_the_body_is_caught(judge: CrisisJudge) -> None:
    title = "江城一院最新消息"
    assert not judge.judge(title).crisis
    j = judge.judge_mention(title, CRISIS_BODY, "news")
    assert j.crisis and j.negative and j.basis == "body" and j.categories
    assert "停职" in j.terms


def test_a_crisis_deep_in_a_long_body_is_not_the_lead(judge: CrisisJudge) -> None:
    """Only the lead can carry a crisis: a statute or a feature full of 调查 and 问责 further down cannot."""
    filler = "".join(f"第{i}段介绍了医院的发展历程和学科建设情况。" for i in range(12))
    assert not judge.judge_mention("江城一院的七十年", filler + CRISIS_BODY, "news").crisis


def test_a_post_is_judged_by_its_opening(judge: CrisisJudge) -> None:
    post = "我妈在江城一院做完手术第二天就去世了，医院说是并发症，我们不认可，医院拒绝给病历。"
    head, _ = head_and_body("求助", post, "post")
    assert head.startswith("求助。我妈")
    assert judge.judge_mention("求助", post, "post").crisis


def test_a_crisis_among_ordinary_sentences_is_caught(judge: CrisisJudge) -> None:
    """A post of several sentences is read sentence by sentence: the crisis is not diluted by the rest."""
    post = "今天带孩子去江城一院体检，环境挺干净的。护士殴打患儿的视频在网上曝光了，大家都很气愤。晚上回家吃了饺子。"
    assert len(model_units(post)) == 3
    j = judge.judge(post)
    assert j.crisis and j.negative and j.categories[0] == "violence", j
    calm = "江城一院新门诊楼今天正式启用，市民排队参观。专家团队在门诊大厅为市民义诊。医院的停车场也扩建了不少车位。"
    assert not judge.judge(calm).negative


def test_a_rebuttal_in_one_sentence_answers_the_rumour_in_another(judge: CrisisJudge) -> None:
    """The lexicon reads the whole text, so the denial still counts when the model reads the rumour alone."""
    rumour = "网传江城一院护士殴打患儿，视频在网上流传。"
    rebutted = rumour + "医院回应：经核实该消息不实，系外地旧视频，已报警处理。"
    assert judge.judge(rumour + "家属要求医院给个说法，目前仍在协商。").crisis
    assert not judge.judge(rebutted).crisis


def test_a_title_is_read_whole_even_with_a_question_mark() -> None:
    title = "一医院长期拖欠工资？当地回应"
    assert len(title) <= TITLE_CHARS and model_units(title) == [title]
    long = "一医院长期拖欠工资？当地卫健委回应称已经介入调查。医院表示将尽快发放。好气！"
    assert model_units(long) == ["一医院长期拖欠工资？", "当地卫健委回应称已经介入调查。", "医院表示将尽快发放。"]


def test_texts_of_several_sentences_have_thresholds_of_their_own() -> None:
    comb = Combiner((1.0,) * 7, 0.0, 0.4, 0.3, COMBINER_FEATURES, 0.7, 0.6)
    assert comb.thresholds(False) == (0.4, 0.3) and comb.thresholds(True) == (0.7, 0.6)
    assert Combiner.from_meta(comb.as_meta()) == comb
    older = {k: v for k, v in comb.as_meta().items() if not k.startswith("several")}  # a model file from before
    assert Combiner.from_meta(older).thresholds(True) == (0.4, 0.3)
    shipped = Combiner.from_meta(HeadlineModel.read_meta(SHIPPED_MODEL)["combiner"])
    assert shipped.several_crisis_threshold is not None


def test_joined_held_out_texts_keep_the_title_and_its_label() -> None:
    titles = [Title(str(i), f"标题{i}：医院新闻第{i}条", i % 3 == 0, "violence" if i % 3 == 0 else None, "x")
              for i in range(30)]
    texts, index = joined_held_out(titles, [i % 5 for i in range(30)], 3)
    assert (texts, index) == joined_held_out(titles, [i % 5 for i in range(30)], 3)  # deterministic
    assert len(texts) == 30
    for text, i in zip(texts, index):
        parts = text.split("。")
        assert len(parts) == 3 and titles[i].text in parts
        others = [t for t in titles if t.text in parts and t.id != titles[i].id]
        assert len(others) == 2 and not any(t.crisis for t in others)
        assert all(int(t.id) % 5 == i % 5 for t in others)  # companions from the same fold


def test_several_sentences_on_unseen_real_titles(held_out: dict) -> None:  # type: ignore[type-arg]
    """Held-out real titles joined to two ordinary ones: the shipped judgement still finds most crises
    (read whole, as before, it found about 6 in 10)."""
    test = held_out["test"]
    texts, index = joined_held_out(test, [0] * len(test), 3)
    verdicts = held_out["judge"].judge_many(texts)
    gold = np.array([test[i].crisis for i in index])
    p, r, _ = precision_recall(np.array([v.crisis for v in verdicts]), gold)
    assert p >= 0.65 and r >= 0.72, (p, r)


def test_a_complaining_review_is_negative_but_not_a_crisis(judge: CrisisJudge) -> None:
    review = "在江城一院挂号排队两个小时，等候时间太长了，希望医院改进。"
    j = judge.judge_mention("", review, "review", sentiment=0.1)
    assert j.negative and not j.crisis
    happy = judge.judge_mention("", "江城一院环境干净，护士态度好，医生很耐心。", "review", sentiment=0.9)
    assert not happy.negative and not happy.crisis
    grumble = judge.judge_mention("江城市第一人民医院", "江城一院环境干净，护士态度好，就是停车有点难。", "review",
                                  sentiment=0.91)
    assert not grumble.negative and not grumble.crisis  # a happy review with one grumble is not negative
    severe = judge.judge_mention("", "我父亲在江城一院输液后死亡，医生护士都不管，医院拒绝给说法。", "review", sentiment=0.05)
    assert severe.crisis and severe.negative


# --- the `yuqing risk` contract ------------------------------------------------------------------------


def test_cli_contract() -> None:
    lines = ["患者家属殴打护士被拘", "", "义诊 为高血压患者", "网传某医院患者死亡系谣言"]
    out = io.StringIO()
    assert run_risk(io.StringIO("\n".join(lines) + "\n"), out) == 0
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(records) == len(lines)
    assert all(list(r) == ["crisis", "score", "negative", "categories", "terms"] for r in records)
    assert records[0]["crisis"] is True and records[0]["negative"] is True and "violence" in records[0]["categories"]
    assert isinstance(records[0]["score"], float) and records[0]["score"] >= 0.5
    assert records[1] == {"crisis": False, "score": 0.0, "negative": False, "categories": [], "terms": []}
    assert not records[2]["crisis"] and not records[3]["crisis"] and not records[3]["negative"]
    assert "殴打护士" in out.getvalue()  # ensure_ascii=False: Chinese as is


def test_cli_command_keeps_order_over_batches(tmp_path: Path) -> None:
    """Many lines (more than one batch) come back one verdict each, in order; --kind review reads texts."""
    src = tmp_path / "in.txt"
    lines = ["女子就医遭医生索要红包 卫健委介入", "医院获评全国文明单位"] * 300
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "yuqing", "risk", str(src)], cwd=REPO,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(x) for x in proc.stdout.splitlines()]
    assert len(records) == 600
    assert all(r["crisis"] and "bribery" in r["categories"] for r in records[::2])
    assert all(not r["crisis"] and not r["negative"] for r in records[1::2])
    review = subprocess.run([sys.executable, "-m", "yuqing", "risk", "--kind", "review"], cwd=REPO,
                            input="我父亲在医院输液后死亡，医生护士都不管，医院拒绝给说法。\n",
                            capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert review.returncode == 0 and json.loads(review.stdout)["crisis"] is True
    mixed = subprocess.run([sys.executable, "-m", "yuqing", "risk", "--kind", "review"], cwd=REPO,
                           input="医院环境干净，护士态度好，就是停车有点难。\n排队三个小时没人管，服务太差了。\n",
                           capture_output=True, text=True, encoding="utf-8", timeout=120)
    happy, angry = (json.loads(line) for line in mixed.stdout.splitlines())
    assert not happy["negative"] and angry["negative"] and not angry["crisis"]  # complaints by their sentiment


# --- the model file ------------------------------------------------------------------------------------


def test_the_shipped_model_was_built_from_the_current_training_files() -> None:
    """data/risk_model.npz records a hash of what it was trained on: it is not stale (scripts/train_risk.py
    rebuilds it; bench/bench_risk.py measures it)."""
    sys.path.insert(0, str(REPO / "scripts"))
    import train_risk

    if not shared_available():
        pytest.skip("needs ../shared/data/risk/headlines.jsonl to check what the model was built from")
    meta = HeadlineModel.read_meta(SHIPPED_MODEL)
    from yuqing.analysis.risk_training import SHARED_HEADLINES

    assert meta["data_sha256"] == train_risk.data_hash([SHARED_HEADLINES, *(WRITTEN_DIR / n for n in WRITTEN_FILES)])
    assert meta["combiner"]["crisis_threshold"] >= meta["combiner"]["negative_threshold"]
    assert SHIPPED_MODEL.stat().st_size < 2_000_000


def test_fitting_is_deterministic_and_the_file_round_trips(tmp_path: Path) -> None:
    examples = [Example("医生收红包被查", "bribery"), Example("医院新楼启用", "not"), Example("护士被打", "violence"),
                Example("医院举办义诊", "not"), Example("患者家属殴打医生", "violence"), Example("红包回扣调查", "bribery")]
    classes = ("not", "violence", "bribery")
    a = fit(examples, classes, min_df=1)
    b = fit(examples, classes, min_df=1)
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
    path = tmp_path / "m.npz"
    a.save(path)
    loaded = HeadlineModel.load(path)
    assert loaded.fingerprint() == a.fingerprint() == HeadlineModel.read_meta(path)["fingerprint"]
    assert np.allclose(loaded.predict_proba(["医生收红包"]), a.predict_proba(["医生收红包"]), atol=1e-3)
    assert loaded.predict_proba(["医生收红包"])[0].argmax() == classes.index("bribery")


def test_a_broken_model_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "risk_model.npz"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="risk_model.npz"):
        CrisisJudge.load(bad)
    model = HeadlineModel.load(SHIPPED_MODEL)
    no_combiner = tmp_path / "no_combiner.npz"
    model.with_meta(combiner=None).save(no_combiner)
    with pytest.raises(ValueError, match="combiner"):
        CrisisJudge.load(no_combiner)

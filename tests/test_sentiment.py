"""Behaviour of the retrained sentiment model, its CLI contract, text normalisation and the held-out split."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import jieba
import pytest

from yuqing.analysis.sentiment import DEFAULT_MODEL_PATH, SentimentModel, label
from yuqing.analysis.sentiment_cli import run_sentiment
from yuqing.analysis.sentiment_data import CORPORA, bucket, fixed_sample, load_all, part_of, shared_available, split_key
from yuqing.analysis.text import make_tokenizer, normalize, strip_replies

HOSPITAL_NEGATIVE = [
    "某医院发生医疗事故，患者死亡",
    "医生态度极差，问两句就不耐烦，还让我们送红包",
    "挂号排了三个小时，护士爱理不理，再也不来这家医院了",
    "误诊导致病情延误，医院至今没有任何说法",
    "收费乱七八糟，一个小检查花了两千多，简直是抢钱",
    "急诊科医生玩手机不管病人，太让人寒心了",
    "病房又脏又乱，厕所堵了三天没人修",
    "孩子很害怕，医生还吼他",  # fear is a patient's complaint word; reviews rarely use it
]
HOSPITAL_POSITIVE = [
    "医生非常耐心，解释得很清楚，手术很成功，感谢医护人员",
    "护士态度很好，照顾得细心周到，给医院点赞",
    "主任医术高明，妈妈已经康复出院了，非常感谢",
    "医院环境干净整洁，流程方便，服务很贴心",
    "这家医院的儿科医生特别有耐心，孩子也不害怕，推荐",
]


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    """The shipped model, loaded once for the module."""
    return SentimentModel.load()


def test_shipped_model_is_compact() -> None:
    assert DEFAULT_MODEL_PATH.is_file()
    assert DEFAULT_MODEL_PATH.stat().st_size < 8 * 1024 * 1024


def test_medical_accident_is_negative(model: SentimentModel) -> None:
    assert model.score("某医院发生医疗事故，患者死亡") < 0.5


@pytest.mark.parametrize("text", HOSPITAL_NEGATIVE)
def test_hospital_negatives(model: SentimentModel, text: str) -> None:
    assert label(model.score(text)) == "neg", text


@pytest.mark.parametrize("text", HOSPITAL_POSITIVE)
def test_hospital_positives(model: SentimentModel, text: str) -> None:
    assert label(model.score(text)) == "pos", text


@pytest.mark.parametrize(
    ("negated", "plain"),
    [("医生一点都不负责", "医生很负责"), ("医生不专业", "医生很专业"), ("不推荐这家医院", "推荐这家医院"),
     ("服务不热情", "服务热情")],
)
def test_negating_a_positive_lowers_the_score(model: SentimentModel, negated: str, plain: str) -> None:
    assert model.score(negated) < 0.5 < model.score(plain)


@pytest.mark.parametrize(
    ("negated", "plain"),
    [
        ("服务态度不差", "服务态度差"),
        ("病房不脏", "病房很脏"),
        ("医生没有敷衍", "医生很敷衍"),
        ("打针一点也不紧张", "打针很紧张"),
        ("孩子不害怕", "孩子很害怕"),
    ],
)
def test_negating_a_negative_raises_the_score(model: SentimentModel, negated: str, plain: str) -> None:
    assert model.score(negated) > model.score(plain)
    assert model.score(plain) < 0.5


def test_scores_are_probabilities(model: SentimentModel) -> None:
    texts = ["", " ", "。。。", "好", "😡😡", "a" * 5000, "差" * 3000, "\x00\u200b"]
    for s in model.score_many(texts):
        assert 0.0 <= s <= 1.0


def test_text_without_content_is_neutral(model: SentimentModel) -> None:
    assert model.score_many(["", "   ", "。。。！"]) == [0.5, 0.5, 0.5]


def test_score_many_matches_score_and_keeps_order(model: SentimentModel) -> None:
    texts = HOSPITAL_NEGATIVE + HOSPITAL_POSITIVE
    batch = model.score_many(texts, workers=1)
    assert batch == pytest.approx([model.score(t) for t in texts], abs=1e-9)
    assert [label(s) for s in batch] == ["neg"] * len(HOSPITAL_NEGATIVE) + ["pos"] * len(HOSPITAL_POSITIVE)


def test_parallel_scoring_equals_serial(model: SentimentModel) -> None:
    texts = [f"{t}{i}" for i in range(60) for t in HOSPITAL_NEGATIVE + HOSPITAL_POSITIVE]
    serial = model.score_many(texts, workers=1)
    assert model.score_many(texts, workers=2) == pytest.approx(serial, abs=1e-12)
    with model.worker_pool(2) as pool:  # one pool reused across calls, as the CLI does
        assert model.score_many(texts, workers=2, pool=pool) == pytest.approx(serial, abs=1e-12)
        assert model.score_many(texts[::-1], workers=2, pool=pool) == pytest.approx(serial[::-1], abs=1e-12)


def test_extra_words_do_not_break_scoring() -> None:
    m = SentimentModel.load(extra_words=["仁爱医院", "张建国主任"])
    assert m.score("仁爱医院张建国主任医术高明，非常感谢") > 0.5
    assert m.score("仁爱医院张建国主任收红包，态度恶劣") < 0.5


# ------------------------------------------------------------------ CLI contract


def _run(text: str) -> list[dict]:
    out = io.StringIO()
    assert run_sentiment(io.StringIO(text), out) == 0
    lines = out.getvalue().split("\n")
    assert lines[-1] == ""  # every object ends with a newline
    return [json.loads(line) for line in lines[:-1]]


def test_cli_one_object_per_line_in_order(model: SentimentModel) -> None:
    docs = ["医生很负责，谢谢", "", "医院发生医疗事故，患者死亡", "   ", "护士态度很好"]
    rows = _run("\n".join(docs) + "\n")
    assert len(rows) == len(docs)
    for doc, row in zip(docs, rows):
        assert set(row) == {"score", "label"}
        assert 0.0 <= row["score"] <= 1.0
        assert row["label"] == ("pos" if row["score"] >= 0.5 else "neg")
        assert row["score"] == pytest.approx(model.score(doc), abs=1e-5)
    assert [r["label"] for r in (rows[0], rows[2], rows[4])] == ["pos", "neg", "pos"]


def test_cli_last_line_without_newline_and_crlf() -> None:
    assert len(_run("好评\r\n差评")) == 2
    assert _run("") == []


def test_cli_streams_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import yuqing.analysis.sentiment_cli as cli

    monkeypatch.setattr(cli, "CHUNK_LINES", 3)
    docs = [f"第{i}条：{'很好' if i % 2 else '很差'}" for i in range(10)]
    rows = _run("\n".join(docs))
    assert [r["label"] for r in rows] == ["neg" if i % 2 == 0 else "pos" for i in range(10)]


def test_cli_output_is_not_ascii_escaped() -> None:
    out = io.StringIO()
    run_sentiment(io.StringIO("好\n"), out)
    assert out.getvalue().startswith('{"score": ')


# ------------------------------------------------------------------ text helpers


def test_normalize() -> None:
    assert normalize("ＡＢＣ１２３，　你好！") == "ABC123, 你好!"
    assert normalize("  a\t\n b\r\n") == "a b"
    assert normalize("医\u200b院\x00\ufeff") == "医院"
    assert normalize("") == ""


HOSPITAL_REPLY = ("医院回复:感谢您的宝贵意见,我们非常重视,已对相关科室进行整改,"
                  "欢迎您再次光临,祝您身体健康!")


def test_a_polite_reply_does_not_make_a_complaint_positive(model: SentimentModel) -> None:
    review = "挂号排了三个小时,医生态度冷漠,问两句就不耐烦"
    assert model.score(review + " " + HOSPITAL_REPLY) == pytest.approx(model.score(review))
    assert label(model.score(review + " " + HOSPITAL_REPLY)) == "neg"
    # the reason it is stripped: read as part of the review, the reply's courtesy outweighs the patient
    unstripped = SentimentModel.load()
    unstripped.featurizer.config = dataclasses.replace(unstripped.featurizer.config, strip_replies=False)
    assert label(unstripped.score(review + " " + HOSPITAL_REPLY)) == "pos"


def test_strip_replies_keeps_the_reviewers_own_words() -> None:
    dated = "房间很旧宾馆反馈2008年5月6日:非常感谢您入住。补充点评2008年8月11日:拖鞋太小了"
    assert strip_replies(dated) == "房间很旧 补充点评2008年8月11日:拖鞋太小了"
    assert strip_replies("排队太久 " + HOSPITAL_REPLY) == "排队太久"
    # a reviewer quoting the shop mid-sentence is the review itself
    assert strip_replies("问了客服,商家回复:没货了,态度差") == "问了客服,商家回复:没货了,态度差"
    assert strip_replies("医生很好") == "医生很好"


def test_tokenizer_user_words_are_private() -> None:
    tok = make_tokenizer(["仁爱医院心内科"])
    assert "仁爱医院心内科" in list(tok.cut("我在仁爱医院心内科看病"))
    assert "医疗事故" in list(tok.cut("发生医疗事故"))  # from data/medical_userdict.txt
    assert "仁爱医院心内科" not in jieba.dt.FREQ  # the global tokenizer is untouched


def test_split_key_ignores_punctuation_and_width() -> None:
    assert split_key("房间很好，服务一般！") == split_key("房间很好 服务一般!") == "房间很好服务一般"
    assert bucket("房间很好，服务一般！") == bucket("房间很好服务一般")
    assert part_of("房间很好，服务一般！") in {"fit", "dev", "test"}


# ------------------------------------------------------------------ real held-out texts

FLOORS = {"hotel": 0.85, "shopping": 0.89, "health": 0.92, "waimai": 0.86}
needs_shared = pytest.mark.skipif(not shared_available(), reason="../shared/data/sentiment is absent on this machine")


@needs_shared
def test_heldout_accuracy_floor(model: SentimentModel) -> None:
    test = load_all("test")
    for name in CORPORA:
        sample = fixed_sample(test[name], 400, seed=7)
        scores = model.score_many([e.text for e in sample])
        acc = sum((s >= 0.5) == (e.label == 1) for s, e in zip(scores, sample)) / len(sample)
        assert acc >= FLOORS[name], f"{name}: {acc:.3f} < {FLOORS[name]}"


@needs_shared
def test_heldout_never_in_training_across_corpora() -> None:
    train_keys = {split_key(e.text) for exs in load_all("train").values() for e in exs}
    for exs in load_all("test").values():
        assert not any(split_key(e.text) in train_keys for e in exs[:2000])


def test_model_path_argument(tmp_path: Path, model: SentimentModel) -> None:
    path = tmp_path / "m.npz"
    model.save(path)
    again = SentimentModel.load(path)
    assert again.score("医生很好") == pytest.approx(model.score("医生很好"), abs=1e-9)

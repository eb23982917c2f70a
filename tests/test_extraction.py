"""Article extraction: body quality on the labelled corpus, metadata, robustness, CLI contract."""

from __future__ import annotations

import io
import json
import os
import statistics
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from yuqing.crawler.extract import Article, char_f1, extract_article
from yuqing.crawler.extract_cli import run_extract

#: The acceptance bar for mean char-level F1 on cn_extraction.
MIN_MEAN_F1 = 0.90


def _corpus(shared: Path) -> Path:
    return shared / "corpora" / "cn_extraction"


def _page(shared: Path, stem: str) -> bytes:
    return (_corpus(shared) / "original" / f"{stem}.html").read_bytes()


# --------------------------------------------------------------------------- metric


def test_char_f1_is_a_bag_of_characters_without_whitespace() -> None:
    assert char_f1("医院 回应", "医院\n回应") == 1.0
    assert char_f1("应回院医", "医院回应") == 1.0  # order does not matter
    assert char_f1("abc", "xyz") == 0.0
    assert char_f1("", "") == 1.0
    assert char_f1("", "正文") == 0.0
    # precision 2/4, recall 2/2 -> F1 = 2/3
    assert char_f1("医院医院", "医院") == pytest.approx(2 / 3)


# --------------------------------------------------------------------------- corpus quality


def test_mean_char_f1_on_labelled_corpus(shared_dir: Path) -> None:
    corpus = _corpus(shared_dir)
    scores = []
    for page in sorted((corpus / "original").glob("*.html")):
        gold = (corpus / "cleaned" / f"{page.stem}.txt").read_text("utf-8")
        scores.append(char_f1(extract_article(page.read_bytes()).text, gold))
    assert len(scores) >= 30
    assert statistics.mean(scores) >= MIN_MEAN_F1, f"mean char F1 {statistics.mean(scores):.4f}"
    assert min(scores) >= 0.5, "no labelled page may come out as the wrong block entirely"


def test_gbk_table_layout_page_metadata(shared_dir: Path) -> None:
    """A 2005 GBK portal page: table layout, '（ 责任编辑：… ）' byline, date by the title."""
    art = extract_article(_page(shared_dir, "8baa71e3-7cfa-4850-bb54-c6db4e0c3b70"))
    assert art.title == "从上海车展看在华布局 现代汽车再次提速"
    assert art.published_at == datetime(2005, 5, 13, 14, 15)
    assert art.author == "刘林源"
    assert "责任编辑" not in art.text


def test_reporter_byline_and_labelled_date(shared_dir: Path) -> None:
    art = extract_article(_page(shared_dir, "3e1af229-5b3e-4cfc-82b2-481f37d7adf7"))
    assert art.title == "土豆不“土” 土豆无“土”"
    assert art.author == "王建宏 张文攀"
    assert art.published_at == datetime(2022, 2, 13, 9, 57)
    assert "反侵权公告" not in art.text  # the site's legal notice is not the article


def test_hospital_news_page(shared_dir: Path) -> None:
    page = shared_dir / "corpora" / "news_pages" / "zyyfy" / "1.html"
    art = extract_article(page.read_bytes(), url="https://example.org/zyyfy/1.html")
    assert art.title == "【不忘初心 牢记使命】我院医技药剂党支部举办2019年中药、药学理论知识与专业技能大赛"
    assert art.published_at == datetime(2019, 10, 31, 23, 0)
    assert art.author == "李琴雯 刘会"
    assert art.text.startswith("本站讯")
    assert "版权所有" not in art.text and "ICP" not in art.text


def test_offset_in_page_gives_aware_time(shared_dir: Path) -> None:
    art = extract_article((shared_dir / "corpora" / "news_pages" / "sina" / "sina.html").read_bytes())
    assert art.published_at == datetime(2019, 9, 7, 6, 52, 51, tzinfo=timezone(timedelta(hours=8)))
    assert art.title == "最强“中国芯”本月商用 华为抢跑5G芯片大战"


def test_truncated_real_page_still_yields_its_start(shared_dir: Path) -> None:
    body = _page(shared_dir, "05e98007-d810-4036-b154-2ef2fe68c2af")
    art = extract_article(body[: len(body) // 2 + 1])  # cut mid-tag and possibly mid-character
    assert "一九八九年四月" in art.text


# --------------------------------------------------------------------------- synthetic pages

_PAGE = """<html><head><title>{title}_健康频道_某某网</title>{meta}</head><body>
<div class="nav"><a href="/">首页</a> | <a href="/n">新闻</a> | <a href="/h">健康</a></div>
<div class="article">
<h1>{title}</h1>
<div class="info">发布时间：2020年3月5日 10:20 来源：某某日报 作者：张三 李四</div>
<p>3月4日，患者家属在某某医院门诊大厅聚集，称患者在手术后出现严重并发症，要求院方给出说法。</p>
<p>医院方面回应称，已成立专门调查组，将依法依规处理，并第一时间与家属沟通，相关情况将及时向社会公布。</p>
<p>据了解，卫生健康委员会已介入调查。当地警方在现场维持秩序，目前现场秩序已经恢复正常。</p>
<p>责任编辑：王五</p>
<p>分享到：</p>
<p>上一篇：医院开展义诊活动</p>
</div>
<div class="comments"><p>网友甲：希望尽快查明真相，给家属一个交代，也给社会一个交代！</p>
<p>网友乙：医生也不容易，等调查结果吧，不要急着下结论，谣言止于智者。</p></div>
<div class="footer">版权所有 2020 某某网 京ICP备00000000号</div>
</body></html>"""


def _synthetic(title: str = "某某医院回应患者家属聚集事件", meta: str = "") -> str:
    return _PAGE.format(title=title, meta=meta)


def test_synthetic_page_body_and_metadata() -> None:
    art = extract_article(_synthetic().encode("gbk"), declared_encoding="utf-8")
    assert art.title == "某某医院回应患者家属聚集事件"
    assert art.author == "张三 李四"
    assert art.published_at == datetime(2020, 3, 5, 10, 20)
    lines = art.text.split("\n")
    assert lines[0].startswith("3月4日，患者家属")
    assert len(lines) == 3  # paragraph breaks kept, furniture gone
    for junk in ("责任编辑", "分享到", "上一篇", "网友甲", "版权所有", "首页"):
        assert junk not in art.text


def test_meta_published_time_with_offset_is_aware() -> None:
    page = _synthetic(meta='<meta property="article:published_time" content="2021-06-01T08:30:00+08:00">')
    page = page.replace("发布时间：2020年3月5日 10:20 ", "")
    art = extract_article(page)
    assert art.published_at == datetime(2021, 6, 1, 8, 30, tzinfo=timezone(timedelta(hours=8)))


def test_closing_reporter_parenthesis_is_the_author() -> None:
    page = _synthetic().replace("作者：张三 李四", "").replace(
        "目前现场秩序已经恢复正常。</p>", "目前现场秩序已经恢复正常。（记者 赵六 钱七）</p>"
    )
    assert extract_article(page).author == "赵六 钱七"


def test_placeholder_author_is_none() -> None:
    page = _synthetic().replace("作者：张三 李四", "作者：未知").replace("<p>责任编辑：王五</p>", "")
    assert extract_article(page).author is None


def test_editor_is_the_last_resort_byline() -> None:
    page = _synthetic().replace("作者：张三 李四", "")
    assert extract_article(page).author == "王五"


# --------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    "body",
    [
        b"",
        "",
        b"   \n",
        b"\x00" * 500,
        os.urandom(20000),
        b"\x89PNG\r\n\x1a\n" + os.urandom(2000),
        b"<html><body><div><p>\xe5\x8c\xbb",  # truncated mid-tag and mid-character
        b"<" * 10000,
        b"<div>" * 30000 + "深层嵌套".encode() + b"</div>" * 30000,
    ],
)
def test_bad_input_never_raises(body: bytes | str) -> None:
    art = extract_article(body)
    assert isinstance(art, Article)
    assert isinstance(art.text, str)


def test_empty_input_gives_empty_article() -> None:
    assert extract_article(b"") == Article(title=None, author=None, published_at=None, text="")


def test_huge_page_is_capped_and_fast() -> None:
    paragraph = ("<p>" + "医院" * 100 + "，患者满意。</p>").encode()
    art = extract_article(b"<html><body>" + paragraph * 40000)  # ~8 MB
    assert art.text and len(art.text.encode()) < 5 * 1024 * 1024


# --------------------------------------------------------------------------- CLI contract


def test_extract_cli_prints_one_json_object(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(_synthetic().encode("gb18030"))
    out = io.StringIO()
    assert run_extract(page, out) == 0
    raw = out.getvalue()
    assert raw.count("\n") == 1 and "患者家属" in raw  # one line, Chinese not \\u-escaped
    data = json.loads(raw)
    assert set(data) == {"title", "author", "published_at", "text"}
    assert data["title"] == "某某医院回应患者家属聚集事件"
    assert data["author"] == "张三 李四"
    assert data["published_at"] == "2020-03-05T10:20:00"
    assert data["text"].startswith("3月4日")


def test_extract_cli_nulls_for_unknown_fields(tmp_path: Path) -> None:
    page = tmp_path / "bare.html"
    page.write_bytes("<p>只有一段正文，没有标题、作者和日期。</p>".encode())
    out = io.StringIO()
    assert run_extract(page, out) == 0
    data = json.loads(out.getvalue())
    assert data == {"title": None, "author": None, "published_at": None, "text": "只有一段正文，没有标题、作者和日期。"}


def test_extract_cli_missing_file(tmp_path: Path) -> None:
    assert run_extract(tmp_path / "nope.html", io.StringIO()) == 1

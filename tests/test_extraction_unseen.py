"""Extraction on layouts it was not built on: hand labels for ../shared news_pages, and the fallbacks.

The labels (tests/data/extraction_labels/news_pages.json) were written by reading each page before
looking at any extractor output on it; bench/bench_extraction.py says which sites were held out.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from pathlib import Path

import pytest

from yuqing.crawler.extract import char_f1, extract_article

LABELS = Path(__file__).resolve().parent / "data" / "extraction_labels" / "news_pages.json"
PAGES: dict[str, dict[str, str]] = json.loads(LABELS.read_text("utf-8"))["pages"]
#: No labelled page may come out as the wrong block: the issue's bar for unseen pages.
PAGE_FLOOR = 0.5
#: Mean body-text F1 over all labelled news_pages (issue 14 asks for at least 0.92 on unseen pages).
MIN_MEAN_F1 = 0.92


def _labelled_page(shared: Path, name: str) -> tuple[bytes, str]:
    """Page bytes and gold text; skip when the stored page is not the one that was labelled."""
    body = (shared / "corpora" / "news_pages" / name).read_bytes()
    if hashlib.sha256(body).hexdigest() != PAGES[name]["sha256"]:
        pytest.skip(f"{name} in ../shared differs from the page that was labelled")
    return body, PAGES[name]["text"]


def test_labels_cover_every_news_page_once() -> None:
    assert len(PAGES) == 62
    assert len({entry["sha256"] for entry in PAGES.values()}) >= 61  # two thepaper pages may be one article
    assert all(entry["text"].strip() for entry in PAGES.values())


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_is_not_the_wrong_block(shared_dir: Path, name: str) -> None:
    body, gold = _labelled_page(shared_dir, name)
    score = char_f1(extract_article(body).text, gold)
    assert score >= PAGE_FLOOR, f"{name}: char F1 {score:.3f}"


def test_mean_f1_on_pages_it_was_not_built_on(shared_dir: Path) -> None:
    scores = [char_f1(extract_article(body).text, gold) for body, gold in
              (_labelled_page(shared_dir, name) for name in sorted(PAGES))]
    assert statistics.mean(scores) >= MIN_MEAN_F1, f"mean char F1 {statistics.mean(scores):.4f}"


# --------------------------------------------------------------------------- own fixtures

_LEAD = "3月4日上午，市第一人民医院门诊大厅发生一起医患纠纷，患者家属情绪激动，保安随即到场维持秩序。"
_BODY = (
    "医院方面表示，已第一时间安排专人与家属沟通，并成立调查组核实诊疗经过，结果将向社会公布。",
    "据了解，患者此前因腹痛入院，术后出现并发症，家属认为医院存在延误，要求给出明确说法。",
    "当地卫生健康委员会工作人员称，已关注到相关情况，将督促医院依法依规妥善处理，保障双方合法权益。",
)


def _page(article: str, extra: str = "") -> str:
    return f"<html><head><title>医院回应医患纠纷</title></head><body><h1>医院回应医患纠纷</h1>{article}{extra}</body></html>"


def test_thin_first_choice_widens_to_the_neighbouring_prose() -> None:
    """The lead sits apart from the rest behind an unpunctuated tag dump: both halves are kept."""
    tags = "<div>" + " ".join(["医院", "门诊", "纠纷", "家属", "保安", "调查", "卫健委"] * 30) + "</div>"
    article = (
        f"<div><div><p>{_LEAD}</p></div>{tags}"
        + "".join(f"<div><p>{p}</p></div>" for p in _BODY[:2])
        + "</div>"
    )
    text = extract_article(_page(article)).text
    assert _LEAD in text
    assert all(p in text for p in _BODY[:2])


def test_teaser_list_after_the_article_is_not_body() -> None:
    teasers = "".join(
        f'<li><a href="/n{i}">另一家医院的新闻标题第{i}条</a> 这是一段被网站截断的摘要，讲的是别的医院别的事情，'
        f"与本文无关，但它有标点也足够长……的内容...</li>"
        for i in range(8)
    )
    article = "<div>" + "".join(f"<p>{p}</p>" for p in (_LEAD, *_BODY)) + f"<div>相关推荐</div><ul>{teasers}</ul></div>"
    text = extract_article(_page(article)).text
    assert text.split("\n") == [_LEAD, *_BODY]


def test_comment_records_without_class_names_are_not_body() -> None:
    """Comments are punctuated prose too; their repeated toolbars and timestamps give them away."""
    comments = "".join(
        f"<div><div>网友{i}号</div><div>希望医院尽快查明真相，给家属一个交代，也给社会一个交代，第{i}次留言！</div>"
        f"<div>{i}小时前</div><div>回复 举报 赞{i * 3}</div></div>"
        for i in range(1, 30)
    )
    article = "<div><div>" + "".join(f"<p>{p}</p>" for p in (_LEAD, *_BODY)) + f"</div><div>{comments}</div></div>"
    text = extract_article(_page(article)).text
    assert text.split("\n") == [_LEAD, *_BODY]


def test_link_list_page_falls_back_to_its_short_article() -> None:
    """Navigation lists dwarf the one real paragraph; the paragraph is still what comes out."""
    nav = "".join(f'<li><a href="/c{i}">频道导航链接第{i}个栏目名称</a></li>' for i in range(200))
    text = extract_article(_page(f"<ul>{nav}</ul><div><p>{_LEAD}</p></div><ul>{nav}</ul>")).text
    assert text == _LEAD


def test_gbk_page_that_claims_utf8_still_reads_right() -> None:
    html = _page("<div>" + "".join(f"<p>{p}</p>" for p in (_LEAD, *_BODY)) + "</div>")
    body = html.replace("<head>", '<head><meta charset="utf-8">').encode("gbk")
    assert extract_article(body).text.split("\n") == [_LEAD, *_BODY]

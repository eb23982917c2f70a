"""decode_html: GBK pages that claim UTF-8 or nothing must decode right, never to mojibake."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pytest

from yuqing.crawler.encoding import decode_html, normalize_encoding, sniff_meta_charset

_TAG = re.compile(r"<[^>]+>")
_WS = re.compile(r"\s+")
_META_CHARSET = re.compile(rb"""charset\s*=\s*["']?[\w.:-]+""", re.I)


def _visible(text: str) -> str:
    """Page text without tags, entities or whitespace, for substring checks."""
    return _WS.sub("", html.unescape(_TAG.sub("", text)))


def _gbk_pages(shared: Path) -> list[tuple[Path, str]]:
    """(page, first 20 chars of its labelled body) for every page that is not valid UTF-8."""
    corpus = shared / "corpora" / "cn_extraction"
    out = []
    for page in sorted((corpus / "original").glob("*.html")):
        try:
            page.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            gold = (corpus / "cleaned" / f"{page.stem}.txt").read_text("utf-8")
            out.append((page, _WS.sub("", gold)[:20]))
    return out


@pytest.fixture
def gbk_pages(shared_dir: Path) -> list[tuple[Path, str]]:
    """The corpus's GBK/GB2312 pages (about half of it)."""
    pages = _gbk_pages(shared_dir)
    assert len(pages) >= 10, "expected the corpus to hold many GBK pages"
    return pages


@pytest.mark.parametrize("declared", [None, "utf-8", "gb2312", "iso-8859-1"])
def test_every_gbk_page_decodes_to_its_labelled_text(gbk_pages, declared) -> None:
    for page, first20 in gbk_pages:
        text, encoding = decode_html(page.read_bytes(), declared)
        assert encoding == "gb18030", page.name
        assert first20 in _visible(text), f"{page.name} declared={declared}"


def test_gbk_page_labelled_utf8_by_header_is_not_mojibake(gbk_pages) -> None:
    page, first20 = gbk_pages[0]
    text, encoding = decode_html(page.read_bytes(), declared="utf-8")
    assert encoding == "gb18030"
    assert "\ufffd" not in text[:2000]
    assert first20 in _visible(text)


def test_gbk_page_with_no_declaration_anywhere(gbk_pages) -> None:
    for page, first20 in gbk_pages[:6]:
        body = _META_CHARSET.sub(b"", page.read_bytes())
        assert sniff_meta_charset(body) is None
        text, encoding = decode_html(body)
        assert encoding == "gb18030", page.name
        assert first20 in _visible(text), page.name


def test_gbk_page_whose_meta_claims_utf8() -> None:
    body = '<html><head><meta charset="utf-8"></head><body><p>患者家属在医院门口聚集，要求院方给出说法。</p></body></html>'
    text, encoding = decode_html(body.encode("gbk"))
    assert encoding == "gb18030"
    assert "患者家属在医院门口聚集" in text


def test_utf8_page_declared_gbk_still_decodes_as_utf8() -> None:
    body = "<p>医院回应：已成立调查组，将依法依规处理。</p>".encode()
    text, encoding = decode_html(body, declared="gbk")
    assert encoding == "utf-8"
    assert "已成立调查组" in text


def test_bom_wins() -> None:
    text, encoding = decode_html("\ufeff<p>你好</p>".encode("utf-8"), declared="gbk")
    assert (text, encoding) == ("<p>你好</p>", "utf-8")


def test_big5_page_without_declaration() -> None:
    body = ("<p>" + "醫院發生醫療事故，患者家屬到場討說法。" * 10 + "</p>").encode("big5")
    text, encoding = decode_html(body)
    assert encoding == "big5"
    assert "醫療事故" in text


def test_truncated_multibyte_tail_is_tolerated() -> None:
    body = "<p>患者死亡，家属质疑</p>".encode("gbk")
    text, encoding = decode_html(body + "医".encode("gbk")[:1])
    assert encoding == "gb18030"
    assert "患者死亡" in text


def test_a_few_broken_bytes_do_not_switch_to_a_western_codec() -> None:
    body = ("<p>" + "医院的服务态度很好，医生认真负责。" * 30 + "</p>").encode("gbk")
    cut = len("<p>") + 2 * 100  # a character boundary: one stray byte, the rest intact
    broken = body[:cut] + b"\xff" + body[cut:]
    text, encoding = decode_html(broken, declared="iso-8859-1")
    assert encoding == "gb18030"
    assert "医生认真负责" in text


@pytest.mark.parametrize("body", [b"", b"   ", b"\x00" * 64, os.urandom(4096), bytes(range(256)) * 8])
def test_junk_never_raises(body: bytes) -> None:
    text, encoding = decode_html(body)
    assert isinstance(text, str) and isinstance(encoding, str)


def test_gb_labels_map_to_gb18030() -> None:
    for label in ("GB2312", "gbk", "x-gbk", "cp936", "GB_2312-80"):
        assert normalize_encoding(label) == "gb18030"
    assert normalize_encoding("no-such-codec") is None
    assert normalize_encoding("ISO-8859-1") == "cp1252"

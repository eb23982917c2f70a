"""The digest as a reader sees it: rendered by a real headless Chromium (Debian's package, driven by
Playwright), where every Chinese glyph must come from a real font, never a missing-glyph box."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from yuqing.alerts.chart import cjk_font_path
from yuqing.alerts.digest import build_digest

from .alerts_support import cfg, smtp, wecom  # noqa: F401
from .test_alerts_digest import prepare

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _skip_reason() -> str | None:
    if CHROMIUM is None:
        return "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if cjk_font_path() is None:
        return "no CJK font is installed (Debian: apt-get install fonts-wqy-microhei; .ci/run installs it)"
    return None


def _render(page_path: Path, selector: str, env: dict[str, str] | None = None) -> bytes:
    """A screenshot of one element of a local page, in a fresh headless Chromium."""
    import os

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, env={**os.environ, **(env or {})})
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1200})
            page.goto(page_path.as_uri())
            return page.locator(selector).first.screenshot()
        finally:
            browser.close()


def _without_cjk_fonts(tmp_path: Path) -> dict[str, str]:
    """A fontconfig setup with every font that has Chinese glyphs taken away: what a server without a CJK
    font package would draw (boxes)."""
    conf = tmp_path / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        "<include ignore_missing=\"yes\">/etc/fonts/fonts.conf</include>"
        f"<cachedir>{tmp_path / 'fc-cache'}</cachedir>"
        "<selectfont><rejectfont><pattern><patelt name=\"lang\"><string>zh-cn</string></patelt></pattern>"
        "</rejectfont></selectfont></fontconfig>", encoding="utf-8")
    return {"FONTCONFIG_FILE": str(conf)}


@pytest.fixture
def digest_page(store, clock, cfg, tmp_path) -> Path:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    cfg = cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"digest_dir": tmp_path / "digests"})})
    prepare(store, clock, cfg)
    return Path(build_digest(store, cfg, clock).path)


def test_every_chinese_glyph_of_the_digest_comes_from_a_real_font(digest_page: Path, tmp_path: Path) -> None:
    """The heading, a table and the chart drawn with the installed CJK font differ from the same page drawn
    with no CJK font (where every glyph is the same box): no text on the page falls back to boxes."""
    for selector in ("h1", "table", "svg"):
        with_font = _render(digest_page, selector)
        boxes = _render(digest_page, selector, _without_cjk_fonts(tmp_path))
        assert with_font != boxes, f"{selector} renders the same without a CJK font: its glyphs are boxes"


def test_the_checker_sees_boxes(tmp_path: Path) -> None:
    """Without a CJK font two different Chinese words are the same row of boxes; with one they differ."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    page = tmp_path / "words.html"
    page.write_text('<!DOCTYPE html><meta charset="utf-8"><body style="font-family:\'WenQuanYi Micro Hei\', '
                    "'Noto Sans CJK SC', sans-serif\"><p id=a>舆情周报</p><p id=b>患者投诉</p></body>",
                    encoding="utf-8")
    boxes = _without_cjk_fonts(tmp_path)
    assert _render(page, "#a", boxes) == _render(page, "#b", boxes)
    assert _render(page, "#a") != _render(page, "#b")

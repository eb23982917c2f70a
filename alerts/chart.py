"""The digest's bar chart of daily volume with its negative part: inline SVG for the page, PNG (Pillow,
with a CJK font) for e-mail, where many clients drop SVG."""

from __future__ import annotations

import io
import logging
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from pathlib import Path

log = logging.getLogger(__name__)

# Fonts with Chinese glyphs, the most common first (Linux: fonts-noto-cjk or fonts-wqy-microhei; macOS;
# Windows), so no machine or mail client falls back to a font that draws missing-glyph boxes.
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "PingFang SC",
             "Hiragino Sans GB", "Microsoft YaHei", "SimHei")
CJK_FONT_STACK = ", ".join(f"'{f}'" for f in CJK_FONTS) + ", sans-serif"


@dataclass(frozen=True)
class DayBar:
    """One day's mentions: label (e.g. '11/16 一'), total, negative."""

    label: str
    total: int
    negative: int


def _nice_max(value: int) -> int:
    """A round axis maximum at or above value."""
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step:
            return step
    return ((value // 10000) + 1) * 10000


def daily_chart(days: list[DayBar], width: int = 640, height: int = 240, label: str = "每日提及量与负面占比",
                inline_font: bool = True) -> str:
    """Stacked bars (negative red, the rest blue) with the negative share over each bar; without the inline
    font (a page whose Content-Security-Policy forbids inline style) the page's stylesheet sets it."""
    left, right, top, bottom = 40, 10, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max([d.total for d in days] + [1]))
    slot = plot_w / max(len(days), 1)
    bar_w = slot * 0.6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" class="chart"'
             + (f' style="font-family:{CJK_FONT_STACK};font-size:11px">' if inline_font else ">")]
    for i in range(5):
        value = peak * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#666">{value:g}</text>')
    for i, day in enumerate(days):
        x = left + slot * i + (slot - bar_w) / 2
        total_h = plot_h * day.total / peak
        neg_h = plot_h * day.negative / peak
        base = top + plot_h
        parts.append(f'<rect x="{x:.1f}" y="{base - total_h:.1f}" width="{bar_w:.1f}" height="{total_h:.1f}" '
                     f'fill="#5b8bd0"><title>{escape(day.label)}：{day.total} 条</title></rect>')
        parts.append(f'<rect x="{x:.1f}" y="{base - neg_h:.1f}" width="{bar_w:.1f}" height="{neg_h:.1f}" '
                     f'fill="#d0463b"><title>负面 {day.negative} 条</title></rect>')
        share = f"{100 * day.negative / day.total:.0f}%" if day.total else "—"
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{base - total_h - 4:.1f}" text-anchor="middle" '
                     f'fill="#d0463b">{share}</text>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{base + 16:.1f}" text-anchor="middle" '
                     f'fill="#333">{escape(day.label)}</text>')
    parts.append(f'<rect x="{left}" y="6" width="10" height="10" fill="#5b8bd0"/>'
                 f'<text x="{left + 14}" y="15">全部提及</text>'
                 f'<rect x="{left + 80}" y="6" width="10" height="10" fill="#d0463b"/>'
                 f'<text x="{left + 94}" y="15">负面（柱上为负面占比）</text>')
    parts.append("</svg>")
    return "".join(parts)


# --- the same chart as a PNG, for e-mail (many mail clients drop inline SVG) ------------------------

_FONT_GLOBS = ("wqy/*.tt[cf]", "**/NotoSansCJK*.tt[cf]", "**/NotoSansSC*.[ot]tf", "**/SourceHanSans*.[ot]t[cf]",
               "**/wqy*.tt[cf]", "**/*CJK*.tt[cf]")
_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts",
              Path("/System/Library/Fonts"), Path("C:/Windows/Fonts"))


@lru_cache(maxsize=1)
def cjk_font_path() -> Path | None:
    """A font file with Chinese glyphs: fontconfig's choice for zh, else a known CJK font on disk."""
    try:
        found = subprocess.run(["fc-match", "-f", "%{file}", ":lang=zh"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        if found and any(k in found.lower() for k in ("cjk", "wqy", "sourcehan", "noto", "hei", "song", "ming")):
            return Path(found)
    except (OSError, subprocess.SubprocessError):
        pass
    for root in _FONT_DIRS:
        for pattern in _FONT_GLOBS:
            hit = next(iter(sorted(root.glob(pattern))), None) if root.is_dir() else None
            if hit is not None:
                return hit
    log.warning("no font with Chinese glyphs found: the e-mailed chart is labelled in ASCII only "
                "(install fonts-noto-cjk or fonts-wqy-microhei)")
    return None


def _ascii(label: str) -> str:
    """'11/16 一' → '11/16 Mon' where no CJK font can draw the weekday."""
    names = dict(zip("一二三四五六日", ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")))
    return "".join(names.get(ch, ch) for ch in label)


def daily_chart_png(days: list[DayBar], width: int = 640, height: int = 240) -> bytes:
    """The daily chart as PNG bytes: stacked bars, negative share over each bar, labels in a CJK font."""
    from PIL import Image, ImageDraw, ImageFont

    scale = 2  # drawn at twice the size for sharp text on phones
    left, right, top, bottom = 40, 10, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max([d.total for d in days] + [1]))
    slot = plot_w / max(len(days), 1)
    bar_w = slot * 0.6
    font_file = cjk_font_path()
    font = (ImageFont.truetype(str(font_file), 11 * scale) if font_file is not None
            else ImageFont.load_default(11 * scale))
    label = (lambda s: s) if font_file is not None else _ascii
    img = Image.new("RGB", (width * scale, height * scale), "white")
    draw = ImageDraw.Draw(img)

    def s(v: float) -> float:
        return v * scale

    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        draw.line([(s(left), s(y)), (s(width - right), s(y))], fill="#e5e5e5", width=scale)
        draw.text((s(left - 4), s(y)), f"{peak * i / 4:g}", fill="#666666", font=font, anchor="rm")
    base = top + plot_h
    for i, day in enumerate(days):
        x = left + slot * i + (slot - bar_w) / 2
        total_h, neg_h = plot_h * day.total / peak, plot_h * day.negative / peak
        if day.total:
            draw.rectangle([(s(x), s(base - total_h)), (s(x + bar_w), s(base))], fill="#5b8bd0")
        if day.negative:
            draw.rectangle([(s(x), s(base - neg_h)), (s(x + bar_w), s(base))], fill="#d0463b")
        share = f"{100 * day.negative / day.total:.0f}%" if day.total else "-"
        draw.text((s(x + bar_w / 2), s(base - total_h - 4)), share, fill="#d0463b", font=font, anchor="ms")
        draw.text((s(x + bar_w / 2), s(base + 16)), label(day.label), fill="#333333", font=font, anchor="ms")
    draw.rectangle([(s(left), s(6)), (s(left + 10), s(16))], fill="#5b8bd0")
    draw.text((s(left + 14), s(15)), label("全部提及") if font_file else "all", fill="#222222", font=font, anchor="ls")
    draw.rectangle([(s(left + 80), s(6)), (s(left + 90), s(16))], fill="#d0463b")
    draw.text((s(left + 94), s(15)), "负面（柱上为负面占比）" if font_file else "negative (share over bars)",
              fill="#222222", font=font, anchor="ls")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()

"""A small inline SVG bar chart for the digest: daily volume with its negative part, no dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

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


def daily_chart(days: list[DayBar], width: int = 640, height: int = 240) -> str:
    """Stacked bars (negative red, the rest blue) with the negative share over each bar."""
    left, right, top, bottom = 40, 10, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max([d.total for d in days] + [1]))
    slot = plot_w / max(len(days), 1)
    bar_w = slot * 0.6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="每日提及量与负面占比" '
             f'style="font-family:{CJK_FONT_STACK};font-size:11px">']
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

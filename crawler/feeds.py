"""RSS 0.9x/1.0/2.0 and Atom from the bytes Scrapy fetched, as real servers send them."""

from __future__ import annotations

import calendar
import codecs
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from yuqing.crawler.encoding import decode_html
from yuqing.crawler.pages import fold_ws, html_to_text

log = logging.getLogger(__name__)


class NotAFeed(ValueError):
    """The bytes are not a feed feedparser can read any entry from."""


@dataclass(frozen=True)
class FeedEntry:
    """One feed item as the pipelines need it."""

    link: str
    title: str
    text: str
    author: str | None
    published_at: datetime | None


def clean_xml(body: bytes) -> bytes:
    """Drop a BOM and whitespace before the XML declaration (real servers send both)."""
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8):]
    return body.lstrip(b" \t\r\n\x00")


def looks_like_feed(body: bytes, content_type: str = "") -> bool:
    """True when a response is RSS/Atom rather than an HTML page."""
    ctype = content_type.lower()
    if any(t in ctype for t in ("rss", "atom", "/xml", "+xml")):
        return True
    head = clean_xml(body[:2048]).lower()
    return head.startswith(b"<?xml") or b"<rss" in head or b"<feed" in head or b"<rdf:rdf" in head


_DECL_ENCODING = re.compile(r"""^(<\?xml[^>]*?encoding\s*=\s*)["'][^"']*["']""", re.I)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)


def as_utf8(body: bytes, content_type: str = "") -> bytes:
    """The feed re-encoded as UTF-8 after decoding by detection (GBK feeds claiming UTF-8 or nothing)."""
    declared = _CHARSET.search(content_type or "")
    text, _ = decode_html(clean_xml(body), declared.group(1) if declared else None)
    return _DECL_ENCODING.sub(r'\1"utf-8"', text.lstrip("\ufeff \t\r\n"), count=1).encode("utf-8")


def parse_feed(body: bytes, content_type: str = "") -> list[FeedEntry]:
    """Every entry with a link; raises NotAFeed when nothing usable is in the bytes."""
    headers = {"content-type": "application/xml; charset=utf-8"}
    parsed = feedparser.parse(as_utf8(body, content_type), response_headers=headers, sanitize_html=False)
    if not parsed.entries:
        problem = parsed.get("bozo_exception") or "no entries"
        if not parsed.get("version") or parsed.get("bozo"):
            raise NotAFeed(str(problem))
        return []
    entries = [entry for raw in parsed.entries if (entry := _entry(raw)) is not None]
    if parsed.get("bozo"):
        problem = parsed.get("bozo_exception") or "not well-formed"
        if not entries:  # feedparser gives up on a broken feed but still returns an empty entry or two
            raise NotAFeed(f"not well-formed, and no entry with a link could be read: {problem}")
        log.warning("feed read despite a problem (%d entr%s kept): %s", len(entries),
                    "y" if len(entries) == 1 else "ies", problem)
    return entries


def _entry(raw: Any) -> FeedEntry | None:
    """One feedparser entry to a FeedEntry; entries without any link are skipped."""
    link = raw.get("link") or (raw.get("id") if str(raw.get("id", "")).startswith("http") else "")
    if not link:
        log.info("feed entry without a link skipped: %s", raw.get("title", "")[:60])
        return None
    return FeedEntry(
        link=link.strip(),
        title=fold_ws(html_to_text(raw.get("title", ""))),
        text=_entry_text(raw),
        author=fold_ws(raw.get("author", "")) or None,
        published_at=_entry_time(raw),
    )


def _entry_text(raw: Any) -> str:
    """The fullest text the entry carries: content if present, else summary."""
    contents = [c.get("value", "") for c in raw.get("content", []) or []]
    best = max(contents, key=len, default="")
    summary = raw.get("summary", "") or ""
    return html_to_text(best if len(best) >= len(summary) else summary)


def _entry_time(raw: Any) -> datetime | None:
    """Published (else updated) time as aware UTC; feedparser gives it in UTC already."""
    parsed = raw.get("published_parsed") or raw.get("updated_parsed")
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)

"""Reading fetched bytes the way a Chinese web needs: decoded by detection, never trusted blindly."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from lxml import html as lhtml
from parsel import Selector, SelectorList
from scrapy.http import Response

from yuqing.crawler.encoding import decode_html

#: Content types that can never carry a mention.
BINARY_TYPES = ("image/", "audio/", "video/", "font/", "application/octet-stream", "application/pdf",
                "application/zip", "application/x-gzip", "application/gzip", "application/vnd.")
#: Signatures of binary files served under a text content type.
BINARY_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF", b"PK\x03\x04", b"\x1f\x8b", b"RIFF")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)


def header(response: Response, name: str) -> str:
    """A response header as text ('' when absent)."""
    value = response.headers.get(name)
    return value.decode("latin-1") if value else ""


def declared_charset(response: Response) -> str | None:
    """The charset the server claims in Content-Type, which Chinese sites often get wrong."""
    match = _CHARSET.search(header(response, "Content-Type"))
    return match.group(1) if match else None


def binary_reason(response: Response) -> str | None:
    """Why a response is binary rather than a page or feed, or None when it is text."""
    ctype = header(response, "Content-Type").split(";")[0].strip().lower()
    if ctype.startswith(BINARY_TYPES):
        return f"binary content ({ctype})"
    head = response.body[:512]
    if head.startswith(BINARY_MAGIC) or b"\x00" in head:
        return f"binary content ({ctype or 'no content type'}, binary bytes)"
    return None


def decoded(response: Response) -> str:
    """The body as text, by detection: GBK pages that claim UTF-8 or nothing come out right."""
    return decode_html(response.body, declared_charset(response))[0]


def page_selector(response: Response) -> Selector:
    """A parsel Selector over the correctly decoded page (Scrapy's own trusts the header)."""
    return Selector(text=decoded(response) or "<html></html>", base_url=response.url)


def is_xpath(expr: str) -> bool:
    """Config selectors are CSS unless they look like XPath."""
    return expr.lstrip().startswith(("/", "./", "(", "..", "@"))


def select(sel: Selector | SelectorList, expr: str) -> SelectorList:
    """Apply a config selector, CSS or XPath."""
    return sel.xpath(expr) if is_xpath(expr) else sel.css(expr)


def node_text(node: Selector | str) -> str:
    """Visible text of a node (or the string a ::text/::attr selector gave), whitespace folded."""
    if isinstance(node, str):
        return fold_ws(node)
    root = node.root
    if isinstance(root, str):
        return fold_ws(root)
    return fold_ws(" ".join(node.xpath(".//text()[not(ancestor::script) and not(ancestor::style)]").getall()))


def select_text(sel: Selector, expr: str | None) -> str:
    """Text of the first match of a config selector ('' when none or no selector)."""
    if not expr:
        return ""
    found = select(sel, expr)
    return node_text(found[0]) if found else ""


def fold_ws(text: str) -> str:
    """Collapse whitespace runs to one space."""
    return " ".join((text or "").split())


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment (feed summaries), paragraphs kept as lines."""
    if not fragment or "<" not in fragment:
        return fold_ws(fragment)
    try:
        root = lhtml.fragment_fromstring(fragment, create_parent="div")
    except Exception:  # noqa: BLE001 - unparseable markup is still text
        return fold_ws(re.sub(r"<[^>]+>", " ", fragment))
    for bad in root.xpath(".//script|.//style"):
        bad.drop_tree()
    for block in root.xpath(".//p|.//br|.//div|.//li|.//h1|.//h2|.//h3|.//h4"):
        block.tail = "\n" + (block.tail or "")
    lines = (fold_ws(line) for line in root.text_content().splitlines())
    return "\n".join(line for line in lines if line)


_CN_DATE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:\s*[T ]?\s*(\d{1,2})[:：时](\d{1,2})(?:[:：分](\d{1,2}))?)?"
)


def parse_time(value: str | None, tz: str) -> datetime | None:
    """ISO or Chinese date-time text to aware UTC; times without an offset are in the hospital's zone."""
    if not value:
        return None
    value = value.strip()
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        match = _CN_DATE.search(value)
        if not match:
            return None
        parts = [int(p) if p else 0 for p in match.groups()]
        try:
            when = datetime(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5])
        except ValueError:
            return None
    return to_utc(when, tz)


def to_utc(when: datetime | None, tz: str) -> datetime | None:
    """Aware UTC; a naive time is read in the hospital's time zone (pages state local time)."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(tz))
    return when.astimezone(UTC)


def links(sel: Selector, expr: str) -> list[str]:
    """Hrefs a config selector points at: elements' @href, or the strings of ::attr(href)."""
    found = []
    for node in select(sel, expr):
        href = node.root if isinstance(node.root, str) else node.xpath("@href").get()
        if href and href.strip():
            found.append(href.strip())
    return found


#: rel="next" pagination, as <a> or <link>.
NEXT_LINKS = "//a[contains(concat(' ', normalize-space(@rel), ' '), ' next ')]/@href | //link[@rel='next']/@href"


def next_link(sel: Selector, expr: str | None) -> str | None:
    """The next page's href: from selectors.next_page when configured, else rel="next"."""
    found = links(sel, expr) if expr else []
    return found[0] if found else sel.xpath(NEXT_LINKS).get()

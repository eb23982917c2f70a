"""Decode fetched HTML bytes to text without mojibake, GBK/GB2312 pages included.

Chinese sites very often serve GBK while claiming UTF-8 (or claiming nothing), and
GB2312 declarations routinely cover GBK-only characters.  ``decode_html`` therefore
trusts a declaration only when it decodes strictly *and* the result looks like real
text, and otherwise picks among candidates by strict decodability and CJK plausibility.
"""

from __future__ import annotations

import codecs
import logging
import re
from functools import lru_cache

from charset_normalizer import from_bytes

log = logging.getLogger(__name__)

#: Bytes inspected for <meta charset> / XML declarations (browsers use 1024; be lenient).
META_SCAN_BYTES = 8192
#: Bytes handed to charset-normalizer (it is slow on multi-MB input).
DETECT_SAMPLE_BYTES = 256 * 1024
#: Non-ASCII characters looked at when scoring plausibility.
SCORE_SAMPLE_CHARS = 20000
#: Minimum share of "common" non-ASCII characters for a decoding to count as plausible.
PLAUSIBLE_RATIO = 0.6

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# GB2312 and GBK are subsets of GB18030; servers that say either usually mean GBK.
_ALIASES: dict[str, str] = {
    "gb2312": "gb18030",
    "gb_2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "euc-cn": "gb18030",
    "hz-gb-2312": "gb18030",
    "big5-hkscs": "big5hkscs",
    "x-big5": "big5",
    "utf8": "utf-8",
    "unicode": "utf-8",
    # WHATWG: these labels mean windows-1252, never true Latin-1.
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
}

_META_RE = re.compile(
    rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:\-]{2,40})""", re.I
)
_XML_DECL_RE = re.compile(rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([a-zA-Z0-9_.:\-]{2,40})""", re.I)


def normalize_encoding(name: str | None) -> str | None:
    """Map a declared charset label to the Python codec we should really use, or None."""
    if not name:
        return None
    label = name.strip().strip("\"'").lower()
    label = _ALIASES.get(label, label)
    try:
        codec = codecs.lookup(label).name
    except LookupError:
        return None
    return _ALIASES.get(codec, codec)


def sniff_meta_charset(body: bytes) -> str | None:
    """Return the charset named by a <meta> tag or XML declaration near the top, if any."""
    head = body[:META_SCAN_BYTES]
    match = _XML_DECL_RE.search(head) or _META_RE.search(head)
    return match.group(1).decode("ascii", "ignore") if match else None


@lru_cache(maxsize=1)
def _common_chars() -> frozenset[str]:
    """Frequent hanzi (GB2312 level 1, Big5 level 1) plus common CJK/fullwidth punctuation."""
    chars: set[str] = set()
    for lead in range(0xB0, 0xD8):  # GB2312 level-1 hanzi
        for trail in range(0xA1, 0xFF):
            ch = bytes((lead, trail)).decode("gb2312", "ignore")
            chars.update(ch)
    for lead in range(0xA4, 0xC7):  # Big5 frequently used hanzi
        for trail in list(range(0x40, 0x7F)) + list(range(0xA1, 0xFF)):
            chars.update(bytes((lead, trail)).decode("big5", "ignore"))
    chars.update(chr(c) for c in range(0x3000, 0x3040))  # CJK punctuation
    chars.update(chr(c) for c in range(0xFF01, 0xFF5F))  # fullwidth ASCII
    chars.update(chr(c) for c in range(0x2010, 0x2027))  # dashes, quotes, ellipsis
    chars.update("\u00a0\u00b7\u00d7\u00a9\u00ae\u00b0\u2122\u25cf\u25a0\u2605\u2606")
    return frozenset(chars)


def cjk_plausibility(text: str) -> float:
    """Share of non-ASCII characters that are common hanzi/punctuation (1.0 if all ASCII)."""
    common = _common_chars()
    total = hits = 0
    for ch in text:
        if ch < "\x80":
            continue
        total += 1
        hits += ch in common
        if total >= SCORE_SAMPLE_CHARS:
            break
    return 1.0 if total == 0 else hits / total


def _latin_plausibility(text: str) -> float:
    """Share of non-ASCII characters that are letters/punctuation a Western page would use."""
    total = hits = 0
    for ch in text:
        if ch < "\x80":
            continue
        total += 1
        hits += ch.isalpha() or ch in "\u00a0\u00a9\u00ae\u00b0\u00b7\u2013\u2014\u2018\u2019\u201c\u201d\u2026\u20ac"
        if total >= SCORE_SAMPLE_CHARS:
            break
    return 1.0 if total == 0 else hits / total


def _is_single_byte(encoding: str) -> bool:
    """True for codecs where every byte is a character (they never fail to decode)."""
    return codecs.lookup(encoding).name in {"cp1252", "latin-1", "iso8859-1"} or encoding.startswith(
        ("cp12", "iso8859", "koi8", "mac")
    )


def _strict(body: bytes, encoding: str) -> str | None:
    """Decode strictly (tolerating a sequence cut off at the very end); None if invalid."""
    try:
        return codecs.getincrementaldecoder(encoding)(errors="strict").decode(body, final=False)
    except (UnicodeDecodeError, LookupError):
        return None


def _score(text: str, encoding: str) -> float:
    """Plausibility of a strictly decoded text for its encoding."""
    penalty = 20 * _replaced_share(text)
    if _is_single_byte(encoding):
        return _latin_plausibility(text) * 0.9 - penalty  # never beat an equally plausible CJK reading
    return cjk_plausibility(text) - penalty


def _replaced_share(text: str) -> float:
    """Share of U+FFFD characters (literal ones survive even a strict decode)."""
    return text.count("\ufffd") / max(1, len(text))


def _accept_declared(body: bytes, encoding: str, has_non_ascii: bool) -> str | None:
    """Return the text if the declared encoding decodes strictly and plausibly."""
    text = _strict(body, encoding)
    if text is None or "\ufffd" in text:
        return None
    if not has_non_ascii:
        return text
    if _is_single_byte(encoding):
        # Single-byte labels are a classic mis-declaration of GBK/UTF-8: check those first.
        if _best_lenient(body, ["utf-8", "gb18030"]) is not None:
            return None
        return text
    return text if cjk_plausibility(text) >= PLAUSIBLE_RATIO else None


def _detect(body: bytes) -> str | None:
    """Ask charset-normalizer for its best guess on a sample of the body."""
    try:
        best = from_bytes(body[:DETECT_SAMPLE_BYTES]).best()
    except Exception:
        log.debug("charset-normalizer failed", exc_info=True)
        return None
    return normalize_encoding(best.encoding) if best is not None else None


def _lenient(body: bytes, encoding: str) -> tuple[str, float] | None:
    """Decode with replacement; return the text and its share of replaced characters."""
    try:
        text = body.decode(encoding, errors="replace")
    except LookupError:
        return None
    return text, text.count("\ufffd") / max(1, len(text))


def _candidates(body: bytes, declared: str | None) -> list[str]:
    """Ordered, de-duplicated encodings worth trying: declared, meta, then the usual suspects."""
    out: list[str] = []
    for name in (declared, sniff_meta_charset(body), "utf-8", "gb18030", "big5"):
        enc = normalize_encoding(name)
        if enc and enc not in out:
            out.append(enc)
    return out


def decode_html(body: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode HTML bytes to text, returning (text, encoding used); never raises on bad input."""
    if not body:
        return "", "utf-8"
    for bom, enc in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(enc, errors="replace"), enc
    has_non_ascii = not body.isascii()
    if not has_non_ascii:
        return body.decode("ascii"), "ascii"
    declared_list = [e for e in (normalize_encoding(declared), normalize_encoding(sniff_meta_charset(body))) if e]
    for enc in dict.fromkeys(declared_list):
        text = _accept_declared(body, enc, has_non_ascii)
        if text is not None:
            return text, enc
        log.debug("declared encoding %s rejected", enc)
    return _fallback(body, declared)


def _fallback(body: bytes, declared: str | None) -> tuple[str, str]:
    """Pick the best decoding: UTF-8, then multi-byte CJK codecs, then single-byte ones."""
    utf8 = _strict(body, "utf-8")
    if utf8 is not None and _replaced_share(utf8) < 0.01:
        # Non-ASCII UTF-8 validating by chance is vanishingly rare; any U+FFFD is literal.
        return utf8, "utf-8"
    candidates = _candidates(body, declared)
    detected = _detect(body)
    if detected and detected not in candidates:
        candidates.append(detected)
    multi = [c for c in candidates if not _is_single_byte(c)]
    single = [c for c in candidates if _is_single_byte(c)] or ["cp1252"]
    picked = _best_strict(body, multi) or _best_lenient(body, multi) or _best_strict(body, single)
    if picked is not None:
        return picked
    text, enc = body.decode("gb18030", errors="replace"), "gb18030"
    log.debug("no decoding fits well; falling back to lenient %s", enc)
    return text, enc


def _best_strict(body: bytes, candidates: list[str]) -> tuple[str, str] | None:
    """Most plausible strict decoding among candidates (earlier wins ties), if plausible."""
    best: tuple[float, int, str, str] | None = None
    for order, enc in enumerate(candidates):
        text = _strict(body, enc)
        if text is None:
            continue
        item = (_score(text, enc), -order, text, enc)
        if best is None or item[:2] > best[:2]:
            best = item
    if best is None or best[0] < PLAUSIBLE_RATIO:
        return None
    return best[2], best[3]


def _best_lenient(body: bytes, candidates: list[str]) -> tuple[str, str] | None:
    """Best decoding with replacement for pages with a few broken bytes (≤ 1% replaced)."""
    best: tuple[float, str, str] | None = None
    for enc in candidates:
        got = _lenient(body, enc)
        if got is None or got[1] > 0.01:
            continue
        rank = cjk_plausibility(got[0].replace("\ufffd", "")) - 20 * got[1]
        if best is None or rank > best[0]:
            best = (rank, got[0], enc)
    if best is None or best[0] < PLAUSIBLE_RATIO:
        return None
    return best[1], best[2]

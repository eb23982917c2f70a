"""64-bit simhash over character shingles, and a near-duplicate index that is not quadratic.

One story copied by 30 sites differs only in its title, 转载 header, source footer, editor line
and a few words; its simhash differs in a few bits. Fingerprints are computed for a whole
batch at once with numpy: shingles are hashed with MurmurHash3's 64-bit finaliser over
code points (stable across runs, processes and machines, unlike Python's ``hash``).

Lookup uses the classic block-permutation scheme (Manku et al., WWW 2007): a 64-bit
fingerprint is cut into ``max_distance + 1`` blocks; two fingerprints within
``max_distance`` bits agree exactly on at least one block (pigeonhole), so each block
value keys a table and only fingerprints sharing a block are compared.

The store keeps fingerprints as signed 64-bit integers (``Mention.simhash`` is a
BIGINT); :func:`to_signed` / :func:`to_unsigned` convert.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar, overload

import numpy as np

from yuqing.analysis.text import normalize

log = logging.getLogger(__name__)

BITS = 64
SHINGLE = 3  # characters per shingle; 3-grams are specific enough for Chinese, robust to small edits
MIN_CONTENT_CHARS = 24  # shorter texts (one-line reviews) get no fingerprint: too few shingles to be stable
MIN_BODY_CHARS = 40  # a body this long is fingerprinted without its title: copies change titles, not bodies
MAX_DISTANCE = 3  # bits; copies with different headers/footers land at 0–3, different stories at ~32
CHUNK_SHINGLES = 200_000  # bounds the (shingles × 64) bit matrix per numpy pass (~13 MB)

_SALT = np.uint64(0x2545F4914F6CDD1D)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_SIGN = 1 << 63
_MASK = (1 << 64) - 1

# Boilerplate that differs between copies of one story: repost headers, source and editor
# lines, reporter bylines, links. Removed before shingling so copies hash alike.
_URL = re.compile(r"(?:https?://|www\.)[\w./?%&=#:~+\-]+", re.IGNORECASE)
_BRACKET_TAG = re.compile(r"【[^】]{0,16}】|\[[^\]]{0,16}\]")
_PAREN_BYLINE = re.compile(
    r"[(（][^()（）]{0,30}?(?:记者|通讯员|来源|编辑|转载|转自|摄|供图|图片|完)[^()（）]{0,30}[)）]"
)
_LABEL = re.compile(
    r"(?:本文|原文)?(?:转载自|转自|转载|来源于|来源|出处|原标题|原文标题|责任编辑|责编|编辑|作者|记者|"
    r"通讯员|实习生|审核|审校|校对|监制|主编|摄影|图片来源|原文链接|本文链接|文章来源|稿源)"
    r"\s*[:：|｜丨]\s*[^。！？!?，,；;\s]{0,30}"
)
_REPOST_PREFIX = re.compile(r"(?:本文)?(?:转载自|转自|来源于|选自)[^。！？!?，,；;\s]{1,20}")
_ATTRIBUTION = re.compile(r"据[^，。,]{1,15}(?:报道|消息)[，,]?")
_TRAILER = re.compile(r"(?:免责声明|版权声明|版权所有|未经授权|点击关注|扫码关注|扫描二维码|长按识别).*$")
_NON_CONTENT = re.compile(r"[\W_]+")


def strip_boilerplate(text: str) -> str:
    """Drop repost headers, source/editor lines, bylines and links: they differ between copies of one story."""
    text = _URL.sub(" ", text)
    text = _TRAILER.sub(" ", text)
    for pattern in (_BRACKET_TAG, _PAREN_BYLINE, _LABEL, _REPOST_PREFIX, _ATTRIBUTION):
        text = pattern.sub(" ", text)
    return text


def _bare(text: str) -> str:
    """Normalised, boilerplate-free, lower-case letters and digits only: what a fingerprint sees."""
    return _NON_CONTENT.sub("", strip_boilerplate(normalize(text))).lower()


def content_of(title: str, text: str) -> str:
    """The body alone when it is long enough (reposts retitle freely), else title and body together."""
    body = _bare(text)
    if len(body) >= MIN_BODY_CHARS:
        return body
    return _bare(title) + body


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: a stable, well-spread mix (wrapping uint64 arithmetic); sentiment hashes with it too."""
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> np.uint64(33))


def _shingle_hashes(cps: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """64-bit hash of the SHINGLE code points beginning at each start position."""
    acc = cps[starts] ^ _SALT
    for j in range(1, SHINGLE):
        acc = fmix64(acc * _GOLD + cps[starts + j])
    return fmix64(acc)


def _fingerprints(contents: Sequence[str]) -> np.ndarray:
    """Simhash (uint64) of each content string; every string must have at least SHINGLE characters."""
    joined = "".join(contents)
    cps = np.frombuffer(joined.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    lengths = np.fromiter((len(c) for c in contents), dtype=np.int64, count=len(contents))
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    counts = lengths - (SHINGLE - 1)
    doc = np.repeat(np.arange(len(contents), dtype=np.int64), lengths)
    starts = np.flatnonzero(np.arange(len(cps), dtype=np.int64) - offsets[doc] < counts[doc])
    hashes = _shingle_hashes(cps, starts)
    bits = np.unpackbits(hashes.astype("<u8").view(np.uint8), bitorder="little").reshape(-1, BITS)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ones = np.add.reduceat(bits, first, axis=0, dtype=np.int32)
    majority = (ones * 2 > counts[:, None]).astype(np.uint8)
    return np.packbits(majority, axis=1, bitorder="little").view("<u8").ravel()


def _chunks(contents: list[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    """Whole documents in groups of about CHUNK_SHINGLES shingles, so memory stays bounded."""
    chunk: list[tuple[int, str]] = []
    size = 0
    for item in contents:
        chunk.append(item)
        size += len(item[1])
        if size >= CHUNK_SHINGLES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def simhash_contents(contents: Sequence[str]) -> list[int | None]:
    """Unsigned 64-bit simhash of each prepared content string; None where it is too short to be stable."""
    out: list[int | None] = [None] * len(contents)
    usable = [(i, c) for i, c in enumerate(contents) if len(c) >= max(MIN_CONTENT_CHARS, SHINGLE)]
    for chunk in _chunks(usable):
        prints = _fingerprints([c for _, c in chunk])
        for (i, _), value in zip(chunk, prints.tolist()):
            out[i] = int(value)
    return out


def simhash_many(titles: Sequence[str], texts: Sequence[str]) -> list[int | None]:
    """Unsigned simhash of each (title, text) pair, computed in one vectorised pass."""
    return simhash_contents([content_of(t, x) for t, x in zip(titles, texts)])


def simhash(title: str, text: str = "") -> int | None:
    """Unsigned simhash of one title and body."""
    return simhash_many([title], [text])[0]


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two fingerprints (signed or unsigned)."""
    return ((a ^ b) & _MASK).bit_count()


def to_signed(value: int | None) -> int | None:
    """Unsigned 64-bit fingerprint as the signed int64 a BIGINT column holds."""
    if value is None:
        return None
    return value - (1 << 64) if value & _SIGN else value


@overload
def to_unsigned(value: int) -> int: ...
@overload
def to_unsigned(value: None) -> None: ...
@overload
def to_unsigned(value: int | None) -> int | None: ...


def to_unsigned(value: int | None) -> int | None:
    """Signed int64 from the store back to the unsigned fingerprint."""
    return None if value is None else value & _MASK


T = TypeVar("T")


@dataclass(frozen=True)
class Near(Generic[T]):
    """One near-duplicate found: its fingerprint, how many bits away, and what it was stored with."""

    value: int
    distance: int
    item: T


class SimhashIndex(Generic[T]):
    """Fingerprints keyed by each of max_distance+1 blocks, so a lookup compares only block-sharing candidates."""

    def __init__(self, max_distance: int = MAX_DISTANCE) -> None:
        if not 0 <= max_distance < 16:
            raise ValueError("max_distance must be 0..15 for a 64-bit block index")
        self.max_distance = max_distance
        blocks = max_distance + 1
        edges = [round(i * BITS / blocks) for i in range(blocks + 1)]
        self._blocks = [(lo, (1 << (hi - lo)) - 1) for lo, hi in zip(edges, edges[1:])]
        self._tables: list[dict[int, list[int]]] = [{} for _ in self._blocks]
        self._items: dict[int, T] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, value: int) -> bool:
        return to_unsigned(value) in self._items

    def _keys(self, value: int) -> Iterator[tuple[dict[int, list[int]], int]]:
        for table, (shift, mask) in zip(self._tables, self._blocks):
            yield table, (value >> shift) & mask

    def add(self, value: int, item: T) -> bool:
        """Store a fingerprint with its item; an identical fingerprint already stored keeps its first item."""
        value = to_unsigned(value)
        if value in self._items:
            return False
        self._items[value] = item
        for table, key in self._keys(value):
            table.setdefault(key, []).append(value)
        return True

    def remove(self, value: int) -> None:
        """Forget a fingerprint (e.g. its event left the window)."""
        value = to_unsigned(value)
        if self._items.pop(value, None) is None:
            return
        for table, key in self._keys(value):
            bucket = table[key]
            bucket.remove(value)
            if not bucket:
                del table[key]

    def near(self, value: int) -> list[Near[T]]:
        """Every stored fingerprint within max_distance bits, nearest first."""
        value = to_unsigned(value)
        seen: set[int] = set()
        found: list[Near[T]] = []
        for table, key in self._keys(value):
            for other in table.get(key, ()):
                if other in seen:
                    continue
                seen.add(other)
                distance = (value ^ other).bit_count()
                if distance <= self.max_distance:
                    found.append(Near(other, distance, self._items[other]))
        found.sort(key=lambda n: n.distance)
        return found

    def nearest(self, value: int) -> Near[T] | None:
        """The closest stored fingerprint within max_distance bits, or None."""
        found = self.near(value)
        return found[0] if found else None

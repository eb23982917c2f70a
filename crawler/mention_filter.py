"""Does a page name our hospital? Names and aliases count, look-alikes and bare doctor names do not.

Rules, in the hospital's words:
- a name is any of ``Hospital.names`` (official name and aliases), compared after NFKC
  (full-width folded to half-width), case folding and whitespace folding;
- an occurrence lying inside an ``excluded`` look-alike (海城市一院 around 市一院) is ignored;
- an ``ambiguous_aliases`` name (市一院) counts only with a ``context_words`` word (江城)
  within ``CONTEXT_CHARS`` characters of it;
- a shorter name inside a longer one that matched (市一院 inside 江城市一院) is the longer one;
- doctors' names alone never count: too many people share them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from yuqing.config import Hospital

CONTEXT_CHARS = 30
_CJK = "\u3000-\u303f\u3400-\u9fff\uf900-\ufaff"
_WS = re.compile(r"\s+")
_CJK_GAP = re.compile(rf"(?<=[{_CJK}]) (?=[{_CJK}])")


def readable(text: str) -> str:
    """NFKC (full-width folded), whitespace collapsed and dropped between Chinese characters."""
    text = unicodedata.normalize("NFKC", text or "")
    return _CJK_GAP.sub("", _WS.sub(" ", text)).strip()


def fold(text: str) -> str:
    """The form names are compared in: readable() and case folded."""
    return readable(text).casefold()


@dataclass(frozen=True)
class MentionMatch:
    """Which of the hospital's names a page used, and the words around the first one."""

    names: list[str]
    context: str
    field: str  # "title" or "text": where the first match was


def _occurrences(haystack: str, needle: str) -> list[tuple[int, int]]:
    """Every (start, end) of needle in haystack, overlapping ones included."""
    spans, start = [], haystack.find(needle)
    while start >= 0:
        spans.append((start, start + len(needle)))
        start = haystack.find(needle, start + 1)
    return spans


class MentionMatcher:
    """The hospital-mention test every stored page must pass; built once per crawl from config."""

    def __init__(self, hospital: Hospital):
        self.names = [(name, fold(name)) for name in hospital.names if fold(name)]
        self.names.sort(key=lambda pair: len(pair[1]), reverse=True)
        self.excluded = [fold(x) for x in hospital.excluded if fold(x)]
        self.ambiguous = {fold(a) for a in hospital.ambiguous_aliases}
        self.context_words = [fold(w) for w in hospital.context_words if fold(w)]

    def match(self, title: str, text: str) -> MentionMatch | None:
        """The names matched and context of the first, or None when the page is not about us."""
        fields = (("title", readable(title)), ("text", readable(text)))
        hits = [(field, shown, self._find(shown.casefold())) for field, shown in fields]
        names = [name for _, _, found in hits for name, _ in sorted(found, key=lambda hit: hit[1])]
        if not names:
            return None
        field, shown, found = next(hit for hit in hits if hit[2])
        first = min(span for _, span in found)
        # Case folding keeps positions for nearly all text; where it does not, show the folded form.
        body = shown if len(shown.casefold()) == len(shown) else shown.casefold()
        return MentionMatch(names=list(dict.fromkeys(names)), context=self._context(body, first), field=field)

    def _find(self, body: str) -> list[tuple[str, tuple[int, int]]]:
        """(name, span) for every valid occurrence; longer names claim their span first."""
        if not body:
            return []
        excluded = [span for word in self.excluded for span in _occurrences(body, word)]
        taken: list[tuple[int, int]] = []
        hits: list[tuple[str, tuple[int, int]]] = []
        for name, folded in self.names:
            for span in _occurrences(body, folded):
                if _overlaps_any(span, taken) or _within_any(span, excluded):
                    continue
                if folded in self.ambiguous and not self._has_context(body, span):
                    continue
                taken.append(span)
                hits.append((name, span))
        return hits

    def _has_context(self, body: str, span: tuple[int, int]) -> bool:
        """A context word within CONTEXT_CHARS of an ambiguous alias."""
        window = body[max(0, span[0] - CONTEXT_CHARS): span[1] + CONTEXT_CHARS]
        return any(word in window for word in self.context_words)

    @staticmethod
    def _context(body: str, span: tuple[int, int]) -> str:
        """About CONTEXT_CHARS characters each side of the match."""
        return body[max(0, span[0] - CONTEXT_CHARS): span[1] + CONTEXT_CHARS].replace("\n", " ")


def _overlaps_any(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    """True when span overlaps one of spans (it is part of a longer name already matched)."""
    return any(start < span[1] and span[0] < end for start, end in spans)


def _within_any(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    """True when span lies inside one of spans (it is part of an excluded look-alike)."""
    return any(start <= span[0] and span[1] <= end for start, end in spans)

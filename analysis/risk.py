"""The crisis lexicon: claims, negation, rebuttals, co-signals and publicity frames, read by rules.

The rules are described in data/risk_lexicon.yaml, which is the editable part; this module only
compiles that file into a few regexes and applies them. What it reads (`LexiconReading`: a score,
the categories and terms a person can check, and whether a claim was negated or rebutted) is one
input of the crisis judgement in analysis/judge.py, beside the model learned from real titles
(analysis/headline_model.py). Nothing here depends on sentiment.
"""

from __future__ import annotations

import bisect
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from yuqing.resources import DATA
from yuqing.risk_categories import RISK_CATEGORIES

try:  # the regex parser, to find each pattern's literal prefixes for a prefilter
    # typeshed has no stubs for re's private submodules, which exist from Python 3.11 on
    from re import _constants as _sre_c  # type: ignore[attr-defined]
    from re import _parser as _sre_p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older layouts
    import sre_constants as _sre_c
    import sre_parse as _sre_p

log = logging.getLogger(__name__)

DEFAULT_LEXICON = DATA / "risk_lexicon.yaml"

# Clause boundaries for negation scope: punctuation and the spaces headlines use as separators.
_BOUNDARY = frozenset("，。；！？,.;!?:：、…—|/#\n\t ")
_WS_RE = re.compile(r"\s+")
_NOT_BOUNDARY = "[^" + re.escape("".join(sorted(_BOUNDARY))) + "]"
# Sentence ends: a publicity frame only discounts claims in its own sentence of a longer text.
_SENTENCE_END = frozenset("。！？!?；;\n")
_TERM_TRIM = "\"'“”‘’「」『』《》()（） "
# How far (characters) a rebuttal reaches back to its rumour, or forward after a "辟谣：" header:
# a whole headline, but not a whole article that mentions a rumour in passing.
REBUTTAL_REACH = 120
_MASK_CHAR = "\u25a1"  # □: keeps offsets, matches nothing in the lexicon


T2S_TABLE = DATA / "zh_t2s.txt"


def _load_t2s(path: Path = T2S_TABLE) -> dict[int, str]:
    """Traditional -> simplified table: real headlines from Hong Kong and Taiwan sites (醫院, 護士被打)
    must match the simplified lexicon and model."""
    pairs = "".join(line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and not line.startswith("#"))
    if len(pairs) % 2:
        raise ValueError(f"{path}: odd number of characters; the table is (traditional, simplified) pairs")
    return str.maketrans({pairs[i]: pairs[i + 1] for i in range(0, len(pairs), 2)})


_T2S = _load_t2s()


def _normalize(text: str) -> str:
    """NFKC + traditional->simplified + lower-case + folded whitespace, so full-width, ASCII and
    traditional variants match one lexicon."""
    return _WS_RE.sub(" ", unicodedata.normalize("NFKC", text).translate(_T2S)).strip().lower()


def _trie_regex(words: Iterable[str]) -> str:
    """One regex for many literals that prefers the longest word at each position (a trie, not an alternation)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = True

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(trie)


@dataclass(frozen=True)
class Matcher:
    """Literal terms (one trie regex) plus regex patterns; yields (start, end) spans."""

    terms: re.Pattern[str] | None
    patterns: tuple[re.Pattern[str], ...]

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Every term (longest at each position) and pattern match in the text."""
        out: list[tuple[int, int]] = []
        if self.terms is not None:
            out.extend((m.start(), m.start() + len(m.group(1))) for m in self.terms.finditer(text))
        for pat in self.patterns:
            out.extend(m.span() for m in pat.finditer(text) if m.end() > m.start())
        return out


def _compile_literals(words: Iterable[str], overlapping: bool = True) -> re.Pattern[str] | None:
    """Compile literals; overlapping=True finds a match starting at every position (lookahead)."""
    words = sorted({w for w in words if w})
    if not words:
        return None
    body = _trie_regex(words)
    return re.compile(f"(?=({body}))" if overlapping else f"({body})")


def _clause_local(source: str) -> str:
    """Make every unescaped `.` stop at clause boundaries, so a pattern never spans two clauses."""
    out, i, in_class = [], 0, False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            out.append(source[i:i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append(_NOT_BOUNDARY if ch == "." and not in_class else ch)
        i += 1
    return "".join(out)


def _compile_pattern(source: str, where: str) -> re.Pattern[str]:
    """Compile one lexicon regex (clause-local), naming where it came from when it is broken."""
    try:
        return re.compile(_clause_local(_normalize(source)))
    except re.error as err:
        raise ValueError(f"{where}: bad regex {source!r}: {err}") from None


def _matcher(section: Any, where: str, overlapping: bool = True) -> Matcher:
    """Build a Matcher from a YAML section: a list of terms, or {terms: [...], patterns: [...]}."""
    if section is None:
        return Matcher(None, ())
    if isinstance(section, list):
        section = {"terms": section}
    if not isinstance(section, dict):
        raise ValueError(f"{where}: expected a list or a mapping with terms/patterns")
    terms = [_normalize(str(t)) for t in section.get("terms") or []]
    pats = tuple(_compile_pattern(str(p), where) for p in section.get("patterns") or [])
    return Matcher(_compile_literals(terms, overlapping), pats)


_MAX_PREFIXES = 512
_DIGITS = frozenset("0123456789")


def _char_set(av: Any) -> set[str] | None:
    """The characters a small [...] class matches (literals, short ranges, \\d), or None."""
    out: set[str] = set()
    for op, arg in av:
        if op is _sre_c.LITERAL:
            out.add(chr(arg))
        elif op is _sre_c.RANGE and arg[1] - arg[0] < 64:
            out.update(chr(c) for c in range(arg[0], arg[1] + 1))
        elif op is _sre_c.CATEGORY and arg is _sre_c.CATEGORY_DIGIT:
            out.update(_DIGITS)
        else:
            return None
    return out


def _finite(item: Any) -> set[str] | None:
    """Every string one parsed regex item matches, if that is a small finite set (no repeats)."""
    op, av = item
    if op is _sre_c.LITERAL:
        return {chr(av)}
    if op is _sre_c.IN:
        return _char_set(av)
    if op is _sre_c.SUBPATTERN:
        return _finite_seq(av[-1])
    if op is _sre_c.BRANCH:
        out: set[str] = set()
        for branch in av[1]:
            sub = _finite_seq(branch)
            if sub is None:
                return None
            out |= sub
        return out
    return None


def _finite_seq(items: Any) -> set[str] | None:
    """Every string a parsed sequence matches, if small and finite."""
    out = {""}
    for item in items:
        alts = _finite(item)
        if alts is None:
            return None
        out = {a + b for a in out for b in alts}
        if len(out) > _MAX_PREFIXES:
            return None
    return out


def _item_prefixes(item: Any) -> set[str] | None:
    """Non-empty strings one of which every match of a non-finite item starts with, or None."""
    op, av = item
    if op is _sre_c.SUBPATTERN:
        return _seq_prefixes(av[-1])
    if op is _sre_c.BRANCH:
        out: set[str] = set()
        for branch in av[1]:
            sub = _seq_prefixes(branch)
            if sub is None:
                return None
            out |= sub
        return out
    if op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT) and av[0] >= 1:
        return _seq_prefixes(av[2])
    return None


def _seq_prefixes(items: Any) -> set[str] | None:
    """Literal prefixes of a parsed sequence: its finite head, extended into the first non-finite item."""
    head = {""}
    for item in items:
        alts = _finite(item)
        if alts is None:
            alts = _item_prefixes(item)
            if alts is not None:
                joined = {a + b for a in head for b in alts}
                if len(joined) <= _MAX_PREFIXES:
                    head = joined
            break
        joined = {a + b for a in head for b in alts}
        if len(joined) > _MAX_PREFIXES:
            break
        head = joined
    return head if head and all(head) else None


def _prefixes(regex: re.Pattern[str]) -> set[str] | None:
    """Non-empty literal strings one of which every match of the regex starts with (None: unknown)."""
    try:
        return _seq_prefixes(_sre_p.parse(regex.pattern))
    except Exception:  # noqa: BLE001 - the prefilter is an optimisation; without it every pattern runs
        return None


# --- the model's view of a text (analysis/headline_model.py reads titles through it) ------------

_MODEL_DIGITS_RE = re.compile(r"\d+(?:\.\d+)?")
_MODEL_LATIN_RE = re.compile(r"[a-z]+")
_MODEL_DROP_RE = re.compile(r"[\s#【】\[\]“”\"'‘’「」『』《》()（）]+")


def model_text(text: str) -> str:
    """The model's view of a text: normalised, numbers and Latin words folded, quotes dropped, ^…$ ends."""
    norm = _normalize(text)
    norm = _MODEL_LATIN_RE.sub("a", _MODEL_DIGITS_RE.sub("0", norm))
    return "^" + _MODEL_DROP_RE.sub(" ", norm).strip() + "$"


@dataclass(frozen=True)
class PatternRule:
    """A category regex with its weight."""

    category: str
    regex: re.Pattern[str]
    weight: float


@dataclass(frozen=True)
class RiskLexicon:
    """The compiled lexicon: what the tagger matches and how it weighs it."""

    categories: tuple[str, ...]
    names: Mapping[str, str]
    term_rules: Mapping[str, tuple[tuple[str, float], ...]]
    terms_re: re.Pattern[str] | None
    patterns: tuple[PatternRule, ...]
    anchors: re.Pattern[str] | None
    anchor_rules: Mapping[str, tuple[int, ...]]
    unanchored: tuple[int, ...]
    negators: re.Pattern[str] | None
    close_negators: re.Pattern[str] | None
    prohibitions: re.Pattern[str] | None
    conditionals: re.Pattern[str] | None
    rebuttal: Matcher
    rumour_intros: Matcher
    cosignals: Matcher
    frames: Matcher
    question_frames: Matcher
    soft_frames: Matcher
    masks: Matcher
    threshold: float
    strong_min: float
    weak_alone: float
    frame_factor: float
    category_min: float
    negation_window: int
    accused_denials: Matcher = Matcher(None, ())
    open_inquiries: Matcher = Matcher(None, ())

    def display_name(self, category: str) -> str:
        """Chinese display name of a category id (the id itself if unnamed)."""
        return self.names.get(category, category)


@dataclass(frozen=True)
class RiskAssessment:
    """Verdict for one text: crisis flag, categories in lexicon order, matched claims, score in [0, 1]."""

    crisis: bool
    categories: tuple[str, ...]
    terms: tuple[str, ...]
    score: float


@dataclass(frozen=True)
class LexiconReading:
    """What the lexicon found in one text: its score, each category's strongest claim after negation,
    rebuttal and frames, the claim words, and the signals the learned judgement weighs beside them."""

    score: float
    crisis: bool  # the lexicon's own verdict: score at its threshold
    strength: Mapping[str, float]
    terms: tuple[str, ...]
    negated: bool  # a claim was cancelled by a negator, prohibition or conditional
    rebutted: bool  # a claim was denied by a rebuttal, or the text is a rebuttal
    accused_denial: bool  # the accused party's own denial (医院称不实)
    framed: bool  # a publicity, 科普 or question frame


def _weight(value: Any, where: str) -> float:
    """A weight in (0, 1], or a ValueError naming where it came from."""
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: weight {value!r} is not a number") from None
    if not 0 < w <= 1:
        raise ValueError(f"{where}: weight {w} must be in (0, 1]")
    return w


def _split_extra(item: str, default: float, where: str) -> tuple[str, float]:
    """Parse a config term, "天价药费" or "天价药费:0.6" (a full-width colon works too), so weights stay optional."""
    term = _normalize(str(item))
    head, sep, tail = term.rpartition(":")
    if sep and head.strip() and re.fullmatch(r"[\d.]+", tail.strip()):
        return head.strip(), _weight(tail.strip(), f"{where}: {item!r}")
    if not term:
        raise ValueError(f"{where}: empty term")
    return term, default


def _category_terms(cid: str, spec: Mapping[str, Any], strong: float, weak: float) -> dict[str, float]:
    """Terms of one category with their weights: strong list, weak list, then explicit weights."""
    where = f"categories.{cid}"
    terms: dict[str, float] = {}
    for t in spec.get("strong") or []:
        terms[_normalize(str(t))] = strong
    for t in spec.get("weak") or []:
        terms[_normalize(str(t))] = weak
    for t, w in (spec.get("weights") or {}).items():
        terms[_normalize(str(t))] = _weight(w, f"{where}.weights.{t}")
    return terms


def _read_yaml(path: Path) -> dict[str, Any]:
    """Load the lexicon file, or a ValueError naming it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read risk lexicon: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("categories"), dict):
        raise ValueError(f"{path}: risk lexicon needs a 'categories' mapping")
    return data


def _anchor_index(patterns: Sequence[PatternRule]) -> dict[str, Any]:
    """Index patterns by their literal prefixes, so one trie scan tells which patterns can match where."""
    anchor_rules: dict[str, list[int]] = {}
    unanchored = []
    for i, rule in enumerate(patterns):
        pre = _prefixes(rule.regex)
        if pre is None:
            unanchored.append(i)
            continue
        for a in pre:
            anchor_rules.setdefault(a, []).append(i)
    # the trie reports the longest anchor at a position; shorter anchors there are its prefixes
    cands = {a: tuple(sorted({i for k in range(1, len(a) + 1) for i in anchor_rules.get(a[:k], ())}))
             for a in anchor_rules}
    return {"anchors": _compile_literals(anchor_rules), "anchor_rules": cands, "unanchored": tuple(unanchored)}


def load_lexicon(path: Path | None = None, extra: Mapping[str, Sequence[str]] | None = None) -> RiskLexicon:
    """Compile the shipped (or given) lexicon plus a hospital's extra terms from config."""
    path = Path(path) if path is not None else DEFAULT_LEXICON
    data = _read_yaml(path)
    cats: dict[str, Any] = data["categories"]
    strong = _weight(data.get("strong_weight", 0.9), "strong_weight")
    weak = _weight(data.get("weak_weight", 0.5), "weak_weight")
    extra_w = _weight(data.get("extra_weight", strong), "extra_weight")

    unknown = sorted(set(cats) - set(RISK_CATEGORIES))
    if unknown:
        raise ValueError(f"{path}: categories: unknown id(s) {', '.join(unknown)} "
                         f"(the categories are listed in yuqing/risk_categories.py)")
    per_cat = {cid: _category_terms(cid, spec or {}, strong, weak) for cid, spec in cats.items()}
    for cid, items in (extra or {}).items():
        if cid not in per_cat:
            raise ValueError(f"unknown risk category id {cid!r} (known: {', '.join(per_cat)})")
        if isinstance(items, str):
            items = [items]
        for item in items:
            term, w = _split_extra(item, extra_w, f"risk_terms.{cid}")
            per_cat[cid][term] = w

    term_rules: dict[str, list[tuple[str, float]]] = {}
    for cid, terms in per_cat.items():
        for term, w in terms.items():
            if term:
                term_rules.setdefault(term, []).append((cid, w))

    patterns = []
    for cid, spec in cats.items():
        for i, rule in enumerate((spec or {}).get("patterns") or []):
            where = f"{path}: categories.{cid}.patterns[{i}]"
            rule = rule if isinstance(rule, dict) else {"re": rule}
            patterns.append(PatternRule(cid, _compile_pattern(str(rule.get("re", "")), where),
                                        _weight(rule.get("weight", strong), where)))

    negators = [_normalize(str(n)) for n in data.get("negators") or []]
    close = [_normalize(str(n)) for n in data.get("close_negators") or []]
    lex = RiskLexicon(
        categories=tuple(cats),
        names={cid: RISK_CATEGORIES[cid] for cid in cats},
        term_rules={t: tuple(r) for t, r in term_rules.items()},
        terms_re=_compile_literals(term_rules),
        patterns=tuple(patterns),
        **_anchor_index(patterns),
        negators=_compile_literals(negators, overlapping=True),
        close_negators=_compile_literals(close, overlapping=True),
        prohibitions=_compile_literals([_normalize(str(n)) for n in data.get("prohibitions") or []]),
        conditionals=_compile_literals([_normalize(str(n)) for n in data.get("conditionals") or []]),
        rebuttal=_matcher(data.get("rebuttal"), f"{path}: rebuttal"),
        rumour_intros=_matcher(data.get("rumour_intros"), f"{path}: rumour_intros"),
        cosignals=_matcher(data.get("cosignals"), f"{path}: cosignals"),
        frames=_matcher(data.get("frames"), f"{path}: frames"),
        question_frames=_matcher(data.get("question_frames"), f"{path}: question_frames"),
        soft_frames=_matcher(data.get("soft_frames"), f"{path}: soft_frames"),
        masks=_matcher(data.get("masks"), f"{path}: masks", overlapping=False),
        accused_denials=_matcher(data.get("accused_denials"), f"{path}: accused_denials"),
        open_inquiries=_matcher(data.get("open_inquiries"), f"{path}: open_inquiries"),
        threshold=_weight(data.get("threshold", 0.5), "threshold"),
        strong_min=_weight(data.get("strong_min", 0.8), "strong_min"),
        weak_alone=_weight(data.get("weak_alone", 0.5), "weak_alone"),
        frame_factor=_weight(data.get("frame_factor", 0.5), "frame_factor"),
        category_min=_weight(data.get("category_min", 0.3), "category_min"),
        negation_window=int(data.get("negation_window", 5)),
    )
    log.debug("risk lexicon %s: %d terms, %d patterns", path, len(term_rules), len(patterns))
    return lex


@dataclass(frozen=True)
class _Claim:
    """One matched term or pattern in the (masked) text."""

    start: int
    end: int
    category: str
    weight: float
    is_pattern: bool


def _unbroken(text: str, i: int, j: int, stops: frozenset[str] = _SENTENCE_END) -> bool:
    """True when none of stops (sentence ends by default, or clause boundaries) lies between positions i and j."""
    lo, hi = min(i, j), max(i, j)
    return not any(ch in stops for ch in text[lo:hi])


@dataclass(frozen=True)
class _Framing:
    """Where a text's frames sit, found once per text: publicity frames reach their sentence,
    question words (如何, 是否, 算不算) only their clause."""

    text: str
    frames: list[tuple[int, int]]
    soft: list[tuple[int, int]]
    questions: list[tuple[int, int]]

    def covers(self, pos: int, soft: bool = False) -> bool:
        """Whether a claim at pos is framed; soft frames count only when asked (for weak claims)."""
        frames = self.frames + self.soft if soft else self.frames
        return (any(_unbroken(self.text, s, pos) for s, _ in frames)
                or any(_unbroken(self.text, s, pos, _BOUNDARY) for s, _ in self.questions))


def _dedupe(found: list[_Claim]) -> list[_Claim]:
    """Drop covered claims (term in a longer term, weaker of overlapping terms, match in a stronger same-category one)."""
    keep = []
    for c in found:
        hidden = False
        for o in found:
            if o is c or o.end <= c.start or c.end <= o.start:
                continue
            inside = o.start <= c.start and c.end <= o.end and (o.start, o.end) != (c.start, c.end)
            if not o.is_pattern and not c.is_pattern:
                if inside or (not (c.start <= o.start and o.end <= c.end)
                              and (o.weight, -o.start) > (c.weight, -c.start)):
                    hidden = True
            elif inside and o.category == c.category and c.weight <= o.weight:
                hidden = True
            if hidden:
                break
        if not hidden:
            keep.append(c)
    return keep


class RiskTagger:
    """Tags texts with crisis categories and decides whether they are a crisis."""

    def __init__(self, lexicon: RiskLexicon | None = None) -> None:
        self.lexicon = lexicon or load_lexicon()

    def read(self, text: str) -> LexiconReading:
        """Everything the lexicon finds in one text (headline, post, review): the input of the judgement."""
        norm = _normalize(text or "")
        if not norm:
            return LexiconReading(0.0, False, {}, (), False, False, False, False)
        lex = self.lexicon
        masked = self._mask(norm)
        found = self._claims(masked)
        claims = [c for c in found if not self._negated(masked, c, found)]
        # rebuttal words are looked for in the unmasked text: a masked phrase may carry one
        # (造谣者被行拘 is masked as a claim but still says the story was a rumour)
        rebuttals = lex.rebuttal.spans(norm)
        intros = lex.rumour_intros.spans(norm)
        kept = self._drop_rumour(masked, claims, rebuttals, intros)
        framing = _Framing(masked, lex.frames.spans(masked), lex.soft_frames.spans(masked),
                           lex.question_frames.spans(masked))
        weighed = self._weigh(masked, kept, framing) if kept else []
        miss = 1.0
        for eff in self._event_weights(masked, weighed, framing):
            miss *= 1.0 - eff
        strength: dict[str, float] = {}
        for c, eff in weighed:
            strength[c.category] = max(strength.get(c.category, 0.0), eff)
        spans = sorted({(c.start, c.end) for c in kept})
        terms = tuple(dict.fromkeys(t for t in (norm[s:e].strip(_TERM_TRIM) for s, e in spans) if t))
        score = round(1.0 - miss, 3)
        return LexiconReading(
            score=score,
            crisis=score >= lex.threshold,
            strength={c: round(strength[c], 3) for c in lex.categories if c in strength},
            terms=terms,
            negated=len(claims) < len(found),
            rebutted=len(kept) < len(claims) or bool(rebuttals and not found) or bool(intros),
            accused_denial=bool(lex.accused_denials.spans(masked)),
            framed=bool(framing.frames or framing.questions),
        )

    def assess(self, text: str) -> RiskAssessment:
        """The lexicon's own verdict on one text (what "lexicon alone" means in bench/bench_risk.py)."""
        reading = self.read(text)
        lex = self.lexicon
        return RiskAssessment(
            crisis=reading.crisis,
            categories=tuple(c for c, w in reading.strength.items() if w >= lex.category_min - 1e-9),
            terms=reading.terms,
            score=reading.score,
        )

    def _mask(self, text: str) -> str:
        """Blank out look-alike phrases (死亡率, 拒收红包 …) so nothing matches inside them."""
        chars = list(text)
        for s, e in self.lexicon.masks.spans(text):
            chars[s:e] = _MASK_CHAR * (e - s)
        return "".join(chars)

    def _claims(self, text: str) -> list[_Claim]:
        """Term and pattern matches, minus those a longer or stronger match already covers."""
        lex = self.lexicon
        found: list[_Claim] = []
        if lex.terms_re is not None:
            for m in lex.terms_re.finditer(text):
                s, e = m.start(), m.start() + len(m.group(1))
                found.extend(_Claim(s, e, cid, w, False) for cid, w in lex.term_rules[m.group(1)])
        for i, m in self._pattern_matches(text):
            rule = lex.patterns[i]
            found.append(_Claim(m.start(), m.end(), rule.category, rule.weight, True))
        return _dedupe(found)

    def _pattern_matches(self, text: str) -> list[tuple[int, re.Match[str]]]:
        """What each pattern's finditer would give, but trying patterns only where one of their prefixes occurs."""
        lex = self.lexicon
        out = [(i, m) for i in lex.unanchored for m in lex.patterns[i].regex.finditer(text) if m.end() > m.start()]
        if lex.anchors is None:
            return out
        next_free: dict[int, int] = {}
        patterns, rules = lex.patterns, lex.anchor_rules
        for hit in lex.anchors.finditer(text):
            pos = hit.start()
            for i in rules[hit.group(1)]:
                if pos < next_free.get(i, 0):
                    continue
                m = patterns[i].regex.match(text, pos)
                if m is not None and m.end() > pos:
                    out.append((i, m))
                    next_free[i] = m.end()
        return out

    def _negated(self, text: str, claim: _Claim, claims: Sequence[_Claim]) -> bool:
        """A negator shortly before the claim (a prohibition anywhere before it, a conditional
        anywhere in its clause), in its clause, and not itself part of another claim."""
        lex = self.lexicon
        lo = claim.start
        while lo > 0 and claim.start - lo < lex.negation_window and text[lo - 1] not in _BOUNDARY:
            lo -= 1
        clause = lo
        while clause > 0 and text[clause - 1] not in _BOUNDARY:
            clause -= 1
        if lex.conditionals is not None:
            end = claim.end
            while end < len(text) and text[end] not in _BOUNDARY:
                end += 1
            if lex.conditionals.search(text, clause, end):
                return True
        for regex, near, start in ((lex.negators, False, lo), (lex.close_negators, True, lo),
                                   (lex.prohibitions, False, clause)):
            if regex is None:
                continue
            for m in regex.finditer(text, start, claim.start):
                s, e = m.start(), m.start() + len(m.group(1))
                if e > claim.start or (near and e != claim.start):
                    continue
                if not any(o.start <= s < o.end for o in claims if o is not claim):
                    return True
        return False

    def _drop_rumour(self, text: str, claims: list[_Claim], spans: list[tuple[int, int]],
                     intros: Sequence[tuple[int, int]] = ()) -> list[_Claim]:
        """In a rebuttal, the claims just before a rebuttal word (or after a "辟谣：" header) are the
        rumour denied; after a rumour intro (造谣称, 谎称), the rest of its sentence is the rumour.
        When the denial is the accused party's own (医院称不实), an outside inquiry named after it
        (卫健部门介入调查) is not denied: the dispute is still open."""
        if not spans and not intros:
            return claims
        lex = self.lexicon
        denied: list[tuple[int, int]] = []
        still_open: list[tuple[int, int]] = []  # inquiries named after the accused party's own denial
        denials = lex.accused_denials.spans(text) if spans else []
        inquiries = lex.open_inquiries.spans(text) if denials else []
        for s, e in spans:
            header = text[e:e + 2].lstrip(" !")[:1] in (":", "")
            denied.append((s - REBUTTAL_REACH, e + (REBUTTAL_REACH if header else 0)))
            if any(de <= s and s - de <= 8 and _unbroken(text, de, s) for _, de in denials):
                still_open.extend((qs, qe) for qs, qe in inquiries if qs >= e)
        for s, e in intros:
            end = e
            while end < len(text) and end - e < REBUTTAL_REACH and text[end] not in _SENTENCE_END:
                end += 1
            denied.append((s, end))
        return [c for c in claims if any(qs <= c.start < qe for qs, qe in still_open)
                or not any(lo <= c.start < hi for lo, hi in denied)]

    @staticmethod
    def _per_event(text: str, claims: Sequence[_Claim]) -> list[_Claim]:
        """The strongest claim of each category in each clause, and a claim's words once: one event
        described twice is not two events."""
        bounds = [i for i, ch in enumerate(text) if ch in _BOUNDARY]
        best: dict[tuple[str, int], _Claim] = {}
        for c in claims:
            key = (c.category, bisect.bisect_right(bounds, c.start))
            if key not in best or c.weight > best[key].weight:
                best[key] = c
        # the same words again in another clause (烫伤 … 烫伤后别涂酱油) are the same event
        seen: set[tuple[str, str]] = set()
        out = []
        for c in sorted(best.values(), key=lambda c: (-c.weight, c.start)):
            words = (c.category, text[c.start:c.end])
            if words not in seen:
                seen.add(words)
                out.append(c)
        return sorted(out, key=lambda c: c.start)

    @staticmethod
    def _event_weights(text: str, weighed: Sequence[tuple[_Claim, float]], framing: _Framing | None) -> list[float]:
        """The weights that add up to the score: claims overlapping a stronger one (one span matched
        in two categories) are one event, and a publicity-framed sentence counts its strongest claim only."""
        if not weighed or framing is None:
            return []
        ends = [i for i, ch in enumerate(text) if ch in _SENTENCE_END]
        kept: list[_Claim] = []
        framed_sentences: set[int] = set()
        out = []
        for c, eff in sorted(weighed, key=lambda ce: (-ce[1], ce[0].start)):
            if any(c.start < k.end and k.start < c.end for k in kept):
                continue
            if framing.covers(c.start):
                sentence = bisect.bisect_right(ends, c.start)
                if sentence in framed_sentences:
                    continue
                framed_sentences.add(sentence)
            kept.append(c)
            out.append(eff)
        return out

    def _weigh(self, text: str, claims: Sequence[_Claim], framing: _Framing | None) -> list[tuple[_Claim, float]]:
        """Each event's effective weight: weak claims discounted without an outside co-signal, claims in a frame."""
        if not claims or framing is None:
            return []
        lex = self.lexicon
        cos = lex.cosignals.spans(text)
        out = []
        for c in self._per_event(text, claims):
            eff = c.weight
            weak = eff < lex.strong_min
            if weak and not any(e <= c.start or s >= c.end for s, e in cos):
                eff *= lex.weak_alone
            if framing.covers(c.start, soft=weak):
                eff *= lex.frame_factor
            out.append((c, eff))
        return out

    def explain(self, text: str) -> dict[str, Any]:
        """The lexicon's verdict with display names, for people tuning the lexicon."""
        res = self.read(text)
        return {"score": res.score, "terms": list(res.terms), "negated": res.negated, "rebutted": res.rebutted,
                "framed": res.framed,
                "categories": {c: (self.lexicon.display_name(c), w) for c, w in res.strength.items()}}

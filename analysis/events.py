"""Group analysed mentions into events, incrementally, and measure each event for the plan.

A mention joins an event in one of two ways, tried in this order:

1. **Repost.** Its simhash is within 3 bits of a mention already in an active event: it is a
   copy of that story (``repost_of_id`` points at the first copy, never at another repost).
2. **Same story.** It shares at least ``MIN_SHARED`` *distinctive* keywords with the event's
   signature (its heaviest centroid terms) — words rarer than 死亡, 家属 or 不错 in general
   Chinese, and not department names — and its keyword vector (idf-weighted keywords, plus the
   dictionary words inside them at a lower weight: 产妇死亡 → 产妇, 死亡) has a cosine of at
   least ``JOIN_SCORE`` with the event's centroid (the sum of its mentions' vectors); the cosine
   is cut when the two name only different departments and people (产科 vs 眼科, 彭某 vs 陈某:
   two stories of one kind), and shared risk terms add a little. This is
   the single-pass clustering of topic detection and tracking; the distinctive-word rule keeps
   reviews that merely share 不错 or 排队 from snowballing into one giant event. Candidates
   come from an inverted index distinctive term → active events, most recent first and at most
   ``POSTINGS_SCANNED`` per term, so a mention is compared with a bounded number of events.

Otherwise it opens a new event. An event is *active* while a mention falls within
``event_window_hours`` of its first or last mention; the in-memory indexes hold active events
only and are rebuilt from the store (mention keywords, simhashes, risk terms) at the start of
each run, for the span of time the pending mentions need.

Measures, recomputed only for the events a run touched, from the store (so a URL the crawler
added to an old mention is counted too):

- ``mention_count``: mentions in the event, reposts included (a story and 30 copies = 31).
- ``repost_count``: mentions that are reposts (``repost_of_id`` set) plus every URL beyond the
  first that one mention was seen at (exact copies the crawler folded into one mention).
- ``source_count``: distinct sources carrying it: each mention's source, its URLs' sources, and
  the outlet a URL belongs to (under a configured source's page directory or allowed domains),
  so a provincial article first found through a search source still counts as provincial.
- ``velocity``: mentions dated within the last ``VELOCITY_HOURS`` before the run, per hour.
- ``baseline``: the hospital's mentions per hour over the ``BASELINE_DAYS`` before that
  (all mentions, any event; on a new install, since its first mention but over at least a day),
  never below ``BASELINE_FLOOR`` so a quiet hospital's ratio stays finite. Both are as of the
  run that last touched the event (``updated_at``): an event nobody mentions again keeps them.
- ``top_tier``: the best (lowest) configured tier of those sources; unknown sources count as 4.
- ``risk_categories``: union of the categories of its crisis mentions (a rebuttal that the risk
  tagger finds negated is not a crisis mention and adds none).
- ``keywords``: its five most frequent mention keywords.
- ``headline``: the title of its most-carried story (copies + URLs), ties to the highest tier,
  then the earliest.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Null, and_, case, func, null, or_, select
from sqlalchemy.orm import Session

from yuqing.analysis.simhash import MAX_DISTANCE, SimhashIndex, to_unsigned
from yuqing.models import Event, HotListEntry, Mention, MentionURL

log = logging.getLogger(__name__)

SIGNATURE_SIZE = 24  # an event is found through its heaviest centroid terms
EVENT_KEYWORDS = 5
MIN_SHARED = 2  # distinctive words shared: one (网传, 产妇) is not a story; two are. 死亡, 家属, 产科 never count
JOIN_SCORE = 0.25  # cosine to the centroid; tuned on tests/test_events.py (same story ≥ 0.34, others ≤ 0.21)
SUBWORD_WEIGHT = 0.3  # a word inside a keyword counts this much of its own idf
RISK_TERM_BONUS = 0.05  # per shared risk term, at most two: crisis stories share much risk vocabulary
PARTICULAR_MISMATCH = 0.4  # naming only departments and people the event never names: likely another story
POSTINGS_SCANNED = 64  # most recent active events looked at per term: bounds work on common words
WORD_CACHE_MAX = 200_000
VELOCITY_HOURS = 6
BASELINE_DAYS = 14
BASELINE_FLOOR = 0.25  # mentions per hour: six a day; a quiet hospital still needs a real burst to alert
UNKNOWN_TIER = 4
SQL_CHUNK = 500  # ids per IN (...) list, well inside every backend's parameter limit
HEADLINE_CHARS = 60  # a title-less mention (a review) is headed by its first characters
RELAYS = ("search", "hotlist", "rsshub")  # source kinds that point at other sites' pages: never an outlet


class Vocabulary(Protocol):
    """What grouping needs to know about words (analysis.keywords.KeywordExtractor is one)."""

    def weight(self, word: str) -> float:
        """How much a shared word counts (idf-like)."""
        ...

    def distinctive(self, word: str) -> bool:
        """Whether a shared word is evidence of one story (rare, not a department)."""
        ...

    def particular(self, word: str) -> bool:
        """Whether a word names a department or a person: who and where, which tell two stories apart."""
        ...

    def expand(self, word: str) -> tuple[str, ...]:
        """The word followed by the dictionary words inside it."""
        ...


@dataclass(frozen=True)
class MentionFacts:
    """What grouping needs about one analysed mention."""

    id: int
    when: datetime
    keywords: tuple[str, ...] = ()
    simhash: int | None = None  # unsigned
    risk_terms: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # crisis categories; empty unless the mention is a crisis
    repost_of_id: int | None = None


@dataclass(eq=False)
class EventState:
    """An active event as the grouper sees it: its span, its vocabulary and its fingerprints."""

    first_seen: datetime
    last_seen: datetime
    event_id: int | None = None
    size: int = 0
    keyword_counts: Counter[str] = field(default_factory=Counter)
    centroid: dict[str, float] = field(default_factory=dict)  # sum of its mentions' keyword vectors
    norm2: float = 0.0  # squared length of the centroid, kept up to date as mentions are added
    signature: frozenset[str] = frozenset()  # its SIGNATURE_SIZE heaviest centroid terms
    floor: float = 0.0  # lightest weight inside the signature: a term must beat it to get in
    clues: frozenset[str] = frozenset()  # the distinctive terms of the signature: what the postings index
    particulars: frozenset[str] = frozenset()  # the departments and named people of the signature
    risk_terms: set[str] = field(default_factory=set)
    categories: set[str] = field(default_factory=set)
    fingerprints: list[int] = field(default_factory=list)
    evicted: bool = False

    def top_keywords(self, n: int = EVENT_KEYWORDS) -> list[str]:
        """Its most frequent mention keywords (ties: first seen first)."""
        return [w for w, _ in self.keyword_counts.most_common(n)]

    def covers(self, when: datetime, window: timedelta) -> bool:
        """Whether a mention at this time may still belong to it."""
        return self.first_seen - window <= when <= self.last_seen + window


@dataclass(frozen=True)
class _Word:
    """What grouping uses of one keyword: its weighted terms, its distinctive terms, its particulars."""

    terms: tuple[tuple[str, float], ...]
    distinctive: frozenset[str]
    particulars: frozenset[str]


@dataclass(frozen=True)
class _Profile:
    """A mention as grouping compares it: vector, squared length, distinctive clues per keyword, particulars."""

    vector: dict[str, float]
    norm2: float
    clues: list[frozenset[str]]
    particulars: frozenset[str]


@dataclass(frozen=True)
class Placement:
    """Where one mention went: its event, whether that event is new, and what it is a repost of."""

    state: EventState
    opened: bool
    repost_of_id: int | None = None
    score: float = 0.0


class EventGrouper:
    """The in-memory indexes of active events: term → events and simhash → (first copy, event)."""

    def __init__(self, window: timedelta, vocabulary: Vocabulary, max_distance: int = MAX_DISTANCE) -> None:
        self.window = window
        self.vocabulary = vocabulary
        self._near: SimhashIndex[tuple[int, EventState]] = SimhashIndex(max_distance)
        self._postings: dict[str, dict[EventState, None]] = {}
        self._expiry: list[tuple[datetime, int, EventState]] = []
        self._tie = itertools.count()
        self.high_water: datetime | None = None
        self.states: set[EventState] = set()
        self._words: dict[str, _Word] = {}

    # --- placing new mentions ----------------------------------------------------------

    def place(self, facts: MentionFacts) -> Placement:
        """Put one new mention into a repost's event, the best-matching active event, or a new one."""
        self._advance(facts.when)
        profile = self.profile(facts)
        placement = self._as_repost(facts) or self._best_match(facts, profile) or self._open(facts)
        self._add(placement.state, facts, placement.repost_of_id, profile)
        return placement

    def _as_repost(self, facts: MentionFacts) -> Placement | None:
        """A near-duplicate of an active mention: same story, same event."""
        if facts.simhash is None:
            return None
        for near in self._near.near(facts.simhash):
            first_copy, state = near.item
            if not state.evicted and state.covers(facts.when, self.window):
                return Placement(state, opened=False, repost_of_id=first_copy, score=1.0)
        return None

    def _word(self, word: str) -> _Word:
        """A keyword's weighted terms, distinctive terms and particulars (cached: the vocabulary repeats)."""
        found = self._words.get(word)
        if found is None:
            vocab = self.vocabulary
            terms = vocab.expand(word)
            weighted = ((terms[0], vocab.weight(terms[0])),
                        *((t, SUBWORD_WEIGHT * vocab.weight(t)) for t in terms[1:]))
            found = _Word(weighted, frozenset(t for t in terms if vocab.distinctive(t)),
                          frozenset(t for t in terms if vocab.particular(t)))
            if len(self._words) >= WORD_CACHE_MAX:
                self._words.clear()
            self._words[word] = found
        return found

    def profile(self, facts: MentionFacts) -> _Profile:
        """A mention's keyword vector (keyword weights plus SUBWORD_WEIGHT × those of the words inside them)."""
        vec: dict[str, float] = {}
        clues: list[frozenset[str]] = []
        particulars: set[str] = set()
        for word in facts.keywords:
            info = self._word(word)
            for term, weight in info.terms:
                vec[term] = vec.get(term, 0.0) + weight
            if info.distinctive:
                clues.append(info.distinctive)
            particulars |= info.particulars
        return _Profile(vec, sum(w * w for w in vec.values()), clues, frozenset(particulars))

    def _best_match(self, facts: MentionFacts, profile: _Profile) -> Placement | None:
        """The active event whose centroid is most similar to the mention, if similar enough."""
        best: tuple[float, datetime, EventState] | None = None
        for state, shared in self._candidates(profile, facts.when).items():
            if shared < MIN_SHARED:
                continue
            score = self.similarity(facts, profile, state)
            if score >= JOIN_SCORE and (best is None or (score, state.last_seen) > best[:2]):
                best = (score, state.last_seen, state)
        if best is None:
            return None
        return Placement(best[2], opened=False, score=best[0])

    def _candidates(self, profile: _Profile, when: datetime) -> dict[EventState, int]:
        """Active events by how many of the mention's distinctive keywords their signature holds."""
        earliest, latest = when - self.window, when + self.window
        shared: dict[EventState, int] = {}
        for clue in profile.clues:
            holders: set[EventState] = set()
            for term in clue:
                posting = self._postings.get(term)
                if posting:
                    for state in itertools.islice(reversed(posting), POSTINGS_SCANNED):
                        if state.last_seen >= earliest and state.first_seen <= latest:
                            holders.add(state)
            for state in holders:
                shared[state] = shared.get(state, 0) + 1
        return shared

    def similarity(self, facts: MentionFacts, profile: _Profile, state: EventState) -> float:
        """Cosine of the mention's vector to the event's centroid (cut across departments/people) + risk bonus."""
        centroid = state.centroid
        dot = sum(w * centroid[t] for t, w in profile.vector.items() if t in centroid)
        cosine = dot / (profile.norm2 * state.norm2) ** 0.5 if dot > 0 else 0.0
        if profile.particulars and state.particulars and not profile.particulars & state.particulars:
            cosine *= PARTICULAR_MISMATCH
        common_risk = len(state.risk_terms.intersection(facts.risk_terms))
        return cosine + RISK_TERM_BONUS * min(common_risk, 2)

    def _open(self, facts: MentionFacts) -> Placement:
        """A new event starting with this mention."""
        state = EventState(first_seen=facts.when, last_seen=facts.when)
        self.states.add(state)
        return Placement(state, opened=True)

    # --- state upkeep ------------------------------------------------------------------

    def _add(
        self, state: EventState, facts: MentionFacts, repost_of_id: int | None, profile: _Profile | None = None
    ) -> None:
        """Fold one mention into an event's span, vocabulary, risk and fingerprints."""
        state.size += 1
        state.first_seen = min(state.first_seen, facts.when)
        if facts.when > state.last_seen or state.size == 1:
            state.last_seen = max(state.last_seen, facts.when)
            self._expire_at(state)
        state.keyword_counts.update(facts.keywords)
        vec = (profile or self.profile(facts)).vector
        centroid = state.centroid
        for term, weight in vec.items():
            old = centroid.get(term, 0.0)
            centroid[term] = old + weight
            state.norm2 += 2 * old * weight + weight * weight
        self._refresh_signature(state, vec)
        state.risk_terms.update(facts.risk_terms)
        state.categories.update(facts.categories)
        if facts.simhash is not None:
            first_copy = repost_of_id or facts.repost_of_id or facts.id
            if self._near.add(facts.simhash, (first_copy, state)):
                state.fingerprints.append(to_unsigned(facts.simhash))

    def _refresh_signature(self, state: EventState, changed: Iterable[str]) -> None:
        """Recompute the signature when a changed term could enter it; move the event to the postings' recent end."""
        weights = state.centroid
        if len(state.signature) < SIGNATURE_SIZE or any(
            t not in state.signature and weights[t] > state.floor for t in changed
        ):
            top = heapq.nlargest(SIGNATURE_SIZE, weights.items(), key=lambda kv: kv[1])
            signature = frozenset(t for t, _ in top)
            state.floor = top[-1][1] if len(top) >= SIGNATURE_SIZE else 0.0
            clues = frozenset(t for t in signature if self.vocabulary.distinctive(t))
            self._unpost(state, state.clues - clues)
            state.signature, state.clues = signature, clues
            state.particulars = frozenset(t for t in signature if self.vocabulary.particular(t))
        for term in state.clues:
            posting = self._postings.setdefault(term, {})
            posting.pop(state, None)  # re-inserted last: postings run from least to most recently joined
            posting[state] = None

    def _unpost(self, state: EventState, terms: Iterable[str]) -> None:
        """Take an event out of the postings of these terms."""
        for term in terms:
            posting = self._postings.get(term)
            if posting is not None:
                posting.pop(state, None)
                if not posting:
                    del self._postings[term]

    def _expire_at(self, state: EventState) -> None:
        """Schedule the event's eviction for when its last mention leaves the window (older entries go stale)."""
        heapq.heappush(self._expiry, (state.last_seen, next(self._tie), state))

    def _advance(self, when: datetime) -> None:
        """Move the high-water mark and drop events whose window has closed behind it."""
        if self.high_water is None or when > self.high_water:
            self.high_water = when
        cutoff = self.high_water - self.window
        while self._expiry and self._expiry[0][0] < cutoff:
            seen, _, state = heapq.heappop(self._expiry)
            if not state.evicted and state.last_seen == seen:
                self._evict(state)

    def _evict(self, state: EventState) -> None:
        """Forget an event that no new mention can join any more."""
        state.evicted = True
        self._unpost(state, state.clues)
        for value in state.fingerprints:
            self._near.remove(value)
        self.states.discard(state)

    # --- rebuilding from the store -----------------------------------------------------

    def restore(self, state: EventState, mentions: Sequence[MentionFacts]) -> None:
        """Add an event already in the store with its analysed mentions (no searching, no new placements)."""
        self.states.add(state)
        for facts in sorted(mentions, key=lambda f: (f.when, f.id)):
            self._add(state, facts, None)

    @classmethod
    def from_store(
        cls,
        sess: Session,
        window: timedelta,
        vocabulary: Vocabulary,
        since: datetime,
        until: datetime,
        max_distance: int = MAX_DISTANCE,
    ) -> EventGrouper:
        """Indexes for events that mentions dated since..until may join: those active in that span, no others."""
        grouper = cls(window, vocabulary, max_distance)
        rows = sess.execute(
            select(Event.id, Event.first_seen, Event.last_seen, Event.risk_categories).where(
                Event.last_seen >= since - window, Event.first_seen <= until + window
            )
        ).all()
        states = {
            r.id: EventState(first_seen=r.first_seen, last_seen=r.last_seen, event_id=r.id,
                             categories=set(r.risk_categories or ()))
            for r in rows
        }
        facts: dict[int, list[MentionFacts]] = {i: [] for i in states}
        for chunk in _chunks(list(states)):
            for m in sess.execute(
                select(Mention.id, Mention.event_id, Mention.published_at, Mention.fetched_at, Mention.keywords,
                       Mention.simhash, Mention.risk_terms, Mention.repost_of_id)
                .where(Mention.event_id.in_(chunk), Mention.analyzed_at.is_not(None))
            ):
                facts[m.event_id].append(MentionFacts(
                    id=m.id, when=m.published_at or m.fetched_at, keywords=tuple(m.keywords or ()),
                    simhash=to_unsigned(m.simhash), risk_terms=tuple(m.risk_terms or ()),
                    repost_of_id=m.repost_of_id,
                ))
        for event_id, state in states.items():
            first, last = state.first_seen, state.last_seen
            grouper.restore(state, facts[event_id])
            if (state.first_seen, state.last_seen) != (first, last):  # the store's span is authoritative
                state.first_seen, state.last_seen = first, last
                grouper._expire_at(state)
        log.info("event index rebuilt: %d active events, %d mentions", len(states), sum(map(len, facts.values())))
        return grouper


# --- measures ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outlet:
    """A configured source as a publisher: the pages under its address (or on its domains) are its own."""

    source_id: str
    prefix: str  # the source page's directory, e.g. https://health.example.gov.cn/news/
    domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reach:
    """Source tiers from config, and which outlet publishes a URL whichever source happened to find it."""

    tiers: Mapping[str, int]
    outlets: tuple[Outlet, ...] = ()

    @classmethod
    def from_sources(cls, sources: Iterable[Any]) -> Reach:
        """Tiers of all configured sources; outlets for those whose address is a site, not a search, a hot list
        or an RSSHub instance (those relay other sites' pages, they publish none of their own)."""
        sources = list(sources)
        outlets = tuple(
            Outlet(s.id, s.url.split("?", 1)[0].rsplit("/", 1)[0] + "/", tuple(s.allowed_domains))
            for s in sources if s.kind not in RELAYS
        )
        return cls({s.id: s.tier for s in sources}, outlets)

    def tier(self, source_id: str) -> int:
        """A source's configured tier; one not in config counts as a forum (4)."""
        return self.tiers.get(source_id, UNKNOWN_TIER)

    def owner(self) -> ColumnElement[str | None] | Null:
        """SQL: the outlet whose own page a MentionURL is, or NULL."""
        whens = []
        for o in self.outlets:
            cond = MentionURL.url.startswith(o.prefix, autoescape=True)
            for d in o.domains:
                cond = or_(cond, MentionURL.url.contains(f"://{d}/", autoescape=True),
                           MentionURL.url.contains(f".{d}/", autoescape=True))
            whens.append((cond, o.source_id))
        return case(*whens, else_=None) if whens else null()


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    """Ids in slices small enough for one IN (...) list."""
    for i in range(0, len(ids), SQL_CHUNK):
        yield list(ids[i : i + SQL_CHUNK])


def mention_time() -> ColumnElement[datetime]:
    """SQL for Mention.when: publication time where known, else fetch time."""
    return func.coalesce(Mention.published_at, Mention.fetched_at)


def hospital_baseline(sess: Session, now: datetime) -> float:
    """The hospital's usual mentions per hour over the BASELINE_DAYS before the velocity window, floored."""
    end = now - timedelta(hours=VELOCITY_HOURS)
    start = end - timedelta(days=BASELINE_DAYS)
    t = mention_time()
    count, earliest = sess.execute(
        select(func.sum(case((and_(t >= start, t < end), 1), else_=0)), func.min(t))
    ).one()
    if not count or earliest is None:
        return BASELINE_FLOOR
    hours = (end - max(start, earliest)).total_seconds() / 3600
    return max(count / max(hours, 24.0), BASELINE_FLOOR)


@dataclass
class _Measures:
    """An event's measures as read back from the store, before they are written to its row."""

    mentions: int = 0
    negative: int = 0
    crisis: int = 0
    reposts: int = 0
    recent: int = 0
    first: datetime | None = None
    last: datetime | None = None
    urls: int = 0
    mentions_with_urls: int = 0
    sources: set[str] = field(default_factory=set)
    hot_rank: int | None = None
    hot_heat: int | None = None
    hot_platforms: set[str] = field(default_factory=set)


def _read_counts(sess: Session, ids: list[int], cutoff: datetime, out: dict[int, _Measures]) -> None:
    """Counts, span and recent mentions per event, in one aggregate query per chunk."""
    t = mention_time()
    one = lambda cond: func.sum(case((cond, 1), else_=0))
    for chunk in _chunks(ids):
        rows = sess.execute(
            select(Mention.event_id, func.count(Mention.id), one(Mention.negative.is_(True)),
                   one(Mention.crisis.is_(True)), func.count(Mention.repost_of_id), one(t > cutoff),
                   func.min(t), func.max(t))
            .where(Mention.event_id.in_(chunk)).group_by(Mention.event_id)
        )
        for event_id, n, neg, crisis, reposts, recent, first, last in rows:
            assert event_id is not None  # WHERE event_id IN (...)
            m = out[event_id]
            m.mentions, m.negative, m.crisis, m.reposts, m.recent = n, neg or 0, crisis or 0, reposts, recent or 0
            m.first, m.last = first, last


def _read_sources(sess: Session, ids: list[int], reach: Reach, out: dict[int, _Measures]) -> None:
    """Distinct sources and URL totals per event: the sources that found it, and the outlets whose pages carry it."""
    owner = reach.owner().label("owner")
    for chunk in _chunks(ids):
        if reach.outlets:
            for event_id, outlet in sess.execute(
                select(Mention.event_id, owner).join(MentionURL, MentionURL.mention_id == Mention.id)
                .where(Mention.event_id.in_(chunk)).distinct()  # not GROUP BY: PostgreSQL would not match its binds
            ):
                assert event_id is not None  # WHERE event_id IN (...)
                if outlet is not None:
                    out[event_id].sources.add(outlet)
        for event_id, source_id, platform in sess.execute(
            select(Mention.event_id, Mention.source_id, Mention.platform).where(Mention.event_id.in_(chunk)).distinct()
        ):
            assert event_id is not None  # WHERE event_id IN (...)
            out[event_id].sources.add(platform_source(source_id, platform))
        for event_id, source_id, found_by, urls in sess.execute(
            select(Mention.event_id, MentionURL.source_id, Mention.source_id, func.count(MentionURL.id))
            .join(MentionURL, MentionURL.mention_id == Mention.id)
            .where(Mention.event_id.in_(chunk)).group_by(Mention.event_id, MentionURL.source_id, Mention.source_id)
        ):
            assert event_id is not None  # WHERE event_id IN (...)
            if source_id != found_by:  # the mention's own source is counted above, per platform
                out[event_id].sources.add(source_id)
            out[event_id].urls += urls
        for event_id, with_urls in sess.execute(
            select(Mention.event_id, func.count(func.distinct(MentionURL.mention_id)))
            .join(MentionURL, MentionURL.mention_id == Mention.id)
            .where(Mention.event_id.in_(chunk)).group_by(Mention.event_id)
        ):
            assert event_id is not None  # WHERE event_id IN (...)
            out[event_id].mentions_with_urls = with_urls


def platform_source(source_id: str, platform: str | None) -> str:
    """How a mention's source is counted: one RSSHub source carrying Weibo and Douyin is two sources."""
    return f"{source_id}/{platform}" if platform else source_id


def _read_hot_lists(sess: Session, ids: list[int], out: dict[int, _Measures]) -> None:
    """Best rank, peak heat and platforms of the hot-list entries among each event's mentions."""
    for chunk in _chunks(ids):
        for event_id, platform, best, peak in sess.execute(
            select(Mention.event_id, HotListEntry.platform, func.min(HotListEntry.best_rank), func.max(HotListEntry.peak_heat))
            .join(HotListEntry, HotListEntry.mention_id == Mention.id)
            .where(Mention.event_id.in_(chunk)).group_by(Mention.event_id, HotListEntry.platform)
        ):
            assert event_id is not None  # WHERE event_id IN (...)
            m = out[event_id]
            m.hot_platforms.add(platform)
            m.hot_rank = best if m.hot_rank is None else min(m.hot_rank, best)
            m.hot_heat = peak if m.hot_heat is None else max(m.hot_heat, peak or 0)


def _headlines(sess: Session, ids: list[int], reach: Reach) -> dict[int, str]:
    """Per event, the title of its most-carried story (copies and URLs), then highest tier, then earliest."""
    root = func.coalesce(Mention.repost_of_id, Mention.id)
    carried: dict[int, dict[int, int]] = {}
    for chunk in _chunks(ids):
        for event_id, story, copies in sess.execute(
            select(Mention.event_id, root, func.count(Mention.id))
            .where(Mention.event_id.in_(chunk)).group_by(Mention.event_id, root)
        ):
            assert event_id is not None  # WHERE event_id IN (...)
            carried.setdefault(event_id, {})[story] = copies
        for event_id, story, urls, with_urls in sess.execute(
            select(Mention.event_id, root, func.count(MentionURL.id), func.count(func.distinct(MentionURL.mention_id)))
            .join(MentionURL, MentionURL.mention_id == Mention.id)
            .where(Mention.event_id.in_(chunk)).group_by(Mention.event_id, root)
        ):
            assert event_id is not None  # WHERE event_id IN (...)
            carried[event_id][story] += urls - with_urls  # extra URLs of exact copies
    finalists: dict[int, int] = {}  # story (first copy's mention id) → event
    for event_id, stories in carried.items():
        most = max(stories.values())
        finalists.update((story, event_id) for story, n in stories.items() if n == most)
    chosen: dict[int, tuple[int, int, str]] = {}
    for chunk in _chunks(sorted(finalists)):
        for m in sess.execute(
            select(Mention.id, Mention.source_id, Mention.title,
                   func.substr(Mention.text, 1, HEADLINE_CHARS).label("lede"))
            .where(Mention.id.in_(chunk))
        ):
            event_id = finalists[m.id]
            key = (reach.tier(m.source_id), m.id)
            if event_id not in chosen or key < chosen[event_id][:2]:
                chosen[event_id] = (*key, (m.title or m.lede or "").strip())
    return {e: c[2] for e, c in chosen.items()}


def refresh_events(
    sess: Session,
    states: Mapping[int, EventState],
    now: datetime,
    reach: Reach,
    baseline: float,
    *,
    replace_categories: bool = False,
) -> list[Event]:
    """Recompute the measures of the given events from the store and write them; returns the rows.
    Categories accumulate (a story keeps what it was) unless replace_categories: after a correction."""
    ids = sorted(states)
    if not ids:
        return []
    measures = {i: _Measures() for i in ids}
    cutoff = now - timedelta(hours=VELOCITY_HOURS)
    _read_counts(sess, ids, cutoff, measures)
    _read_sources(sess, ids, reach, measures)
    _read_hot_lists(sess, ids, measures)
    headlines = _headlines(sess, ids, reach)
    events = {e.id: e for chunk in _chunks(ids) for e in sess.scalars(select(Event).where(Event.id.in_(chunk)))}
    rows = []
    for event_id in ids:
        event, m, state = events.get(event_id), measures[event_id], states[event_id]
        if event is None:
            continue
        if not m.mentions:  # every mention moved out (a correction said "not about us")
            event.mention_count = event.negative_count = event.crisis_count = 0
            event.repost_count = event.source_count = 0
            event.velocity, event.risk_categories, event.updated_at = 0.0, [], now
            rows.append(event)
            continue
        event.mention_count, event.negative_count, event.crisis_count = m.mentions, m.negative, m.crisis
        event.repost_count = m.reposts + max(m.urls - m.mentions_with_urls, 0)
        event.source_count = len(m.sources)
        event.top_tier = min((reach.tier(s) for s in m.sources), default=UNKNOWN_TIER)
        event.first_seen, event.last_seen = m.first or event.first_seen, m.last or event.last_seen
        event.velocity = m.recent / VELOCITY_HOURS
        event.baseline = baseline
        kept = set() if replace_categories else set(event.risk_categories or ())
        event.risk_categories = sorted(state.categories | kept)
        event.keywords = state.top_keywords() or list(event.keywords or ())
        event.headline = headlines.get(event_id, event.headline)
        event.hot_rank, event.hot_heat, event.hot_platforms = m.hot_rank, m.hot_heat, sorted(m.hot_platforms)
        event.updated_at = now
        rows.append(event)
    return rows


def recount_events(sess: Session, ids: Sequence[int], now: datetime, reach: Reach) -> list[Event]:
    """Measures and categories of events recomputed from their mentions as they now stand (after a
    person corrected one): categories are those of their crisis mentions, nothing accumulated."""
    ids = sorted(set(ids))
    if not ids:
        return []
    states: dict[int, EventState] = {}
    for event in sess.scalars(select(Event).where(Event.id.in_(ids))):
        states[event.id] = EventState(first_seen=event.first_seen, last_seen=event.last_seen, event_id=event.id)
    for event_id, categories in sess.execute(
        select(Mention.event_id, Mention.risk_categories)
        .where(Mention.event_id.in_(ids), Mention.crisis.is_(True))
    ):
        states[event_id].categories.update(categories or ())
    return refresh_events(sess, states, now, reach, hospital_baseline(sess, now), replace_categories=True)

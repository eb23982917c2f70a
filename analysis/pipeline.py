"""The analysis stage: score, tag, fingerprint and group every mention not yet analysed.

Incremental: only mentions with ``analyzed_at`` unset are read, in id order and in batches;
each batch is one transaction (its mentions, the events it opens and the measures of every
event it touches), so a crash loses at most one batch's work and never half-writes one.
A backfill of 100,000 mentions is the same call: grouping uses bounded indexes (see
analysis/events.py), so the work grows with the number of mentions, not its square.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from yuqing.analysis.events import (
    EventGrouper,
    EventState,
    MentionFacts,
    Placement,
    Reach,
    hospital_baseline,
    mention_time,
    refresh_events,
)
from yuqing.analysis.judge import CrisisJudge, Judgement
from yuqing.analysis.keywords import KeywordExtractor
from yuqing.analysis.sentiment import SentimentModel
from yuqing.analysis.simhash import simhash_many, to_signed
from yuqing.analysis.text import make_tokenizer, normalize
from yuqing.analysis.topics import active_topics, hot_list_mentions, topic_tags
from yuqing.clock import Clock
from yuqing.config import AppConfig
from yuqing.models import Event, HotListEntry, Mention, MentionURL
from yuqing.store import Store

log = logging.getLogger(__name__)

SENTIMENT_CHARS = 500  # title + the first part of the body: where a post's tone is set
STEPS = ("read", "sentiment", "risk", "simhash", "keywords", "grouping", "write")

Progress = Callable[[int, int], None]


@dataclass
class AnalysisModels:
    """Everything analysis loads once and reuses: sentiment model, crisis judge, keyword extractor."""

    sentiment: SentimentModel
    judge: CrisisJudge
    keywords: KeywordExtractor


def load_models(
    cfg: AppConfig, sentiment_path: Path | None = None, lexicon_path: Path | None = None,
    risk_model_path: Path | None = None,
) -> AnalysisModels:
    """Load the shipped models with the hospital's names, departments, doctors and risk terms
    (and the hospital's retrained crisis model, when the caller passes its path)."""
    hospital = cfg.hospital
    words = [*hospital.names, *hospital.departments, *hospital.doctors]
    sentiment = SentimentModel.load(sentiment_path, extra_words=words)
    # one jieba dictionary in memory, not two: the sentiment model's tokenizer already knows our words
    tokenizer = getattr(getattr(sentiment, "featurizer", None), "tokenizer", None) or make_tokenizer(words)
    judge = CrisisJudge.load(risk_model_path, lexicon_path, extra_terms=hospital.risk_terms, own_names=hospital.names)
    return AnalysisModels(sentiment, judge, KeywordExtractor.for_hospital(hospital, tokenizer))


@dataclass
class AnalysisReport:
    """What one run did, for the CLI, the log and the alerts stage (which reads event_ids)."""

    analysed: int = 0
    negative: int = 0
    crisis: int = 0
    reposts: int = 0
    events_opened: int = 0
    events_updated: int = 0
    event_ids: list[int] = field(default_factory=list)
    batches: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STEPS, 0.0))

    def __str__(self) -> str:
        return (
            f"analysed {self.analysed} mention(s): {self.negative} negative, {self.crisis} crisis, "
            f"{self.reposts} repost(s); events: {self.events_opened} opened, {self.events_updated} updated"
        )


@dataclass(frozen=True)
class _Pending:
    """One mention's fields that analysis reads."""

    id: int
    title: str
    text: str
    kind: str
    when: datetime


@contextmanager
def _timed(report: AnalysisReport, step: str) -> Iterator[None]:
    """Add the block's wall time to the report's per-step seconds."""
    start = time.perf_counter()
    try:
        yield
    finally:
        report.seconds[step] += time.perf_counter() - start


def _pending_span(sess: Session) -> tuple[int, datetime | None, datetime | None]:
    """How many mentions wait for analysis and the span of their dates."""
    t = mention_time()
    count, first, last = sess.execute(
        select(func.count(Mention.id), func.min(t), func.max(t)).where(Mention.analyzed_at.is_(None))
    ).one()
    return count, first, last


def _recarried_events(sess: Session) -> set[int]:
    """Events whose analysed mentions the crawler has since seen at new URLs or higher on a hot list: their reach changed."""
    last_run = sess.scalar(select(func.max(Mention.analyzed_at)))
    if last_run is None:
        return set()
    rows = sess.scalars(
        select(Mention.event_id).join(MentionURL, MentionURL.mention_id == Mention.id)
        .where(MentionURL.seen_at >= last_run, Mention.analyzed_at.is_not(None), Mention.event_id.is_not(None))
        .distinct()
    )
    climbed = sess.scalars(  # a hot-list entry rose (rank or heat) since: the plan may now raise the incident
        select(Mention.event_id).join(HotListEntry, HotListEntry.mention_id == Mention.id)
        .where(HotListEntry.rose_at >= last_run, Mention.analyzed_at.is_not(None), Mention.event_id.is_not(None))
        .distinct()
    )
    return {event_id for event_id in [*rows, *climbed] if event_id is not None}  # none are: the WHERE leaves them out


def _read_batch(sess: Session, after_id: int, limit: int) -> list[_Pending]:
    """The next unanalysed mentions by id."""
    rows = sess.execute(
        select(Mention.id, Mention.title, Mention.text, Mention.kind, Mention.published_at, Mention.fetched_at)
        .where(Mention.analyzed_at.is_(None), Mention.id > after_id)
        .order_by(Mention.id).limit(limit)
    )
    return [_Pending(r.id, normalize(r.title or ""), normalize(r.text or ""), r.kind or "news",
                     r.published_at or r.fetched_at) for r in rows]


def _joined(title: str, text: str, limit: int) -> str:
    """Title and the first part of the body as one text."""
    body = text[:limit]
    return f"{title}。{body}" if title and body else title or body


class _Batch:
    """One batch's scores and tags, computed column by column so each model sees the whole batch."""

    def __init__(self, rows: Sequence[_Pending], models: AnalysisModels, report: AnalysisReport,
                 topics: Sequence[str] = (), hot: set[int] | None = None, names: Sequence[str] = ()) -> None:
        titles, texts = [r.title for r in rows], [r.text for r in rows]
        with _timed(report, "sentiment"):
            self.sentiment = models.sentiment.score_many([_joined(t, x, SENTIMENT_CHARS) for t, x in zip(titles, texts)],
                                                          workers=1)  # no fork inside the threaded daemon
        with _timed(report, "risk"):
            # a news item by its title, a post or review by its opening; the body is evidence
            self.risk: list[Judgement] = models.judge.judge_mentions(
                [(r.title, r.text, r.kind, s) for r, s in zip(rows, self.sentiment)])
        with _timed(report, "simhash"):
            self.simhash = simhash_many(titles, texts)
        with _timed(report, "keywords"):
            self.keywords = models.keywords.extract_many(titles, texts)
            for i, r in enumerate(rows):  # one story across platforms: analysis/topics.py
                tags = topic_tags(r.title, r.text, topics, names=names, on_hot_list=r.id in (hot or ()))
                if tags:
                    self.keywords[i] = [*tags, *(k for k in self.keywords[i] if k not in tags)]

    def facts(self, i: int, row: _Pending) -> MentionFacts:
        """What grouping needs about the i-th mention."""
        risk = self.risk[i]
        return MentionFacts(
            id=row.id, when=row.when, keywords=tuple(self.keywords[i]), simhash=self.simhash[i],
            risk_terms=risk.terms, categories=risk.categories if risk.crisis else (),
        )


def _place_all(
    rows: Sequence[_Pending], batch: _Batch, grouper: EventGrouper
) -> tuple[dict[int, Placement], list[EventState]]:
    """Place mentions in time order; returns per-mention placements and the events opened."""
    placements: dict[int, Placement] = {}
    opened: list[EventState] = []
    order = sorted(range(len(rows)), key=lambda i: (rows[i].when, rows[i].id))
    for i in order:
        placement = grouper.place(batch.facts(i, rows[i]))
        placements[rows[i].id] = placement
        if placement.opened:
            opened.append(placement.state)
    return placements, opened


def _open_events(sess: Session, opened: Sequence[EventState], now: datetime) -> list[int]:
    """Insert rows for newly opened events and give their states the new ids; returns the ids."""
    rows = [Event(first_seen=s.first_seen, last_seen=s.last_seen, updated_at=now) for s in opened]
    sess.add_all(rows)
    sess.flush()
    for state, row in zip(opened, rows):
        state.event_id = row.id
    return [row.id for row in rows]


def _write_mentions(
    sess: Session, rows: Sequence[_Pending], batch: _Batch, placements: dict[int, Placement], now: datetime
) -> None:
    """Every analysed field of the batch's mentions, in one bulk UPDATE by primary key."""
    values = []
    for i, row in enumerate(rows):
        risk, placement = batch.risk[i], placements[row.id]
        values.append({
            "id": row.id, "analyzed_at": now, "sentiment": batch.sentiment[i],
            "negative": risk.negative, "crisis": risk.crisis, "risk_score": risk.score,
            "risk_categories": list(risk.categories), "risk_terms": list(risk.terms),
            "keywords": list(batch.keywords[i]), "simhash": to_signed(batch.simhash[i]),
            "repost_of_id": placement.repost_of_id, "event_id": placement.state.event_id,
        })
    sess.execute(update(Mention), values)


def _count(report: AnalysisReport, rows: Sequence[_Pending], batch: _Batch, placements: dict[int, Placement]) -> None:
    """Add a batch's mentions to the report's counts."""
    report.analysed += len(rows)
    report.negative += sum(r.negative for r in batch.risk)
    report.crisis += sum(r.crisis for r in batch.risk)
    report.reposts += sum(p.repost_of_id is not None for p in placements.values())
    report.batches += 1


def _states_of(sess: Session, grouper: EventGrouper, ids: set[int]) -> dict[int, EventState]:
    """States of events touched only by new URLs: the grouper's if active, else bare (stored keywords stand)."""
    out = {s.event_id: s for s in grouper.states if s.event_id in ids}
    for event in sess.scalars(select(Event).where(Event.id.in_(sorted(ids - set(out))))):
        out[event.id] = EventState(first_seen=event.first_seen, last_seen=event.last_seen, event_id=event.id,
                                   categories=set(event.risk_categories or ()))
    return out


def analyze_new(
    store: Store,
    cfg: AppConfig,
    clock: Clock,
    *,
    batch_size: int = 1000,
    progress: Progress | None = None,
    models: AnalysisModels | None = None,
) -> AnalysisReport:
    """Analyse every mention not yet analysed, batch by batch; returns counts and the events touched."""
    models = models or load_models(cfg)
    report = AnalysisReport()
    window = timedelta(hours=cfg.settings.event_window_hours)
    reach = Reach.from_sources(cfg.sources.sources)
    now = clock.now()
    with _timed(report, "read"), store.session() as sess:
        total, first, last = _pending_span(sess)
        recarried = _recarried_events(sess)
        if not total and not recarried:
            return report
        grouper = EventGrouper.from_store(sess, window, models.keywords, first or now, last or now)
        baseline = hospital_baseline(sess, now)  # as of the run's start: 14 days barely move during one run
    opened_ids: set[int] = set()
    touched_ids: set[int] = set()
    after_id, done = 0, 0
    while True:
        now = clock.now()
        with store.session() as sess:
            with _timed(report, "read"):
                rows = _read_batch(sess, after_id, batch_size)
                topics = active_topics(sess, now - window)
                hot = hot_list_mentions(sess, [r.id for r in rows])
            if not rows and not recarried:
                break
            batch = _Batch(rows, models, report, topics, hot, cfg.hospital.names)
            with _timed(report, "grouping"):
                placements, opened = _place_all(rows, batch, grouper)
            with _timed(report, "write"):
                opened_now = _open_events(sess, opened, now)
                _write_mentions(sess, rows, batch, placements, now)
                states: dict[int, EventState] = {}
                for p in placements.values():
                    assert p.state.event_id is not None  # placed in a stored event or one _open_events just inserted
                    states[p.state.event_id] = p.state
                if recarried:
                    states.update(_states_of(sess, grouper, recarried - set(states)))
                refresh_events(sess, states, now, reach, baseline)
        recarried = set()
        opened_ids.update(opened_now)
        touched_ids.update(states)
        if not rows:
            break
        _count(report, rows, batch, placements)
        after_id, done = rows[-1].id, done + len(rows)
        if progress is not None:
            progress(done, max(total, done))
    report.events_opened = len(opened_ids)
    report.events_updated = len(touched_ids - opened_ids)
    report.event_ids = sorted(touched_ids)
    log.info("%s in %d batch(es), %.1f s", report, report.batches, sum(report.seconds.values()))
    return report

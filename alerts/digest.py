"""The weekly digest for the Monday meeting: rendered once per period, written to disk, then sent.

The DigestRun row (unique period_start) and the outbox messages commit together, so a
restart either finds the run and sends nothing, or builds it from scratch.
"""

from __future__ import annotations

import logging
import os
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yuqing.alerts.chart import CJK_FONT_STACK, DayBar, daily_chart, daily_chart_png
from yuqing.alerts.escalation import duration_text
from yuqing.alerts.hot_lists import appearances_in, time_on_list_text
from yuqing.alerts.messages import Rendered, enqueue_envelopes, local_time, render, route, safe_url, top_links
from yuqing.alerts.outbox import InlineImage
from yuqing.alerts.plan import level_label
from yuqing.clock import Clock
from yuqing.config import AppConfig
from yuqing.models import (
    Channel,
    DigestRun,
    Event,
    Incident,
    IncidentStatus,
    IncidentTransition,
    Mention,
    MessageStatus,
    OutboxMessage,
    Resolution,
    SourceState,
)
from yuqing.store import Store, audit, database_label

log = logging.getLogger(__name__)

POSITIVE_MIN = 0.6  # P(positive) from which a non-negative mention counts as positive
WEEKDAYS = "一二三四五六日"
CHART_CID = "daily-chart"  # the e-mail's <img src="cid:daily-chart"> and its PNG part
STATUS_NAMES: dict[str, str] = {IncidentStatus.OPEN: "待确认", IncidentStatus.ACKNOWLEDGED: "处理中",
                                IncidentStatus.RESOLVED: "已结案"}


@dataclass(frozen=True)
class Shares:
    """Counts and shares of one week's mentions."""

    total: int
    analysed: int
    positive: int
    negative: int

    def share(self, part: int) -> float | None:
        """Part of the analysed mentions, 0..1, or None when nothing was analysed."""
        return part / self.analysed if self.analysed else None


@dataclass
class DigestData:
    """Everything the digest shows, computed once; scraped strings still raw (templates escape)."""

    hospital: str
    period_label: str
    week: Shares
    previous: Shares
    days: list[DayBar]
    events: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    keywords: list[tuple[str, int]] = field(default_factory=list)
    coverage: list[dict[str, Any]] = field(default_factory=list)
    satisfaction: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    dead_total: int = 0
    failing_sources: list[dict[str, Any]] = field(default_factory=list)
    hot_lists: list[dict[str, Any]] = field(default_factory=list)
    generated: str = ""


def period_for(cfg: AppConfig, now: datetime, period_end: datetime | None) -> tuple[datetime, datetime]:
    """The week ending at period_end, or at the last local Monday 00:00 on or before now."""
    tz = ZoneInfo(cfg.settings.timezone)
    if period_end is None:
        local = now.astimezone(tz)
        monday = (local - timedelta(days=local.weekday())).date()
        period_end = datetime(monday.year, monday.month, monday.day, tzinfo=tz)
    local_end = period_end.astimezone(tz)
    local_start = (local_end.replace(tzinfo=None) - timedelta(days=7)).replace(tzinfo=tz)
    return local_start.astimezone(UTC), local_end.astimezone(UTC)


def _when():
    """The mention's time: publication where known, else when it was fetched."""
    return func.coalesce(Mention.published_at, Mention.fetched_at)


def _mentions(sess: Session, start: datetime, end: datetime) -> list[Any]:
    """The period's mentions about the hospital as light rows: id, source, time, sentiment, negative, event
    (negative is the crisis judgement's, the same the plan counts; "not about us" corrections are left out)."""
    when = _when()
    rows = sess.execute(select(Mention.id, Mention.source_id, Mention.published_at, Mention.fetched_at,
                               Mention.sentiment, Mention.negative, Mention.event_id, Mention.kind, Mention.rating,
                               Mention.keywords, Mention.title, Mention.url)
                        .where(when >= start, when < end, Mention.about_us.is_not(False)))
    return list(rows)


def _shares(rows: list[Any]) -> Shares:
    """Positive and negative counts among the analysed mentions."""
    analysed = [r for r in rows if r.negative is not None]
    negative = sum(1 for r in analysed if r.negative)
    positive = sum(1 for r in analysed if not r.negative and (r.sentiment or 0) >= POSITIVE_MIN)
    return Shares(total=len(rows), analysed=len(analysed), positive=positive, negative=negative)


def _days(cfg: AppConfig, rows: list[Any], end: datetime) -> list[DayBar]:
    """Mentions per local day: the seven days up to and including the one the period ends in."""
    tz = ZoneInfo(cfg.settings.timezone)
    first = (end - timedelta(microseconds=1)).astimezone(tz).date() - timedelta(days=6)
    totals: Counter[Any] = Counter()
    negatives: Counter[Any] = Counter()
    for r in rows:
        day = (r.published_at or r.fetched_at).astimezone(tz).date()
        totals[day] += 1
        negatives[day] += 1 if r.negative else 0
    days = [first + timedelta(days=i) for i in range(7)]
    return [DayBar(f"{d.month}/{d.day} {WEEKDAYS[d.weekday()]}", totals[d], negatives[d]) for d in days]


def _incident_level(sess: Session, event_id: int) -> str:
    """The plan level the event reached, in words."""
    incident = sess.scalar(select(Incident).where(Incident.event_id == event_id).order_by(Incident.id.desc()))
    return level_label(incident.level) if incident else "未达预案级别"


def _link(sess: Session, cfg: AppConfig, event: Event) -> str:
    """The event's most telling article, as an http(s) URL, or ''."""
    links = top_links(sess, cfg, event, limit=1)
    return safe_url(links[0]["url"]) if links else ""


def _top_events(sess: Session, cfg: AppConfig, rows: list[Any], limit: int = 5) -> list[dict[str, Any]]:
    """Events with the most negative mentions this week, linked to their most telling article."""
    counts = Counter(r.event_id for r in rows if r.negative and r.event_id is not None)
    out = []
    for event_id, negative in counts.most_common(limit):
        event = sess.get(Event, event_id)
        if event is None:
            continue
        out.append({"id": event.id, "headline": event.headline or "（无标题）", "negative_week": negative,
                    "mentions": event.mention_count, "negative": event.negative_count, "url": _link(sess, cfg, event),
                    "sources": event.source_count, "level": _incident_level(sess, event.id)})
    return out


def _keywords(rows: list[Any], limit: int = 12) -> list[tuple[str, int]]:
    """What the week was about: the keywords most mentions share (the hospital's own names never are one)."""
    counts: Counter[str] = Counter()
    for r in rows:
        counts.update(set(r.keywords or ()))
    return [(w, n) for w, n in counts.most_common(limit) if n >= 2]


def _coverage(sess: Session, cfg: AppConfig, rows: list[Any], limit: int = 8) -> list[dict[str, Any]]:
    """The publicity that landed: positive news and posts by outlet, each with one linked headline
    (the publicity office is judged on coverage)."""
    names = _source_names(sess, cfg)
    by_source: dict[str, list[Any]] = {}
    for r in rows:
        if r.kind != "review" and r.negative is False and (r.sentiment or 0) >= POSITIVE_MIN:
            by_source.setdefault(r.source_id, []).append(r)
    ranked = sorted(by_source.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:limit]
    return [{"outlet": names.get(sid, sid), "count": len(items), "headline": items[0].title or "（无标题）",
             "url": safe_url(items[0].url)} for sid, items in ranked]


def _satisfaction(sess: Session, cfg: AppConfig, end: datetime, weeks: int = 6) -> list[dict[str, Any]]:
    """Patient-review satisfaction by week, oldest first: reviews, the share not negative, mean stars."""
    tz = ZoneInfo(cfg.settings.timezone)
    first = end - timedelta(days=7 * weeks)
    when = _when()
    rows = sess.execute(select(when.label("at"), Mention.negative, Mention.rating).where(  # one read for all weeks
        when >= first, when < end, Mention.kind == "review", Mention.negative.is_not(None),
        Mention.about_us.is_not(False))).all()
    out = []
    for k in range(weeks, 0, -1):
        stop = end - timedelta(days=7 * (k - 1))
        start = stop - timedelta(days=7)
        reviews = [r for r in rows if start <= r.at < stop]
        ratings = [r.rating for r in reviews if r.rating is not None]
        out.append({"week": f"{start.astimezone(tz):%m/%d}–{(stop - timedelta(seconds=1)).astimezone(tz):%m/%d}",
                    "reviews": len(reviews),
                    "satisfied": _pct(sum(1 for r in reviews if not r.negative) / len(reviews)) if reviews else "—",
                    "stars": f"{statistics.mean(ratings):.1f}" if ratings else "—"})
    return out


def _source_names(sess: Session, cfg: AppConfig) -> dict[str, str]:
    names = {s.id: s.name for s in sess.scalars(select(SourceState))}
    names.update({s.id: s.name for s in cfg.sources.sources})
    return names


def _top_sources(sess: Session, cfg: AppConfig, rows: list[Any], limit: int = 8) -> list[dict[str, Any]]:
    """Sources that carried the most mentions this week, with their negative ones."""
    names = _source_names(sess, cfg)
    totals = Counter(r.source_id for r in rows)
    negatives = Counter(r.source_id for r in rows if r.negative)
    return [{"name": names.get(sid, sid), "mentions": n, "negative": negatives[sid]}
            for sid, n in totals.most_common(limit)]


def _first_ack(sess: Session, incident: Incident) -> datetime | None:
    """The first acknowledgement, from the history (a raise or reopen clears the incident's own field)."""
    return sess.scalar(select(func.min(IncidentTransition.at)).where(
        IncidentTransition.incident_id == incident.id, IncidentTransition.action == "acknowledged"))


def _status_name(incident: Incident) -> str:
    """The incident's state in words; a false alarm says so."""
    if incident.resolution == Resolution.FALSE_ALARM:
        return "误报已撤销"
    return STATUS_NAMES.get(incident.status, incident.status)


def _incidents(sess: Session, cfg: AppConfig, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Incidents open at any time in the period, with time-to-acknowledge and time-to-respond."""
    tz = cfg.settings.timezone
    query = select(Incident).where(Incident.opened_at < end).where(
        (Incident.resolved_at.is_(None)) | (Incident.resolved_at >= start)).order_by(Incident.opened_at)
    out = []
    for inc in sess.scalars(query):
        acked = _first_ack(sess, inc)
        out.append({
            "id": inc.id, "level": level_label(inc.level), "status": _status_name(inc),
            "headline": inc.event.headline or "（无标题）", "url": _link(sess, cfg, inc.event),
            "opened": local_time(inc.opened_at, tz),
            "tta": duration_text(acked - inc.opened_at) if acked else "未确认",
            "tta_minutes": (acked - inc.opened_at).total_seconds() / 60 if acked else None,
            "ttr": duration_text(inc.responded_at - inc.opened_at) if inc.responded_at else "未回应",
            "ttr_minutes": (inc.responded_at - inc.opened_at).total_seconds() / 60 if inc.responded_at else None,
            "escalations": inc.escalations, "acknowledged_by": inc.acknowledged_by or "",
        })
    return out


def _problems(sess: Session, cfg: AppConfig, data: DigestData) -> None:
    """Dead letters and failing sources: what IT must fix before the next crisis."""
    tz = cfg.settings.timezone
    data.dead_total = sess.scalar(select(func.count()).select_from(OutboxMessage)
                                  .where(OutboxMessage.status == MessageStatus.DEAD)) or 0
    for m in sess.scalars(select(OutboxMessage).where(OutboxMessage.status == MessageStatus.DEAD)
                          .order_by(OutboxMessage.id.desc()).limit(10)):
        data.dead_letters.append({"id": m.id, "channel": m.channel, "recipient": m.recipient,
                                  "subject": m.subject, "error": m.last_error or ""})
    for s in sess.scalars(select(SourceState).where(SourceState.failing_since.is_not(None)).order_by(SourceState.id)):
        data.failing_sources.append({"name": s.name, "since": local_time(s.failing_since, tz),
                                     "failures": s.consecutive_failures, "error": s.last_error or ""})


def _hot_lists(sess: Session, cfg: AppConfig, start: datetime, end: datetime, limit: int = 10) -> list[dict[str, Any]]:
    """The week's hot-list appearances: which list, best rank, peak heat, time on the list."""
    tz = cfg.settings.timezone
    return [{"list_name": a.list_name, "title": a.title, "url": safe_url(a.url), "best_rank": a.best_rank,
             "peak_heat": a.peak_heat, "on_list": time_on_list_text(a), "first_seen": local_time(a.first_seen_at, tz),
             "last_seen": local_time(a.last_seen_at, tz), "event_id": a.event_id}
            for a in appearances_in(sess, start, end)[:limit]]


def collect(sess: Session, cfg: AppConfig, start: datetime, end: datetime, now: datetime) -> DigestData:
    """Every figure of the digest for the period [start, end)."""
    tz = ZoneInfo(cfg.settings.timezone)
    rows = _mentions(sess, start, end)
    last = (end.astimezone(tz) - timedelta(seconds=1)).date()
    data = DigestData(hospital=cfg.hospital.name, week=_shares(rows),
                      previous=_shares(_mentions(sess, start - (end - start), start)),
                      period_label=f"{start.astimezone(tz):%Y-%m-%d} 至 {last:%Y-%m-%d}",
                      days=_days(cfg, rows, end), generated=local_time(now, cfg.settings.timezone))
    data.events = _top_events(sess, cfg, rows)
    data.sources = _top_sources(sess, cfg, rows)
    data.keywords = _keywords(rows)
    data.coverage = _coverage(sess, cfg, rows)
    data.satisfaction = _satisfaction(sess, cfg, end)
    data.incidents = _incidents(sess, cfg, start, end)
    data.hot_lists = _hot_lists(sess, cfg, start, end)
    _problems(sess, cfg, data)
    return data


def _pct(value: float | None) -> str:
    """A share as a percentage, or a dash when nothing was analysed."""
    return "—" if value is None else f"{100 * value:.1f}%"


def _change(now: int, before: int) -> str:
    """'+12 条（+30%）' against the previous week."""
    if before == 0:
        return f"+{now} 条（上周为 0）" if now else "持平（均为 0）"
    delta = now - before
    return f"{delta:+d} 条（{100 * delta / before:+.0f}%）"


def _points(now: float | None, before: float | None) -> str:
    """Change of a share in percentage points."""
    if now is None or before is None:
        return "—"
    return f"{100 * (now - before):+.1f} 个百分点"


def figures(data: DigestData) -> dict[str, Any]:
    """The headline numbers, as shown and as stored in DigestRun.summary."""
    w, p = data.week, data.previous
    tta = [i["tta_minutes"] for i in data.incidents if i["tta_minutes"] is not None]
    ttr = [i["ttr_minutes"] for i in data.incidents if i["ttr_minutes"] is not None]
    return {
        "total": w.total, "total_change": _change(w.total, p.total),
        "positive_share": _pct(w.share(w.positive)), "negative_share": _pct(w.share(w.negative)),
        "positive_change": _points(w.share(w.positive), p.share(p.positive)),
        "negative_change": _points(w.share(w.negative), p.share(p.negative)),
        "negative": w.negative, "positive": w.positive, "analysed": w.analysed,
        "incidents": len(data.incidents),
        "median_tta": duration_text(timedelta(minutes=statistics.median(tta))) if tta else "—",
        "median_ttr": duration_text(timedelta(minutes=statistics.median(ttr))) if ttr else "—",
        "dead_letters": data.dead_total, "failing_sources": len(data.failing_sources),
    }


def render_digest(data: DigestData) -> Rendered:
    """HTML page (self-contained, with the chart), plain text and the WeCom markdown summary."""
    subject = f"【舆情周报】{data.hospital} {data.period_label}"
    context = dict(d=data, f=figures(data), chart=Markup(daily_chart(data.days)), subject=subject, fonts=CJK_FONT_STACK)
    picture = Markup(f'<img src="cid:{CHART_CID}" width="640" height="240" alt="每日提及量与负面占比">')
    return Rendered(subject=subject, text=render("digest.txt.j2", **context),
                    html=render("digest.html.j2", **context), markdown=render("digest.md.j2", **context),
                    email_html=render("digest.html.j2", **{**context, "chart": picture}),
                    images=(InlineImage(CHART_CID, daily_chart_png(data.days)),))


def digest_dir(cfg: AppConfig) -> Path:
    """settings.digest_dir (relative to the config directory), else data_dir/digests/<database>: digests of
    two databases sharing a data directory (a test install beside the real one) never overwrite each other."""
    chosen = cfg.settings.digest_dir
    if chosen is None:
        return Path(cfg.settings.data_dir) / "digests" / database_label(cfg.database_url)
    return chosen if chosen.is_absolute() else (cfg.config_dir / chosen).resolve()


def _first_mention(sess: Session) -> datetime | None:
    """When the first mention about the hospital was found: no digest covers the weeks before it."""
    return sess.scalar(select(func.min(Mention.fetched_at)).where(Mention.about_us.is_not(False)))


def _write(path: Path, text: str) -> None:
    """Write atomically, so a crash never leaves half a digest; a temp name of its own per process, so two
    builders racing for the same week never move each other's file away."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _existing(store: Store, start: datetime) -> DigestRun | None:
    """The run already built for this period, if any: the guard against sending twice."""
    with store.session() as sess:
        return sess.scalar(select(DigestRun).where(DigestRun.period_start == start))


def _skipped(store: Store, cfg: AppConfig, start: datetime, end: datetime, now: datetime) -> DigestRun:
    """A week before anything was collected (a fresh install): recorded as done, sent to nobody."""
    tz = ZoneInfo(cfg.settings.timezone)
    why = f"nothing was collected before {end.astimezone(tz):%Y-%m-%d %H:%M}"
    try:
        with store.session() as sess:
            run = DigestRun(period_start=start, period_end=end, created_at=now, path="", summary={"skipped": why})
            sess.add(run)
    except IntegrityError:
        found = _existing(store, start)
        assert found is not None
        return found
    log.info("no digest for the week ending %s: %s", end.astimezone(tz), why)
    return run


def build_digest(store: Store, cfg: AppConfig, clock: Clock, period_end: datetime | None = None) -> DigestRun:
    """Render the week's digest once, write it, and enqueue it to channels.digest_to."""
    now = clock.now()
    start, end = period_for(cfg, now, period_end)
    found = _existing(store, start)
    if found is not None:
        log.info("digest for %s already built (%s); not sending again", start, found.path)
        return found
    with store.session() as sess:
        first = _first_mention(sess)
        if first is None or first >= end:
            return _skipped(store, cfg, start, end, now)
        data = collect(sess, cfg, start, end, now)
    rendered = render_digest(data)
    tz = ZoneInfo(cfg.settings.timezone)
    stem = f"yuqing-digest-{start.astimezone(tz):%Y%m%d}-{end.astimezone(tz):%Y%m%d}"
    html_path = digest_dir(cfg) / f"{stem}.html"
    _write(html_path, rendered.html)
    _write(html_path.with_suffix(".txt"), rendered.text)
    summary = {**figures(data), "period": data.period_label,
               "days": [asdict(d) for d in data.days], "top_events": [e["id"] for e in data.events]}
    try:
        with store.session() as sess:
            run = DigestRun(period_start=start, period_end=end, created_at=now, path=str(html_path), summary=summary)
            sess.add(run)
            sess.flush()
            envelopes = route(cfg, cfg.channels.digest_to, list(Channel), rendered)
            added = enqueue_envelopes(sess, now, f"digest:{start.isoformat()}", "digest", envelopes)
            audit(sess, now, "digest.built", f"digest:{run.id}", period=data.period_label, path=str(html_path),
                  messages=len(added))
    except IntegrityError:
        log.info("digest for %s was built by another process meanwhile", start)
        found = _existing(store, start)
        assert found is not None
        return found
    log.info("digest %s written to %s, %s message(s) queued", data.period_label, html_path, len(added))
    return run

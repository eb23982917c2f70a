"""What each console page shows, read from the store with bounded queries (paged, indexed), so a page
stays fast with hundreds of thousands of mentions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from yuqing.alerts.chart import DayBar, daily_chart
from yuqing.alerts.hot_lists import appearances_in
from yuqing.alerts.messages import event_facts
from yuqing.alerts.plan import level_label
from yuqing.config import AppConfig, level_rank
from yuqing.models import (
    ChecklistTick,
    DigestRun,
    Event,
    Incident,
    IncidentStatus,
    IncidentTransition,
    Mention,
    MessageStatus,
    OutboxMessage,
    SourceState,
)

PAGE_SIZE = 50
COUNT_CAP = 10_000


@dataclass
class MentionFilters:
    """The mentions page's filters, as typed in the form (empty means any)."""

    q: str = ""
    since: str = ""
    until: str = ""
    source: str = ""
    tier: str = ""
    crisis: str = ""
    negative: str = ""
    category: str = ""
    event: str = ""
    page: int = 1
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: Any) -> MentionFilters:
        """From the query string; anything unreadable is ignored and reported, never an error page."""
        f = cls()
        for key in ("q", "since", "until", "source", "tier", "crisis", "negative", "category", "event"):
            setattr(f, key, str(params.get(key, "")).strip()[:200])
        try:
            f.page = max(1, min(int(params.get("page", 1)), 100_000))
        except ValueError:
            f.page = 1
        return f

    def query_string(self, **override: Any) -> str:
        """This filter set as a query string, for paging links."""
        from urllib.parse import urlencode

        values = {k: getattr(self, k) for k in ("q", "since", "until", "source", "tier", "crisis", "negative",
                                                "category", "event", "page")}
        values.update(override)
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _local_date(value: str, tz: ZoneInfo, problems: list[str], name: str) -> datetime | None:
    """'2026-12-01' as the start of that day in the hospital's time zone."""
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=tz)
    except ValueError:
        problems.append(f"{name}：日期格式应为 2026-12-01")
        return None


def _flag(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


def mention_query(cfg: AppConfig, f: MentionFilters) -> Any:
    """The filtered select of mentions, newest first."""
    tz = ZoneInfo(cfg.settings.timezone)
    query = select(Mention)
    since = _local_date(f.since, tz, f.problems, "起始日期")
    until = _local_date(f.until, tz, f.problems, "截止日期")
    if since:
        query = query.where(Mention.fetched_at >= since)
    if until:
        query = query.where(Mention.fetched_at < until + timedelta(days=1))
    if f.source:
        query = query.where(Mention.source_id == f.source)
    if f.tier.isdigit():
        tiers = select(SourceState.id).where(SourceState.tier == int(f.tier))
        query = query.where(Mention.source_id.in_(tiers))
    for column, value in ((Mention.crisis, _flag(f.crisis)), (Mention.negative, _flag(f.negative))):
        if value is not None:
            query = query.where(column.is_(value))
    if f.category:
        query = query.where(cast(Mention.risk_categories, String).like(f'%"{f.category}"%'))
    if f.event.isdigit():
        query = query.where(Mention.event_id == int(f.event))
    if f.q:
        pattern = "%" + f.q.replace("\\", "").replace("%", "").replace("_", "") + "%"
        query = query.where(Mention.title.like(pattern) | Mention.match_context.like(pattern))
    return query


def mentions_page(sess: Session, cfg: AppConfig, f: MentionFilters) -> tuple[list[Mention], int]:
    """One page of mentions and how many match, counted up to COUNT_CAP (beyond it the page says "10000+"
    rather than scanning a whole year of mentions for an exact figure)."""
    query = mention_query(cfg, f)
    total = sess.scalar(select(func.count()).select_from(query.with_only_columns(Mention.id).limit(COUNT_CAP + 1)
                                                          .subquery())) or 0
    rows = list(sess.scalars(query.order_by(Mention.fetched_at.desc(), Mention.id.desc())
                             .offset((f.page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    return rows, total


def overview(sess: Session, cfg: AppConfig, now: datetime) -> dict[str, Any]:
    """Open incidents by level, the last 24 hours of mentions, failing sources, and the outbox."""
    open_incidents = list(sess.scalars(select(Incident).where(Incident.status != IncidentStatus.RESOLVED)))
    open_incidents.sort(key=lambda i: (-level_rank(i.level), i.id))
    day = now - timedelta(hours=24)
    counts = sess.execute(select(func.count(), func.count().filter(Mention.negative.is_(True)),
                                 func.count().filter(Mention.crisis.is_(True)))
                          .where(Mention.fetched_at >= day)).one()
    failing = list(sess.scalars(select(SourceState).where(SourceState.consecutive_failures > 0)
                                .order_by(SourceState.consecutive_failures.desc())))
    outbox = dict(sess.execute(select(OutboxMessage.status, func.count()).where(
        OutboxMessage.status.in_((MessageStatus.PENDING, MessageStatus.DEAD))).group_by(OutboxMessage.status)).all())
    by_level: dict[str, int] = {}
    for inc in open_incidents:
        by_level[inc.level] = by_level.get(inc.level, 0) + 1
    return {"incidents": open_incidents, "by_level": by_level, "mentions": counts[0], "negative": counts[1],
            "crisis": counts[2], "failing": failing, "pending": outbox.get(MessageStatus.PENDING, 0),
            "dead": outbox.get(MessageStatus.DEAD, 0), "hot_lists": appearances_in(sess, day)}


def events_page(sess: Session, page: int) -> tuple[list[Event], int]:
    """Events, most recently active first."""
    total = sess.scalar(select(func.count()).select_from(Event)) or 0
    rows = list(sess.scalars(select(Event).order_by(Event.last_seen.desc(), Event.id.desc())
                             .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    return rows, total


def hourly_chart(sess: Session, cfg: AppConfig, event: Event, hours: int = 48) -> str:
    """The event's mentions per hour (negative part in red) as SVG for the page."""
    tz = ZoneInfo(cfg.settings.timezone)
    end = event.last_seen.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = max(event.first_seen.replace(minute=0, second=0, microsecond=0), end - timedelta(hours=hours))
    slots = max(1, int((end - start).total_seconds() // 3600))
    totals = [0] * slots
    negatives = [0] * slots
    for fetched, published, negative in sess.execute(select(Mention.fetched_at, Mention.published_at, Mention.negative)
                                                     .where(Mention.event_id == event.id)):
        when = published or fetched
        i = int((when - start).total_seconds() // 3600)
        if 0 <= i < slots:
            totals[i] += 1
            negatives[i] += 1 if negative else 0
    step = max(1, slots // 12)
    bars = [DayBar(f"{(start + timedelta(hours=i)).astimezone(tz):%H时}" if i % step == 0 else "", totals[i],
                   negatives[i]) for i in range(slots)]
    return daily_chart(bars, width=720, height=220, label="每小时提及量与负面占比", inline_font=False)


def event_detail(sess: Session, cfg: AppConfig, event_id: int) -> dict[str, Any] | None:
    """An event with its facts, hourly chart, incident and its latest mentions."""
    event = sess.get(Event, event_id)
    if event is None:
        return None
    mentions = list(sess.scalars(select(Mention).where(Mention.event_id == event.id)
                                 .order_by(Mention.fetched_at.desc()).limit(200)))
    incident = sess.scalar(select(Incident).where(Incident.event_id == event.id).order_by(Incident.id.desc()))
    return {"event": event, "facts": event_facts(sess, cfg, event), "chart": hourly_chart(sess, cfg, event),
            "mentions": mentions, "incident": incident,
            "hot_lists": appearances_in(sess, event.first_seen - timedelta(days=1), event_id=event.id)}


def incidents_page(sess: Session, include_resolved: bool) -> list[Incident]:
    """Incidents, open ones first and highest level first."""
    query = select(Incident).order_by(Incident.id.desc()).limit(500)
    if not include_resolved:
        query = query.where(Incident.status != IncidentStatus.RESOLVED)
    rows = list(sess.scalars(query))
    rows.sort(key=lambda i: (i.status == IncidentStatus.RESOLVED, -level_rank(i.level), -i.id))
    return rows


def incident_detail(sess: Session, cfg: AppConfig, incident_id: int) -> dict[str, Any] | None:
    """Everything the incident page shows: level and why, deadlines, the event, timeline, messages,
    and the plan's checklist with who ticked what."""
    incident = sess.get(Incident, incident_id)
    if incident is None:
        return None
    rule = cfg.plan.rule(incident.level)
    ticks = {t.item: t for t in sess.scalars(select(ChecklistTick).where(ChecklistTick.incident_id == incident.id))}
    transitions = list(sess.scalars(select(IncidentTransition).where(IncidentTransition.incident_id == incident.id)
                                    .order_by(IncidentTransition.id)))
    messages = list(sess.scalars(select(OutboxMessage).where(OutboxMessage.incident_id == incident.id)
                                 .order_by(OutboxMessage.id)))
    return {
        "incident": incident, "rule": rule, "label": level_label(incident.level, rule),
        "facts": event_facts(sess, cfg, incident.event), "event": incident.event,
        "respond_deadline": incident.opened_at + timedelta(minutes=rule.respond_minutes),
        "checklist": [(item, ticks.get(item)) for item in rule.checklist],
        "transitions": transitions, "messages": messages,
    }


def outbox_page(sess: Session) -> dict[str, list[OutboxMessage]]:
    """Messages waiting and messages given up on (newest first, bounded)."""
    return {status: list(sess.scalars(select(OutboxMessage).where(OutboxMessage.status == status)
                                      .order_by(OutboxMessage.id.desc()).limit(200)))
            for status in (MessageStatus.PENDING, MessageStatus.DEAD)}


def digests(sess: Session) -> list[DigestRun]:
    """Every week's digest, newest first."""
    return list(sess.scalars(select(DigestRun).order_by(DigestRun.period_start.desc()).limit(520)))

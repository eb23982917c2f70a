"""The store's tables: sources, mentions, events, incidents, the outbox and the audit log.

Every datetime is stored as naive UTC and handed back aware (UTC), whatever the backend.
Schema changes go through Alembic migrations in yuqing/migrations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# the enums, re-exported beside the columns that hold them
from yuqing.vocabulary import Channel as Channel
from yuqing.vocabulary import IncidentStatus as IncidentStatus
from yuqing.vocabulary import MessageStatus as MessageStatus
from yuqing.vocabulary import Resolution as Resolution
from yuqing.vocabulary import Role as Role
from yuqing.vocabulary import Verdict as Verdict


class UTCDateTime(TypeDecorator):
    """Aware UTC in Python, naive UTC in the database, identical on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class SourceState(Base):
    """What the crawler remembers about a source between polls, and its health."""

    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text)
    tier: Mapped[int] = mapped_column(Integer, default=3)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    newest_key: Mapped[str | None] = mapped_column(String(500), doc="Newest review already stored.")
    last_fetch_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None]
    health_alerted_at: Mapped[datetime | None]
    pages_fetched: Mapped[int] = mapped_column(Integer, default=0)
    mentions_found: Mapped[int] = mapped_column(Integer, default=0)
    not_modified: Mapped[int] = mapped_column(Integer, default=0)


class Mention(Base):
    """A page, post or review that names the hospital: one story, however many URLs carry it."""

    __tablename__ = "mentions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text, doc="Canonical URL where it was first seen.")
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"))
    kind: Mapped[str] = mapped_column(String(20), default="news", doc="news, post or review.")
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str | None] = mapped_column(String(200))
    rating: Mapped[float | None] = mapped_column(Float)
    published_at: Mapped[datetime | None]
    fetched_at: Mapped[datetime]
    content_hash: Mapped[str] = mapped_column(String(64), doc="Hash of normalised text: exact copies.")
    matched_names: Mapped[list[Any]] = mapped_column(default=list, doc="Which hospital names matched.")
    match_context: Mapped[str] = mapped_column(Text, default="", doc="The words around the first match.")
    platform: Mapped[str | None] = mapped_column(String(20), doc="Social platform or hot list it came from (weibo, ...).")
    # analysis
    analyzed_at: Mapped[datetime | None]
    sentiment: Mapped[float | None] = mapped_column(Float, doc="P(positive).")
    negative: Mapped[bool | None] = mapped_column(Boolean)
    crisis: Mapped[bool | None] = mapped_column(Boolean)
    risk_score: Mapped[float | None] = mapped_column(Float, doc="P(crisis) from the crisis judgement.")
    about_us: Mapped[bool] = mapped_column(Boolean, default=True, doc="False once a person says it is another hospital.")
    corrected_by: Mapped[str | None] = mapped_column(String(200), doc="Who corrected the judgement; analysis keeps it.")
    risk_categories: Mapped[list[Any]] = mapped_column(default=list)
    risk_terms: Mapped[list[Any]] = mapped_column(default=list)
    keywords: Mapped[list[Any]] = mapped_column(default=list, doc="Top keywords: how it was grouped into its event.")
    simhash: Mapped[int | None] = mapped_column(BigInteger)
    repost_of_id: Mapped[int | None] = mapped_column(ForeignKey("mentions.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))

    urls: Mapped[list[MentionURL]] = relationship(back_populates="mention", cascade="all, delete-orphan")
    source: Mapped[SourceState] = relationship()  # also orders inserts after their source's row
    event: Mapped[Event | None] = relationship(back_populates="mentions", foreign_keys=[event_id])

    __table_args__ = (
        Index("ix_mentions_content_hash", "content_hash"),
        Index("ix_mentions_analyzed_at", "analyzed_at"),
        Index("ix_mentions_event_id", "event_id"),
        Index("ix_mentions_fetched_at", "fetched_at"),
        Index("ix_mentions_source_id", "source_id"),
    )

    @property
    def when(self) -> datetime:
        """Publication time where known, else when we fetched it."""
        return self.published_at or self.fetched_at


class MentionURL(Base):
    """Every URL and source a mention was seen at: reposts are the norm in Chinese media."""

    __tablename__ = "mention_urls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(64), doc="sha256 of the canonical URL, for the unique index.")
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"))
    seen_at: Mapped[datetime]

    mention: Mapped[Mention] = relationship(back_populates="urls")
    source: Mapped[SourceState] = relationship()

    __table_args__ = (
        UniqueConstraint("url_key", name="uq_mention_urls_url_key"),
        Index("ix_mention_urls_mention_id", "mention_id"),  # event measures join URLs to their mentions
    )


class Event(Base):
    """Mentions of one story grouped over a sliding window, with the measures the plan uses."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    headline: Mapped[str] = mapped_column(Text, default="")
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    mention_count: Mapped[int] = mapped_column(Integer, default=0)
    negative_count: Mapped[int] = mapped_column(Integer, default=0)
    crisis_count: Mapped[int] = mapped_column(Integer, default=0)
    source_count: Mapped[int] = mapped_column(Integer, default=0)
    repost_count: Mapped[int] = mapped_column(Integer, default=0)
    velocity: Mapped[float] = mapped_column(Float, default=0.0, doc="Mentions per hour, last hours.")
    baseline: Mapped[float] = mapped_column(Float, default=0.0, doc="The hospital's usual mentions per hour.")
    top_tier: Mapped[int] = mapped_column(Integer, default=4, doc="Highest (lowest number) tier reached.")
    risk_categories: Mapped[list[Any]] = mapped_column(default=list)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    hot_rank: Mapped[int | None] = mapped_column(Integer, doc="Best rank any of its mentions reached on a hot list.")
    hot_heat: Mapped[int | None] = mapped_column(BigInteger, doc="Highest heat a hot list gave it.")
    hot_platforms: Mapped[list[Any]] = mapped_column(default=list, doc="Hot lists it appeared on.")
    updated_at: Mapped[datetime]

    mentions: Mapped[list[Mention]] = relationship(back_populates="event", foreign_keys="Mention.event_id")
    incidents: Mapped[list[Incident]] = relationship(back_populates="event")

    __table_args__ = (Index("ix_events_last_seen", "last_seen"),)

    @property
    def velocity_ratio(self) -> float:
        """How many times the usual rate this event is running at."""
        return self.velocity / self.baseline if self.baseline > 0 else self.velocity


class HotListEntry(Base):
    """A mention's time on one hot list: rank and heat as of the last poll, best and peak, first and last seen.

    One row per (source, mention): a later poll updates it instead of storing the entry again."""

    __tablename__ = "hot_list_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"))
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"))
    platform: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(64), doc="sha256 of the entry's canonical URL: how a later poll finds it.")
    rank: Mapped[int] = mapped_column(Integer, doc="Rank at the last poll that saw it (1 = top).")
    best_rank: Mapped[int] = mapped_column(Integer)
    heat: Mapped[int | None] = mapped_column(BigInteger, doc="Heat at the last poll, where the list gives one.")
    peak_heat: Mapped[int | None] = mapped_column(BigInteger)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    polls: Mapped[int] = mapped_column(Integer, default=1, doc="Polls that found it on the list.")
    rose_at: Mapped[datetime] = mapped_column(doc="Last time best rank or peak heat grew: analysis re-measures its event.")

    mention: Mapped[Mention] = relationship()

    __table_args__ = (
        UniqueConstraint("source_id", "url_key", name="uq_hot_list_entries_source_url"),
        Index("ix_hot_list_entries_mention_id", "mention_id"),
        Index("ix_hot_list_entries_rose_at", "rose_at"),
    )


class Incident(Base):
    """The plan's response to an event: opened once, raised, acknowledged, resolved."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    level: Mapped[str] = mapped_column(String(4))
    status: Mapped[str] = mapped_column(String(20), default=IncidentStatus.OPEN, doc="An IncidentStatus.")
    reason: Mapped[str] = mapped_column(Text, default="", doc="Why this level, in words.")
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ack_deadline: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    responded_at: Mapped[datetime | None] = mapped_column(doc="First public response.")
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(String(20), doc="How it was closed: a Resolution.")
    response_url: Mapped[str | None] = mapped_column(Text, doc="Where the hospital's public statement is.")

    event: Mapped[Event] = relationship(back_populates="incidents")
    transitions: Mapped[list[IncidentTransition]] = relationship(
        back_populates="incident", order_by="IncidentTransition.id", cascade="all, delete-orphan"
    )

    __table_args__ = (Index("ix_incidents_status", "status"),)


class IncidentTransition(Base):
    """Every change of an incident, who made it and why: the record a review meeting reads."""

    __tablename__ = "incident_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(30), doc="opened, raised, acknowledged, escalated, responded, resolved.")
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    from_level: Mapped[str | None] = mapped_column(String(4))
    to_level: Mapped[str] = mapped_column(String(4))
    actor: Mapped[str] = mapped_column(String(200), default="system")
    note: Mapped[str] = mapped_column(Text, default="")

    incident: Mapped[Incident] = relationship(back_populates="transitions")


class OutboxMessage(Base):
    """A message to send: written with the change that caused it, sent later, retried, never lost."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200), doc="Same key, same message: enqueue is idempotent.")
    channel: Mapped[str] = mapped_column(String(20), doc="email or wecom.")
    recipient: Mapped[str] = mapped_column(String(200), doc="Recipient id, or robot id for WeCom.")
    address: Mapped[str] = mapped_column(String(300), doc="E-mail address or robot id.")
    purpose: Mapped[str] = mapped_column(String(20), doc="alert, escalation, digest, operator.")
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    inline_images: Mapped[list[Any]] = mapped_column(default=list, doc="Pictures the HTML shows by cid (base64).")
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    status: Mapped[str] = mapped_column(String(20), default=MessageStatus.PENDING, doc="A MessageStatus.")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("dedup_key", name="uq_outbox_dedup_key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )


class Correction(Base):
    """A person's correction of a mention's judgement: applied at once, and folded into the model
    by `yuqing retrain`. Kept with the text as it was judged, so retraining never needs the mention."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id"))
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(20), doc="A Verdict value.")
    category: Mapped[str | None] = mapped_column(String(40), doc="The crisis category it is (crisis and category verdicts).")
    text: Mapped[str] = mapped_column(Text, doc="The head of the mention as it was judged: what retraining learns from.")
    before: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="The judgement it replaced.")
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_corrections_mention_id", "mention_id"),)


class StageLock(Base):
    """Who holds a stage (analysis, escalation) until when: see yuqing/locks.py."""

    __tablename__ = "stage_locks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    acquired_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who did what, when: acknowledgements, config checks, sends, failures."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200), default="system")
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_audit_log_at", "at"),)


class DigestRun(Base):
    """One weekly digest: rendered once, then sent; a restart does not send it twice."""

    __tablename__ = "digests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    created_at: Mapped[datetime]
    path: Mapped[str] = mapped_column(Text)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (UniqueConstraint("period_start", name="uq_digests_period_start"),)


class ChecklistTick(Base):
    """One step of the plan's checklist (核实, 研判, 口径, 发布, 复盘) done for an incident: by whom, when."""

    __tablename__ = "incident_checklist"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    item: Mapped[str] = mapped_column(String(200))
    done_at: Mapped[datetime]
    done_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("incident_id", "item", name="uq_incident_checklist_item"),)


class User(Base):
    """A console account, tied to a recipient in channels.yaml: its password hash (Argon2id) and role."""

    __tablename__ = "users"

    recipient_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20), doc="A Role.")
    created_at: Mapped[datetime]
    password_set_at: Mapped[datetime]
    session_key: Mapped[str] = mapped_column(String(64), doc="Renewed with each password or disable: older sessions are void.")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginFailure(Base):
    """A failed console login, counted per name and per address to pause guessing."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    username: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("ix_login_failures_at", "at"),)

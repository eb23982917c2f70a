"""Shared fixtures and builders for the respond-stage tests: local SMTP, local WeCom, events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from yuqing.alerts.senders import build_senders
from yuqing.app.demo.servers import LocalSMTPServer, WeComEndpoint
from yuqing.clock import ManualClock
from yuqing.config import AppConfig
from yuqing.models import Event, Mention, OutboxMessage, SourceState
from yuqing.store import Store

from .conftest import SECRETS

WECOM_KEY = SECRETS["YUQING_WECOM_CRISIS_KEY"]
SOURCES = [("jiangcheng-daily", "江城日报 RSS", 3), ("province-health-news", "省卫生健康新闻", 2),
           ("news-search", "新闻搜索", 3)]


@pytest.fixture
def smtp() -> Iterator[LocalSMTPServer]:
    """A real SMTP server on 127.0.0.1 that wants the test login."""
    with LocalSMTPServer(logins={SECRETS["YUQING_SMTP_USER"]: SECRETS["YUQING_SMTP_PASSWORD"]}) as server:
        yield server


@pytest.fixture
def wecom(clock: ManualClock) -> Iterator[WeComEndpoint]:
    """A WeCom robot endpoint on 127.0.0.1 that knows the test key and shares the test clock."""
    with WeComEndpoint(valid_keys={WECOM_KEY}, clock=clock) as endpoint:
        yield endpoint


def local_config(config: AppConfig, smtp: LocalSMTPServer, wecom: WeComEndpoint) -> AppConfig:
    """The shipped config pointed at the local peers (no STARTTLS on 127.0.0.1)."""
    email = config.channels.email.model_copy(update={"host": smtp.host, "port": smtp.port, "starttls": False,
                                                     "timeout_seconds": 5})
    robots = {rid: robot.model_copy(update={"base_url": wecom.url})
              for rid, robot in config.channels.wecom_robots.items()}
    channels = config.channels.model_copy(update={"email": email, "wecom_robots": robots})
    return config.model_copy(update={"channels": channels})


@pytest.fixture
def cfg(config: AppConfig, smtp: LocalSMTPServer, wecom: WeComEndpoint) -> AppConfig:
    return local_config(config, smtp, wecom)


@pytest.fixture
def senders(cfg: AppConfig, clock: ManualClock) -> dict[str, Any]:
    return build_senders(cfg, clock)


def add_sources(store: Store) -> None:
    """The source rows mentions point at."""
    with store.session() as sess:
        for sid, name, tier in SOURCES:
            if sess.get(SourceState, sid) is None:
                sess.add(SourceState(id=sid, kind="rss", name=name, url=f"https://{sid}.example/", tier=tier))


def make_event(store: Store, clock: ManualClock, *, headline: str = "江城一院产妇死亡 家属质疑手术", mentions: int = 3,
               negative: int = 2, crisis: int = 1, risks: list[str] | None = None, velocity: float = 1.0,
               baseline: float = 1.0, top_tier: int = 3, titles: list[str] | None = None) -> int:
    """An event with real mention rows, as the analysis stage would leave it; returns its id."""
    add_sources(store)
    now = clock.now()
    with store.session() as sess:
        event = Event(headline=headline, first_seen=now - timedelta(hours=1), last_seen=now, mention_count=mentions,
                      negative_count=negative, crisis_count=crisis, source_count=min(mentions, 3), repost_count=1,
                      velocity=velocity, baseline=baseline, top_tier=top_tier, risk_categories=risks or [],
                      keywords=[], updated_at=now)
        sess.add(event)
        sess.flush()
        for i in range(mentions):
            sid = SOURCES[i % len(SOURCES)][0]
            title = (titles or [])[i] if titles and i < len(titles) else f"{headline}（{i + 1}）"
            sess.add(Mention(url=f"https://{sid}.example/a/{event.id}-{i}", source_id=sid, title=title,
                             text="正文", fetched_at=now - timedelta(minutes=i), content_hash=f"h{event.id}-{i}",
                             negative=i < negative, crisis=i < crisis, sentiment=0.1 if i < negative else 0.8,
                             risk_categories=risks or [], event_id=event.id, analyzed_at=now))
        return event.id


def update_event(store: Store, clock: ManualClock, event_id: int, **measures: Any) -> None:
    """Change an event's measures as a later analysis pass would."""
    with store.session() as sess:
        event = sess.get(Event, event_id)
        for name, value in measures.items():
            setattr(event, name, value)
        event.updated_at = event.last_seen = clock.now()


def add_mention(store: Store, clock: ManualClock, event_id: int, *, negative: bool = True, title: str = "新的帖子") -> None:
    """A freshly fetched mention of the event."""
    now = clock.now()
    with store.session() as sess:
        n = len(sess.scalars(select(Mention.id)).all())
        sess.add(Mention(url=f"https://news-search.example/new/{n}", source_id="news-search", title=title, text="",
                         fetched_at=now, content_hash=f"new{n}", negative=negative, crisis=negative,
                         sentiment=0.1 if negative else 0.9, event_id=event_id, analyzed_at=now))


def outbox(store: Store, **where: Any) -> list[OutboxMessage]:
    """Outbox rows, optionally filtered by column values."""
    with store.session() as sess:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        for name, value in where.items():
            query = query.where(getattr(OutboxMessage, name) == value)
        return list(sess.scalars(query))


def robot_contents(endpoint: WeComEndpoint) -> list[str]:
    """The content of every message the WeCom endpoint accepted."""
    return [p[p["msgtype"]]["content"] for p in endpoint.messages]


def payload(row: OutboxMessage) -> dict[str, Any]:
    return json.loads(row.body)


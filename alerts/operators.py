"""Operator notices: a source that keeps failing, a recovery, a message the outbox gave up on."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from yuqing.alerts.messages import Rendered, enqueue_envelopes, local_time, render, route
from yuqing.clock import Clock
from yuqing.config import AppConfig
from yuqing.models import Channel, OutboxMessage, SourceState
from yuqing.store import Store, audit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthNotice:
    """One operator notice about a source: failing or recovered."""

    source_id: str
    kind: str
    messages: int


def notify_operators(sess: Session, cfg: AppConfig, now: datetime, *, key: str, kind: str, subject: str,
                     facts: dict[str, str], advice: str = "") -> list[OutboxMessage]:
    """Tell Settings.operators on every channel they have, in the caller's transaction."""
    if not cfg.settings.operators:
        log.warning("no operators configured (settings.yaml operators); %s: %s", kind, subject)
        return []
    context = dict(subject=subject, title=subject, facts=facts, advice=advice)
    rendered = Rendered(subject=f"【yuqing 运维】{subject}", text=render("operator.txt.j2", **context),
                        html=render("operator.html.j2", **context), markdown=render("operator.md.j2", **context))
    envelopes = route(cfg, cfg.settings.operators, list(Channel), rendered)
    return enqueue_envelopes(sess, now, key, "operator", envelopes)


def _failing(sess: Session, cfg: AppConfig, state: SourceState, now: datetime) -> HealthNotice:
    """Tell operators once per failing spell: mentions may be missed while it lasts."""
    tz = cfg.settings.timezone
    assert state.failing_since is not None
    facts = {"来源": f"{state.name}（{state.id}）", "地址": state.url,
             "失败开始于": local_time(state.failing_since, tz),
             "已持续": f"{int((now - state.failing_since).total_seconds() // 60)} 分钟",
             "连续失败次数": str(state.consecutive_failures),
             "最近一次错误": state.last_error or "（未记录）",
             "最近一次成功": local_time(state.last_success_at, tz)}
    rows = notify_operators(sess, cfg, now, key=f"source:{state.id}:failing:{state.failing_since.isoformat()}",
                            kind="source_failing", subject=f"来源「{state.name}」持续抓取失败", facts=facts,
                            advice="此来源期间的舆情可能漏报。请检查网络、网站是否改版或封禁，恢复后会自动通知。")
    state.health_alerted_at = now
    audit(sess, now, "source.failing", f"source:{state.id}", since=state.failing_since.isoformat(),
          failures=state.consecutive_failures)
    log.warning("source %s failing since %s: operators told", state.id, state.failing_since)
    return HealthNotice(state.id, "failing", len(rows))


def _recovered(sess: Session, cfg: AppConfig, state: SourceState, now: datetime) -> HealthNotice:
    """Tell operators the source works again, so nobody keeps chasing it."""
    assert state.health_alerted_at is not None
    facts = {"来源": f"{state.name}（{state.id}）",
             "恢复时间": local_time(state.last_success_at or now, cfg.settings.timezone)}
    rows = notify_operators(sess, cfg, now, key=f"source:{state.id}:recovered:{state.health_alerted_at.isoformat()}",
                            kind="source_recovered", subject=f"来源「{state.name}」已恢复抓取", facts=facts)
    state.health_alerted_at = None
    audit(sess, now, "source.recovered", f"source:{state.id}")
    log.info("source %s recovered: operators told", state.id)
    return HealthNotice(state.id, "recovered", len(rows))


def check_source_health(store: Store, cfg: AppConfig, clock: Clock) -> list[HealthNotice]:
    """One notice per failing spell longer than source_failure_alert_minutes, and one on recovery."""
    now = clock.now()
    limit = timedelta(minutes=cfg.settings.crawl.source_failure_alert_minutes)
    enabled = {s.id for s in cfg.sources.sources if s.enabled}
    notices: list[HealthNotice] = []
    with store.session() as sess:
        for state in sess.scalars(select(SourceState).order_by(SourceState.id)):
            if state.id not in enabled:
                continue
            since, alerted = state.failing_since, state.health_alerted_at
            if since is not None and now - since >= limit and (alerted is None or alerted < since):
                notices.append(_failing(sess, cfg, state, now))
            elif since is None and alerted is not None:
                notices.append(_recovered(sess, cfg, state, now))
    return notices

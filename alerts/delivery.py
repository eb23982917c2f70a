"""What dispatch does when a channel is in trouble: a circuit breaker per channel, a fallback on the
level's next channel for alerts that have waited too long, and one coalesced operator notice per
failing channel (not one per dead alert).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from yuqing.alerts.channels import REGISTRY
from yuqing.alerts.channels.base import FALLBACK_MARK, ChannelPlugin, GroupChannelPlugin
from yuqing.alerts.outbox import RateLimited, SendError
from yuqing.channel_config import Delivery
from yuqing.config import AppConfig, Recipient
from yuqing.models import Incident, MessageStatus, OutboxMessage
from yuqing.store import Store, audit
from yuqing.vocabulary import Channel

log = logging.getLogger(__name__)

PARTNER = {Channel.EMAIL: Channel.WECOM, Channel.WECOM: Channel.EMAIL}  # when a level names only one channel
URGENT = ("alert", "escalation")
MAX_PAUSE = timedelta(hours=1)


@dataclass
class Breaker:
    """One channel's circuit breaker: after `failures` failures in a row it pauses the channel, then lets
    one message through; each failure after that doubles the pause (up to an hour)."""

    failures: int = 0
    paused_until: datetime | None = None
    pause: timedelta = timedelta(0)
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def allows(self, now: datetime) -> bool:
        return self.paused_until is None or now >= self.paused_until

    def record(self, failure: SendError | None, now: datetime, delivery: Delivery) -> bool:
        """Count one outcome; True when this failure (re)opened the breaker. Rate limits and permanent
        refusals of one address are not the channel's trouble and count for nothing."""
        with self.lock:
            if failure is None:
                self.failures, self.paused_until, self.pause = 0, None, timedelta(0)
                return False
            if failure.permanent or isinstance(failure, RateLimited):
                return False
            self.failures += 1
            self.last_error = str(failure)[:300]
            if self.failures < delivery.breaker_failures:
                return False
            first = timedelta(seconds=delivery.breaker_seconds)
            self.pause = first if self.pause == timedelta(0) else min(self.pause * 2, MAX_PAUSE)
            self.paused_until = now + self.pause
            return True


@dataclass
class Trouble:
    """What went wrong on one channel in one dispatch pass, for one coalesced operator notice."""

    paused_until: datetime | None = None
    dead: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)  # rate-limited for longer than rate_limited_report_minutes
    errors: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.paused_until or self.dead or self.held)


# --- fallbacks -----------------------------------------------------------------------------------


def fallback_channel(cfg: AppConfig, row: OutboxMessage, level_channels: list[str]) -> Channel | None:
    """The level's next configured channel after the failing one (e-mail ↔ WeCom when it names one)."""
    failing = Channel(row.channel)
    ordered = [Channel(c) for c in level_channels]
    candidates = ordered[ordered.index(failing) + 1:] + ordered[:ordered.index(failing)] if failing in ordered else []
    if failing in PARTNER:
        candidates.append(PARTNER[failing])
    for channel in candidates:
        if channel != failing and channel != Channel.SMS and REGISTRY[channel].configured(cfg):
            return channel
    return None


def _members(cfg: AppConfig, row: OutboxMessage, ids: list[str]) -> list[Recipient]:
    """The people a failing message was for: its person, or the level's people behind its robot or system."""
    people = cfg.channels.expand([i for i in ids if i in cfg.channels.known_ids()])
    plugin = REGISTRY[Channel(row.channel)]
    if not isinstance(plugin, GroupChannelPlugin):
        return [p for p in people if p.id == row.recipient]
    return [p for p in people if plugin.group_of(p) == row.address]


def text_of(body: str) -> str:
    """The words of a stored message, whatever the channel's payload (plain text, robot JSON, SMS)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    kind = data.get("msgtype")
    if isinstance(kind, str) and isinstance(data.get(kind), dict):
        part = data[kind]
        return str(part.get("content") or part.get("text") or "")
    if isinstance(data.get("text"), str):
        return data["text"]
    if isinstance(data.get("template_param"), dict):
        return "；".join(str(v) for v in data["template_param"].values())
    return body


def _fallback_one(sess: Session, cfg: AppConfig, row: OutboxMessage, now: datetime) -> int:
    """Queue one overdue alert on the level's next channel, marked 备用渠道; how many messages."""
    from yuqing.alerts.messages import enqueue_envelopes

    incident = sess.get(Incident, row.incident_id) if row.incident_id else None
    if incident is None:
        return 0
    rule = cfg.plan.rule(incident.level)
    target = fallback_channel(cfg, row, [str(c) for c in rule.channels])
    people = _members(cfg, row, [*rule.notify, *rule.escalate_to])
    if target is None or not people:
        return 0
    plugin: ChannelPlugin = REGISTRY[target]
    failed = REGISTRY[Channel(row.channel)].label
    minutes = int((now - row.created_at).total_seconds() // 60)
    text = f"{FALLBACK_MARK}{failed}已 {minutes} 分钟未能送达，改由{plugin.label}发送：\n{text_of(row.body)}"
    envelopes = plugin.plain(cfg, people, f"{FALLBACK_MARK}{row.subject}", text, row.dedup_key)
    # one fallback per person and alert, however many messages (robot markdown + @mention) failed
    key = f"incident:{row.incident_id}:{row.purpose}:{row.created_at:%Y%m%dT%H%M%S.%f}:fallback"
    added = enqueue_envelopes(sess, now, key, row.purpose, envelopes, incident_id=row.incident_id)
    if added:
        audit(sess, now, "outbox.fallback", f"outbox:{row.id}", channel=row.channel, to=target.value,
              messages=[m.id for m in added])
        log.warning("outbox message %s (%s) unsent for %s min: also sent by %s", row.id, row.channel, minutes, target)
    return len(added)


def queue_fallbacks(store: Store, cfg: AppConfig, now: datetime, paused: set[str]) -> int:
    """Alerts and escalations still unsent after fallback_minutes, that failed or whose channel is paused,
    also go by the level's next channel (once: the fallback's dedup key)."""
    cutoff = now - timedelta(minutes=cfg.channels.delivery.fallback_minutes)
    queued = 0
    with store.session() as sess:
        rows = sess.scalars(select(OutboxMessage).where(
            OutboxMessage.status == MessageStatus.PENDING, OutboxMessage.purpose.in_(URGENT),
            OutboxMessage.created_at <= cutoff, OutboxMessage.incident_id.is_not(None),
            ~OutboxMessage.dedup_key.contains(":fallback:"),
            or_(OutboxMessage.last_error.is_not(None), OutboxMessage.channel.in_(sorted(paused)))))
        for row in list(rows):
            queued += _fallback_one(sess, cfg, row, now)
    return queued


# --- one notice per failing channel ----------------------------------------------------------------


def notify_trouble(store: Store, cfg: AppConfig, now: datetime, troubles: dict[str, Trouble]) -> None:
    """One operator notice per channel in trouble, at most one an hour per channel (the dedup key)."""
    from yuqing.alerts.messages import local_time
    from yuqing.alerts.operators import notify_operators

    for channel, trouble in troubles.items():
        if not trouble:
            continue
        label = REGISTRY[Channel(channel)].label if channel in {c.value for c in Channel} else channel
        facts: dict[str, Any] = {"渠道": f"{label}（{channel}）"}
        if trouble.paused_until:
            facts["状态"] = f"连续失败，已暂停至 {local_time(trouble.paused_until, cfg.settings.timezone)}，其他渠道照常发送"
        if trouble.dead:
            facts["已放弃的消息"] = " ".join(str(i) for i in trouble.dead)
        if trouble.held:
            facts["被限流超时的消息"] = (f"{' '.join(str(i) for i in trouble.held)}（超过 "
                                         f"{cfg.channels.delivery.rate_limited_report_minutes} 分钟仍被限流，如 45009）")
        if trouble.errors:
            facts["最近错误"] = trouble.errors[-1]
        advice = ("修复后运行 yuqing outbox requeue " + " ".join(str(i) for i in trouble.dead) + " 重新发送。"
                  if trouble.dead else "消息仍在队列中，渠道恢复后自动发送；超时的预警已另经备用渠道发送。")
        with store.session() as sess:
            added = notify_operators(sess, cfg, now, key=f"channel:{channel}:trouble:{now:%Y%m%d%H}",
                                     kind="channel_trouble", subject=f"渠道「{label}」发送异常", facts=facts,
                                     advice=advice + "本小时内此渠道的后续问题不再单独通知，yuqing outbox list 可查看全部。")
            audit(sess, now, "channel.trouble", f"channel:{channel}", dead=trouble.dead, held=trouble.held,
                  paused_until=trouble.paused_until.isoformat() if trouble.paused_until else None,
                  notified=len(added))
        log.error("channel %s in trouble: %s", channel, facts)

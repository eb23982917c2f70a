"""Escalation: nobody acknowledged in time, so the plan's next tier is told, and again until someone does."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from yuqing.alerts.incidents import ack_command, transition
from yuqing.alerts.links import incident_links
from yuqing.alerts.messages import (
    Rendered,
    enqueue_envelopes,
    event_facts,
    incident_message,
    local_time,
    people_names,
    route,
)
from yuqing.alerts.plan import level_label
from yuqing.clock import Clock
from yuqing.config import AppConfig, LevelRule
from yuqing.models import Incident, IncidentStatus, IncidentTransition
from yuqing.store import Store, audit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Escalation:
    """One escalation round: which incident, which round, who was told."""

    incident_id: int
    level: str
    round: int
    recipients: list[str]
    messages: int


def duration_text(delta: timedelta) -> str:
    """'35 分钟' or '2 小时 5 分钟'."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} 小时 {minutes} 分钟" if hours else f"{minutes} 分钟"


def _told_at(sess: Session, incident: Incident) -> datetime:
    """When the level's recipients were last alerted (opened, raised or reopened)."""
    at = sess.scalar(select(IncidentTransition.at).where(
        IncidentTransition.incident_id == incident.id,
        IncidentTransition.action.in_(("opened", "raised", "reopened"))).order_by(IncidentTransition.id.desc()))
    return at or incident.opened_at


def _rendered(sess: Session, cfg: AppConfig, incident: Incident, rule: LevelRule, now: datetime,
              link_context: dict) -> Rendered:
    """The escalation message: who was told, when, that nobody acknowledged, and the event."""
    tz = cfg.settings.timezone
    label = level_label(rule.level, rule)
    ev = event_facts(sess, cfg, incident.event)
    subject = f"【舆情超时未确认 {label}】{cfg.hospital.name}：{ev['headline']}"
    context = dict(
        subject=subject, level=rule.level, level_label=label, hospital=cfg.hospital.name, plan_name=cfg.plan.name,
        incident_id=incident.id, reason=incident.reason, ev=ev, round=incident.escalations,
        told_at=local_time(_told_at(sess, incident), tz), told_names=people_names(cfg, rule.notify),
        deadline=local_time(incident.ack_deadline, tz),
        overdue=duration_text(now - (incident.ack_deadline or now)),
        escalate_names=people_names(cfg, rule.escalate_to),
        next_round=local_time(incident.next_escalation_at, tz) if incident.next_escalation_at else "",
        ack_command=ack_command(incident.id), **link_context,
    )
    return incident_message("escalation", **context)


def _next_round(incident: Incident, rule: LevelRule, now: datetime) -> datetime:
    """The round after this one, on the plan's rhythm; after downtime, counted from now (no burst)."""
    step = timedelta(minutes=rule.repeat_minutes)
    scheduled = (incident.next_escalation_at or now) + step
    return scheduled if scheduled > now else now + step


def _escalate(sess: Session, cfg: AppConfig, incident: Incident, rule: LevelRule, now: datetime) -> Escalation:
    """One round: count it, record it, tell escalate_to."""
    incident.escalations += 1
    incident.next_escalation_at = _next_round(incident, rule, now)
    incident.updated_at = now
    names = people_names(cfg, rule.escalate_to)
    transition(sess, incident, now, "escalated", from_status=incident.status, from_level=incident.level,
               note=f"第 {incident.escalations} 次超时通报：{names}")
    audit(sess, now, "incident.escalated", f"incident:{incident.id}", round=incident.escalations,
          level=incident.level, recipients=rule.escalate_to)
    link, link_context = incident_links(cfg, incident.id, now)
    envelopes = route(cfg, rule.escalate_to, rule.channels, _rendered(sess, cfg, incident, rule, now, link_context), link)
    added = enqueue_envelopes(sess, now, f"incident:{incident.id}:escalate:{incident.escalations}", "escalation",
                              envelopes, incident_id=incident.id)
    log.warning("incident %s not acknowledged by %s: escalation round %s to %s",
                incident.id, incident.ack_deadline, incident.escalations, ", ".join(rule.escalate_to))
    return Escalation(incident.id, incident.level, incident.escalations, list(rule.escalate_to), len(added))


def check_escalations(store: Store, cfg: AppConfig, clock: Clock) -> list[Escalation]:
    """Escalate every open incident whose acknowledgement deadline (or next round) has passed."""
    now = clock.now()
    rules: dict[str, LevelRule] = {rule.level: rule for rule in cfg.plan.levels}
    done: list[Escalation] = []
    with store.session() as sess:
        due = sess.scalars(select(Incident).where(
            Incident.status == IncidentStatus.OPEN, Incident.next_escalation_at.is_not(None),
            Incident.next_escalation_at <= now).order_by(Incident.id))
        for incident in list(due):
            rule = rules.get(incident.level)
            if rule is None or not rule.escalate_to:
                log.warning("incident %s: plan level %s has no escalate_to; nobody further to tell",
                            incident.id, incident.level)
                incident.next_escalation_at = None
                continue
            done.append(_escalate(sess, cfg, incident, rule, now))
    return done

"""Incidents: the plan's response to an event, opened once, raised, acknowledged, resolved.

Messages are enqueued in the same transaction as the change that causes them, under
dedup keys named after that change (open, raise n, reopen n), so re-running finds nothing
new to say and two racing runs cannot both send.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yuqing.alerts.links import incident_links
from yuqing.alerts.messages import (
    Rendered,
    enqueue_envelopes,
    event_facts,
    incident_message,
    local_time,
    people_names,
    route,
    safe_url,
)
from yuqing.alerts.plan import LevelDecision, assess, level_label
from yuqing.clock import Clock
from yuqing.config import AppConfig, LevelRule, level_rank
from yuqing.models import (
    ChecklistTick,
    Event,
    Incident,
    IncidentStatus,
    IncidentTransition,
    Mention,
    MessageStatus,
    OutboxMessage,
    Resolution,
)
from yuqing.store import Store, audit

log = logging.getLogger(__name__)


class IncidentError(ValueError):
    """An incident command that cannot be carried out; the message says why."""


class UnknownIncident(IncidentError, LookupError):
    """No incident has the id given."""


@dataclass(frozen=True)
class IncidentChange:
    """One thing sync_incidents did: opened, raised or reopened an incident."""

    incident_id: int
    event_id: int
    action: str
    from_level: str | None
    to_level: str
    reason: str
    messages: int

    def __str__(self) -> str:
        """One line for the CLI: 事件 3 已升级 Ⅳ级（一般） → Ⅲ级（较大）：why（4 条消息已排队）."""
        words = {"opened": "已开启", "raised": "已升级", "reopened": "已重开", "false_alarm": "已作为误报关闭（历史保留）"}
        levels = (f"{level_label(self.from_level)} → {level_label(self.to_level)}" if self.action == "raised"
                  and self.from_level else level_label(self.to_level))
        return (f"事件 {self.incident_id} {words.get(self.action, self.action)} {levels}：{self.reason}"
                f"（{self.messages} 条消息已排队）")


@dataclass(frozen=True)
class ActionResult:
    """The outcome of ack/respond/resolve: whether anything changed, and a sentence for the CLI."""

    incident_id: int
    changed: bool
    message: str

    def __str__(self) -> str:
        return self.message


def ack_command(incident_id: int) -> str:
    """Exactly what to type to acknowledge."""
    return f"yuqing incidents ack {incident_id} --by 您的姓名"


def transition(sess: Session, incident: Incident, at: datetime, action: str, *, from_status: str | None,
               from_level: str | None, actor: str = "system", note: str = "") -> IncidentTransition:
    """Record one change of an incident next to the change itself."""
    row = IncidentTransition(incident=incident, at=at, action=action, from_status=from_status,
                             to_status=incident.status, from_level=from_level, to_level=incident.level,
                             actor=actor, note=note)
    sess.add(row)
    return row


def _count(sess: Session, incident: Incident, action: str) -> int:
    """How many transitions of this kind the incident has had (pending ones included)."""
    sess.flush()
    return sess.scalar(select(func.count()).select_from(IncidentTransition).where(
        IncidentTransition.incident_id == incident.id, IncidentTransition.action == action)) or 0


def alert_rendered(sess: Session, cfg: AppConfig, incident: Incident, event: Event, rule: LevelRule,
                   kind: str, prev_level: str | None, link_context: dict | None = None) -> Rendered:
    """The alert for an opened, raised or reopened incident, in every channel's form."""
    tz = cfg.settings.timezone
    label = level_label(rule.level, rule)
    ev = event_facts(sess, cfg, event)
    prefix = {"opened": "舆情预警", "raised": "舆情升级", "reopened": "舆情复发"}[kind]
    subject = f"【{prefix} {label}】{cfg.hospital.name}：{ev['headline']}"
    context = dict(
        kind=kind, subject=subject, level=rule.level, level_label=label,
        prev_label=level_label(prev_level, cfg.plan.rule(prev_level)) if prev_level else "",
        hospital=cfg.hospital.name, plan_name=cfg.plan.name, incident_id=incident.id, reason=incident.reason,
        ev=ev, deadline=local_time(incident.ack_deadline, tz), ack_command=ack_command(incident.id),
        escalate_names=people_names(cfg, rule.escalate_to), resolved_at=local_time(incident.resolved_at, tz),
        **(link_context or {}),
    )
    return incident_message("alert", **context)


def _notify(sess: Session, cfg: AppConfig, now: datetime, incident: Incident, event: Event, rule: LevelRule,
            kind: str, key: str, prev_level: str | None) -> int:
    """Enqueue the alert to the level's recipients on its channels; returns how many messages."""
    from yuqing.alerts.rollup import QUIET, quiet_until

    held_until = quiet_until(cfg, rule.level, now)
    if held_until is not None:  # quiet hours: the ack clock starts when people are told, in the morning
        incident.ack_deadline = incident.next_escalation_at = held_until + timedelta(minutes=rule.ack_minutes)
    link, link_context = incident_links(cfg, incident.id, now)
    rendered = alert_rendered(sess, cfg, incident, event, rule, kind, prev_level, link_context)
    envelopes = route(cfg, rule.notify, rule.channels, rendered, link)
    if not envelopes:
        log.error("incident %s: nobody on %s can be reached on %s", incident.id, rule.notify, rule.channels)
        audit(sess, now, "incident.unreachable", f"incident:{incident.id}", recipients=rule.notify)
    added = enqueue_envelopes(sess, now, key, QUIET if held_until else "alert", envelopes, incident_id=incident.id)
    if held_until is not None:
        for row in added:  # released as one roll-up after quiet hours; sent as they are if that never runs
            row.next_attempt_at = held_until + timedelta(minutes=10)
        audit(sess, now, "incident.quiet_held", f"incident:{incident.id}", until=held_until.isoformat())
    return len(added)


def _start_clock(incident: Incident, rule: LevelRule, now: datetime) -> None:
    """Open for acknowledgement from now on: a fresh deadline, escalation due at it."""
    incident.status = IncidentStatus.OPEN
    incident.ack_deadline = now + timedelta(minutes=rule.ack_minutes)
    incident.next_escalation_at = incident.ack_deadline
    incident.acknowledged_at = incident.acknowledged_by = None
    incident.updated_at = now


def _open(sess: Session, cfg: AppConfig, now: datetime, event: Event, decision: LevelDecision,
          storm: list[Incident] | None = None) -> IncidentChange:
    """A first incident for an event; with `storm`, its alert waits there for the caller's roll-up decision."""
    incident = Incident(event_id=event.id, level=decision.level, reason=decision.reason, opened_at=now,
                        updated_at=now, escalations=0)
    _start_clock(incident, decision.rule, now)
    sess.add(incident)
    sess.flush()
    transition(sess, incident, now, "opened", from_status=None, from_level=None, note=decision.reason)
    audit(sess, now, "incident.opened", f"incident:{incident.id}", event_id=event.id, level=decision.level,
          reason=decision.reason)
    if storm is not None:
        storm.append(incident)
        sent = 0
    else:
        sent = _notify(sess, cfg, now, incident, event, decision.rule, "opened", f"incident:{incident.id}:open", None)
    log.info("incident %s opened at level %s for event %s: %s", incident.id, decision.level, event.id,
             decision.reason)
    return IncidentChange(incident.id, event.id, "opened", None, decision.level, decision.reason, sent)


def _raise(sess: Session, cfg: AppConfig, now: datetime, incident: Incident, event: Event,
           decision: LevelDecision, action: str) -> IncidentChange:
    """A higher level, or a flare after resolution: back to open and tell the level's people."""
    from_status, from_level = incident.status, incident.level
    incident.level = decision.level
    incident.reason = decision.reason
    if action == "reopened":
        incident.resolved_at = incident.resolved_by = incident.resolution = None
    _start_clock(incident, decision.rule, now)
    transition(sess, incident, now, action, from_status=from_status, from_level=from_level, note=decision.reason)
    audit(sess, now, f"incident.{action}", f"incident:{incident.id}", from_level=from_level,
          to_level=incident.level, reason=decision.reason)
    n = _count(sess, incident, action)
    kind_key = "raise" if action == "raised" else "reopen"
    rule = cfg.plan.rule(incident.level)
    sent = _notify(sess, cfg, now, incident, event, rule, action, f"incident:{incident.id}:{kind_key}:{n}",
                   from_level if action == "raised" else None)
    log.info("incident %s %s: %s → %s (%s)", incident.id, action, from_level, incident.level, decision.reason)
    return IncidentChange(incident.id, event.id, action, from_level, incident.level, decision.reason, sent)


def _flared(sess: Session, event: Event, since: datetime) -> bool:
    """New negative mentions of the event found after the given time."""
    return (sess.scalar(select(func.count()).select_from(Mention).where(
        Mention.event_id == event.id, Mention.negative.is_(True), Mention.fetched_at > since)) or 0) > 0


def _too_old(cfg: AppConfig, event: Event, now: datetime) -> bool:
    """An event whose newest mention is older than max_alert_age_hours (a backfill, a first run over a
    source's history) pages nobody; it still counts in events and the digest."""
    hours = cfg.channels.delivery.max_alert_age_hours
    last = event.last_seen
    if hours is None or last is None:
        return False
    last = last.replace(tzinfo=now.tzinfo) if last.tzinfo is None and now.tzinfo is not None else last
    return now - last > timedelta(hours=hours)


def _sync_event(sess: Session, cfg: AppConfig, now: datetime, event: Event,
                storm: list[Incident] | None = None) -> IncidentChange | None:
    """Bring one event's incident in line with the plan; None when nothing changes."""
    decision = assess(event, cfg.plan)
    if decision is None or _too_old(cfg, event, now):
        return None
    incident = sess.scalar(select(Incident).where(Incident.event_id == event.id)
                           .order_by(Incident.id.desc()).limit(1))
    if incident is None:
        return _open(sess, cfg, now, event, decision, storm)
    if incident.status == IncidentStatus.RESOLVED:
        if incident.resolved_at is not None and _flared(sess, event, incident.resolved_at):
            return _raise(sess, cfg, now, incident, event, decision, "reopened")
        return None
    if level_rank(decision.level) > level_rank(incident.level):
        return _raise(sess, cfg, now, incident, event, decision, "raised")
    return None


def sync_incidents(store: Store, cfg: AppConfig, clock: Clock) -> list[IncidentChange]:
    """Open, raise or reopen incidents for events updated within the event window."""
    now = clock.now()
    since = now - timedelta(hours=cfg.settings.event_window_hours)
    changes: list[IncidentChange] = []
    with store.session() as sess:
        events = list(sess.scalars(select(Event).where(Event.updated_at >= since).order_by(Event.id)))
        storm: list[Incident] = []
        for event in events:
            change = _sync_event(sess, cfg, now, event, storm)
            if change is not None:
                changes.append(change)
        sent = _announce_openings(sess, cfg, now, storm)
        changes = [replace(c, messages=sent.get(c.incident_id, c.messages)) for c in changes]
    return changes


def _announce_openings(sess: Session, cfg: AppConfig, now: datetime, opened: list[Incident]) -> dict[int, int]:
    """Alerts for the incidents opened in one pass: one each, or from rollup_threshold on (an alert storm)
    one roll-up per recipient and channel, highest level first. Returns messages queued per incident."""
    from yuqing.alerts.rollup import enqueue_rollup, quiet_until

    held = [inc for inc in opened if quiet_until(cfg, inc.level, now) is not None]  # they wait for the morning
    loud = [inc for inc in opened if inc not in held]
    one_each = held if len(loud) >= cfg.channels.delivery.rollup_threshold else opened
    sent = {inc.id: _notify(sess, cfg, now, inc, inc.event, cfg.plan.rule(inc.level), "opened",
                            f"incident:{inc.id}:open", None) for inc in one_each}
    if one_each is opened:
        return sent
    opened = loud
    title = "舆情预警汇总"
    intro = f"本轮分析同时开启 {len(opened)} 起舆情事件，合并为一条通知，按级别从高到低排列。"
    ids = sorted(inc.id for inc in opened)
    added = enqueue_rollup(sess, cfg, now, opened, f"rollup:{ids[0]}-{ids[-1]}", title, intro)
    log.warning("alert storm: %d incidents opened at once, %d roll-up message(s) instead of one alert each",
                len(opened), added)
    return sent | {inc.id: 0 for inc in opened} | {ids[0]: added}


# --- people acting on an incident ----------------------------------------------------------------


def _get(sess: Session, incident_id: int) -> Incident:
    """The incident, or an error that tells the duty officer how to find the right id."""
    incident = sess.get(Incident, incident_id)
    if incident is None:
        raise UnknownIncident(f"没有编号为 {incident_id} 的舆情事件，请用 yuqing incidents list 查看编号")
    return incident


def _who(by: str) -> str:
    """The name recorded for an action; the review meeting needs to know who did it."""
    name = " ".join((by or "").split())
    if not name:
        raise IncidentError("请用 --by 写明是谁在处理（姓名）")
    return name[:200]


def _announce_ack(sess: Session, cfg: AppConfig, now: datetime, incident: Incident, by: str, actor_id: str | None,
                  note: str) -> int:
    """Tell the level's other recipients (and those escalated to) that someone has it in hand."""
    rule = cfg.plan.rule(incident.level)
    label = level_label(rule.level, rule)
    ids = list(rule.notify) + (list(rule.escalate_to) if incident.escalations else [])
    link, link_context = incident_links(cfg, incident.id, now)
    context = dict(subject=f"{by} 已确认 {label}事件 {incident.id}", level_label=label, hospital=cfg.hospital.name,
                   plan_name=cfg.plan.name, incident_id=incident.id, by=by, at=local_time(now, cfg.settings.timezone),
                   note=note, ev=event_facts(sess, cfg, incident.event), **link_context)
    envelopes = route(cfg, ids, rule.channels, incident_message("ack_notice", **context), link,
                      exclude=[actor_id] if actor_id else [])
    n = _count(sess, incident, "acknowledged")
    return len(enqueue_envelopes(sess, now, f"incident:{incident.id}:ack:{n}", "ack", envelopes,
                                 incident_id=incident.id))


def _acknowledge(sess: Session, incident: Incident, by: str, now: datetime, note: str,
                 cfg: AppConfig | None = None, actor_id: str | None = None) -> None:
    """Mark acknowledged and stop the escalation clock, with its transition and audit entry; with the
    config, the level's other recipients are told through the outbox."""
    from_status = incident.status
    incident.status, incident.acknowledged_at, incident.acknowledged_by = IncidentStatus.ACKNOWLEDGED, now, by
    incident.next_escalation_at, incident.updated_at = None, now
    transition(sess, incident, now, "acknowledged", from_status=from_status, from_level=incident.level,
               actor=by, note=note)
    audit(sess, now, "incident.acknowledged", f"incident:{incident.id}", actor=by, level=incident.level, note=note)
    if cfg is not None:
        _announce_ack(sess, cfg, now, incident, by, actor_id, note)


def _tz(cfg: AppConfig | None, tz: str) -> str:
    return cfg.settings.timezone if cfg is not None else tz


def acknowledge(store: Store, incident_id: int, by: str, clock: Clock, note: str = "", *,
                tz: str = "UTC", cfg: AppConfig | None = None, actor_id: str | None = None) -> ActionResult:
    """Someone has the incident in hand: stop the escalation clock (and tell the others, given the config)."""
    by, now, tz = _who(by), clock.now(), _tz(cfg, tz)
    with store.session() as sess:
        incident = _get(sess, incident_id)
        if incident.status == IncidentStatus.ACKNOWLEDGED:
            return ActionResult(incident_id, False, f"事件 {incident_id} 已由 {incident.acknowledged_by} "
                                f"于 {local_time(incident.acknowledged_at, tz)} 确认，无需重复确认")
        if incident.status == IncidentStatus.RESOLVED:
            return ActionResult(incident_id, False, f"事件 {incident_id} 已由 {incident.resolved_by} 结案，无需确认")
        _acknowledge(sess, incident, by, now, note, cfg, actor_id)
    log.info("incident %s acknowledged by %s", incident_id, by)
    return ActionResult(incident_id, True, f"已确认事件 {incident_id}（{level_label(incident.level)}），确认人：{by}")


def mark_responded(store: Store, incident_id: int, by: str, clock: Clock, note: str = "", *,
                   tz: str = "UTC", cfg: AppConfig | None = None, actor_id: str | None = None,
                   url: str = "") -> ActionResult:
    """The hospital has responded publicly (time-to-respond), optionally where; this also acknowledges an
    open incident."""
    by, now, tz = _who(by), clock.now(), _tz(cfg, tz)
    link = safe_url(url)
    if url.strip() and not link:
        raise IncidentError("回应链接须以 http:// 或 https:// 开头")
    with store.session() as sess:
        incident = _get(sess, incident_id)
        if incident.responded_at is not None:
            return ActionResult(incident_id, False, f"事件 {incident_id} 已于 "
                                f"{local_time(incident.responded_at, tz)} 记录过公开回应")
        if incident.status == IncidentStatus.OPEN:
            _acknowledge(sess, incident, by, now, "公开回应时一并确认", cfg, actor_id)
        incident.responded_at, incident.updated_at = now, now
        incident.response_url = link or None
        transition(sess, incident, now, "responded", from_status=incident.status, from_level=incident.level,
                   actor=by, note=" ".join(x for x in (note, link) if x))
        audit(sess, now, "incident.responded", f"incident:{incident.id}", actor=by, note=note, url=link)
    log.info("incident %s: public response recorded by %s", incident_id, by)
    return ActionResult(incident_id, True, f"已记录事件 {incident_id} 的公开回应，记录人：{by}")


def resolve(store: Store, incident_id: int, by: str, clock: Clock, note: str = "", *,
            tz: str = "UTC", cfg: AppConfig | None = None, actor_id: str | None = None) -> ActionResult:
    """The incident is over; it reopens by itself if the event flares again."""
    by, now, tz = _who(by), clock.now(), _tz(cfg, tz)
    with store.session() as sess:
        incident = _get(sess, incident_id)
        if incident.status == IncidentStatus.RESOLVED:
            return ActionResult(incident_id, False, f"事件 {incident_id} 已由 {incident.resolved_by} 于 "
                                f"{local_time(incident.resolved_at, tz)} 结案，无需重复结案")
        from_status = incident.status
        incident.status, incident.resolved_at, incident.resolved_by = IncidentStatus.RESOLVED, now, by
        incident.resolution, incident.next_escalation_at, incident.updated_at = Resolution.RESOLVED, None, now
        transition(sess, incident, now, "resolved", from_status=from_status, from_level=incident.level,
                   actor=by, note=note)
        audit(sess, now, "incident.resolved", f"incident:{incident.id}", actor=by, note=note)
    log.info("incident %s resolved by %s", incident_id, by)
    return ActionResult(incident_id, True, f"已结案事件 {incident_id}，结案人：{by}")


def add_note(store: Store, incident_id: int, by: str, clock: Clock, note: str) -> ActionResult:
    """A line in the incident's record: what was found, who was called, what was decided."""
    by, now = _who(by), clock.now()
    text = note.strip()[:2000]
    if not text:
        raise IncidentError("备注不能为空")
    with store.session() as sess:
        incident = _get(sess, incident_id)
        transition(sess, incident, now, "note", from_status=incident.status, from_level=incident.level,
                   actor=by, note=text)
        incident.updated_at = now
        audit(sess, now, "incident.note", f"incident:{incident.id}", actor=by, note=text)
    return ActionResult(incident_id, True, f"已为事件 {incident_id} 添加备注，记录人：{by}")


def checklist(cfg: AppConfig, incident: Incident) -> list[str]:
    """The plan's response steps for the incident's level."""
    return list(cfg.plan.rule(incident.level).checklist)


def tick(store: Store, cfg: AppConfig, incident_id: int, item: str, by: str, clock: Clock) -> ActionResult:
    """One checklist step done, with who and when; ticking it twice keeps the first."""
    by, now = _who(by), clock.now()
    with store.session() as sess:
        incident = _get(sess, incident_id)
        if item not in checklist(cfg, incident):
            raise IncidentError(f"预案中 {level_label(incident.level)} 没有这一步：{item}")
        done = sess.scalar(select(ChecklistTick).where(ChecklistTick.incident_id == incident_id,
                                                       ChecklistTick.item == item))
        if done is not None:
            return ActionResult(incident_id, False, f"“{item}”已由 {done.done_by} 完成")
        sess.add(ChecklistTick(incident_id=incident_id, item=item, done_at=now, done_by=by))
        transition(sess, incident, now, "checklist", from_status=incident.status, from_level=incident.level,
                   actor=by, note=item)
        incident.updated_at = now
        audit(sess, now, "incident.checklist", f"incident:{incident.id}", actor=by, item=item)
    return ActionResult(incident_id, True, f"事件 {incident_id}：“{item}”已完成，记录人：{by}")


def declare_false_alarm(store: Store, cfg: AppConfig, incident_id: int, by: str, clock: Clock,
                        note: str = "") -> ActionResult:
    """A person judges the whole incident a false alarm: closed with its history kept, unsent alerts
    cancelled, and those already alerted told."""
    by, now = _who(by), clock.now()
    with store.session() as sess:
        incident = _get(sess, incident_id)
        if incident.status == IncidentStatus.RESOLVED:
            return ActionResult(incident_id, False, f"事件 {incident_id} 已结案，无需再标为误报")
        _false_alarm(sess, cfg, now, incident, by, note or "人工判定为误报")
    return ActionResult(incident_id, True, f"事件 {incident_id} 已作为误报关闭（历史保留），判定人：{by}")


# --- after a person corrects a mention's judgement ------------------------------------------------


def _cancel_pending(sess: Session, incident: Incident, why: str) -> int:
    """Unsent alerts and escalations of a closed false alarm are cancelled, not delivered late."""
    rows = sess.scalars(select(OutboxMessage).where(OutboxMessage.incident_id == incident.id,
                                                    OutboxMessage.status == MessageStatus.PENDING,
                                                    ~OutboxMessage.dedup_key.startswith("rollup:"),  # a roll-up lists
                                                    ~OutboxMessage.dedup_key.startswith("quiet:")))  # other incidents too
    n = 0
    for row in rows:
        row.status, row.last_error = MessageStatus.CANCELLED, why
        n += 1
    return n


def _was_told(sess: Session, incident: Incident) -> bool:
    """Whether any alert or escalation about this incident reached someone."""
    return (sess.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.incident_id == incident.id, OutboxMessage.status == MessageStatus.SENT)) or 0) > 0


def _false_alarm(sess: Session, cfg: AppConfig, now: datetime, incident: Incident, by: str, note: str) -> IncidentChange:
    """Close an incident whose event no longer meets the plan because its mentions were false alarms."""
    from_status = incident.status
    incident.status, incident.resolution = IncidentStatus.RESOLVED, Resolution.FALSE_ALARM
    incident.resolved_at, incident.resolved_by = now, by
    incident.next_escalation_at, incident.updated_at = None, now
    transition(sess, incident, now, "false_alarm", from_status=from_status, from_level=incident.level,
               actor=by, note=note)
    cancelled = _cancel_pending(sess, incident, f"误报：{note}")
    audit(sess, now, "incident.false_alarm", f"incident:{incident.id}", actor=by, note=note, cancelled=cancelled)
    sent = 0
    if _was_told(sess, incident):
        rule = cfg.plan.rule(incident.level)
        tz = cfg.settings.timezone
        label = level_label(rule.level, rule)
        ev = event_facts(sess, cfg, incident.event)
        subject = f"【舆情误报撤销 {label}】{cfg.hospital.name}：{ev['headline']}"
        context = dict(subject=subject, level=rule.level, level_label=label, hospital=cfg.hospital.name, plan_name=cfg.plan.name,
                       incident_id=incident.id, reason=incident.reason, ev=ev, by=by, at=local_time(now, tz),
                       note=note)
        envelopes = route(cfg, rule.notify, rule.channels, incident_message("false_alarm", **context))
        sent = len(enqueue_envelopes(sess, now, f"incident:{incident.id}:false_alarm", "alert", envelopes,
                                     incident_id=incident.id))
    log.info("incident %s closed as a false alarm by %s (%d unsent message(s) cancelled)", incident.id, by, cancelled)
    return IncidentChange(incident.id, incident.event_id, "false_alarm", incident.level, incident.level, note, sent)


def review_events(sess: Session, cfg: AppConfig, now: datetime, event_ids: list[int], by: str,
                  note: str) -> list[IncidentChange]:
    """After a correction: close the incident of an event that no longer meets the plan as a false
    alarm (its history kept), or open or raise one for an event that now does."""
    changes: list[IncidentChange] = []
    for event_id in event_ids:
        event = sess.get(Event, event_id)
        if event is None:
            continue
        incident = sess.scalar(select(Incident).where(Incident.event_id == event.id)
                               .order_by(Incident.id.desc()).limit(1))
        if incident is not None and incident.status != IncidentStatus.RESOLVED and assess(event, cfg.plan) is None:
            changes.append(_false_alarm(sess, cfg, now, incident, by, note))
            continue
        change = _sync_event(sess, cfg, now, event)
        if change is not None:
            changes.append(change)
    return changes

"""Many incidents at once, one message per recipient and channel: alert storms and the quiet-hours
morning roll-up. The list goes highest level first; each recipient hears once, on each of the
channels of the highest level they are told about."""

from __future__ import annotations

import dataclasses
import hashlib
import html
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from yuqing.alerts.incidents import ack_command
from yuqing.alerts.links import IncidentLinks, links_for
from yuqing.alerts.messages import Personaliser, Rendered, enqueue_envelopes, local_time, md_url, render, route
from yuqing.alerts.plan import level_label
from yuqing.clock import Clock
from yuqing.config import AppConfig, Recipient, level_rank
from yuqing.models import Incident, IncidentStatus, MessageStatus, OutboxMessage
from yuqing.store import Store, audit

log = logging.getLogger(__name__)

QUIET = "quiet"  # outbox purpose of a level-IV alert held for the morning roll-up
# Where each listed incident's link goes, filled per audience; random per process, as messages.LINK_SLOT.
_ITEM_SLOT = f"yuqing-item-{secrets.token_hex(12)}-"
_ITEM_SLOT_RE = re.compile(re.escape(_ITEM_SLOT) + r"(\d+)-")


@dataclass(frozen=True)
class RollupItem:
    incident_id: int
    level: str
    level_label: str
    headline: str
    reason: str
    deadline: str
    action: str  # the command to type, or (links on) the place the reader's own link goes


def _item(cfg: AppConfig, inc: Incident, linked: bool) -> RollupItem:
    """One incident as a line of the roll-up."""
    rule = cfg.plan.rule(inc.level)
    return RollupItem(inc.id, inc.level, level_label(inc.level, rule), inc.event.headline or "（无标题）", inc.reason,
                      local_time(inc.ack_deadline, cfg.settings.timezone),
                      f"{_ITEM_SLOT}{inc.id}-" if linked else ack_command(inc.id))


def _personal_links(links: IncidentLinks, now: datetime) -> Personaliser:
    """Each listed incident with the reader's own link; a group robot's message, read by several, keeps
    the command (a link per member per incident would not fit)."""
    def personalise(msg: Rendered, audience: list[Recipient]) -> Rendered:
        person = audience[0] if len(audience) == 1 else None

        def fill(value: str | None, form: str) -> str | None:
            def one(m: re.Match[str]) -> str:
                incident_id = int(m.group(1))
                if person is None:
                    return "" if form == "html" else ack_command(incident_id)
                url = links.url(incident_id, person.id, now)
                return {"text": url, "html": html.escape(url), "markdown": f"[打开事件页面]({md_url(url)})"}[form]
            return _ITEM_SLOT_RE.sub(one, value) if value else value

        return dataclasses.replace(msg, text=fill(msg.text, "text") or "", html=fill(msg.html, "html") or "",
                                   email_html=fill(msg.email_html, "html"), markdown=fill(msg.markdown, "markdown") or "")
    return personalise


def _ordered(items: Iterable[RollupItem]) -> list[RollupItem]:
    """Highest level first, then oldest."""
    return sorted(items, key=lambda i: (-level_rank(i.level), i.incident_id))


def rollup_rendered(cfg: AppConfig, items: list[RollupItem], title: str, intro: str, has_link: bool = False) -> Rendered:
    """The roll-up in every channel's form; its level is the highest listed (SMS goes for II and I)."""
    subject = f"【{title}】{cfg.hospital.name}：{len(items)} 起，最高 {items[0].level_label}"
    context = dict(subject=subject, title=title, intro=intro, items=items, hospital=cfg.hospital.name,
                   plan_name=cfg.plan.name, has_link=has_link, link_days=cfg.settings.web.link_days)
    return Rendered(subject=subject, text=render("rollup.txt.j2", **context), html=render("rollup.html.j2", **context),
                    markdown=render("rollup.md.j2", **context), level=items[0].level,
                    mention_text=f"{title}：{len(items)} 起舆情待确认，最高 {items[0].level_label}，详见上一条消息。",
                    sms={"level": items[0].level_label, "title": f"{len(items)} 起舆情同时出现",
                         "incident": ",".join(str(i.incident_id) for i in items[:5]), "hospital": cfg.hospital.name})


def enqueue_rollup(sess: Session, cfg: AppConfig, now: datetime, incidents: list[Incident], key: str, title: str,
                   intro: str) -> int:
    """One message per recipient per channel listing the incidents they would each have been told about."""
    if not incidents:
        return 0
    by_person: dict[str, list[Incident]] = {}
    for inc in incidents:
        for person in cfg.channels.expand(cfg.plan.rule(inc.level).notify):
            by_person.setdefault(person.id, []).append(inc)
    groups: dict[tuple[int, ...], list[str]] = {}  # the same list goes to everyone who gets it
    for person_id, theirs in by_person.items():
        groups.setdefault(tuple(sorted(i.id for i in theirs)), []).append(person_id)
    links = links_for(cfg)
    personalise = _personal_links(links, now) if links else None
    lines = {inc.id: _item(cfg, inc, links is not None) for inc in incidents}  # once, however many groups list it
    added = 0
    for ids, people in groups.items():
        theirs = [i for i in incidents if i.id in ids]
        top = max(theirs, key=lambda i: level_rank(i.level))
        rendered = rollup_rendered(cfg, _ordered(lines[i] for i in ids), title, intro, links is not None)
        envelopes = route(cfg, people, cfg.plan.rule(top.level).channels, rendered, personalise)
        listed = hashlib.sha1(",".join(map(str, ids)).encode()).hexdigest()[:12]  # dedup keys hold 200 characters
        added += len(enqueue_envelopes(sess, now, f"{key}:{listed}", "alert", envelopes, incident_id=top.id))
    audit(sess, now, "incidents.rollup", key, incidents=[i.id for i in incidents], messages=added)
    log.info("roll-up %s: %d incident(s), %d message(s)", key, len(incidents), added)
    return added


# --- quiet hours -----------------------------------------------------------------------------------


def quiet_until(cfg: AppConfig, level: str, now: datetime) -> datetime | None:
    """When the quiet hours around `now` end, if this level waits in them; None if it goes at once."""
    quiet = cfg.channels.delivery.quiet_hours
    if quiet is None or level not in quiet.levels:
        return None
    tz = ZoneInfo(cfg.settings.timezone)
    local = now.astimezone(tz)
    if not quiet.contains(local.time()):
        return None
    end = time.fromisoformat(quiet.end)
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(now.tzinfo)


def release_quiet(store: Store, cfg: AppConfig, clock: Clock) -> int:
    """After quiet hours: the held level-IV alerts become one roll-up per recipient and channel."""
    now = clock.now()
    if quiet_until(cfg, "IV", now) is not None:
        return 0
    with store.session() as sess:
        held = list(sess.scalars(select(OutboxMessage).where(OutboxMessage.purpose == QUIET,
                                                             OutboxMessage.status == MessageStatus.PENDING)))
        if not held:
            return 0
        ids = sorted({r.incident_id for r in held if r.incident_id is not None})
        for row in held:
            row.status, row.last_error = MessageStatus.CANCELLED, "并入静默时段结束后的汇总"
        incidents = [i for i in (sess.get(Incident, x) for x in ids) if i is not None and i.status != IncidentStatus.RESOLVED]
        title = "夜间舆情汇总"
        intro = f"静默时段内出现 {len(incidents)} 起一般（Ⅳ级）舆情，按预案未在夜间打扰，现汇总如下。"
        return enqueue_rollup(sess, cfg, now, incidents, f"quiet:{now:%Y%m%d}", title, intro)

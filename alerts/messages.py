"""Message content and routing: templates rendered per channel, scraped text made harmless.

Scraped titles and URLs are untrusted. HTML templates autoescape everything; WeCom
markdown gets `md` (no tags, links, code, headings or quotes can be smuggled in); plain
text gets `oneline` (no forged lines). Routing turns recipient ids into one e-mail per
person and one robot message per WeCom group, with the group's people @-mentioned.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import re
import secrets
import urllib.parse
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import select
from sqlalchemy.orm import Session

from yuqing.alerts.channels import REGISTRY
from yuqing.alerts.channels.base import Envelope, Rendered
from yuqing.alerts.outbox import enqueue
from yuqing.alerts.plan import risk_name, tier_name
from yuqing.config import AppConfig, Recipient
from yuqing.models import Channel, Event, Mention, OutboxMessage, SourceState

log = logging.getLogger(__name__)

__all__ = ["Envelope", "Rendered", "incident_message", "route", "enqueue_envelopes"]

MD_REPLACE = str.maketrans({"<": "＜", ">": "＞", "[": "［", "]": "］", "`": "｀", "*": "＊",
                            "&": "＆", "\\": "＼", "|": "｜"})
CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
TZ_LABELS = {"Asia/Shanghai": "北京时间", "Asia/Chongqing": "北京时间", "Asia/Hong_Kong": "香港时间"}
# Where a recipient's own incident link goes in a rendered message; filled per audience by route().
# Random per process, so scraped text can never contain it and have a link put in its place.
LINK_SLOT = f"yuqing-link-{secrets.token_hex(12)}"

LinkMaker = Callable[[str], str]
"""Recipient id → that recipient's signed incident link."""

Personaliser = Callable[["Rendered", list[Recipient]], "Rendered"]
"""A message and one audience (a person, or the members a group robot reaches) → what that audience gets."""


# --- making scraped text harmless -------------------------------------------------------


def oneline(value: Any, limit: int = 300) -> str:
    """Scraped text on one line, control characters gone, cut to a sane length."""
    text = " ".join(CONTROL.sub(" ", str(value or "")).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def md(value: Any, limit: int = 300) -> str:
    """Scraped text made inert inside WeCom markdown: no tags, links, code, bold, headings, quotes."""
    text = oneline(value, limit).translate(MD_REPLACE)
    return text.lstrip("#＞> -+=").strip() or "（无标题）"


def safe_url(value: Any) -> str:
    """An http(s) URL or '' (javascript: and friends are dropped)."""
    url = oneline(value, 2000)
    scheme = urllib.parse.urlsplit(url).scheme.lower() if url else ""
    return url if scheme in ("http", "https") else ""


def md_url(value: Any) -> str:
    """A URL that cannot break out of a markdown link's parentheses."""
    return urllib.parse.quote(safe_url(value), safe=":/?#@!$&'*+,;=%-._~")


# --- templates ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def template_env() -> Environment:
    """Jinja environment over alerts/templates; autoescape for every .html template."""
    env = Environment(loader=PackageLoader("yuqing.alerts", "templates"),
                      autoescape=lambda name: bool(name and ".html" in name),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=False)
    env.filters.update(oneline=oneline, md=md, safe_url=safe_url, md_url=md_url)
    return env


def render(name: str, **context: Any) -> str:
    """Render one template by name."""
    return template_env().get_template(name).render(**context).strip() + "\n"


@lru_cache(maxsize=64)
def _has_template(name: str) -> bool:
    """Whether the templates folder has this file (listing it walks the folder: once per name)."""
    return name in template_env().list_templates()


def incident_message(template: str, **context: Any) -> Rendered:
    """An incident message (alert, escalation, false alarm) in every form: template.txt/.html/.md, and
    template_mention.txt for the @-mention where the template has one; context['subject'] on one line;
    context['level'] (the plan level) lets SMS go for the levels it is for."""
    context.setdefault("has_link", False)
    context.setdefault("action_link", LINK_SLOT)
    context.setdefault("link_days", 0)
    mention = f"{template}_mention.txt.j2"
    ev = context.get("ev") or {}
    sms = {"level": str(context.get("level_label", "")), "title": oneline(ev.get("headline", context["subject"]), 100),
           "incident": str(context.get("incident_id", "")), "hospital": str(context.get("hospital", ""))}
    return Rendered(subject=" ".join(str(context["subject"]).split())[:200], text=render(f"{template}.txt.j2", **context),
                    html=render(f"{template}.html.j2", **context), markdown=render(f"{template}.md.j2", **context),
                    mention_text=render(mention, **context) if _has_template(mention) else "",
                    level=context.get("level"), sms=sms)


def local_time(dt: datetime | None, tz: str) -> str:
    """A UTC datetime as the hospital's wall-clock time, e.g. '2026-11-23 09:30（北京时间）'."""
    if dt is None:
        return "—"
    return f"{dt.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}（{TZ_LABELS.get(tz, tz)}）"


def people_names(cfg: AppConfig, ids: Iterable[str]) -> str:
    """'张敏（宣传科值班员）、刘洋（宣传科科长）' for recipient or group ids."""
    return "、".join(f"{p.name}（{p.role}）" if p.role else p.name for p in cfg.channels.expand(list(ids)))


# --- what an alert says about its event ------------------------------------------------------


def source_names(sess: Session, cfg: AppConfig) -> dict[str, tuple[str, int]]:
    """Source id → (name, tier): config first, then what the crawler stored."""
    names = {s.id: (s.name, s.tier) for s in sess.scalars(select(SourceState))}
    names.update({s.id: (s.name, s.tier) for s in cfg.sources.sources})
    return names


def top_links(sess: Session, cfg: AppConfig, event: Event, limit: int = 3) -> list[dict[str, str]]:
    """The event's most telling mentions: negative first, then the highest-tier source, then newest."""
    sources = source_names(sess, cfg)
    mentions = list(sess.scalars(select(Mention).where(Mention.event_id == event.id)))
    mentions.sort(key=lambda m: (not m.negative, sources.get(m.source_id, ("", 9))[1], -m.when.timestamp()))
    links = []
    for m in mentions[:limit]:
        name, tier = sources.get(m.source_id, (m.source_id, 4))
        links.append({"source": name, "tier": tier_name(tier), "title": m.title or m.match_context or m.url,
                      "url": m.url})
    return links


def _number(value: float) -> str:
    """3.0 → '3', 4.25 → '4.2': no trailing zeros in messages."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def velocity_text(event: Event) -> str:
    """'每小时 6 条，平时约 1.5 条，为平时的 4 倍' (or that there is no usual rate yet)."""
    if event.baseline > 0:
        return (f"每小时 {_number(event.velocity)} 条，平时约 {_number(event.baseline)} 条，"
                f"为平时的 {_number(event.velocity_ratio)} 倍")
    return f"每小时 {_number(event.velocity)} 条（尚无平时数据可比）"


def event_facts(sess: Session, cfg: AppConfig, event: Event) -> dict[str, Any]:
    """Everything an alert shows about the event, scraped parts still raw (templates escape)."""
    return {
        "event_id": event.id,
        "headline": event.headline or "（无标题）",
        "mention_count": event.mention_count, "negative_count": event.negative_count,
        "crisis_count": event.crisis_count, "source_count": event.source_count,
        "repost_count": event.repost_count, "velocity": velocity_text(event),
        "top_tier": tier_name(event.top_tier),
        "risks": "、".join(risk_name(c) for c in event.risk_categories or []) or "无",
        "links": top_links(sess, cfg, event),
        "first_seen": local_time(event.first_seen, cfg.settings.timezone),
        "last_seen": local_time(event.last_seen, cfg.settings.timezone),
    }


# --- routing -----------------------------------------------------------------------------------


def group_links(members: list[Recipient], link: LinkMaker) -> str:
    """In a group's message, each member taps their own name: '[张敏](…) [刘洋](…)'."""
    return " ".join(f"[{md(p.name, 20)}]({md_url(link(p.id))})" for p in members)


def with_links(msg: Rendered, audience: list[Recipient], link: LinkMaker) -> Rendered:
    """The message as this audience gets it: one person's own link, or each member's by name."""
    if len(audience) == 1:
        url = link(audience[0].id)
        text, page, markdown = url, html.escape(url), f"[{md(audience[0].name, 20)}]({md_url(url)})"
    else:
        text = "\n" + "\n".join(f"{p.name}：{link(p.id)}" for p in audience)
        page, markdown = "", group_links(audience, link)

    def fill(value: str | None, filler: str) -> str | None:
        return value.replace(LINK_SLOT, filler) if value else value

    return dataclasses.replace(msg, text=fill(msg.text, text) or "", html=fill(msg.html, page) or "",
                               email_html=fill(msg.email_html, page), markdown=fill(msg.markdown, markdown) or "")


def route(cfg: AppConfig, ids: Iterable[str], channels: Iterable[str], msg: Rendered,
          personalise: Personaliser | None = None, exclude: Iterable[str] = ()) -> list[Envelope]:
    """Recipient and group ids to envelopes on the given channels, each audience (a person, or a group a
    robot reaches) with what `personalise` makes of the message for it (its own incident links); the
    unreachable are logged."""
    skip = set(exclude)
    people = [p for p in cfg.channels.expand(list(ids)) if p.id not in skip]
    channels = list(channels)
    plugins = [REGISTRY[Channel(c)] for c in channels]
    envelopes: list[Envelope] = []
    reached: set[str] = set()  # someone with an address whose channel sends nothing (SMS for level IV) is not
    for plugin in plugins:
        for audience in plugin.audiences(cfg, people):
            own = personalise(msg, audience) if personalise else msg
            theirs = plugin.envelopes(cfg, audience, own)
            if theirs:
                reached.update(p.id for p in audience)
            envelopes += theirs
    for p in people:
        if p.id not in reached:
            log.warning("recipient %s (%s) has no address on channels %s", p.id, p.name, channels)
    return envelopes


def enqueue_envelopes(sess: Session, now: datetime, key: str, purpose: str, envelopes: list[Envelope],
                      incident_id: int | None = None) -> list[OutboxMessage]:
    """Put envelopes in the outbox under key:suffix; ones already there are skipped."""
    added = []
    for env in envelopes:
        row = enqueue(sess, now, dedup_key=f"{key}:{env.suffix}", channel=env.channel, recipient=env.recipient,
                      address=env.address, purpose=purpose, subject=env.subject, body=env.body,
                      body_html=env.body_html, incident_id=incident_id, images=env.images)
        if row is not None:
            added.append(row)
    return added

"""Plain-text tables for the CLI: what the duty officer reads in a terminal at 3 a.m."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from yuqing.alerts.plan import level_label, risk_name
from yuqing.app.jobs import Runtime
from yuqing.config import level_rank
from yuqing.models import Incident, IncidentStatus, Mention, MessageStatus, OutboxMessage, Resolution

# C0 and C1 control characters (ESC, BEL, …) and bidi overrides: scraped text must not drive the terminal
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def local(rt: Runtime, when: datetime | None) -> str:
    """A time in the hospital's zone, or a dash."""
    if when is None:
        return "-"
    return when.astimezone(ZoneInfo(rt.cfg.settings.timezone)).strftime("%Y-%m-%d %H:%M")


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell (CJK characters count double)."""
    def width(text: str) -> int:
        return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)

    cols = [max([width(h)] + [width(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h + " " * (cols[i] - width(h)) for i, h in enumerate(headers)).rstrip()]
    for row in rows:
        lines.append("  ".join(c + " " * (cols[i] - width(c)) for i, c in enumerate(row)).rstrip())
    return "\n".join(lines)


def terminal_safe(text: str | None) -> str:
    """Scraped text for a terminal: control characters dropped, line breaks folded to spaces."""
    return _CONTROL_RE.sub("", " ".join((text or "").split()))


def strip_controls(text: str) -> str:
    """A table or report for a terminal: control characters dropped, its own lines and columns kept."""
    return "\n".join(_CONTROL_RE.sub("", line.replace("\t", "    ")) for line in text.split("\n"))


def _clip(text: str, size: int) -> str:
    text = terminal_safe(text)
    return text if len(text) <= size else text[: size - 1] + "…"


def _status(incident: Incident) -> str:
    """An incident's status in one word; a false alarm says so."""
    return "false alarm" if incident.resolution == Resolution.FALSE_ALARM else incident.status


def incident_table(rt: Runtime, include_resolved: bool = False) -> str:
    """Incidents, highest level and oldest first."""
    with rt.store.session() as sess:
        query = select(Incident)
        if not include_resolved:
            query = query.where(Incident.status != IncidentStatus.RESOLVED)
        found = list(sess.scalars(query))
        found.sort(key=lambda i: (-level_rank(i.level), i.opened_at))
        rows = [[str(i.id), level_label(i.level), _status(i), local(rt, i.opened_at), local(rt, i.ack_deadline),
                 str(i.escalations), _clip(i.event.headline, 40)] for i in found]
    if not rows:
        return "no open incidents" if not include_resolved else "no incidents"
    return table(["id", "level", "status", "opened", "ack by", "escalations", "headline"], rows)


def incident_detail(rt: Runtime, incident_id: int) -> str:
    """One incident with its event, reason, history and messages."""
    with rt.store.session() as sess:
        inc = sess.get(Incident, incident_id)
        if inc is None:
            return f"no incident {incident_id}"
        ev = inc.event
        lines = [
            f"incident {inc.id}: {level_label(inc.level)} {_status(inc)}",
            f"  event {ev.id}: {terminal_safe(ev.headline)}",
            f"  why: {inc.reason}",
            f"  mentions {ev.mention_count}, negative {ev.negative_count}, sources {ev.source_count}, "
            f"reposts {ev.repost_count}, velocity {ev.velocity:.1f}/h (usual {ev.baseline:.2f}/h)",
            f"  risk: {', '.join(ev.risk_categories) or '-'}; keywords: {', '.join(ev.keywords) or '-'}",
            f"  opened {local(rt, inc.opened_at)}, acknowledge by {local(rt, inc.ack_deadline)}",
        ]
        if inc.acknowledged_at:
            lines.append(f"  acknowledged {local(rt, inc.acknowledged_at)} by {inc.acknowledged_by}")
        lines.append("history:")
        for t in inc.transitions:
            lines.append(f"  {local(rt, t.at)}  {t.action:<12} {t.from_level or '-'}→{t.to_level}  "
                         f"{t.from_status or '-'}→{t.to_status}  by {terminal_safe(t.actor)}  {terminal_safe(t.note)}")
        messages = sess.scalars(select(OutboxMessage).where(OutboxMessage.incident_id == inc.id)
                                .order_by(OutboxMessage.id)).all()
        lines.append("messages:")
        for m in messages:
            lines.append(f"  #{m.id} {m.purpose:<10} {m.channel:<6} → {m.recipient:<16} {m.status} "
                         f"(attempts {m.attempts}) {local(rt, m.sent_at)}")
    return "\n".join(lines)


def source_table(rt: Runtime) -> str:
    """Every configured source's health, failing ones first."""
    from yuqing.crawler.health import source_health

    rows = []
    for h in sorted(source_health(rt.cfg, rt.store), key=lambda h: (-h.consecutive_failures, h.id)):
        health = f"FAILING x{h.consecutive_failures}" if h.status == "failing" else h.status
        rows.append([h.id, h.kind, "yes" if h.enabled else "no", health, local(rt, h.last_success_at),
                     local(rt, h.failing_since), str(h.mentions_found), _clip(h.last_error or "", 50)])
    if not rows:
        return "no sources configured"
    return table(["source", "kind", "enabled", "health", "last success", "failing since", "mentions",
                  "last error"], rows) + hot_list_lines(rt)


#: How far back `yuqing sources` lists hot-list appearances.
HOT_LIST_DAYS = 7


def hot_list_lines(rt: Runtime) -> str:
    """The hospital's hot-list appearances of the last week under the source table ('' when none)."""
    from yuqing.alerts.hot_lists import hot_list_appearances, time_on_list_text

    found = hot_list_appearances(rt.store, rt.clock.now() - timedelta(days=HOT_LIST_DAYS))
    if not found:
        return ""
    rows = [[a.list_name, str(a.best_rank), str(a.rank), str(a.peak_heat or "-"), time_on_list_text(a),
             local(rt, a.first_seen_at), local(rt, a.last_seen_at), _clip(a.title, 40)] for a in found]
    return (f"\n\non hot lists (last {HOT_LIST_DAYS} days):\n"
            + table(["list", "best", "now", "peak heat", "on list", "first seen", "last seen", "entry"], rows))


def outbox_table(rt: Runtime, status: str) -> str:
    """Outbox messages by status, newest first."""
    with rt.store.session() as sess:
        query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200)
        if status != "all":
            query = query.where(OutboxMessage.status == status)
        rows = [[str(m.id), m.status, m.purpose, m.channel, m.recipient, str(m.attempts),
                 local(rt, m.next_attempt_at if m.status == MessageStatus.PENDING else m.sent_at),
                 _clip(m.subject or m.body.splitlines()[0] if m.body else "", 36), _clip(m.last_error or "", 40)]
                for m in sess.scalars(query)]
    if not rows:
        return f"no {status} messages" if status != "all" else "the outbox is empty"
    return table(["id", "status", "purpose", "channel", "to", "tries", "next/sent", "subject", "last error"], rows)


def mention_table(rt: Runtime, *, since: datetime | None = None, source: str | None = None,
                  crisis: bool | None = None, negative: bool | None = None, limit: int = 50) -> str:
    """Stored mentions, newest first, with their judgement: what a person checks before correcting one."""
    when = func.coalesce(Mention.published_at, Mention.fetched_at)
    query = select(Mention).order_by(when.desc(), Mention.id.desc()).limit(limit)
    if since is not None:
        query = query.where(when >= since)
    if source:
        query = query.where(Mention.source_id == source)
    if crisis is not None:
        query = query.where(Mention.crisis.is_(crisis))
    if negative is not None:
        query = query.where(Mention.negative.is_(negative))
    with rt.store.session() as sess:
        rows = []
        for m in sess.scalars(query):
            if m.analyzed_at is None:
                verdict = "pending"
            elif not m.about_us:
                verdict = "not us"
            else:
                verdict = "CRISIS" if m.crisis else ("negative" if m.negative else "-")
            score = "-" if m.risk_score is None else f"{m.risk_score:.2f}"
            cats = "、".join(risk_name(c) for c in (m.risk_categories or [])[:2])
            rows.append([str(m.id), local(rt, m.when), _clip(m.source_id, 16), verdict, score, _clip(cats, 16),
                         str(m.event_id or "-"), _clip(m.corrected_by or "", 8), _clip(m.title or m.text, 40)])
    if not rows:
        return "no mentions match"
    return table(["id", "when", "source", "judged", "P(crisis)", "category", "event", "corrected", "title"], rows)

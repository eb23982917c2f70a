"""What every channel plugin is: its config section, how it renders and routes, its sender, its secrets.

A plugin subclasses ChannelPlugin and is listed once in alerts/channels/__init__.py REGISTRY;
routing, dispatch, secret scrubbing, `channels test` and fallbacks all go through that table.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from yuqing.alerts.outbox import InlineImage, Outgoing, RateLimited, Sender, SendError
from yuqing.clock import Clock
from yuqing.config import AppConfig, Recipient
from yuqing.vocabulary import Channel

log = logging.getLogger(__name__)

TRUNCATED = "…（内容过长已截断）"
FALLBACK_MARK = "【备用渠道】"
WINDOW = timedelta(minutes=1)


def fit_bytes(text: str, limit: int, marker: str = TRUNCATED) -> str:
    """Cut text to at most limit UTF-8 bytes on a character boundary, marking the cut."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    room = limit - len(marker.encode("utf-8"))
    return raw[:room].decode("utf-8", errors="ignore") + marker


def split_bytes(text: str, limit: int, max_parts: int) -> list[str]:
    """Text in parts of at most limit UTF-8 bytes, cut between lines, later parts marked （续 2/3）;
    a line too long for a part is cut itself, and past max_parts the last part is cut with the marker."""
    room = limit - len("（续 9/9）\n".encode())
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        line = fit_bytes(line, room)
        joined = f"{current}\n{line}" if current else line
        if len(joined.encode("utf-8")) <= room:
            current = joined
            continue
        parts.append(current)
        current = line
    parts.append(current)
    if len(parts) > max_parts:
        parts = [*parts[:max_parts - 1], fit_bytes("\n".join(parts[max_parts - 1:]), room)]
    return [p if i == 0 else f"（续 {i + 1}/{len(parts)}）\n{p}" for i, p in enumerate(parts)]


@dataclass(frozen=True)
class Rendered:
    """One message in every form a channel needs (e-mail HTML may differ from the page: images by cid).

    level is the plan level of an incident message (None for digests and operator notices); sms
    holds the short facts an SMS template carries (level, title, incident, hospital)."""

    subject: str
    text: str
    html: str
    markdown: str
    mention_text: str = ""
    email_html: str | None = None
    images: tuple[InlineImage, ...] = ()
    level: str | None = None
    sms: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Envelope:
    """One message for one address, before it enters the outbox."""

    channel: str
    recipient: str
    address: str
    subject: str
    body: str
    body_html: str | None
    suffix: str
    images: tuple[InlineImage, ...] = ()


class ChannelPlugin:
    """One channel: subclasses set channel and section and override what differs."""

    channel: Channel
    section: str  # the channels.yaml key holding this channel's config
    label: str  # how operators name it, e.g. 企业微信群机器人

    def settings(self, cfg: AppConfig) -> Any:
        """This channel's config section (None or empty when not configured)."""
        return getattr(cfg.channels, self.section)

    def configured(self, cfg: AppConfig) -> bool:
        """Whether channels.yaml sets this channel up."""
        return bool(self.settings(cfg))

    def secrets(self, cfg: AppConfig) -> list[str]:
        """Every secret value of this channel, so error texts can be scrubbed of them."""
        return []

    def envelopes(self, cfg: AppConfig, people: list[Recipient], msg: Rendered) -> list[Envelope]:
        """The messages that reach these people on this channel."""
        raise NotImplementedError

    def reaches(self, cfg: AppConfig, person: Recipient) -> bool:
        """Whether this person has an address on this channel."""
        raise NotImplementedError

    def audiences(self, cfg: AppConfig, people: list[Recipient]) -> list[list[Recipient]]:
        """Who reads each message: one person each here; a group robot's members read one together (each
        incident link in a message is made for the audience that reads it)."""
        return [[p] for p in people if self.reaches(cfg, p)]

    def sender(self, cfg: AppConfig, clock: Clock) -> Sender:
        """A sender for this channel, built from config (secrets already read from the environment)."""
        raise NotImplementedError

    def plain(self, cfg: AppConfig, people: list[Recipient], subject: str, text: str, key: str) -> list[Envelope]:
        """A plain-text notice to these people (fallbacks and `channels test`); text is already safe."""
        msg = Rendered(subject=subject, text=text, html=f"<pre>{_html_escape(text)}</pre>", markdown=text,
                       mention_text=text, sms={"level": "测试", "title": subject[:30], "incident": "0",
                                               "hospital": cfg.hospital.name})
        return self.envelopes(cfg, people, msg)

    def test_people(self, cfg: AppConfig) -> list[Recipient]:
        """Who a test message goes to: everyone reachable here (each robot or system once)."""
        return [p for p in cfg.channels.recipients if self.reaches(cfg, p)]


class GroupChannelPlugin(ChannelPlugin):
    """A channel whose address is a group (a robot, a duty system): the people behind one address read
    one message together. Each person names their group's id in `group_field`."""

    group_field: str  # the Recipient field holding the id of the person's group on this channel

    def group_of(self, person: Recipient) -> str:
        return str(getattr(person, self.group_field) or "")

    def reaches(self, cfg: AppConfig, person: Recipient) -> bool:
        group = self.group_of(person)
        return bool(group) and group in self.settings(cfg)

    def groups(self, cfg: AppConfig, people: list[Recipient]) -> dict[str, list[Recipient]]:
        """Group id → the people behind it, for those this channel reaches."""
        out: dict[str, list[Recipient]] = {}
        for p in people:
            if self.reaches(cfg, p):
                out.setdefault(self.group_of(p), []).append(p)
        return out

    def audiences(self, cfg: AppConfig, people: list[Recipient]) -> list[list[Recipient]]:
        """The members behind each group address read one message together."""
        return list(self.groups(cfg, people).values())


def _html_escape(text: str) -> str:
    import html

    return html.escape(text)


@dataclass
class RateWindow:
    """A destination's sends in the last rolling minute, and until when the service told us to wait."""

    sent: deque[datetime] = field(default_factory=deque)
    blocked_until: datetime | None = None
    rejected: str | None = None

    def wait_until(self, now: datetime, per_minute: int) -> datetime | None:
        """When the next send may go, or None if it may go now."""
        while self.sent and self.sent[0] <= now - WINDOW:
            self.sent.popleft()
        if self.blocked_until and self.blocked_until > now:
            return self.blocked_until
        if len(self.sent) >= per_minute:
            return self.sent[0] + WINDOW
        return None


def admit(windows: dict[str, RateWindow], key: str, per_minute: int, now: datetime, where: str) -> RateWindow:
    """A robot's window, with this send counted in it; SendError if the robot was rejected for good,
    RateLimited while its minute is full or the service told us to wait."""
    window = windows.setdefault(key, RateWindow())
    if window.rejected:
        raise SendError(window.rejected, permanent=True)
    wait = window.wait_until(now, per_minute)
    if wait is not None:
        raise RateLimited(f"{where}: {per_minute} messages per minute reached", wait)
    window.sent.append(now)
    return window


def post_json(url: str, payload: bytes | None, where: str, timeout: float,
              headers: Mapping[str, str] | None = None, method: str = "POST") -> tuple[int, dict[str, Any]]:
    """One HTTP call answered with JSON: (status, reply). Errors name `where`, never the URL (it may hold
    a token); an HTTP error with a JSON body is returned, not raised, so its error code can be read."""
    request = urllib.request.Request(url, data=payload, method=method,
                                     headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read() if exc.fp is not None else b""
        reply = _json(raw)
        if reply is None:
            raise SendError(f"{where}: HTTP {exc.code}", permanent=exc.code in (400, 401, 403, 404)) from None
        return status, reply
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise SendError(f"{where}: timed out after {timeout:g} s") from None
        raise SendError(f"{where}: cannot connect ({exc.reason})") from None
    except TimeoutError:
        raise SendError(f"{where}: timed out after {timeout:g} s") from None
    except OSError as exc:
        raise SendError(f"{where}: {type(exc).__name__}") from None
    reply = _json(raw)
    if reply is None:
        raise SendError(f"{where}: reply is not JSON (HTTP {status})")
    return status, reply


def _json(raw: bytes) -> dict[str, Any] | None:
    """A JSON object from a reply body, or None."""
    try:
        reply = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return reply if isinstance(reply, dict) else None


def unknown_destination(plugin: ChannelPlugin, message: Outgoing) -> SendError:
    """A message addressed to a robot or system no longer in channels.yaml: permanent."""
    return SendError(f"{plugin.label} {message.address!r} is not in channels.yaml {plugin.section}", permanent=True)

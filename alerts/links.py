"""Signed, expiring incident links: the link in an alert is its recipient's identity on the incident page.

A link names one incident and one recipient from channels.yaml and carries its expiry; it is signed
(itsdangerous, HMAC-SHA256) with a key from the environment variable YUQING_WEB_SECRET, so changing
the incident, the recipient or the expiry breaks the signature. Without a public address or a key,
alerts keep telling people the command to type instead.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from yuqing.alerts.messages import Personaliser, with_links
from yuqing.config import AppConfig

log = logging.getLogger(__name__)

SECRET_ENV = "YUQING_WEB_SECRET"
MIN_SECRET_CHARS = 32
LINK_SALT = "yuqing.incident-link.v1"


class LinkRefused(ValueError):
    """A link that is altered, expired or not for this incident; the message is safe to show."""


class WebSecretMissing(RuntimeError):
    """The signing key is absent or too short to be safe."""


@dataclass(frozen=True)
class LinkClaim:
    """Who a valid link speaks for, about which incident, until when."""

    incident_id: int
    recipient_id: str
    expires_at: datetime


def web_secret(environ: Mapping[str, str] | None = None) -> str:
    """The signing key from the environment; refuses a short one (never echoes it)."""
    value = (os.environ if environ is None else environ).get(SECRET_ENV, "")
    if len(value) < MIN_SECRET_CHARS:
        raise WebSecretMissing(f"set {SECRET_ENV} to a random string of at least {MIN_SECRET_CHARS} characters, "
                               f"e.g. `openssl rand -hex 32`")
    return value


class IncidentLinks:
    """Makes and reads per-recipient incident links."""

    def __init__(self, secret: str, public_url: str, days: int):
        self._serializer = URLSafeSerializer(secret, salt=LINK_SALT)
        self._csrf_key = hashlib.sha256(f"csrf:{secret}".encode()).digest()
        self.public_url = public_url.rstrip("/")
        self.lifetime = timedelta(days=days)

    def token(self, incident_id: int, recipient_id: str, now: datetime) -> str:
        """The signed part of the link."""
        expires = int((now + self.lifetime).timestamp())
        return str(self._serializer.dumps({"i": incident_id, "r": recipient_id, "e": expires}))

    def url(self, incident_id: int, recipient_id: str, now: datetime) -> str:
        """The whole link a recipient taps."""
        return f"{self.public_url}/i/{incident_id}/{self.token(incident_id, recipient_id, now)}"

    def read(self, token: str, now: datetime) -> LinkClaim:
        """The claim of a link, or LinkRefused saying why in words a duty officer understands."""
        try:
            data = self._serializer.loads(token)
        except BadSignature:
            raise LinkRefused("链接无效（可能被改动或不完整），请使用预警消息中的原始链接") from None
        if not isinstance(data, dict) or not {"i", "r", "e"} <= data.keys():
            raise LinkRefused("链接无效，请使用预警消息中的原始链接")
        expires = datetime.fromtimestamp(int(data["e"]), tz=now.tzinfo)
        if now >= expires:
            raise LinkRefused("链接已过期，请使用最新一条预警消息中的链接，或登录控制台处理")
        return LinkClaim(int(data["i"]), str(data["r"]), expires)

    def csrf(self, token: str) -> str:
        """The form token for pages opened by a link (no session there): bound to the link itself."""
        return hmac.new(self._csrf_key, token.encode(), hashlib.sha256).hexdigest()[:40]


def links_for(cfg: AppConfig, environ: Mapping[str, str] | None = None) -> IncidentLinks | None:
    """Links when the console has a public address and a key; None (alerts show the command) otherwise."""
    if not cfg.settings.web.public_url:
        return None
    try:
        secret = web_secret(environ)
    except WebSecretMissing as exc:
        log.warning("alerts carry no incident link: %s", exc)
        return None
    return IncidentLinks(secret, cfg.settings.web.public_url, cfg.settings.web.link_days)


def incident_links(cfg: AppConfig, incident_id: int, now: datetime,
                   environ: Mapping[str, str] | None = None) -> tuple[Personaliser | None, dict[str, Any]]:
    """For one incident's messages: what puts each audience's own link in a message (for route()), and
    what the templates need to show it (nothing, and the command to type, when links are off)."""
    links = links_for(cfg, environ)
    if links is None:
        return None, {}

    def link(recipient_id: str) -> str:
        return links.url(incident_id, recipient_id, now)

    return (lambda msg, audience: with_links(msg, audience, link)), {
        "has_link": True, "link_days": cfg.settings.web.link_days}

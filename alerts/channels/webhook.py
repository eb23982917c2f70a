"""A generic JSON webhook for the hospital's own OA or duty system, signed with HMAC-SHA256.

Each POST carries X-Yuqing-Timestamp (Unix seconds), X-Yuqing-Signature: sha256=<hex of
HMAC-SHA256(secret, f"{timestamp}.{body}")> and X-Yuqing-Key (the outbox key: the same key is the
same message, so the receiver can drop a resend). Answers: 2xx delivered; 429 or 503 retry after
Retry-After; 408 and other 5xx retry later; any other 4xx (401 bad signature, 400 bad body) permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from datetime import timedelta

from yuqing.alerts.channels.base import Envelope, GroupChannelPlugin, Rendered, unknown_destination
from yuqing.alerts.outbox import Outgoing, RateLimited, SendError
from yuqing.channel_config import Webhook
from yuqing.clock import Clock
from yuqing.config import AppConfig, Recipient
from yuqing.vocabulary import Channel

log = logging.getLogger(__name__)

SIGNATURE_HEADER, TIMESTAMP_HEADER, KEY_HEADER = "X-Yuqing-Signature", "X-Yuqing-Timestamp", "X-Yuqing-Key"


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """What the receiver recomputes: sha256=hex(HMAC-SHA256(secret, "<timestamp>.<body>"))."""
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class WebhookSender:
    """POSTs signed JSON to the configured systems."""

    def __init__(self, hooks: dict[str, Webhook], clock: Clock):
        self.hooks = hooks
        self.clock = clock

    def send(self, message: Outgoing) -> str:
        hook = self.hooks.get(message.address)
        if hook is None:
            raise unknown_destination(PLUGIN, message)
        payload = json.loads(message.body)
        payload.update(id=message.dedup_key, purpose=message.purpose)
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        stamp = int(self.clock.now().timestamp())
        headers = {"Content-Type": "application/json; charset=utf-8", TIMESTAMP_HEADER: str(stamp),
                   SIGNATURE_HEADER: webhook_signature(hook.secret.get_secret_value(), stamp, body),
                   KEY_HEADER: message.dedup_key}
        where = f"webhook {message.address!r} ({hook.url})"
        request = urllib.request.Request(hook.url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=hook.timeout_seconds) as response:
                status, answer = response.status, response.read(300)
        except urllib.error.HTTPError as exc:
            raise self._refused(where, exc) from None
        except urllib.error.URLError as exc:
            raise SendError(f"{where}: cannot connect ({exc.reason})") from None
        except TimeoutError:
            raise SendError(f"{where}: timed out after {hook.timeout_seconds:g} s") from None
        except OSError as exc:
            raise SendError(f"{where}: {type(exc).__name__}") from None
        log.info("webhook message %s delivered to %s (HTTP %s)", message.id, message.address, status)
        return f"HTTP {status} {answer.decode('utf-8', 'replace')[:100]}".strip()

    def _refused(self, where: str, exc: urllib.error.HTTPError) -> SendError:
        """A non-2xx answer as retry-later or permanent."""
        if exc.code in (429, 503):
            retry_after = (exc.headers.get("Retry-After") or "60").strip()
            seconds = int(retry_after) if retry_after.isdigit() else 60
            return RateLimited(f"{where}: HTTP {exc.code}, retry after {seconds} s",
                               self.clock.now() + timedelta(seconds=min(seconds, 3600)))
        if exc.code == 408 or exc.code >= 500:
            return SendError(f"{where}: HTTP {exc.code}")
        hint = " (the receiver refused the signature: check the shared secret)" if exc.code in (401, 403) else ""
        return SendError(f"{where}: HTTP {exc.code}{hint}", permanent=True)


class WebhookPlugin(GroupChannelPlugin):
    """channels.yaml webhooks: systems by id; a person names theirs in recipients[].webhook."""

    channel, section, label, group_field = Channel.WEBHOOK, "webhooks", "Webhook", "webhook"

    def secrets(self, cfg: AppConfig) -> list[str]:
        return [hook.secret.get_secret_value() for hook in cfg.channels.webhooks.values()]

    def envelopes(self, cfg: AppConfig, people: list[Recipient], msg: Rendered) -> list[Envelope]:
        """One POST per system, naming the people it is for (the system routes inside the hospital)."""
        out = []
        for hook_id, members in self.groups(cfg, people).items():
            body = {"subject": msg.subject, "text": msg.text, "level": msg.level,
                    "incident": msg.sms.get("incident"), "recipients": [
                        {"id": p.id, "name": p.name, "role": p.role} for p in members]}
            out.append(Envelope(Channel.WEBHOOK, hook_id, hook_id, msg.subject, json.dumps(body, ensure_ascii=False),
                                None, f"webhook:{hook_id}"))
        return out

    def sender(self, cfg: AppConfig, clock: Clock) -> WebhookSender:
        return WebhookSender(dict(cfg.channels.webhooks), clock)


PLUGIN = WebhookPlugin()

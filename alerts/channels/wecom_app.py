"""WeCom application messages (企业微信应用消息): a message to one person by userid, which reaches them
even when the group robot is muted.

An access token comes from gettoken with the corp id and the application's secret (from the
environment) and is cached for its expires_in; 40014 (invalid) or 42001 (expired) fetch a new one
and send again once. Every reply is HTTP 200 with an errcode: 45009 is WeCom's rate limit (retry
in a minute), 81013 means no such user (permanent), 40001/40013 a wrong secret or corp id (permanent).
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from datetime import datetime, timedelta

from yuqing.alerts.channels.base import WINDOW, ChannelPlugin, Envelope, Rendered, fit_bytes, post_json, split_bytes
from yuqing.alerts.outbox import Outgoing, RateLimited, SendError
from yuqing.channel_config import WeComApp
from yuqing.clock import Clock
from yuqing.config import AppConfig, Recipient
from yuqing.vocabulary import Channel

log = logging.getLogger(__name__)

APP_MARKDOWN_BYTES = 2048  # message/send markdown.content limit
APP_MAX_PARTS = 4  # a long message goes in at most this many application messages
TOKEN_INVALID, TOKEN_EXPIRED = 40014, 42001
RATE_LIMITED = 45009
PERMANENT = {40001: "the application secret was rejected", 40013: "the corp id was rejected",
             40056: "the agent id is not valid", 81013: "no such user (userid not in the application's range)",
             40003: "no such user (invalid userid)", 60020: "this server's IP is not in the application's "
                                                            "trusted IP list"}


class WeComAppSender:
    """Sends application messages; holds the access token until shortly before it expires."""

    def __init__(self, app: WeComApp, clock: Clock):
        self.app = app
        self.clock = clock
        self.token: str | None = None
        self.token_until: datetime | None = None
        self.lock = threading.Lock()
        self.where = f"WeCom application {app.agent_id} ({app.base_url})"

    def _fetch_token(self) -> str:
        """GET gettoken; a rejected secret or corp id is permanent."""
        query = urllib.parse.urlencode({"corpid": self.app.corp_id, "corpsecret": self.app.secret.get_secret_value()})
        _, reply = post_json(f"{self.app.base_url}/gettoken?{query}", None, self.where, self.app.timeout_seconds,
                             method="GET")
        code = reply.get("errcode", 0)
        if code != 0 or not reply.get("access_token"):
            raise self._error(code, reply, "gettoken")
        self.token = str(reply["access_token"])
        lifetime = max(int(reply.get("expires_in") or 7200) - 300, 60)  # renew five minutes early
        self.token_until = self.clock.now() + timedelta(seconds=lifetime)
        log.info("%s: new access token, valid %s s", self.where, lifetime)
        return self.token

    def _current_token(self) -> str:
        """The cached token while it lives, else a fresh one."""
        with self.lock:
            if self.token and self.token_until and self.clock.now() < self.token_until:
                return self.token
            return self._fetch_token()

    def _forget(self, token: str) -> None:
        with self.lock:
            if self.token == token:
                self.token = self.token_until = None

    def _error(self, code: object, reply: dict, step: str) -> SendError:
        """An errcode as retry-later or permanent, named for the operator."""
        errmsg = str(reply.get("errmsg", ""))[:200]
        if code == RATE_LIMITED:
            return RateLimited(f"{self.where}: errcode 45009 (api freq out of limit)", self.clock.now() + WINDOW)
        if isinstance(code, int) and code in PERMANENT:
            return SendError(f"{self.where}: {step} errcode {code}: {PERMANENT[code]} ({errmsg}); check channels.yaml "
                             f"wecom_app and its environment variables", permanent=code not in (60020,))
        return SendError(f"{self.where}: {step} errcode {code}: {errmsg}")

    def send(self, message: Outgoing) -> str:
        """POST message/send for one user; a stale token is replaced and the send tried once more."""
        payload = json.loads(message.body)
        payload["agentid"] = self.app.agent_id
        payload["touser"] = message.address
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        for attempt in (1, 2):
            token = self._current_token()
            _, reply = post_json(f"{self.app.base_url}/message/send?access_token={urllib.parse.quote(token)}", body,
                                 self.where, self.app.timeout_seconds)
            code = reply.get("errcode", 0)
            if code in (TOKEN_INVALID, TOKEN_EXPIRED) and attempt == 1:
                log.info("%s: token refused (errcode %s), fetching a new one", self.where, code)
                self._forget(token)
                continue
            if code != 0:
                raise self._error(code, reply, "message/send")
            if reply.get("invaliduser"):
                raise SendError(f"{self.where}: user {message.address!r} is not reachable (invaliduser)", permanent=True)
            log.info("WeCom application message %s sent to %s", message.id, message.address)
            return f"errcode 0 {reply.get('errmsg', 'ok')} msgid={reply.get('msgid', '')}"
        raise SendError(f"{self.where}: the access token was refused twice")


class WeComAppPlugin(ChannelPlugin):
    """channels.yaml wecom_app: one application; people by recipients[].wecom_userid."""

    channel, section, label = Channel.WECOM_APP, "wecom_app", "企业微信应用消息"

    def secrets(self, cfg: AppConfig) -> list[str]:
        app = cfg.channels.wecom_app
        return [app.secret.get_secret_value()] if app else []

    def reaches(self, cfg: AppConfig, person: Recipient) -> bool:
        return cfg.channels.wecom_app is not None and bool(person.wecom_userid)

    def envelopes(self, cfg: AppConfig, people: list[Recipient], msg: Rendered) -> list[Envelope]:
        """A markdown application message per person; one longer than 2048 bytes (a roll-up with a link per
        incident) goes in up to APP_MAX_PARTS messages, cut between lines, rather than losing its end."""
        out = []
        for p in people:
            if not self.reaches(cfg, p):
                continue
            parts = split_bytes(msg.markdown.rstrip(), APP_MARKDOWN_BYTES, APP_MAX_PARTS)
            for i, part in enumerate(parts):
                body = json.dumps({"msgtype": "markdown", "markdown": {"content": part}}, ensure_ascii=False)
                suffix = f"wecom_app:{p.id}" if i == 0 else f"wecom_app:{p.id}:{i + 1}"
                out.append(Envelope(Channel.WECOM_APP, p.id, str(p.wecom_userid), msg.subject, body, None, suffix))
        return out

    def plain(self, cfg: AppConfig, people: list[Recipient], subject: str, text: str, key: str) -> list[Envelope]:
        body = json.dumps({"msgtype": "text", "text": {"content": fit_bytes(f"{subject}\n{text}", APP_MARKDOWN_BYTES)}},
                          ensure_ascii=False)
        return [Envelope(Channel.WECOM_APP, p.id, str(p.wecom_userid), subject, body, None, f"wecom_app:{p.id}")
                for p in people if self.reaches(cfg, p)]

    def sender(self, cfg: AppConfig, clock: Clock) -> WeComAppSender:
        assert cfg.channels.wecom_app is not None
        return WeComAppSender(cfg.channels.wecom_app, clock)

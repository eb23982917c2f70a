"""DingTalk (钉钉) custom group robots with the 加签 setting: each POST carries timestamp (ms) and
sign = urlencode(base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}"))).

Replies are HTTP 200 with an errcode: 0 ok; 130101 over 20 messages a minute (DingTalk then throttles
the robot for ten minutes: retry later); 310000 a security check failed (sign mismatch, keyword or IP
whitelist: permanent until channels.yaml is fixed); 300001/400102 the token is unknown or the robot
is stopped (permanent). People are @-mentioned by mobile.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import urllib.parse
from datetime import timedelta

from yuqing.alerts.channels.base import (
    Envelope,
    GroupChannelPlugin,
    RateWindow,
    Rendered,
    admit,
    fit_bytes,
    post_json,
    unknown_destination,
)
from yuqing.alerts.outbox import Outgoing, RateLimited, SendError
from yuqing.channel_config import DingTalkRobot
from yuqing.clock import Clock
from yuqing.config import AppConfig, Recipient
from yuqing.vocabulary import Channel

log = logging.getLogger(__name__)

DINGTALK_TEXT_BYTES = 20000  # content above this is refused
TITLE_CHARS = 64
THROTTLED, SECURITY, NO_TOKEN, STOPPED = 130101, 310000, 300001, 400102
THROTTLE_PAUSE = timedelta(minutes=10)
WECOM_COLOUR = re.compile(r"</?font[^>]*>")  # WeCom's <font color="warning">; scraped text never holds a "<" (md)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The sign query value DingTalk checks (already URL-encoded)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def dingtalk_markdown(title: str, text: str, mobiles: list[str]) -> str:
    """A markdown payload; @mobile mentions must also appear in the text for DingTalk to ring them."""
    tags = "\n\n" + " ".join(f"@{m}" for m in mobiles) if mobiles else ""
    room = DINGTALK_TEXT_BYTES - len(tags.encode("utf-8"))
    payload = {"msgtype": "markdown", "markdown": {"title": title[:TITLE_CHARS], "text": fit_bytes(text.rstrip(), room) + tags},
               "at": {"atMobiles": mobiles, "isAtAll": False}}
    return json.dumps(payload, ensure_ascii=False)


class DingTalkSender:
    """Posts to DingTalk robots, signed, at most per_minute per robot."""

    def __init__(self, robots: dict[str, DingTalkRobot], clock: Clock):
        self.robots = robots
        self.clock = clock
        self.windows: dict[str, RateWindow] = {}

    def url(self, robot: DingTalkRobot) -> str:
        """The webhook with access_token and, for a signed robot, timestamp and sign."""
        query = f"access_token={urllib.parse.quote(robot.access_token.get_secret_value())}"
        if robot.secret is not None:
            stamp = int(self.clock.now().timestamp() * 1000)
            query += f"&timestamp={stamp}&sign={dingtalk_sign(robot.secret.get_secret_value(), stamp)}"
        return f"{robot.base_url}?{query}"

    def send(self, message: Outgoing) -> str:
        robot_id = message.address
        robot = self.robots.get(robot_id)
        if robot is None:
            raise unknown_destination(PLUGIN, message)
        now = self.clock.now()
        window = admit(self.windows, robot_id, robot.per_minute, now, f"DingTalk robot {robot_id!r}")
        where = f"DingTalk robot {robot_id!r} ({robot.base_url})"
        _, reply = post_json(self.url(robot), message.body.encode("utf-8"), where, robot.timeout_seconds)
        code, errmsg = reply.get("errcode"), str(reply.get("errmsg", ""))[:200]
        if code == 0:
            log.info("DingTalk message %s posted by robot %s", message.id, robot_id)
            return f"errcode 0 {errmsg or 'ok'}"
        if code == THROTTLED:
            window.blocked_until = now + THROTTLE_PAUSE
            raise RateLimited(f"{where}: errcode 130101 (send too fast), paused ten minutes", now + THROTTLE_PAUSE)
        if code in (SECURITY, NO_TOKEN, STOPPED):
            window.rejected = (f"{where}: errcode {code}: {errmsg}; check channels.yaml dingtalk_robots.{robot_id} "
                               f"(access_token, secret and the robot's security settings), then restart")
            raise SendError(window.rejected, permanent=True)
        raise SendError(f"{where}: errcode {code}: {errmsg}")


class DingTalkPlugin(GroupChannelPlugin):
    """channels.yaml dingtalk_robots: group robots by id; a person names theirs in dingtalk_robot."""

    channel, section, label, group_field = Channel.DINGTALK, "dingtalk_robots", "钉钉群机器人", "dingtalk_robot"

    def secrets(self, cfg: AppConfig) -> list[str]:
        return [s.get_secret_value() for r in cfg.channels.dingtalk_robots.values()
                for s in (r.access_token, r.secret) if s is not None]

    def envelopes(self, cfg: AppConfig, people: list[Recipient], msg: Rendered) -> list[Envelope]:
        """One markdown message per robot (the WeCom markdown, neutralised the same way, without WeCom's colour
        tags), members @-ed by mobile."""
        text = WECOM_COLOUR.sub("", msg.markdown)
        return [Envelope(Channel.DINGTALK, robot_id, robot_id, msg.subject,
                         dingtalk_markdown(msg.subject, text, [str(p.mobile) for p in members if p.mobile]),
                         None, f"dingtalk:{robot_id}")
                for robot_id, members in self.groups(cfg, people).items()]

    def plain(self, cfg: AppConfig, people: list[Recipient], subject: str, text: str, key: str) -> list[Envelope]:
        out = []
        for robot_id in self.groups(cfg, people):
            body = json.dumps({"msgtype": "text", "text": {"content": fit_bytes(f"{subject}\n{text}", DINGTALK_TEXT_BYTES)}},
                              ensure_ascii=False)
            out.append(Envelope(Channel.DINGTALK, robot_id, robot_id, subject, body, None, f"dingtalk:{robot_id}"))
        return out

    def sender(self, cfg: AppConfig, clock: Clock) -> DingTalkSender:
        return DingTalkSender(dict(cfg.channels.dingtalk_robots), clock)


PLUGIN = DingTalkPlugin()

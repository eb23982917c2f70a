"""WeCom (企业微信) group robots: a markdown message per robot, people @-mentioned by userid or mobile.

The robot key is a secret: the outbox stores only the robot id, the key is read from config at send
time, and no error text or log line carries the webhook URL. WeCom answers HTTP 200 with an errcode:
0 ok, 45009 over 20 messages a minute (retry later), 93000 the key was rejected (permanent).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime

from yuqing.alerts.channels.base import (
    WINDOW,
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
from yuqing.channel_config import WeComRobot
from yuqing.clock import Clock
from yuqing.config import AppConfig, Recipient
from yuqing.vocabulary import Channel

log = logging.getLogger(__name__)

WECOM_OK, WECOM_RATE_LIMITED, WECOM_INVALID_KEY = 0, 45009, 93000
WECOM_MARKDOWN_BYTES = 4096
WECOM_TEXT_BYTES = 2048
MOBILE = re.compile(r"^\+?\d{6,15}$")


def wecom_markdown(content: str, userids: list[str]) -> str:
    """The robot's markdown payload: content cut to 4096 bytes, @userid mentions kept whole."""
    mentions = "\n" + " ".join(f"<@{u}>" for u in userids) if userids else ""
    room = WECOM_MARKDOWN_BYTES - len(mentions.encode("utf-8"))
    body = fit_bytes(content.rstrip(), room) + mentions
    return json.dumps({"msgtype": "markdown", "markdown": {"content": body}}, ensure_ascii=False)


def wecom_text(content: str, mobiles: list[str]) -> str:
    """A text payload that @-mentions people by mobile, which markdown messages cannot do."""
    text = {"content": fit_bytes(content.strip(), WECOM_TEXT_BYTES), "mentioned_mobile_list": mobiles}
    return json.dumps({"msgtype": "text", "text": text}, ensure_ascii=False)


class WeComSender:
    """Posts to WeCom group robots: at most per_minute per robot, errcode read from the body."""

    def __init__(self, robots: Mapping[str, WeComRobot], clock: Clock, timeout: float = 10.0):
        self.robots = dict(robots)
        self.clock = clock
        self.timeout = timeout
        self.windows: dict[str, RateWindow] = {}

    def send(self, message: Outgoing) -> str:
        """Post one robot message (body is the JSON payload) or raise SendError/RateLimited."""
        robot_id = message.address
        robot = self.robots.get(robot_id)
        if robot is None:
            raise unknown_destination(PLUGIN, message)
        now = self.clock.now()
        window = admit(self.windows, robot_id, robot.per_minute, now, f"WeCom robot {robot_id!r}")
        where = f"WeCom robot {robot_id!r} ({robot.base_url})"
        _, reply = post_json(f"{robot.base_url}?key={robot.key.get_secret_value()}", message.body.encode("utf-8"),
                             where, self.timeout)
        self._check(robot_id, window, reply, now)
        log.info("WeCom message %s posted by robot %s", message.id, robot_id)
        return f"errcode 0 {reply.get('errmsg', 'ok')}"

    def _check(self, robot_id: str, window: RateWindow, reply: dict, now: datetime) -> None:
        """Read WeCom's errcode: 0 ok, 45009 wait a minute, 93000 bad key (permanent), else retry."""
        code, errmsg = reply.get("errcode"), str(reply.get("errmsg", ""))[:200]
        if code == WECOM_OK:
            return
        if code == WECOM_RATE_LIMITED:
            window.blocked_until = now + WINDOW
            raise RateLimited(f"WeCom robot {robot_id!r}: errcode 45009 (api freq out of limit)", now + WINDOW)
        if code == WECOM_INVALID_KEY:
            window.rejected = (
                f"WeCom robot {robot_id!r}: errcode 93000, the webhook key was rejected (invalid webhook url). "
                f"Check the environment variable behind channels.yaml wecom_robots.{robot_id}.key, then restart.")
            raise SendError(window.rejected, permanent=True)
        raise SendError(f"WeCom robot {robot_id!r}: errcode {code}: {errmsg}")


class WeComRobotPlugin(GroupChannelPlugin):
    """channels.yaml wecom_robots: group robots by id; a person names the robot of their group."""

    channel, section, label, group_field = Channel.WECOM, "wecom_robots", "企业微信群机器人", "wecom_robot"

    def secrets(self, cfg: AppConfig) -> list[str]:
        return [robot.key.get_secret_value() for robot in cfg.channels.wecom_robots.values()]

    def envelopes(self, cfg: AppConfig, people: list[Recipient], msg: Rendered) -> list[Envelope]:
        """One markdown message per robot; people reached by mobile get one short text @-mention."""
        out = []
        for robot_id, members in self.groups(cfg, people).items():
            tags = [p.wecom_mention for p in members if p.wecom_mention]
            mobiles = [t for t in tags if MOBILE.match(t)]
            userids = [t for t in tags if not MOBILE.match(t)]
            out.append(Envelope(Channel.WECOM, robot_id, robot_id, msg.subject,
                                wecom_markdown(msg.markdown, userids), None, f"wecom:{robot_id}"))
            if mobiles and msg.mention_text:
                out.append(Envelope(Channel.WECOM, robot_id, robot_id, msg.subject,
                                    wecom_text(msg.mention_text, mobiles), None, f"wecom:{robot_id}:mention"))
        return out

    def plain(self, cfg: AppConfig, people: list[Recipient], subject: str, text: str, key: str) -> list[Envelope]:
        """A text message per robot (text, not markdown: a fallback carries another channel's words)."""
        robots = sorted(self.groups(cfg, people))
        return [Envelope(Channel.WECOM, r, r, subject, wecom_text(f"{subject}\n{text}", []), None, f"wecom:{r}")
                for r in robots]

    def sender(self, cfg: AppConfig, clock: Clock) -> WeComSender:
        return WeComSender(cfg.channels.wecom_robots, clock)


PLUGIN = WeComRobotPlugin()

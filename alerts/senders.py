"""Channel senders: e-mail over SMTP and WeCom group robots, each respecting its channel's limits.

WeCom robot keys are secrets: the outbox stores only the robot id, the key is read from
config at send time, and no error text or log line carries the webhook URL.
"""

from __future__ import annotations

import json
import logging
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from yuqing.alerts.outbox import Outgoing, RateLimited, Sender, SendError
from yuqing.clock import Clock
from yuqing.config import AppConfig, EmailChannel, WeComRobot
from yuqing.models import Channel

log = logging.getLogger(__name__)

WECOM_OK, WECOM_RATE_LIMITED, WECOM_INVALID_KEY = 0, 45009, 93000
WINDOW = timedelta(minutes=1)


# --- e-mail ----------------------------------------------------------------------------


def build_email(channel: EmailChannel, message: Outgoing, now: datetime) -> EmailMessage:
    """Plain text with an HTML alternative; the header names the outbox key for spotting resends."""
    mail = EmailMessage()
    mail["From"] = channel.sender
    mail["To"] = message.address
    mail["Subject"] = " ".join(message.subject.split())
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = make_msgid(idstring=str(message.id), domain=channel.sender.rpartition("@")[2] or None)
    mail["X-Yuqing-Key"] = message.dedup_key
    mail.set_content(message.body, charset="utf-8")
    if message.body_html:
        mail.add_alternative(message.body_html, subtype="html", charset="utf-8")
        if message.images:  # multipart/related: the HTML part and the pictures it shows by Content-ID
            html_part = mail.get_body(preferencelist=("html",))
            assert isinstance(html_part, EmailMessage)  # add_alternative made it one
            for image in message.images:
                html_part.add_related(image.data, maintype="image", subtype=image.subtype, cid=f"<{image.cid}>",
                                      filename=f"{image.cid}.{image.subtype}", disposition="inline")
    return mail


def _smtp_failure(exc: Exception) -> SendError:
    """Classify an SMTP failure: a 5xx refusal of the mailbox or message is permanent."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{rcpt}: {code} {msg!r}" for rcpt, (code, msg) in exc.recipients.items())
        return SendError(f"SMTP refused the recipient ({detail})", permanent=all(c >= 500 for c in codes))
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return SendError(f"SMTP login failed ({exc.smtp_code}); check channels.yaml email.username/password")
    if isinstance(exc, (smtplib.SMTPSenderRefused, smtplib.SMTPDataError)):
        return SendError(f"SMTP refused the message: {exc.smtp_code} {exc.smtp_error!r}",
                         permanent=exc.smtp_code >= 500)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return SendError("SMTP server timed out")
    return SendError(f"SMTP failed: {type(exc).__name__}: {exc}")


class EmailSender:
    """Sends one e-mail per message with smtplib: STARTTLS or SSL and login as configured."""

    def __init__(self, channel: EmailChannel, clock: Clock):
        self.channel = channel
        self.clock = clock

    def _connect(self) -> smtplib.SMTP:
        """An open, greeted, logged-in SMTP connection."""
        ch = self.channel
        hostname = socket.gethostname() or "localhost"
        if ch.ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(ch.host, ch.port, timeout=ch.timeout_seconds,
                                                  local_hostname=hostname,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(ch.host, ch.port, timeout=ch.timeout_seconds, local_hostname=hostname)
        try:
            if ch.starttls and not ch.ssl:
                smtp.starttls(context=ssl.create_default_context())
            if ch.username is not None and ch.password is not None:
                smtp.login(ch.username.get_secret_value(), ch.password.get_secret_value())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: Outgoing) -> None:
        """Deliver one e-mail or raise SendError."""
        mail = build_email(self.channel, message, self.clock.now())
        try:
            with self._connect() as smtp:
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise _smtp_failure(exc) from None
        log.info("e-mail %s sent to %s", message.id, message.address)


# --- WeCom group robots ------------------------------------------------------------------


@dataclass
class RobotWindow:
    """The robot's sends in the last rolling minute, and until when WeCom told us to wait."""

    sent: deque[datetime] = field(default_factory=deque)
    blocked_until: datetime | None = None
    key_rejected: str | None = None

    def wait_until(self, now: datetime, per_minute: int) -> datetime | None:
        """When the next send may go, or None if it may go now."""
        while self.sent and self.sent[0] <= now - WINDOW:
            self.sent.popleft()
        if self.blocked_until and self.blocked_until > now:
            return self.blocked_until
        if len(self.sent) >= per_minute:
            return self.sent[0] + WINDOW
        return None


class WeComSender:
    """Posts to WeCom group robots: at most per_minute per robot, errcode read from the body."""

    def __init__(self, robots: Mapping[str, WeComRobot], clock: Clock, timeout: float = 10.0):
        self.robots = dict(robots)
        self.clock = clock
        self.timeout = timeout
        self.windows: dict[str, RobotWindow] = {}

    def send(self, message: Outgoing) -> None:
        """Post one robot message (body is the JSON payload) or raise SendError/RateLimited."""
        robot_id = message.address
        robot = self.robots.get(robot_id)
        if robot is None:
            raise SendError(f"WeCom robot {robot_id!r} is not in channels.yaml wecom_robots", permanent=True)
        window = self.windows.setdefault(robot_id, RobotWindow())
        if window.key_rejected:
            raise SendError(window.key_rejected, permanent=True)
        now = self.clock.now()
        wait = window.wait_until(now, robot.per_minute)
        if wait is not None:
            raise RateLimited(f"WeCom robot {robot_id!r}: {robot.per_minute} messages per minute reached", wait)
        window.sent.append(now)
        reply = self._post(robot_id, robot, message.body.encode("utf-8"))
        self._check(robot_id, window, reply, now)
        log.info("WeCom message %s posted by robot %s", message.id, robot_id)

    def _post(self, robot_id: str, robot: WeComRobot, payload: bytes) -> dict:
        """POST to the webhook; errors name the robot and never the URL (it holds the key)."""
        url = f"{robot.base_url}?key={robot.key.get_secret_value()}"
        request = urllib.request.Request(url, data=payload, method="POST",
                                         headers={"Content-Type": "application/json; charset=utf-8"})
        where = f"WeCom robot {robot_id!r} ({robot.base_url})"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise SendError(f"{where}: HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            raise SendError(f"{where}: cannot connect ({exc.reason})") from None
        except TimeoutError:
            raise SendError(f"{where}: timed out after {self.timeout:g} s") from None
        except OSError as exc:
            raise SendError(f"{where}: {type(exc).__name__}") from None
        try:
            reply = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise SendError(f"{where}: reply is not JSON") from None
        if not isinstance(reply, dict):
            raise SendError(f"{where}: unexpected reply")
        return reply

    def _check(self, robot_id: str, window: RobotWindow, reply: dict, now: datetime) -> None:
        """Read WeCom's errcode: 0 ok, 45009 wait a minute, 93000 bad key (permanent), else retry."""
        code, errmsg = reply.get("errcode"), str(reply.get("errmsg", ""))[:200]
        if code == WECOM_OK:
            return
        if code == WECOM_RATE_LIMITED:
            window.blocked_until = now + WINDOW
            raise RateLimited(f"WeCom robot {robot_id!r}: errcode 45009 (api freq out of limit)", now + WINDOW)
        if code == WECOM_INVALID_KEY:
            window.key_rejected = (
                f"WeCom robot {robot_id!r}: errcode 93000, the webhook key was rejected (invalid webhook url). "
                f"Check the environment variable behind channels.yaml wecom_robots.{robot_id}.key, then restart.")
            raise SendError(window.key_rejected, permanent=True)
        raise SendError(f"WeCom robot {robot_id!r}: errcode {code}: {errmsg}")


def build_senders(cfg: AppConfig, clock: Clock) -> dict[str, Sender]:
    """One sender per configured channel, keyed by the outbox's channel names."""
    senders: dict[str, Sender] = {}
    if cfg.channels.email is not None:
        senders[Channel.EMAIL] = EmailSender(cfg.channels.email, clock)
    if cfg.channels.wecom_robots:
        senders[Channel.WECOM] = WeComSender(cfg.channels.wecom_robots, clock)
    return senders

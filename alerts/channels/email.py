"""E-mail over SMTP: one message per person, plain text with an HTML alternative and inline pictures."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from yuqing.alerts.channels.base import ChannelPlugin, Envelope, Rendered
from yuqing.alerts.outbox import Outgoing, SendError
from yuqing.channel_config import EmailChannel
from yuqing.clock import Clock
from yuqing.config import AppConfig, Recipient
from yuqing.vocabulary import Channel

log = logging.getLogger(__name__)


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


def smtp_failure(exc: Exception) -> SendError:
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

    def send(self, message: Outgoing) -> str:
        """Deliver one e-mail or raise SendError; returns what the server said."""
        mail = build_email(self.channel, message, self.clock.now())
        try:
            with self._connect() as smtp:
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise smtp_failure(exc) from None
        log.info("e-mail %s sent to %s", message.id, message.address)
        return "250 accepted"


class EmailPlugin(ChannelPlugin):
    """channels.yaml email: one SMTP server; people by their e-mail address."""

    channel, section, label = Channel.EMAIL, "email", "电子邮件"

    def secrets(self, cfg: AppConfig) -> list[str]:
        email = cfg.channels.email
        if email is None:
            return []
        return [s.get_secret_value() for s in (email.username, email.password) if s is not None]

    def reaches(self, cfg: AppConfig, person: Recipient) -> bool:
        return cfg.channels.email is not None and bool(person.email)

    def envelopes(self, cfg: AppConfig, people: list[Recipient], msg: Rendered) -> list[Envelope]:
        """One e-mail per person with an address."""
        return [Envelope(Channel.EMAIL, p.id, p.email, msg.subject, msg.text, msg.email_html or msg.html,
                         f"email:{p.id}", msg.images) for p in people if p.email and self.reaches(cfg, p)]

    def sender(self, cfg: AppConfig, clock: Clock) -> EmailSender:
        assert cfg.channels.email is not None
        return EmailSender(cfg.channels.email, clock)

"""The core half of every channel: its channels.yaml section, the recipient field that addresses it,
and how dispatch behaves (delivery:).

Core, so `load_config` validates every channel's fields in the one run that reports all problems;
the other half of a channel (rendering, sender, secrets, errors) is its plugin in alerts/channels/.
Adding a channel: its name in yuqing.vocabulary.Channel, its model, section and address field here,
its plugin module and one REGISTRY line there (tests/test_alerts_channels.py checks both halves
agree). Every secret field is a SecretStr written as ${ENV_VAR}.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from yuqing.vocabulary import Channel

PlanLevel = Literal["IV", "III", "II", "I"]
CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


SmsFact = Literal["level", "title", "incident", "hospital"]


def _sms_params() -> dict[str, SmsFact]:
    """An approved template's usual variables: ${level}, ${title}, ${incident}."""
    return {"level": "level", "title": "title", "incident": "incident"}


def _sms_levels() -> list[PlanLevel]:
    """SMS is for the two highest levels unless the plan says otherwise."""
    return ["II", "I"]


def _quiet_levels() -> list[Literal["IV"]]:
    return ["IV"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmailChannel(_Model):
    """One SMTP server; username and password are secrets."""

    host: str
    port: int = Field(25, ge=1, le=65535)
    sender: str = Field(description="From address.")
    starttls: bool = False
    ssl: bool = False
    username: SecretStr | None = None
    password: SecretStr | None = None
    timeout_seconds: int = Field(20, ge=1)


class WeComRobot(_Model):
    """A WeCom group robot; its webhook key is a secret."""

    key: SecretStr
    base_url: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    per_minute: int = Field(20, ge=1)


class WeComApp(_Model):
    """A WeCom self-built application: reaches a person by userid even when the group robot is muted."""

    corp_id: str = Field(min_length=1, description="企业ID (not a secret: it is in every WeCom URL).")
    secret: SecretStr = Field(description="The application's Secret, ${ENV_VAR}.")
    agent_id: int = Field(ge=1, description="The application's AgentId.")
    base_url: str = "https://qyapi.weixin.qq.com/cgi-bin"
    timeout_seconds: float = Field(default=10, gt=0)


class DingTalkRobot(_Model):
    """A DingTalk custom group robot with the 加签 (signed) security setting."""

    access_token: SecretStr = Field(description="The access_token= part of the robot's webhook URL, ${ENV_VAR}.")
    secret: SecretStr | None = Field(default=None, description="The SEC… signing secret, ${ENV_VAR}.")
    base_url: str = "https://oapi.dingtalk.com/robot/send"
    per_minute: int = Field(default=20, ge=1, description="DingTalk allows 20 messages a minute per robot.")
    timeout_seconds: float = Field(default=10, gt=0)


class AliyunSms(_Model):
    """Alibaba Cloud SMS (dysmsapi SendSms) with an approved signature and template."""

    provider: Literal["aliyun"] = "aliyun"
    access_key_id: SecretStr
    access_key_secret: SecretStr
    sign_name: str = Field(min_length=1, description="The approved SMS signature (短信签名).")
    template_code: str = Field(pattern=r"^SMS_\d+$", description="The approved template, e.g. SMS_123456789.")
    template_params: dict[str, SmsFact] = Field(
        default_factory=_sms_params,
        description="Template variable name → what it carries.")
    levels: list[PlanLevel] = Field(default_factory=_sms_levels, description="Plan levels that go by SMS.")
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    region_id: str = "cn-hangzhou"
    timeout_seconds: float = Field(default=10, gt=0)


class Webhook(_Model):
    """The hospital's own OA or duty system: a JSON POST signed with HMAC-SHA256."""

    url: str = Field(description="Endpoint; http:// only for a host on the hospital network.")
    secret: SecretStr = Field(description="Shared signing secret, ${ENV_VAR}.")
    timeout_seconds: float = Field(default=10, gt=0)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value


class QuietHours(_Model):
    """Hours in which level IV waits for one morning roll-up; levels III to I always go at once."""

    start: str = Field(description="Local time HH:MM, e.g. 22:00.")
    end: str = Field(description="Local time HH:MM, e.g. 07:30.")
    levels: list[Literal["IV"]] = Field(default_factory=_quiet_levels, description="Only IV may wait.")

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not CLOCK.match(value):
            raise ValueError(f"write a local time as HH:MM, got {value!r}")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are the same time")
        return self

    def bounds(self) -> tuple[time, time]:
        """Start and end as times of day."""
        return time.fromisoformat(self.start), time.fromisoformat(self.end)

    def contains(self, moment: time) -> bool:
        """Whether a local time of day falls in the quiet hours (which may span midnight)."""
        start, end = self.bounds()
        return start <= moment < end if start < end else moment >= start or moment < end


class Delivery(_Model):
    """How dispatch treats trouble on a channel, alert storms and quiet hours (channels.yaml delivery:)."""

    fallback_minutes: int = Field(default=10, ge=1, description="An alert still unsent this long also goes by the "
                                                          "level's next channel (e-mail ↔ WeCom), marked 备用渠道.")
    rate_limited_report_minutes: int = Field(default=15, ge=1, description="An alert held back by a channel's rate "
                                                                   "limit (WeCom 45009) this long is reported.")
    breaker_failures: int = Field(default=3, ge=1, description="Consecutive failures that pause a channel.")
    breaker_seconds: int = Field(default=60, ge=5, description="First pause; doubles while the channel keeps failing.")
    channel_pass_seconds: int = Field(default=20, ge=1, description="How long one dispatch pass sends on a channel.")
    lease_seconds: int = Field(default=30, ge=10, description="A message claimed by a dispatcher that died is retried "
                                                      "after this; renewed while a send is under way.")
    max_alert_age_hours: float | None = Field(default=24, gt=0, description="Mentions older than this open no "
                                                                    "incident alerts (a backfill pages nobody).")
    rollup_threshold: int = Field(default=4, ge=2, description="Incidents opened in one pass from which each recipient "
                                                       "gets one roll-up per channel instead of one alert each.")
    quiet_hours: QuietHours | None = None


class ChannelSections(_Model):
    """channels.yaml: one section per channel (config.Channels adds recipients and groups)."""

    email: EmailChannel | None = None
    wecom_robots: dict[str, WeComRobot] = Field(default_factory=dict)
    wecom_app: WeComApp | None = None
    dingtalk_robots: dict[str, DingTalkRobot] = Field(default_factory=dict)
    sms: AliyunSms | None = None
    webhooks: dict[str, Webhook] = Field(default_factory=dict)
    delivery: Delivery = Delivery()


class RecipientAddresses(_Model):
    """How each channel reaches one person (config.Recipient adds id, name and role)."""

    email: str | None = None
    wecom_robot: str | None = Field(default=None, description="Robot id this person's group is reached by.")
    wecom_mention: str | None = Field(default=None, description="Mobile or userid to @ in the robot message.")
    wecom_userid: str | None = Field(default=None, description="WeCom userid for application messages (wecom_app).")
    mobile: str | None = Field(default=None, pattern=r"^\+?\d{6,15}$", description="Mobile for SMS and DingTalk @.")
    dingtalk_robot: str | None = Field(default=None, description="DingTalk robot id this person's group is reached by.")
    webhook: str | None = Field(default=None, description="Webhook id (OA or duty system) this person is reached through.")


CHANNEL_SECTIONS: dict[str, str] = {Channel.EMAIL: "email", Channel.WECOM: "wecom_robots", Channel.WECOM_APP: "wecom_app",
                                    Channel.DINGTALK: "dingtalk_robots", Channel.SMS: "sms", Channel.WEBHOOK: "webhooks"}
"""The channels.yaml section each channel needs (its plugin's `section`)."""

RECIPIENT_REFERENCES: dict[str, tuple[str, str]] = {
    "wecom_robot": ("wecom_robots", "robot"), "dingtalk_robot": ("dingtalk_robots", "dingtalk robot"),
    "webhook": ("webhooks", "webhook")}
"""Recipient fields that name an entry of a section, checked by check-config."""

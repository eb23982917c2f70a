"""The words the store and config use for states and channels, as enums (no dependencies: config, the
store and every stage can import them)."""

from __future__ import annotations

from enum import StrEnum


class IncidentStatus(StrEnum):
    """Where an incident stands: waiting for someone, in hand, or over."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    """How an incident was closed."""

    RESOLVED = "resolved"
    FALSE_ALARM = "false_alarm"


class MessageStatus(StrEnum):
    """Where an outbox message stands."""

    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"  # gave up after its retries; `yuqing outbox requeue` puts it back
    CANCELLED = "cancelled"  # its incident was closed as a false alarm before it went out


class Channel(StrEnum):
    """How people are reached (one plugin per channel in alerts/channels/, listed in its REGISTRY)."""

    EMAIL = "email"
    WECOM = "wecom"  # WeCom group robots
    WECOM_APP = "wecom_app"  # WeCom application messages to people by userid
    DINGTALK = "dingtalk"  # DingTalk custom group robots, signed
    SMS = "sms"  # Alibaba Cloud SMS, for the plan's highest levels
    WEBHOOK = "webhook"  # the hospital's own OA or duty system, HMAC-signed JSON


class Verdict(StrEnum):
    """What a person said about a mention's judgement."""

    CRISIS = "crisis"
    NOT_CRISIS = "not_crisis"
    NOT_ABOUT_US = "not_about_us"
    CATEGORY = "category"


class Role(StrEnum):
    """What a console account may do: read (leadership), act on incidents and mentions (publicity
    office on duty), or everything including the outbox (IT)."""

    VIEWER = "viewer"
    DUTY = "duty"
    ADMIN = "admin"

    @property
    def can_act(self) -> bool:
        """Acknowledge, note, tick the checklist, correct mentions."""
        return self in (Role.DUTY, Role.ADMIN)

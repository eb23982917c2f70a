"""Channel senders, built from the plugin registry (alerts/channels/): one sender per configured channel.

The e-mail and WeCom robot senders live in their plugins; their names stay importable from here.
"""

from __future__ import annotations

from yuqing.alerts.channels import REGISTRY
from yuqing.alerts.channels.base import WINDOW
from yuqing.alerts.channels.email import EmailSender, build_email
from yuqing.alerts.channels.email import smtp_failure as _smtp_failure
from yuqing.alerts.channels.wecom import WECOM_INVALID_KEY, WECOM_OK, WECOM_RATE_LIMITED, RobotWindow, WeComSender
from yuqing.alerts.outbox import Sender
from yuqing.clock import Clock
from yuqing.config import AppConfig

__all__ = ["WINDOW", "WECOM_INVALID_KEY", "WECOM_OK", "WECOM_RATE_LIMITED", "EmailSender", "RobotWindow", "SenderSet",
           "WeComSender", "_smtp_failure", "build_email", "build_senders"]


class SenderSet(dict[str, Sender]):
    """The senders by channel name, and what dispatch remembers between passes about each channel's
    health (its circuit breaker), so one process pauses a failing channel across passes."""

    def __init__(self) -> None:
        super().__init__()
        self.health: dict[str, object] = {}
        self.busy: set[str] = set()


def build_senders(cfg: AppConfig, clock: Clock) -> SenderSet:
    """One sender per configured channel, keyed by the outbox's channel names."""
    senders = SenderSet()
    for channel, plugin in REGISTRY.items():
        if plugin.configured(cfg):
            senders[channel] = plugin.sender(cfg, clock)
    return senders

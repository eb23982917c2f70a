"""Channel senders, built from the plugin registry (alerts/channels/): one sender per configured channel."""

from __future__ import annotations

from yuqing.alerts.channels import REGISTRY
from yuqing.alerts.outbox import Sender
from yuqing.clock import Clock
from yuqing.config import AppConfig


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

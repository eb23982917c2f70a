"""`yuqing channels test`: one test message through each configured channel, straight to the service
(not through the outbox), and what the service answered."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from yuqing.alerts.channels import REGISTRY
from yuqing.alerts.outbox import Outgoing, SendError, scrub, secrets_of
from yuqing.clock import Clock
from yuqing.config import AppConfig
from yuqing.vocabulary import Channel


@dataclass(frozen=True)
class ProbeResult:
    """One test message: where it went and what the channel said."""

    channel: str
    address: str
    ok: bool
    answer: str

    def __str__(self) -> str:
        return f"{self.channel:<10} {self.address:<24} {'OK ' if self.ok else 'FAIL'} {self.answer}"


def probe_channels(cfg: AppConfig, clock: Clock, names: Iterable[str] = ()) -> list[ProbeResult]:
    """Send a test message on each named (default: every configured) channel; ValueError for a name that
    is unknown or not configured."""
    wanted = list(names) or [c.value for c, p in REGISTRY.items() if p.configured(cfg)]
    unknown = [n for n in wanted if n not in {c.value for c in Channel}]
    if unknown:
        raise ValueError(f"unknown channel(s) {', '.join(unknown)} (known: {', '.join(c.value for c in Channel)})")
    missing = [n for n in wanted if not REGISTRY[Channel(n)].configured(cfg)]
    if missing:
        raise ValueError(f"not configured in channels.yaml: {', '.join(missing)}")
    now = clock.now()
    subject = f"【yuqing 渠道测试】{cfg.hospital.name}"
    text = f"这是一条测试消息，发送于 {now:%Y-%m-%d %H:%M} UTC，收到即说明此渠道可用，无需处理。"
    results = []
    for name in wanted:
        plugin = REGISTRY[Channel(name)]
        envelopes = plugin.plain(cfg, plugin.test_people(cfg), subject, text, "channels-test")
        if not envelopes:
            results.append(ProbeResult(name, "-", False, "nobody in recipients has an address on this channel"))
            continue
        sender = plugin.sender(cfg, clock)
        for n, env in enumerate(envelopes):
            message = Outgoing(id=0, dedup_key=f"channels-test:{now:%Y%m%d%H%M%S}:{env.suffix}:{n}", channel=name,
                               recipient=env.recipient, address=env.address, purpose="test", subject=env.subject,
                               body=env.body, body_html=env.body_html, attempts=0)
            try:
                answer = sender.send(message) or "accepted"
                results.append(ProbeResult(name, env.address, True, answer))
            except SendError as exc:
                kind = "permanent" if exc.permanent else "retry later"
                results.append(ProbeResult(name, env.address, False, f"{scrub(str(exc), secrets_of(cfg))} ({kind})"))
    return results

"""Benchmark: one hung channel must not delay another. An SMTP server that accepts and never answers,
and a WeCom application endpoint that answers at once, both on 127.0.0.1.

ALERTS alerts are queued, each as one e-mail and one WeCom application message (interleaved, as the
plan queues them). Measured: how long after dispatch starts the last WeCom message arrives, and how
many e-mail connections the hung server saw.
- yuqing: `yuqing.alerts.outbox.dispatch` (each channel on its own thread, circuit breaker on).
- baseline: the same claim → send → record steps in one loop in due order, as dispatch ran before
  (every message waits behind the e-mail ahead of it timing out).

Run: ``.venv/bin/python bench/bench_dispatch.py [--alerts 30] [--smtp-timeout 1]`` (about a minute).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.channels_support import CHANNEL_SECRETS, channels_yaml, started_peers, write_channels
from tests.conftest import write_config_dir
from yuqing.alerts.channels.base import Rendered
from yuqing.alerts.messages import enqueue_envelopes, route
from yuqing.alerts.outbox import DispatchReport, RetryPolicy, _claim, _due_ids, _record, _send, dispatch
from yuqing.alerts.senders import build_senders
from yuqing.app.demo.channel_servers import HungPeer
from yuqing.clock import SystemClock
from yuqing.config import AppConfig, load_config
from yuqing.store import Store


def _setup(workdir: Path, peers: object, hung_port: int, smtp_timeout: int) -> AppConfig:
    config_dir = write_config_dir(workdir, operators=["it-oncall"])
    channels = channels_yaml(peers)  # type: ignore[arg-type]
    channels["email"].update({"port": hung_port, "timeout_seconds": smtp_timeout})
    write_channels(config_dir, channels, plan_channels=["email", "wecom_app"])
    return load_config(config_dir, env=CHANNEL_SECRETS)


def _queue(store: Store, cfg: AppConfig, alerts: int) -> None:
    now = SystemClock().now()
    with store.session() as sess:
        for i in range(alerts):
            msg = Rendered(f"【舆情预警】第 {i} 起", "正文", "<p>正文</p>", "正文", level="III")
            enqueue_envelopes(sess, now, f"bench:{i}", "alert", route(cfg, ["vp"], ["email", "wecom_app"], msg))


def _sequential(store: Store, cfg: AppConfig, senders: object) -> None:
    """Dispatch as it ran before: one message at a time, oldest first, all channels in one loop."""
    clock, policy, report = SystemClock(), RetryPolicy(), DispatchReport()
    due = sorted(i for ids in _due_ids(store, clock.now(), 10_000).values() for i in ids)
    for message_id in due:
        message = _claim(store, message_id, clock.now(), policy)
        if message is not None:
            _record(store, cfg, message, _send(senders, message), clock.now(), policy, report)  # type: ignore[arg-type]


def run(mode: str, alerts: int, smtp_timeout: int) -> tuple[float, int, int]:
    """Seconds from dispatch start to the last WeCom message, WeCom messages delivered, e-mail attempts."""
    with tempfile.TemporaryDirectory() as tmp, started_peers(SystemClock(), per_minute=10_000) as peers, \
            HungPeer() as hung:
        cfg = _setup(Path(tmp), peers, hung.port, smtp_timeout)
        store = Store.migrated(cfg.database_url)
        _queue(store, cfg, alerts)
        senders = build_senders(cfg, SystemClock())
        start = time.monotonic()
        if mode == "yuqing":
            dispatch(store, cfg, SystemClock(), senders)
        else:
            _sequential(store, cfg, senders)
        sends = [t for t, (method, path, _, _) in zip(peers.app.arrived, peers.app.requests, strict=True)
                 if "message/send" in path]
        store.dispose()
        return (max(sends) - start if sends else float("nan")), len(sends), len(hung.accepted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=30)
    parser.add_argument("--smtp-timeout", type=int, default=1, help="e-mail timeout_seconds (the default config: 20)")
    args = parser.parse_args()
    logging.disable(logging.ERROR)  # the failing e-mails log one line each; the table is the result
    print(f"{args.alerts} alerts, each one e-mail (hung SMTP, timeout {args.smtp_timeout} s) + one WeCom app message")
    print(f"{'mode':<10} {'last WeCom message after':>26} {'WeCom delivered':>16} {'e-mail attempts':>16}")
    for mode in ("yuqing", "baseline"):
        last, delivered, attempts = run(mode, args.alerts, args.smtp_timeout)
        print(f"{mode:<10} {last:>24.2f} s {delivered:>16} {attempts:>16}")


if __name__ == "__main__":
    main()

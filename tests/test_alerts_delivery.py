"""One channel's trouble never delays another: channels send on their own threads, a failing channel is
paused by its circuit breaker, overdue alerts go by the level's next channel, a long rate limit is
reported, operators get one notice per failing channel, and a crashed dispatcher's claim runs out in
a minute."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yuqing.alerts.channels.base import FALLBACK_MARK, Rendered
from yuqing.alerts.incidents import sync_incidents
from yuqing.alerts.messages import enqueue_envelopes, route
from yuqing.alerts.outbox import RetryPolicy, SendError, _claim, dispatch
from yuqing.alerts.senders import build_senders
from yuqing.app.demo.channel_servers import HungPeer
from yuqing.clock import ManualClock
from yuqing.config import AppConfig
from yuqing.store import Store

from .alerts_support import cfg, make_event, outbox, senders, smtp, wecom  # noqa: F401 - fixtures
from .channels_support import Peers, all_channels_config, channels_yaml, peers

__all__ = ["peers"]


def _alert(store: Store, cfg: AppConfig, clock: ManualClock, channels: list[str], key: str = "a",
           ids: list[str] | None = None) -> int:
    msg = Rendered("【舆情预警】测试", "正文", "<p>正文</p>", "正文", "请确认", level="III")
    with store.session() as sess:
        return len(enqueue_envelopes(sess, clock.now(), key, "alert", route(cfg, ids or ["crisis-group"], channels, msg)))


def test_a_hung_smtp_server_does_not_delay_wecom_and_its_channel_is_paused(tmp_path: Path, peers: Peers, store: Store,
                                                                          clock: ManualClock) -> None:
    with HungPeer() as hung:
        email = {**channels_yaml(peers)["email"], "port": hung.port, "timeout_seconds": 2}
        cfg = all_channels_config(tmp_path, peers, email=email,
                                  delivery={"breaker_failures": 2, "breaker_seconds": 60})
        senders = build_senders(cfg, clock)
        assert _alert(store, cfg, clock, ["email", "wecom_app"]) == 6  # three e-mails, three app messages
        report = dispatch(store, cfg, clock, senders)
        assert len(report.sent) == 3 and len(report.retried) == 2  # the third e-mail waits: the breaker opened
        assert len(hung.accepted) == 2 and len(peers.app.arrived) >= 4  # gettoken + three sends
        # every WeCom message arrived before the first hung e-mail even gave up
        assert max(peers.app.arrived) < min(hung.closed)
        again = dispatch(store, cfg, clock, senders)
        assert again.paused == ["email"] and len(hung.accepted) == 2  # paused: no new connection
        notices = outbox(store, purpose="operator")
        assert notices and all(n.dedup_key.startswith("channel:email:trouble:") for n in notices)
        assert "已暂停至" in notices[0].body
        clock.advance(seconds=61)  # the pause is over: one message is let through, fails, pause doubles
        third = dispatch(store, cfg, clock, senders)
        assert len(third.retried) == 1 and len(hung.accepted) == 3
        assert senders.health["email"].pause.total_seconds() == 120


def test_an_alert_unsent_too_long_also_goes_by_the_levels_next_channel(store: Store, clock: ManualClock, cfg: AppConfig,
                                                                       senders: Any, smtp: Any, wecom: Any) -> None:
    make_event(store, clock)  # level IV: publicity on wecom and email
    [change] = sync_incidents(store, cfg, clock)
    wecom.stop()
    first = dispatch(store, cfg, clock, senders)
    assert len(first.sent) == 2 and len(first.retried) == 2  # the e-mails went, the robot markdown + @mention failed
    clock.advance(minutes=11)
    second = dispatch(store, cfg, clock, senders)
    assert second.fallbacks == 2  # one e-mail per person behind the robot
    backups = [m for m in smtp.messages if m["Subject"].startswith(FALLBACK_MARK)]
    assert sorted(m["To"] for m in backups) == ["liuyang@hospital.example", "zhangmin@hospital.example"]
    assert "企业微信群机器人已 11 分钟未能送达" in backups[0].get_body(("plain",)).get_content()
    clock.advance(minutes=30)
    assert dispatch(store, cfg, clock, senders).fallbacks == 0  # once per message
    assert all(r.incident_id == change.incident_id for r in outbox(store) if r.purpose == "alert")


def test_email_down_falls_back_to_wecom_as_a_text_message(store: Store, clock: ManualClock, cfg: AppConfig,
                                                          senders: Any, smtp: Any, wecom: Any) -> None:
    make_event(store, clock)
    sync_incidents(store, cfg, clock)
    smtp.stop()
    dispatch(store, cfg, clock, senders)
    clock.advance(minutes=11)
    assert dispatch(store, cfg, clock, senders).fallbacks == 1  # both people sit behind one robot: one message
    texts = [p["text"]["content"] for p in wecom.messages if p["msgtype"] == "text"]
    texts = [t for t in texts if t.startswith(FALLBACK_MARK)]
    assert len(texts) == 1 and "电子邮件已 11 分钟未能送达" in texts[0]


def test_45009_for_too_long_is_reported_once_for_the_channel(store: Store, clock: ManualClock, cfg: AppConfig,
                                                             senders: Any, wecom: Any) -> None:
    wecom.answer = lambda path, body: {"errcode": 45009, "errmsg": "api freq out of limit"}
    for key in ("a", "b", "c"):
        _alert(store, cfg, clock, ["wecom"], key=key, ids=["publicity"])
    assert len(dispatch(store, cfg, clock, senders).deferred) == 6  # markdown + @mobile text each
    assert outbox(store, purpose="operator") == []
    for _ in range(4):
        clock.advance(minutes=5)
        dispatch(store, cfg, clock, senders)
    [notice] = outbox(store, purpose="operator")
    assert "被限流超时的消息" in notice.body and "45009" in notice.body


def test_dead_letters_of_one_channel_make_one_notice(store: Store, clock: ManualClock, cfg: AppConfig, smtp: Any) -> None:
    class Refusing:
        def send(self, message: Any) -> None:
            raise SendError("SMTP refused the recipient (550)", permanent=True)

    for key in ("a", "b", "c"):
        _alert(store, cfg, clock, ["email"], key=key)
    report = dispatch(store, cfg, clock, {"email": Refusing()})
    assert len(report.dead) == 9
    [notice] = outbox(store, purpose="operator")
    assert "yuqing outbox requeue " + " ".join(str(i) for i in report.dead) in notice.body


def test_a_message_claimed_by_a_crashed_dispatcher_goes_within_a_minute(store: Store, clock: ManualClock, cfg: AppConfig,
                                                                        senders: Any, smtp: Any) -> None:
    _alert(store, cfg, clock, ["email"], ids=["vp"])
    assert _claim(store, 1, clock.now(), RetryPolicy(lease_seconds=cfg.channels.delivery.lease_seconds))  # then dies
    assert dispatch(store, cfg, clock, senders).sent == []
    clock.advance(seconds=29)
    assert dispatch(store, cfg, clock, senders).sent == []  # still leased
    clock.advance(seconds=1)  # lease (30 s) + the daemon's dispatch interval (30 s): within a minute
    assert dispatch(store, cfg, clock, senders).sent == [1]

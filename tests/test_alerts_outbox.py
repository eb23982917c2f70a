"""The outbox: enqueue with the change, retry with backoff, dead letters, and no loss on a crash."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

import yuqing.alerts.outbox as outbox_module
from yuqing.alerts.outbox import (
    RetryPolicy,
    SendError,
    dispatch,
    enqueue,
    list_dead_letters,
    requeue_dead,
    requeue_dead_letters,
)
from yuqing.models import AuditEntry, OutboxMessage

from .alerts_support import cfg, outbox, senders, smtp, wecom  # noqa: F401
from .conftest import SECRETS


def mail(sess, now, key="k1", address="zhangmin@hospital.example", **kw):
    fields = dict(dedup_key=key, channel="email", recipient="duty-officer", address=address, purpose="alert",
                  subject="【舆情预警 Ⅲ级（较大）】测试", body="正文", body_html="<p>正文</p>")
    return enqueue(sess, now, **{**fields, **kw})


class Crash(BaseException):
    """Stands for the process dying (kill -9, power cut) at a chosen point."""


def test_enqueue_is_idempotent_and_transactional(store, clock):
    with store.session() as sess:
        assert mail(sess, clock.now()) is not None
        assert mail(sess, clock.now()) is None  # same key in the same transaction
    with store.session() as sess:
        assert mail(sess, clock.now()) is None  # and in a later one
    with pytest.raises(RuntimeError):
        with store.session() as sess:
            mail(sess, clock.now(), key="k2")
            raise RuntimeError("the incident change failed")
    assert [r.dedup_key for r in outbox(store)] == ["k1"]


def test_email_is_utf8_with_html_alternative_and_login(store, clock, cfg, senders, smtp):
    with store.session() as sess:
        mail(sess, clock.now())
    assert dispatch(store, cfg, clock, senders).sent == [1]
    [msg] = smtp.messages
    assert msg["Subject"] == "【舆情预警 Ⅲ级（较大）】测试"
    assert msg["To"] == "zhangmin@hospital.example" and msg["X-Yuqing-Key"] == "k1"
    assert msg.get_body(("plain",)).get_content().strip() == "正文"
    assert msg.get_body(("html",)).get_content().strip() == "<p>正文</p>"
    assert outbox(store)[0].status == "sent" and outbox(store)[0].sent_at == clock.now()


def test_smtp_down_retries_with_backoff_then_delivers_once(store, clock, cfg, senders, smtp):
    with store.session() as sess:
        mail(sess, clock.now())
    smtp.stop()
    report = dispatch(store, cfg, clock, senders)
    assert report.retried == [1] and not report.sent
    row = outbox(store)[0]
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at == clock.now() + timedelta(seconds=30)
    assert "SMTP" in row.last_error
    assert dispatch(store, cfg, clock, senders).retried == []  # not due yet: no hammering

    clock.advance(seconds=30)
    dispatch(store, cfg, clock, senders)
    row = outbox(store)[0]
    assert row.attempts == 2 and row.next_attempt_at == clock.now() + timedelta(seconds=60)

    smtp.start()
    clock.advance(seconds=60)
    assert dispatch(store, cfg, clock, senders).sent == [1]
    assert len(smtp.messages) == 1 and outbox(store)[0].status == "sent"
    clock.advance(hours=1)
    assert dispatch(store, cfg, clock, senders).sent == []
    assert len(smtp.messages) == 1


def test_backoff_doubles_up_to_a_cap():
    policy = RetryPolicy()
    assert [policy.backoff(n).total_seconds() for n in range(1, 10)] == [
        30, 60, 120, 240, 480, 960, 1800, 1800, 1800]


def test_dead_letter_after_max_attempts_tells_operators(store, clock, cfg, senders, smtp):
    policy = RetryPolicy(max_attempts=3)
    with store.session() as sess:
        mail(sess, clock.now(), address="nobody@127.0.0.1")
    smtp.stop()
    for _ in range(3):
        dispatch(store, cfg, clock, senders, policy)
        clock.advance(hours=1)
    row = outbox(store, dedup_key="k1")[0]
    assert row.status == "dead" and row.attempts == 3 and "SMTP" in row.last_error
    [dead] = list_dead_letters(store)
    assert dead.id == row.id and dead.last_error == row.last_error
    with store.session() as sess:
        entry = sess.scalar(select(AuditEntry).where(AuditEntry.action == "outbox.dead"))
        assert entry.target == f"outbox:{row.id}" and entry.detail["attempts"] == 3
    notice = outbox(store, purpose="operator")
    assert [(n.channel, n.address) for n in notice] == [("email", "it@hospital.example")]
    assert f"yuqing outbox requeue {row.id}" in notice[0].body

    smtp.start()
    assert requeue_dead_letters(store, clock, ids=[999]) == []
    assert requeue_dead(store, clock, [row.id], by="孙强") == 1
    assert outbox(store, dedup_key="k1")[0].attempts == 0
    report = dispatch(store, cfg, clock, senders, policy)
    assert row.id in report.sent
    assert {m["To"] for m in smtp.messages} == {"nobody@127.0.0.1", "it@hospital.example"}


def test_permanent_refusal_is_dead_at_once(store, clock, cfg, smtp):
    class Refusing:
        def send(self, message):
            raise SendError("SMTP refused the recipient (550)", permanent=True)

    with store.session() as sess:
        mail(sess, clock.now())
    report = dispatch(store, cfg, clock, {"email": Refusing()})
    assert report.dead == [1]
    assert outbox(store, dedup_key="k1")[0].attempts == 1


def test_wrong_smtp_password_is_retried_and_never_stored(store, clock, cfg, smtp):
    from yuqing.alerts.senders import build_senders

    wrong = cfg.channels.email.model_copy(update={"password": type(cfg.channels.email.password)("wrong-pass-77")})
    bad_cfg = cfg.model_copy(update={"channels": cfg.channels.model_copy(update={"email": wrong})})
    with store.session() as sess:
        mail(sess, clock.now())
    report = dispatch(store, bad_cfg, clock, build_senders(bad_cfg, clock))
    assert report.retried == [1]
    row = outbox(store)[0]
    assert "login failed" in row.last_error and "wrong-pass-77" not in row.last_error
    assert SECRETS["YUQING_SMTP_PASSWORD"] not in row.last_error


def test_crash_between_sends_loses_nothing(store, clock, cfg, senders, smtp):
    with store.session() as sess:
        for i in range(3):
            mail(sess, clock.now(), key=f"k{i}", address=f"p{i}@hospital.example")
    real = senders["email"]

    class DiesOnSecond:
        calls = 0

        def send(self, message):
            DiesOnSecond.calls += 1
            if DiesOnSecond.calls == 2:
                raise Crash()
            real.send(message)

    with pytest.raises(Crash):
        dispatch(store, cfg, clock, {"email": DiesOnSecond()})
    assert [r.status for r in outbox(store)] == ["sent", "pending", "pending"]

    # the restarted daemon: the crashed message is leased for a while, then sent; nothing is lost
    assert dispatch(store, cfg, clock, senders).sent == [3]
    clock.advance(seconds=RetryPolicy().lease_seconds)
    assert dispatch(store, cfg, clock, senders).sent == [2]
    assert sorted(m["To"] for m in smtp.messages) == [f"p{i}@hospital.example" for i in range(3)]
    assert all(r.status == "sent" for r in outbox(store))


def test_crash_after_send_before_mark_resends_not_loses(store, clock, cfg, senders, smtp, monkeypatch):
    with store.session() as sess:
        mail(sess, clock.now())
    real_mark = outbox_module._mark_sent

    def crash_once(*args, **kwargs):
        monkeypatch.setattr(outbox_module, "_mark_sent", real_mark)
        raise Crash()

    monkeypatch.setattr(outbox_module, "_mark_sent", crash_once)
    with pytest.raises(Crash):
        dispatch(store, cfg, clock, senders)
    assert len(smtp.messages) == 1 and outbox(store)[0].status == "pending"
    clock.advance(seconds=RetryPolicy().lease_seconds)
    assert dispatch(store, cfg, clock, senders).sent == [1]
    # at-least-once: delivered twice, both copies carry the same key so people can tell
    assert [m["X-Yuqing-Key"] for m in smtp.messages] == ["k1", "k1"]


def test_unexpected_sender_error_is_a_retry(store, clock, cfg, smtp):
    class Buggy:
        def send(self, message):
            raise ValueError("boom")

    with store.session() as sess:
        mail(sess, clock.now())
    assert dispatch(store, cfg, clock, {"email": Buggy()}).retried == [1]
    row = outbox(store)[0]
    assert row.status == "pending" and row.attempts == 1 and "ValueError: boom" in row.last_error


def test_two_dispatchers_never_send_the_same_message(store, clock, cfg, senders, smtp):
    with store.session() as sess:
        mail(sess, clock.now())
    claimed = outbox_module._claim(store, 1, clock.now(), RetryPolicy())
    assert claimed is not None
    assert outbox_module._claim(store, 1, clock.now(), RetryPolicy()) is None
    assert dispatch(store, cfg, clock, senders).sent == []
    with store.session() as sess:
        assert sess.scalar(select(OutboxMessage.status)) == "pending"


def test_starttls_required_means_no_clear_text_fallback(store, clock, cfg, smtp):
    from yuqing.alerts.senders import build_senders

    tls_cfg = cfg.model_copy(update={"channels": cfg.channels.model_copy(
        update={"email": cfg.channels.email.model_copy(update={"starttls": True})})})
    with store.session() as sess:
        mail(sess, clock.now())
    assert dispatch(store, tls_cfg, clock, build_senders(tls_cfg, clock)).retried == [1]
    assert "STARTTLS" in outbox(store)[0].last_error
    assert smtp.messages == []  # the local server offers no TLS, so nothing went out in clear text

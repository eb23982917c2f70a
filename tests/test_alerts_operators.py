"""Source health: one operator notice per failing spell, one on recovery."""

from __future__ import annotations

from datetime import timedelta

from yuqing.alerts.operators import check_source_health
from yuqing.alerts.outbox import dispatch
from yuqing.models import SourceState

from .alerts_support import add_sources, cfg, outbox, senders, smtp, wecom  # noqa: F401


def fail(store, clock, source_id: str, since_minutes: int) -> None:
    with store.session() as sess:
        state = sess.get(SourceState, source_id)
        state.failing_since = clock.now() - timedelta(minutes=since_minutes)
        state.consecutive_failures = 9
        state.last_error = "HTTP 503 <html>busy</html>"
        state.last_success_at = state.failing_since - timedelta(minutes=15)


def recover(store, clock, source_id: str) -> None:
    with store.session() as sess:
        state = sess.get(SourceState, source_id)
        state.failing_since, state.consecutive_failures, state.last_success_at = None, 0, clock.now()


def test_one_notice_per_spell_and_one_on_recovery(store, clock, cfg, senders, smtp):
    add_sources(store)
    fail(store, clock, "jiangcheng-daily", 300)  # 5 h: below the 6 h threshold
    assert check_source_health(store, cfg, clock) == []

    clock.advance(hours=1, minutes=1)
    notices = check_source_health(store, cfg, clock)
    assert [(n.source_id, n.kind) for n in notices] == [("jiangcheng-daily", "failing")]
    assert check_source_health(store, cfg, clock) == []
    clock.advance(hours=2)
    assert check_source_health(store, cfg, clock) == []
    dispatch(store, cfg, clock, senders)
    [mail] = smtp.messages
    assert mail["To"] == "it@hospital.example" and "江城日报 RSS" in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    assert "连续失败次数：9" in body and "HTTP 503" in body
    assert "<html>" not in mail.get_body(("html",)).get_content()

    recover(store, clock, "jiangcheng-daily")
    assert [n.kind for n in check_source_health(store, cfg, clock)] == ["recovered"]
    assert check_source_health(store, cfg, clock) == []

    clock.advance(days=1)
    fail(store, clock, "jiangcheng-daily", 400)  # a new spell
    assert [n.kind for n in check_source_health(store, cfg, clock)] == ["failing"]
    assert len(outbox(store, purpose="operator")) == 3


def test_disabled_sources_are_not_reported(store, clock, cfg):
    with store.session() as sess:
        sess.add(SourceState(id="patient-reviews", kind="reviews", name="患者点评", url="https://x.example/",
                             tier=4, failing_since=clock.now() - timedelta(days=2)))
    assert check_source_health(store, cfg, clock) == []

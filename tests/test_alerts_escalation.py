"""Escalation: past the deadline the next tier is told, again every repeat_minutes, until someone acknowledges."""

from __future__ import annotations

from yuqing.alerts.escalation import check_escalations
from yuqing.alerts.incidents import acknowledge, sync_incidents
from yuqing.alerts.outbox import dispatch
from yuqing.models import Incident

from .alerts_support import cfg, make_event, outbox, payload, senders, smtp, wecom  # noqa: F401


def level_three(store, clock, cfg) -> None:
    """A Ⅲ级 incident: ack within 30 min, escalate to vice-president (陈立), repeat every 30 min."""
    make_event(store, clock, negative=6, mentions=6)
    assert sync_incidents(store, cfg, clock)[0].to_level == "III"


def escalations(store) -> list:
    return [r for r in outbox(store) if r.purpose == "escalation"]


def test_escalation_after_deadline_and_repeat_until_ack(store, clock, cfg, senders, smtp, wecom):
    level_three(store, clock, cfg)
    clock.advance(minutes=29)
    assert check_escalations(store, cfg, clock) == []

    clock.advance(minutes=2)
    rounds = check_escalations(store, cfg, clock)
    assert [(r.round, r.recipients) for r in rounds] == [(1, ["vice-president"])]
    assert check_escalations(store, cfg, clock) == []  # same instant: idempotent
    first = escalations(store)
    assert sorted((r.channel, r.recipient) for r in first) == [("email", "vp"), ("wecom", "crisis-room")]
    with store.session() as sess:
        inc = sess.get(Incident, 1)
        assert inc.escalations == 1 and inc.status == "open"
        assert [t.action for t in inc.transitions] == ["opened", "escalated"]

    dispatch(store, cfg, clock, senders)
    mail = next(m for m in smtp.messages if m["To"] == "chenli@hospital.example")
    text = mail.get_body(("plain",)).get_content()
    assert "已于 2026-11-23 09:00（北京时间） 通知 张敏（宣传科值班员）、刘洋（宣传科科长）" in text
    assert "至今无人确认" in text and "超时 1 分钟" in text and "第 1 次" in text
    assert "yuqing incidents ack 1 --by 您的姓名" in text

    clock.advance(minutes=28)  # 09:59: the next round is due at deadline + 30 min = 10:00
    assert check_escalations(store, cfg, clock) == []
    clock.advance(minutes=1)
    assert [r.round for r in check_escalations(store, cfg, clock)] == [2]
    keys = [r.dedup_key for r in escalations(store)]
    assert len(keys) == len(set(keys)) == 4
    assert {k.split(":")[3] for k in keys} == {"1", "2"}

    acknowledge(store, 1, "陈立", clock)
    clock.advance(hours=3)
    assert check_escalations(store, cfg, clock) == []
    assert len(escalations(store)) == 4


def test_acknowledged_in_time_never_escalates(store, clock, cfg):
    level_three(store, clock, cfg)
    clock.advance(minutes=10)
    acknowledge(store, 1, "张敏", clock)
    clock.advance(hours=5)
    assert check_escalations(store, cfg, clock) == []
    assert escalations(store) == []


def test_after_downtime_one_round_not_a_burst(store, clock, cfg):
    level_three(store, clock, cfg)
    clock.advance(hours=4)  # the daemon was down for hours
    assert [r.round for r in check_escalations(store, cfg, clock)] == [1]
    assert check_escalations(store, cfg, clock) == []
    with store.session() as sess:
        assert (sess.get(Incident, 1).next_escalation_at - clock.now()).total_seconds() == 30 * 60


def test_escalation_markdown_says_nobody_acknowledged(store, clock, cfg):
    level_three(store, clock, cfg)
    clock.advance(minutes=45)
    check_escalations(store, cfg, clock)
    row = next(r for r in escalations(store) if r.channel == "wecom")
    content = payload(row)["markdown"]["content"]
    assert "至今无人确认" in content and "超时 15 分钟" in content and "陈立（分管副院长）" in content

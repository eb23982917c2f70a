"""Incidents: opened once, never spammed, raised with notice, reopened on a flare, acted on by people."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from yuqing.alerts.incidents import IncidentError, UnknownIncident, acknowledge, mark_responded, resolve, sync_incidents
from yuqing.alerts.outbox import dispatch
from yuqing.models import AuditEntry, Incident, IncidentTransition

from .alerts_support import (  # noqa: F401  (fixtures)
    add_mention,
    cfg,
    make_event,
    outbox,
    payload,
    senders,
    smtp,
    update_event,
    wecom,
)


def incident(store, incident_id=1) -> Incident:
    with store.session() as sess:
        inc = sess.get(Incident, incident_id)
        assert inc.transitions is not None  # loads them before the session closes
        return inc


def actions(store, incident_id=1) -> list[str]:
    with store.session() as sess:
        return list(sess.scalars(select(IncidentTransition.action).where(IncidentTransition.incident_id == incident_id)
                                 .order_by(IncidentTransition.id)))


def test_incident_opened_once_and_not_resent(store, clock, cfg, senders, smtp, wecom):
    make_event(store, clock, negative=7, mentions=8, risks=["violence"])
    changes = sync_incidents(store, cfg, clock)
    assert [(c.action, c.to_level) for c in changes] == [("opened", "III")]
    inc = incident(store)
    assert inc.status == "open" and inc.level == "III"
    assert inc.reason == "负面提及 7 条（≥5）；风险类别：暴力事件（伤医、医闹或医护打人）"
    assert inc.ack_deadline == clock.now() + timedelta(minutes=30)
    assert actions(store) == ["opened"]

    rows = outbox(store)
    # plan III notifies publicity (duty-officer, head-publicity) and publicity-head (head-publicity)
    assert sorted(r.address for r in rows if r.channel == "email") == [
        "liuyang@hospital.example", "zhangmin@hospital.example"]
    wecom_rows = [r for r in rows if r.channel == "wecom"]
    assert [payload(r)["msgtype"] for r in wecom_rows] == ["markdown", "text"]  # one group message + @mobiles
    assert payload(wecom_rows[1])["text"]["mentioned_mobile_list"] == ["13800000001", "13800000002"]
    assert all(r.address == "crisis-room" and "test-key-0001" not in r.body for r in wecom_rows)

    report = dispatch(store, cfg, clock, senders)
    assert len(report.sent) == 4
    assert len(smtp.messages) == 2 and len(wecom.messages) == 2

    clock.advance(minutes=5)
    update_event(store, clock, 1, negative_count=8, mention_count=9)  # grows, same level
    assert sync_incidents(store, cfg, clock) == []
    assert sync_incidents(store, cfg, clock) == []
    assert len(outbox(store)) == 4
    dispatch(store, cfg, clock, senders)
    assert len(smtp.messages) == 2 and len(wecom.messages) == 2


def test_event_below_every_level_opens_nothing(store, clock, cfg):
    make_event(store, clock, negative=0, crisis=1)
    assert sync_incidents(store, cfg, clock) == []
    assert outbox(store) == []


def test_raised_level_notifies_new_level_even_after_ack(store, clock, cfg):
    make_event(store, clock, negative=2, mentions=3)
    assert sync_incidents(store, cfg, clock)[0].to_level == "IV"
    first = len(outbox(store))
    acknowledge(store, 1, "张敏", clock)
    clock.advance(minutes=20)
    update_event(store, clock, 1, negative_count=16, mention_count=20, risk_categories=["death_injury"])
    changes = sync_incidents(store, cfg, clock)
    assert [(c.action, c.from_level, c.to_level) for c in changes] == [("raised", "IV", "II")]
    inc = incident(store)
    assert inc.status == "open" and inc.level == "II" and inc.acknowledged_at is None
    assert (inc.ack_deadline - clock.now()).total_seconds() == 15 * 60
    assert actions(store) == ["opened", "acknowledged", "raised"]
    new = outbox(store)[first:]
    # level II notifies crisis-group: duty-officer, head-publicity, vp
    assert sorted(r.recipient for r in new if r.channel == "email") == ["duty-officer", "head-publicity", "vp"]
    assert all(r.dedup_key.startswith("incident:1:raise:1:") for r in new)
    markdown = payload(next(r for r in new if r.channel == "wecom"))["markdown"]["content"]
    assert "级别已由 Ⅳ级（一般） 升为 Ⅱ级（重大）" in markdown
    assert sync_incidents(store, cfg, clock) == []
    assert len(outbox(store)) == first + len(new)


def test_resolved_incident_reopens_on_new_negative_mentions(store, clock, cfg):
    make_event(store, clock, negative=2)
    sync_incidents(store, cfg, clock)
    resolve(store, 1, "刘洋", clock, note="已澄清")
    before = len(outbox(store))
    clock.advance(hours=1)
    update_event(store, clock, 1, mention_count=4)
    add_mention(store, clock, 1, negative=False)  # a positive follow-up does not reopen
    assert sync_incidents(store, cfg, clock) == []
    assert incident(store).status == "resolved"

    clock.advance(minutes=10)
    add_mention(store, clock, 1, negative=True, title="家属再次发帖")
    update_event(store, clock, 1, negative_count=3, mention_count=5)
    changes = sync_incidents(store, cfg, clock)
    assert [c.action for c in changes] == ["reopened"]
    inc = incident(store)
    assert inc.status == "open" and inc.resolved_at is None
    assert actions(store) == ["opened", "resolved", "reopened"]
    assert len(outbox(store)) > before
    assert sync_incidents(store, cfg, clock) == []


def test_acknowledge_twice_and_unknown_id(store, clock, cfg):
    make_event(store, clock, negative=2)
    sync_incidents(store, cfg, clock)
    result = acknowledge(store, 1, "张敏", clock, note="在看", tz="Asia/Shanghai")
    assert result.changed and "张敏" in result.message
    again = acknowledge(store, 1, "刘洋", clock, tz="Asia/Shanghai")
    assert not again.changed
    assert again.message == "事件 1 已由 张敏 于 2026-11-23 09:00（北京时间） 确认，无需重复确认"
    assert incident(store).acknowledged_by == "张敏"
    with pytest.raises(UnknownIncident, match="没有编号为 99 的舆情事件"):
        acknowledge(store, 99, "张敏", clock)
    with pytest.raises(IncidentError, match="--by"):
        acknowledge(store, 1, "  ", clock)
    with store.session() as sess:
        audits = [a.action for a in sess.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert audits.count("incident.acknowledged") == 1


def test_respond_acknowledges_and_resolve_records(store, clock, cfg):
    make_event(store, clock, negative=2)
    sync_incidents(store, cfg, clock)
    clock.advance(minutes=40)
    assert mark_responded(store, 1, "刘洋", clock, note="官方微博发布情况说明").changed
    inc = incident(store)
    assert inc.status == "acknowledged" and inc.responded_at == clock.now() and inc.next_escalation_at is None
    assert not mark_responded(store, 1, "刘洋", clock).changed
    assert resolve(store, 1, "刘洋", clock).changed
    assert not resolve(store, 1, "刘洋", clock).changed
    assert actions(store) == ["opened", "acknowledged", "responded", "resolved"]
    with store.session() as sess:
        audits = [a.action for a in sess.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert {"incident.opened", "incident.acknowledged", "incident.responded", "incident.resolved"} <= set(audits)


def test_script_title_is_escaped_in_every_form(store, clock, cfg, senders, smtp, wecom):
    evil = '<script>alert("x")</script> [点我](javascript:alert(1)) `rm` ## 标题'
    make_event(store, clock, headline=evil, negative=2, mentions=2, titles=[evil, evil])
    sync_incidents(store, cfg, clock)
    dispatch(store, cfg, clock, senders)
    mail = smtp.messages[0]
    html = mail.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html.split("&lt;script&gt;")[0]  # no live link
    assert 'href="javascript' not in html
    assert "<script>" in mail.get_body(("plain",)).get_content()  # plain text shows it as text
    markdowns = [p["markdown"]["content"] for p in wecom.messages if p["msgtype"] == "markdown"]
    assert markdowns
    for content in markdowns:  # text messages are shown literally by WeCom, markdown is not
        assert "<script" not in content and "[点我]" not in content and "`rm`" not in content
        assert "\n## " not in content and "\n#" not in content.replace("\n###", "")


def test_results_and_errors_fit_the_cli(store, clock, cfg):
    """The CLI prints str(result) and turns LookupError/ValueError into a clean message."""
    make_event(store, clock, negative=2)
    sync_incidents(store, cfg, clock)
    assert str(acknowledge(store, 1, "张敏", clock)) == "已确认事件 1（Ⅳ级（一般）），确认人：张敏"
    with pytest.raises(LookupError):
        resolve(store, 42, "张敏", clock)
    with pytest.raises(ValueError):
        resolve(store, 1, "", clock)

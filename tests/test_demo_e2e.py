"""End to end: the demo's crisis through crawl, analysis, incidents, messages and the digest."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from yuqing.app.demo.run import demo_session, run_story
from yuqing.models import Event, Incident, Mention, OutboxMessage


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """Run the whole story once; the tests below read what it left behind."""
    workdir = tmp_path_factory.mktemp("demo")
    with demo_session(workdir) as session:
        run_story(session)
        with session.rt.store.session() as sess:
            mentions = sess.scalars(select(Mention)).all()
            events = sess.scalars(select(Event)).all()
            incidents = sess.scalars(select(Incident)).all()
            transitions = {i.id: [t.action for t in i.transitions] for i in incidents}
            headlines = {i.id: i.event.headline for i in incidents}
            outbox = sess.scalars(select(OutboxMessage)).all()
        yield {
            "workdir": workdir, "mentions": mentions, "events": events, "incidents": incidents,
            "transitions": transitions, "headlines": headlines, "outbox": outbox,
            "mails": list(session.smtp.messages), "wecom": list(session.wecom.messages),
        }


def test_mentions_are_stored_and_look_alikes_are_not(demo):
    titles = [m.title for m in demo["mentions"]]
    assert any("机器人辅助心脏搭桥" in t for t in titles)
    assert any("产妇" in t and "死亡" in t for t in titles)
    assert not any("海城市一院" in t for t in titles), "another city's hospital was stored"
    assert not any("流感高发" in t for t in titles), "a page not naming the hospital was stored"


def test_gbk_page_labelled_utf8_is_stored_without_mojibake(demo):
    campus = [m for m in demo["mentions"] if "新院区" in m.title]
    assert campus, "the GBK article was not stored"
    assert "江城市第一人民医院新院区项目开工" in campus[0].title
    assert "\ufffd" not in campus[0].text


def test_crisis_is_scored_negative_and_risky(demo):
    crisis = [m for m in demo["mentions"] if "产妇" in m.title]
    assert crisis and all(m.crisis for m in crisis)
    assert sum(m.negative for m in crisis) >= len(crisis) - 1
    publicity = [m for m in demo["mentions"] if "义诊" in m.title]
    assert publicity and not publicity[0].crisis


def test_crisis_is_one_event_that_reaches_provincial_media(demo):
    crisis_events = [e for e in demo["events"] if e.crisis_count > 0 and "产妇" in e.headline]
    assert len(crisis_events) == 1, [e.headline for e in demo["events"]]
    event = crisis_events[0]
    assert event.mention_count >= 6
    assert event.top_tier == 2
    assert event.source_count >= 3


def test_incident_rises_escalates_and_is_acknowledged(demo):
    incidents = [i for i in demo["incidents"] if "产妇" in demo["headlines"][i.id]]
    assert len(incidents) == 1, "the crisis must be one incident, opened once and raised"
    inc = incidents[0]
    assert inc.level == "II"
    assert inc.status == "acknowledged"
    actions = demo["transitions"][inc.id]
    assert actions[0] == "opened"
    assert "raised" in actions and "escalated" in actions and actions[-1] == "acknowledged"
    assert inc.acknowledged_by == "张敏"  # from the link in her e-mail, not a typed name


def test_the_acknowledgement_is_announced_to_the_others(demo):
    notices = [m for m in demo["outbox"] if m.purpose == "ack" and "已确认 Ⅱ级" in m.subject]
    assert notices and all(m.status == "sent" for m in notices)
    assert "duty-officer" not in {m.recipient for m in notices}


def test_recipients_received_alerts_by_mail_and_wecom(demo):
    to = {addr.strip() for mail in demo["mails"] for addr in str(mail["To"]).split(",")}
    assert "zhangmin@hospital.example" in to      # duty officer, in every level's group
    assert "zhaohua@hospital.example" in to       # the president: escalation of level II
    contents = [post.get("markdown", post.get("text", {})).get("content", "") for post in demo["wecom"]]
    assert any("产妇" in c and "[张敏](http://127.0.0.1:" in c for c in contents)  # each taps their own link
    assert all(len(c.encode("utf-8")) <= 4096 for c in contents)


def test_digest_written_and_every_message_delivered(demo):
    digests = list(Path(demo["workdir"], "digests").glob("*.html"))
    assert digests, "no digest file"
    page = digests[0].read_text(encoding="utf-8")
    assert "江城市第一人民医院" in page and "<script" not in page
    assert any(m.purpose == "digest" for m in demo["outbox"])
    unsent = [(m.id, m.status, m.last_error) for m in demo["outbox"] if m.status != "sent"]
    assert not unsent, unsent

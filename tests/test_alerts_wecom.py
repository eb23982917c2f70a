"""WeCom group robots: 20 a minute, errcode in the body, 4096-byte markdown, keys never leaked."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections import deque
from datetime import timedelta

import pytest

import yuqing.alerts.outbox as outbox_module
from yuqing.alerts.channels.base import TRUNCATED, fit_bytes, split_bytes
from yuqing.alerts.messages import Rendered, enqueue_envelopes, route
from yuqing.alerts.outbox import SendError, dispatch, enqueue
from yuqing.alerts.senders import build_senders
from yuqing.models import AuditEntry

from .alerts_support import WECOM_KEY, cfg, local_config, outbox, payload, robot_contents, senders, smtp, wecom  # noqa: F401


def robot_message(sess, now, i: int, content: str = "测试消息") -> None:
    body = json.dumps({"msgtype": "markdown", "markdown": {"content": f"{content} {i}"}}, ensure_ascii=False)
    enqueue(sess, now, dedup_key=f"w{i}", channel="wecom", recipient="crisis-room", address="crisis-room",
            purpose="alert", subject=f"s{i}", body=body)


def post(endpoint, key: str, data: bytes) -> dict:
    request = urllib.request.Request(f"{endpoint.url}?key={key}", data=data, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_25_quickly_20_now_the_rest_after_the_minute(store, clock, cfg, senders, wecom):
    with store.session() as sess:
        for i in range(25):
            robot_message(sess, clock.now(), i)
    report = dispatch(store, cfg, clock, senders)
    assert len(report.sent) == 20 and len(report.deferred) == 5
    assert len(wecom.messages) == 20
    waiting = outbox(store, status="pending")
    assert len(waiting) == 5 and all(r.attempts == 0 for r in waiting)
    assert all(r.next_attempt_at == clock.now() + timedelta(minutes=1) for r in waiting)

    clock.advance(seconds=30)
    assert dispatch(store, cfg, clock, senders).sent == []  # still inside the minute
    clock.advance(seconds=31)
    assert len(dispatch(store, cfg, clock, senders).sent) == 5
    assert robot_contents(wecom) == [f"测试消息 {i}" for i in range(25)]  # in order, none twice
    assert all(r["errcode"] == 0 for r in wecom.replies)  # the client kept under the limit itself


def test_45009_from_wecom_waits_a_minute_without_burning_attempts(store, clock, cfg, senders, wecom):
    # another program using the same robot has already sent 18 messages this minute
    wecom.windows[WECOM_KEY] = deque([clock.now()] * 18)
    with store.session() as sess:
        for i in range(5):
            robot_message(sess, clock.now(), i)
    report = dispatch(store, cfg, clock, senders)
    assert len(report.sent) == 2 and len(report.deferred) == 3
    assert [r["errcode"] for r in wecom.replies] == [0, 0, 45009]  # no hammering after the 45009
    waiting = outbox(store, status="pending")
    assert all(r.attempts == 0 and "45009" in r.last_error for r in waiting[:1])
    assert all(r.next_attempt_at == clock.now() + timedelta(minutes=1) for r in waiting)

    clock.advance(seconds=61)
    assert len(dispatch(store, cfg, clock, senders).sent) == 3
    assert len(wecom.messages) == 5


def test_93000_is_dead_at_once_and_the_key_is_nowhere(store, clock, config, smtp, wecom, caplog):
    secret = "wrong-key-93000-abcdef"
    robots = {"crisis-room": config.channels.wecom_robots["crisis-room"].model_copy(
        update={"key": type(config.channels.wecom_robots["crisis-room"].key)(secret)})}
    bad = config.model_copy(update={"channels": config.channels.model_copy(update={"wecom_robots": robots})})
    bad = local_config(bad, smtp, wecom)
    caplog.set_level(logging.DEBUG)
    with store.session() as sess:
        for i in range(3):
            robot_message(sess, clock.now(), i)
    report = dispatch(store, bad, clock, build_senders(bad, clock))
    assert len(report.dead) == 3
    assert [r["errcode"] for r in wecom.replies] == [93000]  # one try, then no hammering
    for row in outbox(store, channel="wecom"):
        assert row.status == "dead" and row.attempts == 1
        assert "errcode 93000" in row.last_error and "crisis-room" in row.last_error
        assert "wecom_robots.crisis-room.key" in row.last_error
        assert secret not in row.last_error and "key=" not in row.last_error
    assert secret not in caplog.text and "93000" in caplog.text
    with store.session() as sess:
        details = [json.dumps(a.detail, ensure_ascii=False) for a in sess.query(AuditEntry)]
    assert details and not any(secret in d for d in details)
    assert all(secret not in r.body for r in outbox(store))
    assert outbox(store, purpose="operator")  # IT is told by e-mail


def test_other_errcode_is_retried(store, clock, cfg, senders, wecom, monkeypatch):
    monkeypatch.setattr(wecom, "answer", lambda path, body: {"errcode": -1, "errmsg": "system busy"})
    with store.session() as sess:
        robot_message(sess, clock.now(), 0)
    assert dispatch(store, cfg, clock, senders).retried == [1]
    row = outbox(store)[0]
    assert row.status == "pending" and row.attempts == 1 and "errcode -1: system busy" in row.last_error


def test_markdown_cut_to_4096_bytes_on_a_character_boundary(store, clock, cfg, senders, wecom):
    long = "患者家属在医院门口拉横幅要求说法。" * 400  # ~ 20 KB of three-byte characters
    rendered = Rendered(subject="长消息", text=long, html=long, markdown=long, mention_text="请查看")
    with store.session() as sess:
        enqueue_envelopes(sess, clock.now(), "long", "alert", route(cfg, ["publicity"], ["wecom"], rendered))
    row = outbox(store)[0]
    content = payload(row)["markdown"]["content"]
    assert len(content.encode("utf-8")) <= 4096
    assert content.endswith(TRUNCATED)
    assert dispatch(store, cfg, clock, senders).sent  # and WeCom accepts it (it answers 40058 above 4096)
    assert robot_contents(wecom)[0] == content


def test_fit_bytes_never_splits_a_character():
    text = "医" * 2000
    cut = fit_bytes(text, 4096)
    assert len(cut.encode("utf-8")) <= 4096 and cut.endswith(TRUNCATED) and "\ufffd" not in cut
    assert fit_bytes("短", 4096) == "短"


def test_userids_in_markdown_mobiles_in_a_text_message(config, smtp, wecom):
    people = [r.model_copy(update={"wecom_mention": "ZhangMin"}) if r.id == "duty-officer" else r
              for r in config.channels.recipients]
    cfg = local_config(config.model_copy(update={"channels": config.channels.model_copy(
        update={"recipients": people})}), smtp, wecom)
    envelopes = route(cfg, ["crisis-group"], ["wecom"], Rendered("s", "t", "<p>h</p>", "正文", "请确认"))
    assert len(envelopes) == 2  # one group message for three people, plus one @mobile notice
    markdown, text = (json.loads(e.body) for e in envelopes)
    assert markdown["markdown"]["content"].endswith("<@ZhangMin>")
    assert text == {"msgtype": "text", "text": {"content": "请确认", "mentioned_mobile_list": ["13800000002"]}}


def test_endpoint_answers_like_wecom(wecom):
    ok = json.dumps({"msgtype": "text", "text": {"content": "hi"}}).encode()
    assert post(wecom, WECOM_KEY, ok) == {"errcode": 0, "errmsg": "ok"}
    assert post(wecom, "nope", ok)["errcode"] == 93000
    assert post(wecom, WECOM_KEY, b"{not json")["errcode"] == 40035
    big = json.dumps({"msgtype": "markdown", "markdown": {"content": "医" * 1366}}).encode()  # 4098 bytes
    assert post(wecom, WECOM_KEY, big)["errcode"] == 40058
    assert len(wecom.messages) == 1


def test_unreachable_robot_error_names_the_robot_not_the_url(store, clock, cfg, senders, wecom, caplog):
    caplog.set_level(logging.DEBUG)
    wecom.stop()
    with store.session() as sess:
        robot_message(sess, clock.now(), 0)
    message = outbox_module._claim(store, 1, clock.now(), outbox_module.RetryPolicy())
    with pytest.raises(SendError) as err:
        senders["wecom"].send(message)
    assert "crisis-room" in str(err.value) and "cannot connect" in str(err.value)
    assert WECOM_KEY not in str(err.value) and "key=" not in str(err.value)
    clock.advance(minutes=10)
    assert dispatch(store, cfg, clock, senders).retried == [1]
    assert WECOM_KEY not in outbox(store)[0].last_error and WECOM_KEY not in caplog.text


def test_a_library_echoing_the_key_is_scrubbed(store, clock, cfg, wecom):
    class Leaky:
        def send(self, message):
            raise SendError(f"POST {wecom.url}?key={WECOM_KEY} failed")

    with store.session() as sess:
        robot_message(sess, clock.now(), 0)
    dispatch(store, cfg, clock, {"wecom": Leaky()})
    error = outbox(store)[0].last_error
    assert WECOM_KEY not in error and "key=***" in error


def test_split_bytes_cuts_between_lines_and_marks_what_follows():
    lines = [f"> {i}. 江城一院事件{i}：患者家属质疑手术，要求医院给出说法。" for i in range(120)]
    parts = split_bytes("\n".join(lines), 2048, 4)
    assert 1 < len(parts) <= 4 and all(len(p.encode("utf-8")) <= 2048 for p in parts)
    assert parts[1].startswith(f"（续 2/{len(parts)}）\n")
    whole = [line for p in parts for line in p.split("\n") if not line.startswith("（续")]
    assert whole[:20] == lines[:20]  # nothing lost or reordered before the cut
    assert parts[-1].endswith(TRUNCATED)  # 120 lines need more than four parts: the last one is cut
    assert split_bytes("短消息", 2048, 4) == ["短消息"]
    assert all("\ufffd" not in p for p in split_bytes("医" * 3000, 2048, 4))

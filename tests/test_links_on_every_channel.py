"""Every channel carries incident links made for whoever reads the message: a person their own link, a
group robot or a duty system each member's link by name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from yuqing.alerts.links import IncidentLinks
from yuqing.clock import ManualClock
from yuqing.config import load_config
from yuqing.store import Store

from .alerts_support import outbox
from .channels_support import CHANNEL_SECRETS, Peers, channels_yaml, peers, write_channels  # noqa: F401  (fixture)
from .conftest import write_config_dir
from .web_support import WEB_SECRET, open_incident

LINK = re.compile(r"https://yuqing\.example/i/(\d+)/([A-Za-z0-9_.\-]+)")
ALL = ["email", "wecom", "wecom_app", "dingtalk", "sms", "webhook"]


def test_each_reader_gets_links_made_for_them(tmp_path: Path, peers: Peers, store: Store, clock: ManualClock,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUQING_WEB_SECRET", WEB_SECRET)
    config_dir = write_config_dir(tmp_path, operators=["it-oncall"], web={"public_url": "https://yuqing.example"})
    write_channels(config_dir, channels_yaml(peers), ALL)
    cfg = load_config(config_dir, env=CHANNEL_SECRETS)
    incident_id = open_incident(cfg, store, clock)
    links = IncidentLinks(WEB_SECRET, "https://yuqing.example", 7)

    def readers(body: str) -> set[str]:
        found = set()
        for number, token in LINK.findall(body):
            claim = links.read(token, clock.now())
            assert claim.incident_id == int(number) == incident_id
            found.add(claim.recipient_id)
        return found

    rows = {(m.channel, m.recipient): m for m in outbox(store, purpose="alert") if not m.dedup_key.endswith(":mention")}
    publicity = {"duty-officer", "head-publicity"}
    assert readers(rows["email", "duty-officer"].body) == {"duty-officer"}
    assert readers(rows["wecom_app", "head-publicity"].body) == {"head-publicity"}
    assert "[刘洋](https://yuqing.example/i/" in json.loads(rows["wecom_app", "head-publicity"].body)["markdown"]["content"]
    assert readers(rows["wecom", "crisis-room"].body) == publicity
    assert readers(rows["dingtalk", "crisis-ding"].body) == publicity
    hook = json.loads(rows["webhook", "duty-system"].body)
    assert readers(hook["text"]) == publicity and "张敏：https://yuqing.example/i/" in hook["text"]
    assert not any(channel == "sms" for channel, _ in rows)  # SMS is for levels I and II only


def test_a_rollup_gives_each_reader_their_own_link_to_every_incident_it_lists(
        tmp_path: Path, peers: Peers, store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight incidents at once become one roll-up per reader and channel; a person's copy links each listed
    incident to that person's own page, a group robot's copy (read by several) keeps the commands."""
    from yuqing.alerts.incidents import sync_incidents

    from .alerts_support import make_event

    monkeypatch.setenv("YUQING_WEB_SECRET", WEB_SECRET)
    config_dir = write_config_dir(tmp_path, operators=["it-oncall"], web={"public_url": "https://yuqing.example"})
    write_channels(config_dir, channels_yaml(peers), ALL)
    cfg = load_config(config_dir, env=CHANNEL_SECRETS)
    for i in range(8):
        make_event(store, clock, headline=f"江城一院事件{i} 家属质疑手术")
    opened = sorted(c.incident_id for c in sync_incidents(store, cfg, clock))
    assert len(opened) == 8
    links = IncidentLinks(WEB_SECRET, "https://yuqing.example", 7)

    def claims(body: str) -> set[tuple[int, str]]:
        found = set()
        for number, token in LINK.findall(body):
            claim = links.read(token, clock.now())
            assert claim.incident_id == int(number)
            found.add((claim.incident_id, claim.recipient_id))
        return found

    rows = [m for m in outbox(store, purpose="alert") if not m.dedup_key.endswith(":mention")]
    email = next(m for m in rows if m.channel == "email" and m.recipient == "duty-officer")
    assert "起" in email.subject and claims(email.body) == {(i, "duty-officer") for i in opened}
    assert "打开事件页面" in (email.body_html or "") and "yuqing-item-" not in email.body + (email.body_html or "")
    app = [m for m in rows if m.channel == "wecom_app" and m.recipient == "head-publicity"]
    assert len(app) == 2  # eight linked incidents do not fit in 2,048 bytes: the rest follows, nothing is cut
    contents = [json.loads(m.body)["markdown"]["content"] for m in app]
    assert all(len(c.encode("utf-8")) <= 2048 for c in contents) and contents[1].startswith("（续 2/2）")
    assert set().union(*(claims(m.body) for m in app)) == {(i, "head-publicity") for i in opened}
    assert not any("内容过长已截断" in c for c in contents)
    robot = next(m for m in rows if m.channel == "wecom" and m.recipient == "crisis-room")
    assert not LINK.search(robot.body) and all(f"yuqing incidents ack {i} --by" in robot.body for i in opened)

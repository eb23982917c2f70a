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

"""Every channel configured against its local stand-in: a config directory, the stand-ins and the secrets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from yuqing.app.demo.channel_servers import AliyunSmsEndpoint, DingTalkEndpoint, WebhookReceiver, WeComAppEndpoint
from yuqing.app.demo.servers import LocalSMTPServer, WeComEndpoint
from yuqing.clock import Clock, ManualClock
from yuqing.config import AppConfig, load_config

from .conftest import SECRETS, write_config_dir

CHANNEL_SECRETS = {
    **SECRETS,
    "YUQING_WECOM_APP_SECRET": "app-secret-0002",
    "YUQING_DINGTALK_TOKEN": "ding-token-0003",
    "YUQING_DINGTALK_SECRET": "SECding-secret-0004",
    "YUQING_ALIYUN_KEY_ID": "LTAI-test-0005",
    "YUQING_ALIYUN_KEY_SECRET": "aliyun-secret-0006",
    "YUQING_WEBHOOK_SECRET": "webhook-secret-0007",
}
USERIDS = {"duty-officer": "ZhangMin", "head-publicity": "LiuYang", "vp": "ChenLi"}
MOBILES = {"duty-officer": "13800000001", "head-publicity": "13800000002", "vp": "13800000003", "head": "13800000004"}
SMS_VARIABLES = ("level", "title", "incident")


@dataclass
class Peers:
    """Every channel's stand-in, started."""

    smtp: LocalSMTPServer
    wecom: WeComEndpoint
    app: WeComAppEndpoint
    ding: DingTalkEndpoint
    sms: AliyunSmsEndpoint
    hook: WebhookReceiver


def channels_yaml(peers: Peers, *, smtp_host: str | None = None, smtp_port: int | None = None) -> dict[str, Any]:
    """The example channels.yaml with every channel on, pointed at the stand-ins."""
    from .conftest import REPO

    channels = yaml.safe_load((REPO / "config" / "channels.yaml").read_text(encoding="utf-8"))
    channels["email"].update({"host": smtp_host or "127.0.0.1", "port": smtp_port or peers.smtp.port,
                              "starttls": False, "timeout_seconds": 3})
    for robot in channels["wecom_robots"].values():
        robot["base_url"] = peers.wecom.url
    channels["wecom_app"] = {"corp_id": "ww-test-corp", "secret": "${YUQING_WECOM_APP_SECRET}", "agent_id": 1000002,
                             "base_url": peers.app.url, "timeout_seconds": 3}
    channels["dingtalk_robots"] = {"crisis-ding": {"access_token": "${YUQING_DINGTALK_TOKEN}",
                                                   "secret": "${YUQING_DINGTALK_SECRET}", "base_url": peers.ding.url,
                                                   "timeout_seconds": 3}}
    channels["sms"] = {"access_key_id": "${YUQING_ALIYUN_KEY_ID}", "access_key_secret": "${YUQING_ALIYUN_KEY_SECRET}",
                       "sign_name": "江城一院", "template_code": "SMS_200000001", "endpoint": peers.sms.url,
                       "timeout_seconds": 3}
    channels["webhooks"] = {"duty-system": {"url": peers.hook.url, "secret": "${YUQING_WEBHOOK_SECRET}",
                                            "timeout_seconds": 3}}
    for person in channels["recipients"]:
        pid = person["id"]
        if pid in USERIDS:
            person["wecom_userid"] = USERIDS[pid]
        if pid in MOBILES:
            person["mobile"] = MOBILES[pid]
            person["dingtalk_robot"] = "crisis-ding"
        person["webhook"] = "duty-system"
    return channels


def write_channels(config_dir: Path, channels: dict[str, Any], plan_channels: list[str] | None = None) -> None:
    """channels.yaml as given; every plan level on plan_channels when given."""
    (config_dir / "channels.yaml").write_text(yaml.safe_dump(channels, allow_unicode=True), encoding="utf-8")
    if plan_channels is not None:
        plan = yaml.safe_load((config_dir / "plan.yaml").read_text(encoding="utf-8"))
        for level in plan["levels"]:
            level["channels"] = plan_channels
        (config_dir / "plan.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")


@contextmanager
def started_peers(clock: Clock, per_minute: int = 20) -> Iterator[Peers]:
    """Every channel's stand-in on 127.0.0.1 on the given clock."""
    logins = {SECRETS["YUQING_SMTP_USER"]: SECRETS["YUQING_SMTP_PASSWORD"]}
    with LocalSMTPServer(logins=logins) as smtp, \
            WeComEndpoint(valid_keys={SECRETS["YUQING_WECOM_CRISIS_KEY"]}, clock=clock, per_minute=per_minute) as wecom, \
            WeComAppEndpoint("ww-test-corp", CHANNEL_SECRETS["YUQING_WECOM_APP_SECRET"], 1000002, USERIDS.values(),
                             clock=clock, per_minute=max(per_minute, 30)) as app, \
            DingTalkEndpoint({CHANNEL_SECRETS["YUQING_DINGTALK_TOKEN"]: CHANNEL_SECRETS["YUQING_DINGTALK_SECRET"]},
                             clock=clock, per_minute=per_minute) as ding, \
            AliyunSmsEndpoint(CHANNEL_SECRETS["YUQING_ALIYUN_KEY_ID"], CHANNEL_SECRETS["YUQING_ALIYUN_KEY_SECRET"],
                              "江城一院", "SMS_200000001", SMS_VARIABLES, clock=clock) as sms, \
            WebhookReceiver(CHANNEL_SECRETS["YUQING_WEBHOOK_SECRET"], clock=clock) as hook:
        yield Peers(smtp, wecom, app, ding, sms, hook)


@pytest.fixture
def peers(clock: ManualClock) -> Iterator[Peers]:
    """Every channel's stand-in on 127.0.0.1, sharing the test clock."""
    with started_peers(clock) as started:
        yield started


def all_channels_config(tmp_path: Path, peers: Peers, plan_channels: list[str] | None = None,
                        env: dict[str, str] | None = None, **changes: Any) -> AppConfig:
    """A loaded config with every channel configured against the stand-ins."""
    config_dir = write_config_dir(tmp_path, operators=["it-oncall"])
    channels = channels_yaml(peers)
    channels.update(changes)
    write_channels(config_dir, channels, plan_channels)
    return load_config(config_dir, env=env or CHANNEL_SECRETS)

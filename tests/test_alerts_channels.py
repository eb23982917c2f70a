"""Each channel against a local stand-in that answers as the real API documents: signatures, tokens,
error codes, rate limits and size limits; secrets never in an error."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from yuqing.alerts.channels import REGISTRY
from yuqing.alerts.channels.base import Rendered
from yuqing.alerts.channels.dingtalk import dingtalk_sign
from yuqing.alerts.channels.sms import rpc_signature, signed_query
from yuqing.alerts.channels.webhook import webhook_signature
from yuqing.alerts.incidents import sync_incidents
from yuqing.alerts.messages import enqueue_envelopes, route
from yuqing.alerts.outbox import dispatch
from yuqing.alerts.senders import build_senders
from yuqing.clock import ManualClock
from yuqing.config import AppConfig, ConfigError, load_config
from yuqing.store import Store

from .alerts_support import make_event, outbox
from .channels_support import CHANNEL_SECRETS, MOBILES, USERIDS, Peers, all_channels_config, channels_yaml, peers, write_channels
from .conftest import write_config_dir

__all__ = ["peers"]  # the fixture, imported so pytest finds it


def _rendered(level: str | None = "II", subject: str = "【舆情预警 Ⅱ级（重大）】江城一院：产妇死亡") -> Rendered:
    return Rendered(subject=subject, text="正文：产妇死亡", html="<p>正文</p>", markdown="**正文**：产妇死亡",
                    mention_text="请确认", level=level,
                    sms={"level": "Ⅱ级（重大）", "title": "江城一院产妇死亡 家属质疑手术", "incident": "7",
                         "hospital": "江城市第一人民医院"})


def _enqueue(store: Store, cfg: AppConfig, clock: ManualClock, channels: list[str], key: str = "t",
             ids: list[str] | None = None, msg: Rendered | None = None) -> int:
    with store.session() as sess:
        return len(enqueue_envelopes(sess, clock.now(), key, "alert",
                                     route(cfg, ids or ["crisis-group"], channels, msg or _rendered())))


# --- signatures against documented values ------------------------------------------------------


def test_the_aliyun_signature_matches_the_documented_example() -> None:
    """Alibaba Cloud's worked example (testId/testSecret, dyvms SingleCallByTts, 2017-09-28): the
    documented Signature is aMfgrx8DLS7vLfpeR1c2rrKLr0Q=."""
    params = {"AccessKeyId": "testId", "Action": "SingleCallByTts", "CalledNumber": "13000000000",
              "CalledShowNumber": "057112345678", "Format": "XML", "OutId": "123", "RegionId": "cn-hangzhou",
              "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "f7d2d4ef-6d5f-4da4-86ed-88e001a66abb",
              "SignatureVersion": "1.0", "Timestamp": "2017-09-28T14:31:56Z", "TtsCode": "TTS_0000000",
              "TtsParam": '{"code":"1234","product":"test"}', "Version": "2017-05-25"}
    assert rpc_signature(params, "testSecret") == "aMfgrx8DLS7vLfpeR1c2rrKLr0Q="
    assert signed_query(params, "testSecret").startswith("Signature=aMfgrx8DLS7vLfpeR1c2rrKLr0Q%3D&AccessKeyId=testId")


def test_the_dingtalk_sign_is_hmac_sha256_of_timestamp_and_secret_base64_urlencoded() -> None:
    import base64
    import hashlib
    import hmac

    # a timestamp whose base64 signature has '+', '/' and '=': each must reach DingTalk percent-encoded
    raw = base64.b64encode(hmac.new(b"SECabc", b"1700000000011\nSECabc", hashlib.sha256).digest()).decode()
    assert raw == "xExLZuBAxaIrop0wGL20/+du634TRY5oq4uQ3Y9B5rw="
    assert dingtalk_sign("SECabc", 1700000000011) == "xExLZuBAxaIrop0wGL20%2F%2Bdu634TRY5oq4uQ3Y9B5rw%3D"


def test_the_webhook_signature_covers_timestamp_and_body() -> None:
    a = webhook_signature("s", 100, b'{"a":1}')
    assert a.startswith("sha256=") and len(a) == 7 + 64
    assert a != webhook_signature("s", 101, b'{"a":1}') != webhook_signature("s", 100, b'{"a":2}')


# --- each channel end to end ---------------------------------------------------------------------


def test_a_level_ii_incident_reaches_every_channel(tmp_path: Path, peers: Peers, store: Store,
                                                   clock: ManualClock) -> None:
    cfg = all_channels_config(tmp_path, peers, plan_channels=[c.value for c in REGISTRY])
    make_event(store, clock, negative=15, mentions=15, crisis=3, top_tier=2)
    changes = sync_incidents(store, cfg, clock)
    assert [c.to_level for c in changes] == ["II"]
    report = dispatch(store, cfg, clock, build_senders(cfg, clock))
    assert report.retried == [] and report.dead == [], [r.last_error for r in outbox(store)]
    channels = {r.channel for r in outbox(store, status="sent")}
    assert channels == {c.value for c in REGISTRY}
    assert sorted(m["touser"] for m in peers.app.messages) == sorted(USERIDS.values())
    assert peers.ding.messages[0]["at"]["atMobiles"] == [MOBILES[p] for p in ("duty-officer", "head-publicity", "vp")]
    ding_text = peers.ding.messages[0]["markdown"]["text"]
    assert "舆情预警" in ding_text and "<font" not in ding_text and ding_text.endswith("@13800000003")
    assert sorted(m["PhoneNumbers"] for m in peers.sms.messages) == sorted(
        MOBILES[p] for p in ("duty-officer", "head-publicity", "vp"))
    variables = json.loads(peers.sms.messages[0]["TemplateParam"])
    assert variables["level"] == "Ⅱ级（重大）" and variables["incident"] == str(changes[0].incident_id)
    assert [r["id"] for r in peers.hook.messages[0]["recipients"]] == ["duty-officer", "head-publicity", "vp"]
    assert peers.hook.messages[0]["level"] == "II"


def test_sms_goes_only_for_the_levels_it_is_for(tmp_path: Path, peers: Peers, store: Store, clock: ManualClock) -> None:
    cfg = all_channels_config(tmp_path, peers)
    assert _enqueue(store, cfg, clock, ["sms"], msg=_rendered(level="IV")) == 0
    assert _enqueue(store, cfg, clock, ["sms"], key="digest", msg=_rendered(level=None)) == 0
    assert _enqueue(store, cfg, clock, ["sms"], msg=_rendered(level="I")) == 3


def test_a_recipient_a_message_cannot_reach_is_logged_by_name(tmp_path: Path, peers: Peers,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """Someone whose only channel sends nothing for this message (SMS for level IV) is named in the log."""
    cfg = all_channels_config(tmp_path, peers)
    with caplog.at_level("WARNING", logger="yuqing.alerts.messages"):
        assert route(cfg, ["duty-officer"], ["sms"], _rendered(level="IV")) == []
    assert "duty-officer" in caplog.text and "has no address" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="yuqing.alerts.messages"):
        assert route(cfg, ["duty-officer"], ["sms", "email"], _rendered(level="IV"))
        assert route(cfg, ["duty-officer"], ["sms"], _rendered(level="I"))
    assert "has no address" not in caplog.text


def test_wecom_app_caches_its_token_and_fetches_a_new_one_when_expired(tmp_path: Path, peers: Peers, store: Store,
                                                                       clock: ManualClock) -> None:
    cfg = all_channels_config(tmp_path, peers)
    senders = build_senders(cfg, clock)
    _enqueue(store, cfg, clock, ["wecom_app"], key="a")
    assert len(dispatch(store, cfg, clock, senders).sent) == 3
    assert peers.app.tokens_issued == 1  # one token for three messages
    peers.app.expire_tokens()  # 42001 on the next send, before our cache thinks it is stale
    _enqueue(store, cfg, clock, ["wecom_app"], key="b")
    assert len(dispatch(store, cfg, clock, senders).sent) == 3
    assert peers.app.tokens_issued == 2
    clock.advance(hours=2)  # our cache runs out on its own too
    _enqueue(store, cfg, clock, ["wecom_app"], key="c")
    assert len(dispatch(store, cfg, clock, senders).sent) == 3
    assert peers.app.tokens_issued == 3
    assert all(m["agentid"] == 1000002 and m["msgtype"] == "markdown" for m in peers.app.messages)


def test_wecom_app_rate_limit_defers_and_an_unknown_user_is_permanent(tmp_path: Path, peers: Peers, store: Store,
                                                                      clock: ManualClock) -> None:
    cfg = all_channels_config(tmp_path, peers)
    peers.app.per_minute = 2
    senders = build_senders(cfg, clock)
    _enqueue(store, cfg, clock, ["wecom_app"])
    report = dispatch(store, cfg, clock, senders)
    assert len(report.sent) == 2 and len(report.deferred) == 1 and report.dead == []
    clock.advance(seconds=61)
    assert len(dispatch(store, cfg, clock, senders).sent) == 1
    peers.app.users.discard("ChenLi")
    _enqueue(store, cfg, clock, ["wecom_app"], key="again", ids=["vp"])
    clock.advance(seconds=61)
    report = dispatch(store, cfg, clock, senders)
    assert len(report.dead) == 1
    dead = outbox(store, status="dead")[0]
    assert "81013" in (dead.last_error or "") and CHANNEL_SECRETS["YUQING_WECOM_APP_SECRET"] not in (dead.last_error or "")


def test_wecom_app_with_a_wrong_secret_is_a_permanent_failure_without_the_secret(tmp_path: Path, peers: Peers,
                                                                                 store: Store, clock: ManualClock) -> None:
    cfg = all_channels_config(tmp_path, peers, env={**CHANNEL_SECRETS, "YUQING_WECOM_APP_SECRET": "wrong-app-secret-99"})
    _enqueue(store, cfg, clock, ["wecom_app"], ids=["vp"])
    report = dispatch(store, cfg, clock, build_senders(cfg, clock))
    assert len(report.dead) == 1
    error = outbox(store, channel="wecom_app")[0].last_error or ""
    assert "40001" in error and "wrong-app-secret-99" not in error


def test_dingtalk_signed_messages_pass_and_a_wrong_secret_is_310000(tmp_path: Path, peers: Peers, store: Store,
                                                                    clock: ManualClock) -> None:
    cfg = all_channels_config(tmp_path, peers)
    _enqueue(store, cfg, clock, ["dingtalk"])
    assert len(dispatch(store, cfg, clock, build_senders(cfg, clock)).sent) == 1
    assert peers.ding.messages[0]["msgtype"] == "markdown"
    bad = all_channels_config(tmp_path / "bad", peers, env={**CHANNEL_SECRETS, "YUQING_DINGTALK_SECRET": "SECwrong-77"})
    _enqueue(store, bad, clock, ["dingtalk"], key="second")
    report = dispatch(store, bad, clock, build_senders(bad, clock))
    assert len(report.dead) == 1
    error = outbox(store, status="dead")[0].last_error or ""
    assert "310000" in error and "SECwrong-77" not in error and CHANNEL_SECRETS["YUQING_DINGTALK_TOKEN"] not in error


def test_dingtalk_130101_pauses_the_robot_ten_minutes(tmp_path: Path, peers: Peers, store: Store,
                                                      clock: ManualClock) -> None:
    cfg = all_channels_config(tmp_path, peers)
    peers.ding.per_minute = 1  # the stand-in throttles before our own per-minute count does
    senders = build_senders(cfg, clock)
    for key in ("a", "b"):
        _enqueue(store, cfg, clock, ["dingtalk"], key=key)
    report = dispatch(store, cfg, clock, senders)
    assert len(report.sent) == 1 and len(report.deferred) == 1
    row = [r for r in outbox(store) if r.status == "pending"][0]
    wait = row.next_attempt_at.replace(tzinfo=None) - clock.now().replace(tzinfo=None)
    assert "130101" in (row.last_error or "") and wait >= timedelta(minutes=9)


def test_sms_throttling_is_retry_later_and_a_bad_key_secret_is_permanent(tmp_path: Path, peers: Peers, store: Store,
                                                                         clock: ManualClock) -> None:
    cfg = all_channels_config(tmp_path, peers)
    senders = build_senders(cfg, clock)
    _enqueue(store, cfg, clock, ["sms"], key="a", ids=["vp"])
    _enqueue(store, cfg, clock, ["sms"], key="b", ids=["vp"])
    report = dispatch(store, cfg, clock, senders)
    assert len(report.sent) == 1 and len(report.deferred) == 1  # one SMS per number a minute
    assert "isv.BUSINESS_LIMIT_CONTROL" in (outbox(store, status="pending")[0].last_error or "")
    clock.advance(seconds=61)
    assert len(dispatch(store, cfg, clock, senders).sent) == 1
    bad = all_channels_config(tmp_path / "bad", peers, env={**CHANNEL_SECRETS, "YUQING_ALIYUN_KEY_SECRET": "nope-88"})
    _enqueue(store, bad, clock, ["sms"], key="c", ids=["head"], msg=_rendered(level="I"))
    report = dispatch(store, bad, clock, build_senders(bad, clock))
    assert len(report.dead) == 1
    error = outbox(store, status="dead")[0].last_error or ""
    assert "SignatureDoesNotMatch" in error and "nope-88" not in error


def test_sms_template_variables_are_cut_to_what_a_variable_may_hold(tmp_path: Path, peers: Peers, store: Store,
                                                                    clock: ManualClock) -> None:
    cfg = all_channels_config(tmp_path, peers)
    long = Rendered("s", "t", "h", "m", level="I", sms={"level": "Ⅰ级（特别重大）", "title": "很长的标题" * 20,
                                                         "incident": "12"})
    _enqueue(store, cfg, clock, ["sms"], ids=["vp"], msg=long)
    assert len(dispatch(store, cfg, clock, build_senders(cfg, clock)).sent) == 1  # else isv.PARAM_LENGTH_LIMIT


def test_webhook_is_signed_503_waits_and_a_rejected_signature_is_permanent(tmp_path: Path, peers: Peers, store: Store,
                                                                           clock: ManualClock) -> None:
    cfg = all_channels_config(tmp_path, peers)
    senders = build_senders(cfg, clock)
    peers.hook.status_queue.append((503, {"Retry-After": "120"}))
    _enqueue(store, cfg, clock, ["webhook"])
    assert len(dispatch(store, cfg, clock, senders).deferred) == 1
    clock.advance(seconds=121)
    assert len(dispatch(store, cfg, clock, senders).sent) == 1
    assert peers.hook.messages[0]["id"] == "t:webhook:duty-system" and peers.hook.messages[0]["purpose"] == "alert"
    bad = all_channels_config(tmp_path / "bad", peers, env={**CHANNEL_SECRETS, "YUQING_WEBHOOK_SECRET": "other"})
    _enqueue(store, bad, clock, ["webhook"], key="x")
    report = dispatch(store, bad, clock, build_senders(bad, clock))
    assert len(report.dead) == 1 and "401" in (outbox(store, status="dead")[0].last_error or "")


# --- config --------------------------------------------------------------------------------------


def test_check_config_names_every_bad_channel_field_at_once(tmp_path: Path, peers: Peers) -> None:
    config_dir = write_config_dir(tmp_path)
    channels = channels_yaml(peers)
    channels["wecom_app"].pop("agent_id")
    channels["dingtalk_robots"]["crisis-ding"]["secret"] = "SEC-literal-secret-in-file"
    channels["sms"]["template_code"] = "hello"
    channels["webhooks"]["duty-system"]["url"] = "ftp://oa.example"
    channels["recipients"][0]["dingtalk_robot"] = "no-such-robot"
    write_channels(config_dir, channels, plan_channels=["email", "sms"])
    with pytest.raises(ConfigError) as err:
        load_config(config_dir, env=CHANNEL_SECRETS)
    text = str(err.value)
    assert "channels.yaml: wecom_app.agent_id" in text
    assert "dingtalk_robots.crisis-ding.secret: secrets must come from the environment" in text
    assert "sms.template_code" in text and "webhooks.duty-system.url" in text
    assert "recipients[0].dingtalk_robot: unknown dingtalk robot 'no-such-robot'" in text
    assert "SEC-literal-secret-in-file" not in text
    write_channels(config_dir, {k: v for k, v in channels_yaml(peers).items() if k != "sms"}, plan_channels=["sms"])
    with pytest.raises(ConfigError, match="sms is used but .* has no sms section"):
        load_config(config_dir, env=CHANNEL_SECRETS)


def test_the_example_channels_yaml_documents_every_channel() -> None:
    from .conftest import REPO

    text = (REPO / "config" / "channels.yaml").read_text(encoding="utf-8")
    for plugin in REGISTRY.values():  # a top-level section, written out or commented out (not a recipient's field)
        assert re.search(rf"^#? ?{plugin.section}:", text, re.MULTILINE), plugin.section


# --- yuqing channels test --------------------------------------------------------------------------


def test_cli_channels_test_prints_what_each_channel_answered(tmp_path: Path, peers: Peers) -> None:
    import os
    import subprocess
    import sys

    from yuqing.clock import SystemClock

    for peer in (peers.wecom, peers.app, peers.ding, peers.sms, peers.hook):
        peer.clock = SystemClock()  # the command signs with the real time
    config_dir = write_config_dir(tmp_path)
    write_channels(config_dir, channels_yaml(peers))
    base = {k: v for k, v in os.environ.items() if not k.startswith("YUQING_")}

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "yuqing", "channels", "test", *args], capture_output=True,
                              text=True, timeout=120,
                              env={**base, **CHANNEL_SECRETS, "YUQING_CONFIG_DIR": str(config_dir), **env})

    everything = run()
    assert everything.returncode == 0, everything.stdout + everything.stderr
    lines = everything.stdout.splitlines()
    for channel, answer in [("email", "250"), ("wecom", "errcode 0"), ("wecom_app", "errcode 0 ok msgid="),
                            ("dingtalk", "errcode 0"), ("sms", "Code OK BizId="), ("webhook", "HTTP 200")]:
        assert any(line.split()[0] == channel and " OK " in line and answer in line for line in lines), (channel, lines)
    assert len(peers.smtp.messages) == 5 and len(peers.sms.messages) == 4 and len(peers.hook.messages) == 1
    assert "渠道测试" in peers.hook.messages[0]["subject"]

    bad = run("webhook", YUQING_WEBHOOK_SECRET="not-the-shared-secret")
    assert bad.returncode == 1 and "FAIL" in bad.stdout and "401" in bad.stdout
    assert "not-the-shared-secret" not in bad.stdout + bad.stderr
    unknown = run("fax")
    assert unknown.returncode == 1 and "unknown channel(s) fax" in unknown.stderr


def test_every_channel_has_one_plugin_whose_section_the_config_validates() -> None:
    from yuqing.channel_config import CHANNEL_SECTIONS, ChannelSections
    from yuqing.vocabulary import Channel

    assert set(REGISTRY) == set(Channel)
    for channel, plugin in REGISTRY.items():
        assert plugin.channel == channel and plugin.section == CHANNEL_SECTIONS[channel]
        assert plugin.section in ChannelSections.model_fields

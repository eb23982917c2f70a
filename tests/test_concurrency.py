"""Two writers at once never double an event, an incident or an alert: `yuqing analyze` by hand while
another runs (or while the daemon runs), on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from yuqing.config import load_config
from yuqing.locks import StageBusy, stage_lease
from yuqing.models import Event, Incident, Mention, OutboxMessage, SourceState
from yuqing.store import Store

from .conftest import SECRETS
from .postgres_support import postgres_url, why_unavailable
from .test_analysis_pipeline import add_mention

YUQING = [sys.executable, "-m", "yuqing"]
STORIES = [
    "江城一院产科产妇剖宫产后大出血死亡 家属质疑延误抢救",
    "江城一院骨科主任被曝收受器械回扣 纪委介入",
    "醉酒男子在江城一院急诊科持刀砍伤值班护士",
    "江城一院眼科被曝虚构住院套取医保基金",
    "江城一院妇科诊室被发现藏有偷拍摄像头",
    "江城一院药房发放过期胰岛素 糖尿病患者投诉",
    "江城一院住院部配电房起火 百余病人紧急疏散",
    "江城一院血透室多名患者感染丙肝 卫健委调查",
    "江城一院儿科护士给患儿打错疫苗 家长维权",
    "江城一院口腔科拔错牙 患者索赔遭拒",
    "江城一院保安殴打前来讨薪的护工 视频曝光",
    "江城一院拖欠规培医生半年工资 医生集体讨薪",
    "江城一院泌尿外科医生手术中途离岗吃饭",
    "江城一院电梯故障坠落 三名家属受伤",
    "江城一院检验科泄露孕妇胎儿性别信息",
    "江城一院心内科患者病历被篡改 家属报警",
    "江城一院皮肤科倒卖专家号 号贩子与医生勾结",
    "江城一院整形美容科隆鼻失败致女子毁容",
    "江城一院精神科患者跳楼身亡 院方被指看护失职",
    "江城一院院长因受贿被留置 省纪委监委通报",
]


def _stories(n: int) -> list[str]:
    """n distinct crisis stories (at most 20): each a different kind of crisis in a different place."""
    return STORIES[:n]


def _one_alert_each(config_dir: Path) -> None:
    """No storm roll-up: these tests count one alert per incident (test_alerts_storms covers roll-ups)."""
    path = config_dir / "channels.yaml"
    channels = yaml.safe_load(path.read_text(encoding="utf-8"))
    channels["delivery"] = {"rollup_threshold": 1000}
    path.write_text(yaml.safe_dump(channels, allow_unicode=True), encoding="utf-8")


def _seed(config_dir: Path, n: int) -> Store:
    cfg = load_config(config_dir, env=SECRETS)
    store = Store.migrated(cfg.database_url)
    with store.session() as sess:
        sess.add(SourceState(id="local-forum", kind="web", name="本地论坛", url="https://bbs.example", tier=4))
    start = datetime.now(UTC) - timedelta(hours=2)
    for i, title in enumerate(_stories(n)):
        add_mention(store, title, title + "。", start + timedelta(minutes=2 * i), source="local-forum")
    return store


def _env(config_dir: Path, url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUQING_")}
    extra = {"YUQING_DATABASE_URL": url} if url else {}
    return {**env, **SECRETS, **extra, "YUQING_CONFIG_DIR": str(config_dir)}


def _two_at_once(config_dir: Path, url: str | None = None) -> list[subprocess.CompletedProcess[str]]:
    return _together(config_dir, "analyze", url=url)


def _counts(store: Store) -> tuple[int, int, Counter[int], int, int]:
    with store.session() as sess:
        events = sess.scalar(select(func.count(func.distinct(Mention.event_id)))) or 0
        incidents = sess.scalar(select(func.count(Incident.id))) or 0
        per_event = Counter(sess.scalars(select(Incident.event_id)))
        messages = sess.scalar(select(func.count(OutboxMessage.id))) or 0
        unanalysed = sess.scalar(select(func.count(Mention.id)).where(Mention.analyzed_at.is_(None))) or 0
    return events, incidents, per_event, messages, unanalysed


def _assert_once_each(store: Store, n: int, results: list[subprocess.CompletedProcess[str]]) -> None:
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    events, incidents, per_event, messages, unanalysed = _counts(store)
    assert unanalysed == 0
    assert events == n, events  # one event per story
    assert incidents == n and max(per_event.values()) == 1, per_event  # one incident per event
    with store.session() as sess:
        keys = list(sess.scalars(select(OutboxMessage.dedup_key)))
        orphans = sess.scalar(select(func.count(Event.id)).where(~Event.id.in_(select(Mention.event_id).where(
            Mention.event_id.is_not(None)))))
    assert orphans == 0  # no event opened by a run that lost the race
    assert messages == len(keys) == len(set(keys)) and messages >= n and messages % n == 0 and messages // n <= 4, messages


def test_two_analyses_at_once_on_sqlite(config_dir: Path) -> None:
    n = 20
    _one_alert_each(config_dir)
    store = _seed(config_dir, n)
    results = _two_at_once(config_dir)
    _assert_once_each(store, n, results)
    # one run analysed everything; the other waited for it and found nothing left
    assert sorted(r.stdout.splitlines()[0].split(" mention(s)")[0] for r in results) == ["analysed 0", f"analysed {n}"]


def test_two_analyses_at_once_on_postgresql(config_dir: Path) -> None:
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    n = 20
    with postgres_url() as url:
        settings = yaml.safe_load((config_dir / "settings.yaml").read_text(encoding="utf-8"))
        settings["database_url"] = url
        (config_dir / "settings.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
        _one_alert_each(config_dir)
        store = _seed(config_dir, n)
        try:
            _assert_once_each(store, n, _two_at_once(config_dir, url))
        finally:
            store.dispose()


def test_a_lease_is_held_by_one_holder_at_a_time(store: Store) -> None:
    """The stage lease itself: exclusive, waits when asked, released on exit and on error, and a
    crashed holder's lease expires."""
    with stage_lease(store, "analysis"):
        with pytest.raises(StageBusy, match="analysis is already running"):
            with stage_lease(store, "analysis"):
                pass
        with stage_lease(store, "escalation"):  # another stage is independent
            pass
    with pytest.raises(RuntimeError):
        with stage_lease(store, "analysis"):
            raise RuntimeError("a job crashed")
    with stage_lease(store, "analysis"):  # released after the error
        pass
    with stage_lease(store, "analysis", ttl=timedelta(seconds=-1)):  # a holder that died: its lease runs out
        with stage_lease(store, "analysis"):
            pass
    got: list[str] = []

    def second() -> None:
        with stage_lease(store, "analysis", wait=10):
            got.append("second")

    with stage_lease(store, "analysis"):
        t = threading.Thread(target=second)
        t.start()
        t.join(0.5)
        assert got == []  # still waiting
    t.join(10)
    assert got == ["second"]


def _local_channels(config_dir: Path, smtp_port: int, wecom_url: str) -> None:
    """The example channels pointed at the local SMTP server and WeCom endpoint."""
    path = config_dir / "channels.yaml"
    channels = yaml.safe_load(path.read_text(encoding="utf-8"))
    channels["email"].update({"host": "127.0.0.1", "port": smtp_port, "starttls": False})
    for robot in channels["wecom_robots"].values():
        robot["base_url"] = wecom_url
    path.write_text(yaml.safe_dump(channels, allow_unicode=True), encoding="utf-8")


def _together(config_dir: Path, *args: str, url: str | None = None) -> list[subprocess.CompletedProcess[str]]:
    """The same command in two processes started at once."""
    procs = [subprocess.Popen([*YUQING, *args], env=_env(config_dir, url), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def test_two_dispatches_and_two_digests_at_once_send_each_message_once(config_dir: Path) -> None:
    from yuqing.app.demo.servers import LocalSMTPServer, WeComEndpoint

    store = _seed(config_dir, 6)
    logins = {SECRETS["YUQING_SMTP_USER"]: SECRETS["YUQING_SMTP_PASSWORD"]}
    with LocalSMTPServer(logins=logins) as smtp, WeComEndpoint(valid_keys={SECRETS["YUQING_WECOM_CRISIS_KEY"]},
                                                               per_minute=100) as wecom:
        _local_channels(config_dir, smtp.port, wecom.url)
        assert subprocess.run([*YUQING, "analyze"], env=_env(config_dir), capture_output=True).returncode == 0
        results = _together(config_dir, "dispatch")
        assert all(r.returncode == 0 for r in results), [(r.returncode, r.stdout[-500:], r.stderr[-800:]) for r in results]
        keys = [m["X-Yuqing-Key"] for m in smtp.messages]
        assert keys and len(keys) == len(set(keys)), Counter(keys).most_common(3)  # each e-mail once
        contents = [str(p) for p in wecom.messages]
        assert contents and len(contents) == len(set(contents))  # each robot message once
        with store.session() as sess:
            statuses = Counter(sess.scalars(select(OutboxMessage.status)))
        assert set(statuses) == {"sent"} and statuses["sent"] == len(keys) + len(contents)

        digests = _together(config_dir, "digest", "--period-end", "2030-01-07 08:00")
        assert all(r.returncode == 0 for r in digests), [r.stderr[-1500:] for r in digests]
        with store.session() as sess:
            queued = list(sess.scalars(select(OutboxMessage.dedup_key).where(OutboxMessage.purpose == "digest")))
        assert queued and len(queued) == len(set(queued))  # one digest, queued once
    store.dispose()


def test_two_dispatches_at_once_on_every_channel_send_each_message_once(config_dir: Path) -> None:
    """Each channel on its own thread in each of two processes: still one delivery per message, per stand-in."""
    from yuqing.alerts.channels import REGISTRY
    from yuqing.clock import SystemClock

    from .channels_support import CHANNEL_SECRETS, channels_yaml, started_peers, write_channels

    store = _seed(config_dir, 6)
    with started_peers(SystemClock(), per_minute=100) as peers:
        write_channels(config_dir, channels_yaml(peers), plan_channels=[c.value for c in REGISTRY])
        env = {**_env(config_dir), **CHANNEL_SECRETS}
        assert subprocess.run([*YUQING, "analyze"], env=env, capture_output=True).returncode == 0
        procs = [subprocess.Popen([*YUQING, "dispatch"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        results = [p.communicate(timeout=600) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [r[1][-800:] for r in results]
        delivered = {
            "email": [m["X-Yuqing-Key"] for m in peers.smtp.messages],
            "wecom": [json.dumps(p, sort_keys=True) for p in peers.wecom.messages],
            "wecom_app": [json.dumps(p, sort_keys=True) for p in peers.app.messages],
            "dingtalk": [json.dumps(p, sort_keys=True) for p in peers.ding.messages],
            "sms": [m["OutId"] for m in peers.sms.messages],
            "webhook": [m["id"] for m in peers.hook.messages],
        }
        for channel, keys in delivered.items():
            assert len(keys) == len(set(keys)), (channel, Counter(keys).most_common(2))
        assert all(delivered[c] for c in ("email", "wecom", "wecom_app", "dingtalk", "webhook")), delivered
        with store.session() as sess:
            rows = list(sess.execute(select(OutboxMessage.channel, OutboxMessage.status)))
        sent = Counter(channel for channel, status in rows if status == "sent")
        assert {c: sent[c] for c in delivered} == {c: len(keys) for c, keys in delivered.items()}
    store.dispose()

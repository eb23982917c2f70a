"""Corrections from the people who use yuqing: applied at once to mention, event and incident, kept in
the database, and folded into the hospital's own crisis model by `yuqing retrain`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from yuqing.alerts.digest import build_digest
from yuqing.analysis.corrections import (
    CorrectionError,
    current_model_path,
    hospital_model_path,
    retrain,
)
from yuqing.analysis.headline_model import HeadlineModel
from yuqing.analysis.judge import SHIPPED_MODEL, CrisisJudge
from yuqing.analysis.model_fit import Example, update
from yuqing.app import jobs
from yuqing.clock import ManualClock
from yuqing.config import load_config
from yuqing.models import (
    Correction,
    Event,
    Incident,
    IncidentTransition,
    Mention,
    OutboxMessage,
    SourceState,
    Verdict,
)
from yuqing.store import Store

from .conftest import SECRETS
from .test_analysis_pipeline import CLINIC_BODY, CLINIC_TITLE, VIOLENCE_BODY, VIOLENCE_TITLE, add_mention, add_sources

YUQING = [sys.executable, "-m", "yuqing"]
NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)

# wording the shipped model does not know: staff selling goods on live streams during work
LIVESTREAM = ["江城一院护士上班时间在护士站直播带货", "主任医师在门诊直播卖保健品", "江城一院医生在诊室直播带货 患者排队无人看诊"]
LIVESTREAM_ALIKE = ["检验科员工直播带货", "门诊医生边看诊边直播带货", "护士在病房直播带货"]
HARMLESS = ["医生直播科普高血压防治", "医院开展义诊活动", "江城一院获评文明单位", "护士直播讲解新生儿护理"]


@pytest.fixture
def rt(config_dir: Path) -> jobs.Runtime:
    """A runtime on its own SQLite file and data directory, with the shipped config and a manual clock."""
    cfg = load_config(config_dir, env=SECRETS)
    store = Store.migrated(cfg.database_url)
    add_sources(store, cfg)
    with store.session() as sess:
        sess.add(SourceState(id="jiangcheng-daily", kind="rss", name="江城日报", url="https://jc.example", tier=3))
    runtime = jobs.Runtime(cfg=cfg, store=store, clock=ManualClock(NOW))
    yield runtime
    store.dispose()


def _analysed(rt: jobs.Runtime, title: str, body: str) -> int:
    """One mention stored and analysed as the daemon would; returns its id."""
    mid = add_mention(rt.store, title, body, NOW - timedelta(minutes=30))
    jobs.analyze(rt)
    return mid


def _get(rt: jobs.Runtime, model: type, ident: int):  # type: ignore[no-untyped-def]
    with rt.store.session() as sess:
        row = sess.get(model, ident)
        sess.expunge_all()
        return row


def _incident_of(rt: jobs.Runtime, mention_id: int) -> Incident | None:
    with rt.store.session() as sess:
        m = sess.get(Mention, mention_id)
        inc = sess.scalar(select(Incident).where(Incident.event_id == m.event_id)) if m.event_id else None
        sess.expunge_all()
        return inc


def test_a_false_alarm_closes_its_incident_with_its_history(rt: jobs.Runtime) -> None:
    mid = _analysed(rt, VIOLENCE_TITLE, VIOLENCE_BODY)
    incident = _incident_of(rt, mid)
    assert incident is not None and incident.status == "open"
    with rt.store.session() as sess:
        pending = sess.scalars(select(OutboxMessage).where(OutboxMessage.incident_id == incident.id)).all()
        assert pending and all(m.status == "pending" for m in pending)
        pending[0].status = "sent"  # one alert already reached someone
    result, changes = jobs.correct(rt, mid, Verdict.NOT_CRISIS, "张敏", note="系影视剧拍摄现场")
    assert result.before["crisis"] is True and result.after["crisis"] is False and result.after["negative"] is False
    m = _get(rt, Mention, mid)
    assert (m.crisis, m.negative, m.risk_categories, m.corrected_by) == (False, False, [], "张敏")
    event = _get(rt, Event, m.event_id)
    assert event.crisis_count == 0 and event.negative_count == 0 and event.risk_categories == []
    closed = _get(rt, Incident, incident.id)
    assert closed.status == "resolved" and closed.resolution == "false_alarm" and closed.resolved_by == "张敏"
    assert closed.next_escalation_at is None
    with rt.store.session() as sess:
        actions = [t.action for t in sess.scalars(select(IncidentTransition).where(
            IncidentTransition.incident_id == incident.id).order_by(IncidentTransition.id))]
        messages = sess.scalars(select(OutboxMessage).where(OutboxMessage.incident_id == incident.id)).all()
    assert actions == ["opened", "false_alarm"]  # the history is kept
    assert [c.action for c in changes] == ["false_alarm"]
    statuses = {m.dedup_key: m.status for m in messages}
    assert "pending" not in {s for k, s in statuses.items() if ":false_alarm:" not in k}  # unsent alerts cancelled
    assert "cancelled" in statuses.values()
    notices = [m for m in messages if ":false_alarm:" in m.dedup_key]
    assert notices and all("误报" in m.subject for m in notices)  # those alerted are told it is over
    with rt.store.session() as sess:
        row = sess.scalar(select(Correction))
        assert (row.mention_id, row.by, row.verdict, row.text) == (mid, "张敏", "not_crisis", VIOLENCE_TITLE)
        assert row.before["crisis"] is True and row.note == "系影视剧拍摄现场"


def test_a_missed_crisis_opens_an_incident_at_once(rt: jobs.Runtime) -> None:
    mid = _analysed(rt, CLINIC_TITLE, CLINIC_BODY)
    assert _incident_of(rt, mid) is None and not _get(rt, Mention, mid).crisis
    result, changes = jobs.correct(rt, mid, Verdict.CRISIS, "刘洋", category="misconduct")
    m = _get(rt, Mention, mid)
    assert m.crisis and m.negative and m.risk_categories == ["misconduct"]
    assert _get(rt, Event, m.event_id).risk_categories == ["misconduct"]
    assert [c.action for c in changes] == ["opened"]
    incident = _incident_of(rt, mid)
    assert incident is not None and incident.status == "open"
    with rt.store.session() as sess:
        assert sess.scalars(select(OutboxMessage).where(OutboxMessage.incident_id == incident.id)).all()


def test_a_category_correction_replaces_the_events_categories(rt: jobs.Runtime) -> None:
    mid = _analysed(rt, VIOLENCE_TITLE, VIOLENCE_BODY)
    assert "violence" in _get(rt, Mention, mid).risk_categories
    jobs.correct(rt, mid, Verdict.CATEGORY, "刘洋", category="safety_accident")
    m = _get(rt, Mention, mid)
    assert m.crisis and m.risk_categories == ["safety_accident"]
    assert _get(rt, Event, m.event_id).risk_categories == ["safety_accident"]


def test_not_about_us_leaves_the_event_the_plan_and_the_digest(rt: jobs.Runtime) -> None:
    add_mention(rt.store, CLINIC_TITLE, CLINIC_BODY, NOW - timedelta(minutes=40))
    mid = _analysed(rt, VIOLENCE_TITLE, VIOLENCE_BODY)
    event_id = _get(rt, Mention, mid).event_id
    incident = _incident_of(rt, mid)
    result, changes = jobs.correct(rt, mid, Verdict.NOT_ABOUT_US, "王磊", note="是外省的江城一院")
    m = _get(rt, Mention, mid)
    assert m.about_us is False and m.event_id is None and not m.crisis and not m.negative
    event = _get(rt, Event, event_id)
    assert event.mention_count == 0 and event.crisis_count == 0
    assert _get(rt, Incident, incident.id).resolution == "false_alarm"
    rt.clock.advance(days=8)  # type: ignore[attr-defined]
    run = build_digest(rt.store, rt.cfg, rt.clock)
    assert run.summary["total"] == 1 and run.summary["negative"] == 0, run.summary  # only our own news counts


def test_bad_corrections_are_refused_with_a_reason(rt: jobs.Runtime) -> None:
    mid = _analysed(rt, CLINIC_TITLE, CLINIC_BODY)
    with pytest.raises(CorrectionError, match="没有编号为 999"):
        jobs.correct(rt, 999, Verdict.CRISIS, "张敏")
    with pytest.raises(CorrectionError, match="unknown risk category 'violense'"):
        jobs.correct(rt, mid, Verdict.CATEGORY, "张敏", category="violense")
    with pytest.raises(CorrectionError, match="--by"):
        jobs.correct(rt, mid, Verdict.CRISIS, "  ")
    with rt.store.session() as sess:
        assert sess.scalar(select(Correction)) is None  # nothing half-applied


# --- retraining --------------------------------------------------------------------------------------


def _correct_titles(rt: jobs.Runtime, titles: list[str], verdict: Verdict, category: str | None = None) -> None:
    for title in titles:
        mid = add_mention(rt.store, title, "", NOW - timedelta(minutes=10))
        with rt.store.session() as sess:
            sess.get(Mention, mid).analyzed_at = NOW  # judged earlier; a person now says what it is
        jobs.correct(rt, mid, verdict, "张敏", category=category)


def test_retraining_on_a_handful_of_corrections_changes_similar_titles(rt: jobs.Runtime) -> None:
    shipped = CrisisJudge.load()
    assert not any(shipped.judge(t).crisis for t in LIVESTREAM_ALIKE)
    _correct_titles(rt, LIVESTREAM, Verdict.CATEGORY, "misconduct")
    with rt.store.session() as sess:
        result = retrain(sess, rt.cfg)
    assert result.examples == 3 and result.path == hospital_model_path(rt.cfg) and result.path.exists()
    assert str(rt.cfg.settings.data_dir) in str(result.path)  # beside the database's data, not in the package
    judge = shipped.with_model(HeadlineModel.load(result.path))
    assert all(judge.judge(t).crisis for t in LIVESTREAM_ALIKE), [judge.explain(t) for t in LIVESTREAM_ALIKE]
    assert judge.judge(LIVESTREAM_ALIKE[0]).categories[0] == "misconduct"
    assert not any(judge.judge(t).crisis for t in HARMLESS), [judge.explain(t) for t in HARMLESS]


def test_analysis_reloads_the_retrained_model_and_an_upgrade_retrains_it(rt: jobs.Runtime, tmp_path: Path) -> None:
    models = rt.analysis_models()
    assert models.judge.model.fingerprint() == HeadlineModel.load(SHIPPED_MODEL).fingerprint()
    _correct_titles(rt, LIVESTREAM, Verdict.CRISIS)
    reloaded = rt.analysis_models()  # a correction since: the daemon's next run retrains and reloads
    assert reloaded.judge.model.meta["corrections_used"] == 3
    assert all(reloaded.judge.judge(t).crisis for t in LIVESTREAM_ALIKE)
    # an upgrade ships a new model: the hospital's corrections are folded into it again
    upgraded = tmp_path / "risk_model.npz"
    base = HeadlineModel.load(SHIPPED_MODEL)
    from dataclasses import replace

    replace(base, bias=base.bias + 0.01).save(upgraded)
    with rt.store.session() as sess:
        path = current_model_path(sess, rt.cfg, upgraded)
    meta = HeadlineModel.read_meta(path)
    assert meta["base"] == HeadlineModel.read_meta(upgraded)["fingerprint"] and meta["corrections_used"] == 3


def test_without_corrections_the_shipped_model_is_used(rt: jobs.Runtime) -> None:
    with rt.store.session() as sess:
        assert current_model_path(sess, rt.cfg) == SHIPPED_MODEL
        result = retrain(sess, rt.cfg)
    assert result.examples == 0 and not hospital_model_path(rt.cfg).exists()


def test_not_about_us_teaches_the_model_nothing(rt: jobs.Runtime) -> None:
    _correct_titles(rt, LIVESTREAM[:1], Verdict.NOT_ABOUT_US)
    with rt.store.session() as sess:
        assert retrain(sess, rt.cfg).examples == 0


def test_a_handful_of_corrections_does_not_degrade_the_cross_validated_figures() -> None:
    """On a fold of the shared real titles the model never saw: the same precision and recall within a
    point after five corrections, while the corrected wording is now caught."""
    from yuqing.analysis.corrections import CORRECTION_WEIGHT
    from yuqing.analysis.risk_training import fold_model, precision_recall, read_shared, read_written, shared_available

    if not shared_available():
        pytest.skip("needs ../shared/data/risk/headlines.jsonl (the shared labelled titles; absent here)")
    model, test = fold_model(read_shared(), read_written(), 1)
    base = CrisisJudge.load().with_model(model)

    corrected = base.with_model(update(base.model, [Example(t, "misconduct", CORRECTION_WEIGHT)
                                                    for t in LIVESTREAM + ["医生上班时间直播带货被通报"]]))
    gold = np.array([t.crisis for t in test])
    before = precision_recall(np.array([v.crisis for v in base.judge_many([t.text for t in test])]), gold)
    after = precision_recall(np.array([v.crisis for v in corrected.judge_many([t.text for t in test])]), gold)
    assert after[0] >= before[0] - 0.01 and after[1] >= before[1] - 0.01, (before, after)
    assert all(corrected.judge(t).crisis for t in LIVESTREAM_ALIKE)


# --- the CLI, and two of them at once ------------------------------------------------------------------


def _env(config_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUQING_")}
    return {**env, **SECRETS, "YUQING_CONFIG_DIR": str(config_dir)}


def _yuqing(config_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*YUQING, *args], env=_env(config_dir), capture_output=True, text=True, timeout=120)


def test_mentions_list_correct_and_retrain_from_the_command_line(rt: jobs.Runtime, config_dir: Path) -> None:
    crisis = _analysed(rt, VIOLENCE_TITLE, VIOLENCE_BODY)
    calm = add_mention(rt.store, CLINIC_TITLE + "\x1b[2J\x07", CLINIC_BODY, NOW - timedelta(minutes=20),
                       source="local-forum")
    jobs.analyze(rt)
    listed = _yuqing(config_dir, "mentions", "list")
    assert listed.returncode == 0, listed.stderr
    assert VIOLENCE_TITLE[:20] in listed.stdout and "CRISIS" in listed.stdout and "暴力事件" in listed.stdout
    assert "\x1b" not in listed.stdout and "\x07" not in listed.stdout  # scraped control characters never reach the terminal
    only = _yuqing(config_dir, "mentions", "list", "--crisis")
    assert VIOLENCE_TITLE[:20] in only.stdout and CLINIC_TITLE[:12] not in only.stdout
    quiet = _yuqing(config_dir, "mentions", "list", "--not-negative", "--source", "local-forum",
                    "--since", "2026-11-22 00:00")
    assert CLINIC_TITLE[:12] in quiet.stdout and VIOLENCE_TITLE[:20] not in quiet.stdout
    none = _yuqing(config_dir, "mentions", "list", "--since", "2030-01-01 00:00")
    assert none.returncode == 0 and "no mentions match" in none.stdout

    fixed = _yuqing(config_dir, "mentions", "correct", str(crisis), "--not-crisis", "--by", "张敏")
    assert fixed.returncode == 0, fixed.stderr
    assert f"提及 {crisis} 已更正" in fixed.stdout and "误报" in fixed.stdout
    assert _yuqing(config_dir, "incidents", "list", "--all").stdout.count("false alarm") == 1
    missing = _yuqing(config_dir, "mentions", "correct", str(calm), "--by", "张敏")
    assert missing.returncode == 2 and "--crisis" in missing.stderr
    wrong = _yuqing(config_dir, "mentions", "correct", str(calm), "--not-crisis", "--category", "violence", "--by", "x")
    assert wrong.returncode == 2
    unknown = _yuqing(config_dir, "mentions", "correct", "424242", "--crisis", "--by", "张敏")
    assert unknown.returncode == 1 and "424242" in unknown.stderr

    trained = _yuqing(config_dir, "retrain")
    assert trained.returncode == 0, trained.stderr
    assert "folded 1 correction(s)" in trained.stdout and hospital_model_path(rt.cfg).exists()


def test_two_retrains_at_once_leave_one_good_model(rt: jobs.Runtime, config_dir: Path) -> None:
    _correct_titles(rt, LIVESTREAM, Verdict.CRISIS)
    results: list[subprocess.CompletedProcess[str]] = []
    threads = [threading.Thread(target=lambda: results.append(_yuqing(config_dir, "retrain"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    meta = HeadlineModel.read_meta(hospital_model_path(rt.cfg))
    assert meta["corrections_used"] == 3
    assert not list(hospital_model_path(rt.cfg).parent.glob("*.tmp.npz"))


def test_the_schema_matches_the_models(rt: jobs.Runtime) -> None:
    """Migrations create exactly what the models describe (corrections survive upgrades in their table)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from yuqing.models import Base

    with rt.store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []

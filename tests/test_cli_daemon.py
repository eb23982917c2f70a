"""The CLI and the daemon as an operator runs them: real processes, real signals, a real database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from yuqing.app.daemon import digest_due
from yuqing.app.jobs import Runtime, run_guarded
from yuqing.clock import ManualClock
from yuqing.config import load_config
from yuqing.models import DigestRun
from yuqing.store import Store

from .conftest import SECRETS

YUQING = [sys.executable, "-m", "yuqing"]


def _env(config_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUQING_")}
    return {**env, **SECRETS, "YUQING_CONFIG_DIR": str(config_dir)}


def _yuqing(config_dir: Path, *args: str, timeout: int = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*YUQING, *args], env=_env(config_dir), capture_output=True, text=True, timeout=timeout)


def test_check_config_ok_and_broken(config_dir):
    ok = _yuqing(config_dir, "check-config")
    assert ok.returncode == 0, ok.stderr
    assert "config OK" in ok.stdout
    (config_dir / "plan.yaml").write_text("levels: []\n", encoding="utf-8")
    bad = _yuqing(config_dir, "check-config")
    assert bad.returncode == 1
    assert "plan.yaml: levels: Value error, at least one level is required" in bad.stderr


def test_missing_secret_fails_check_config(config_dir):
    env = _env(config_dir)
    del env["YUQING_SMTP_PASSWORD"]
    res = subprocess.run([*YUQING, "check-config"], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "YUQING_SMTP_PASSWORD is not set" in res.stderr


def test_daemon_refuses_unmigrated_database(config_dir):
    res = _yuqing(config_dir, "run")
    assert res.returncode == 1
    assert "Run: yuqing migrate" in res.stderr


def test_daemon_single_instance_and_clean_stop(config_dir, tmp_path):
    assert _yuqing(config_dir, "migrate").returncode == 0
    first_log = tmp_path / "first.log"
    proc = _daemon(config_dir, first_log)
    try:
        assert _wait_for_text(proc, first_log, "daemon started", timeout=60), "the daemon did not start"
        second = _yuqing(config_dir, "run")
        assert second.returncode == 2
        assert "another yuqing daemon or tick is running" in second.stderr
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert proc.returncode == 0
        assert "stopped cleanly" in first_log.read_text(encoding="utf-8")
    finally:
        if proc.poll() is None:
            proc.kill()
    again_log = tmp_path / "again.log"
    again = _daemon(config_dir, again_log)
    try:
        assert _wait_for_text(again, again_log, "daemon started", timeout=60), "the lock was not released on stop"
        again.send_signal(signal.SIGINT)
        again.wait(timeout=60)
        assert again.returncode == 0
    finally:
        if again.poll() is None:
            again.kill()


def _daemon(config_dir, log_path):
    """`yuqing run` with its log in a file: a pipe nobody reads would fill and stall the daemon's logging."""
    with open(log_path, "w", encoding="utf-8") as log:
        return subprocess.Popen([*YUQING, "run"], env=_env(config_dir), stderr=log, text=True)


def _wait_for_text(proc: subprocess.Popen, log_path, needle: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in log_path.read_text(encoding="utf-8", errors="replace"):
            return True
        if proc.poll() is not None:
            return needle in log_path.read_text(encoding="utf-8", errors="replace")
        time.sleep(0.1)
    return False


def test_run_guarded_logs_and_goes_on(caplog):
    def broken() -> None:
        raise RuntimeError("boom")

    assert run_guarded("analyze", broken) is None
    assert "job analyze failed; the other jobs go on" in caplog.text
    assert run_guarded("dispatch", lambda: 7) == 7


def test_digest_due_once_per_week(config_dir):
    cfg = load_config(config_dir, env=SECRETS)
    store = Store.migrated(cfg.database_url)
    # Monday 2026-11-23 08:00 Asia/Shanghai is 00:00 UTC; the digest cron is "0 8 * * mon".
    clock = ManualClock(datetime(2026, 11, 23, 0, 30, tzinfo=UTC))
    rt = Runtime(cfg=cfg, store=store, clock=clock)
    due = digest_due(rt)
    assert due is not None and due.astimezone(UTC) == datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    with store.session() as sess:
        sess.add(DigestRun(period_start=due - timedelta(days=7), period_end=due, created_at=clock.now(), path="x"))
    assert digest_due(rt) is None
    clock.advance(days=7)
    assert digest_due(rt) is not None
    store.dispose()


@pytest.mark.parametrize("command", ["crawl", "analyze", "dispatch", "incidents", "digest", "run", "tick",
                                     "sentiment", "risk", "extract", "sources", "check-config", "demo", "migrate",
                                     "channels"])
def test_every_command_has_help(command, config_dir):
    res = _yuqing(config_dir, command, "--help")
    assert res.returncode == 0
    assert "Usage:" in res.stdout and len(res.stdout.splitlines()) >= 4


def test_each_source_gets_its_own_crawl_job(tmp_path):
    from yuqing.app.daemon import build_scheduler

    from .conftest import write_config_dir

    sources = [{"id": "fast", "name": "快", "kind": "rss", "url": "http://127.0.0.1:9/a.xml", "interval_seconds": 30},
               {"id": "slow", "name": "慢", "kind": "rss", "url": "http://127.0.0.1:9/b.xml", "interval_minutes": 60}]
    cfg = load_config(write_config_dir(tmp_path, sources), env=SECRETS)
    rt = Runtime(cfg=cfg, store=Store.migrated(cfg.database_url))

    class Pool:
        submitted: list[str] = []

        def submit(self, source_id: str) -> bool:
            self.submitted.append(source_id)
            return True

    pool = Pool()
    scheduler = build_scheduler(rt, pool)
    by_id = {job.id: job for job in scheduler.get_jobs()}
    assert {"crawl:fast", "crawl:slow", "analyze", "escalate", "dispatch", "digest"} <= set(by_id)
    assert by_id["crawl:fast"].trigger.interval.total_seconds() == 30
    assert by_id["crawl:slow"].trigger.interval.total_seconds() == 3600
    assert by_id["crawl:fast"].executor == "crawls" and by_id["analyze"].executor == "default"
    for job_id in ("crawl:fast", "crawl:slow"):
        by_id[job_id].func(*by_id[job_id].args)
    assert pool.submitted == ["fast", "slow"]

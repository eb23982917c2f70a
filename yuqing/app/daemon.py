"""The daemon (`yuqing run`) and its one-shot twin for system cron (`yuqing tick`).

One instance at a time (a file lock in data/run). Each job is guarded: a crash in one is
logged and the others go on. SIGTERM and SIGINT stop new jobs and let running ones finish
their transaction, so a stop never leaves half-written state.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from filelock import FileLock, Timeout

from yuqing.app import jobs
from yuqing.app.jobs import Runtime, run_guarded
from yuqing.models import DigestRun

log = logging.getLogger(__name__)


class AlreadyRunning(RuntimeError):
    """Another daemon or tick holds the lock."""


def instance_lock(rt: Runtime) -> FileLock:
    """The lock that keeps two daemons (or a daemon and a tick) off one database."""
    run_dir = Path(rt.cfg.settings.data_dir) / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(run_dir / "daemon.lock"))


@contextmanager
def single_instance(rt: Runtime) -> Iterator[None]:
    """Hold the instance lock for the block, or raise AlreadyRunning at once."""
    lock = instance_lock(rt)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise AlreadyRunning(f"another yuqing daemon or tick is running (lock {lock.lock_file})") from None
    try:
        yield
    finally:
        lock.release()


def build_scheduler(rt: Runtime, pool: Any = None) -> BackgroundScheduler:
    """Every job from config: per-source polls (handed to the crawl pool; none without one), analysis, dispatch,
    escalation, the digest. Polls have their own executor, so they never hold up analysis or dispatch."""
    sched_cfg = rt.cfg.settings.schedules
    tz = ZoneInfo(rt.cfg.settings.timezone)
    scheduler = BackgroundScheduler(timezone=tz, job_defaults={"coalesce": True, "max_instances": 1,
                                                                "misfire_grace_time": 300},
                                    executors={"default": ThreadPoolExecutor(10), "crawls": ThreadPoolExecutor(2)})
    now = datetime.now(tz)
    enabled = [s for s in rt.cfg.sources.sources if s.enabled] if pool is not None else []
    for i, src in enumerate(enabled):
        scheduler.add_job(  # only hands the source to the crawl worker: never holds a thread
            pool.submit, IntervalTrigger(seconds=src.poll_seconds, timezone=tz), args=(src.id,), executor="crawls",
            id=f"crawl:{src.id}", name=f"crawl {src.id}",
            next_run_time=now + timedelta(seconds=2 + src.poll_seconds * i / len(enabled)),  # first polls spread out
        )
    scheduler.add_job(run_guarded, IntervalTrigger(minutes=sched_cfg.analysis_minutes, timezone=tz),
                      args=("analyze", lambda: jobs.analyze(rt)), id="analyze", next_run_time=now)
    scheduler.add_job(run_guarded, IntervalTrigger(minutes=sched_cfg.escalation_minutes, timezone=tz),
                      args=("escalate", lambda: jobs.escalate(rt)), id="escalate", next_run_time=now)
    scheduler.add_job(run_guarded, IntervalTrigger(seconds=sched_cfg.dispatch_seconds, timezone=tz),
                      args=("dispatch", lambda: jobs.dispatch(rt)), id="dispatch", next_run_time=now)
    trigger = digest_trigger(rt)
    if trigger is not None:
        scheduler.add_job(run_guarded, trigger, args=("digest", lambda: jobs.digest(rt)), id="digest")
    return scheduler


def digest_trigger(rt: Runtime) -> CronTrigger | None:
    """The weekly digest's schedule, or None (logged) when digest_cron does not parse: a bad digest
    schedule turns the digest off, never the alerts."""
    try:
        return CronTrigger.from_crontab(rt.cfg.settings.schedules.digest_cron,
                                        timezone=ZoneInfo(rt.cfg.settings.timezone))
    except ValueError as err:
        log.error("digest_cron %r does not parse (%s): no weekly digest until it is fixed; alerts go on",
                  rt.cfg.settings.schedules.digest_cron, err)
        return None


def run_daemon(rt: Runtime, stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or until `stop` is set, for tests); exit code for the shell."""
    try:
        with single_instance(rt):
            return _serve(rt, stop or threading.Event())
    except AlreadyRunning as err:
        log.error("%s", err)
        return 2


def _serve(rt: Runtime, stop: threading.Event) -> int:
    from yuqing.app.crawl_pool import CrawlPool, FollowUp

    previous = _install_signal_handlers(stop)
    try:
        jobs.sync_sources(rt)
        follow_up = FollowUp(rt)
        pool = CrawlPool(rt, on_done=follow_up.after_poll)
        pool.start()
        follow_up.start()
        scheduler = build_scheduler(rt, pool)
        scheduler.start()
        log.info("yuqing daemon started: %d jobs; stop with SIGTERM or Ctrl-C", len(scheduler.get_jobs()))
        stop.wait()
        log.info("stopping: queued polls dropped, polls in flight closed, running jobs finish their work")
        scheduler.pause()
        pool.stop()
        follow_up.stop()
        scheduler.shutdown(wait=True)
        log.info("stopped cleanly")
        return 0
    finally:
        _restore_signal_handlers(previous)


def _install_signal_handlers(stop: threading.Event) -> dict[int, Any]:
    """SIGTERM and SIGINT set the stop event (only possible from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, lambda signum, _frame: stop.set())
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def digest_due(rt: Runtime) -> datetime | None:
    """The latest digest time already passed, if its digest has not been built yet."""
    tz = ZoneInfo(rt.cfg.settings.timezone)
    now = rt.clock.now().astimezone(tz)
    trigger = digest_trigger(rt)
    if trigger is None:
        return None
    last_fire = None
    fire = trigger.get_next_fire_time(None, now - timedelta(days=8))
    while fire is not None and fire <= now:
        last_fire = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    if last_fire is None:
        return None
    with rt.store.session() as sess:
        built = sess.query(DigestRun).filter(DigestRun.period_end >= last_fire - timedelta(minutes=1)).first()
    return None if built else last_fire


def run_tick(rt: Runtime) -> int:
    """One pass of everything due, in order: crawl, analyse, escalate, digest, dispatch."""
    try:
        with single_instance(rt):
            return _tick(rt)
    except AlreadyRunning as err:
        log.warning("%s; this tick does nothing", err)
        return 0


def _tick(rt: Runtime) -> int:
    jobs.sync_sources(rt)
    failures = 0
    due = jobs.due_sources(rt)
    if due:
        failures += run_guarded("crawl", lambda: jobs.crawl(rt, due)) is None
    failures += run_guarded("analyze", lambda: jobs.analyze(rt)) is None
    failures += run_guarded("escalate", lambda: jobs.escalate(rt)) is None
    when = digest_due(rt)
    if when is not None:
        failures += run_guarded("digest", lambda: jobs.digest(rt, period_end=when)) is None
    failures += run_guarded("dispatch", lambda: jobs.dispatch(rt)) is None
    return 1 if failures else 0

"""The units of work the daemon schedules, `yuqing tick` runs once, and the CLI runs by hand.

Each job takes a Runtime (config, store, clock, loaded models) and does one bounded pass.
Each is transactional inside, so a crash or a stop between two jobs never half-writes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from yuqing.clock import Clock, SystemClock
from yuqing.config import AppConfig
from yuqing.models import SourceState
from yuqing.store import Store

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What every job needs, built once per process and passed in."""

    cfg: AppConfig
    store: Store
    clock: Clock = field(default_factory=SystemClock)
    _analysis_models: Any = None
    _risk_model_stamp: tuple[Path, int] | None = None
    senders: Any = None

    def analysis_models(self) -> Any:
        """Sentiment model, crisis judge and keywords, loaded once for the life of the process; the
        crisis model is reloaded when the hospital's corrections have been folded into a new one."""
        from yuqing.analysis.corrections import current_model_path

        with self.store.session() as sess:
            path = current_model_path(sess, self.cfg)
        stamp = (path, path.stat().st_mtime_ns)
        if self._analysis_models is None:
            from yuqing.analysis.pipeline import load_models

            self._analysis_models = load_models(self.cfg, risk_model_path=path)
        elif stamp != self._risk_model_stamp:
            from dataclasses import replace

            from yuqing.analysis.headline_model import HeadlineModel

            models = self._analysis_models
            self._analysis_models = replace(models, judge=models.judge.with_model(HeadlineModel.load(path)))
            log.info("crisis model reloaded: %s", path)
        self._risk_model_stamp = stamp
        return self._analysis_models

    def channel_senders(self) -> Any:
        """E-mail and WeCom senders built from config (secrets from the environment)."""
        if self.senders is None:
            from yuqing.alerts.senders import build_senders

            self.senders = build_senders(self.cfg, self.clock)
        return self.senders


def sync_sources(rt: Runtime) -> None:
    """Make sure every configured source has a state row, and names and tiers follow config."""
    from yuqing.crawler.extensions import ensure_state

    with rt.store.session() as sess:
        for src in rt.cfg.sources.sources:
            ensure_state(sess, src)


def due_sources(rt: Runtime, now: datetime | None = None) -> list[str]:
    """Enabled sources whose interval has passed since their last fetch."""
    now = now or rt.clock.now()
    due = []
    with rt.store.session() as sess:
        for src in rt.cfg.sources.sources:
            if not src.enabled:
                continue
            state = sess.get(SourceState, src.id)
            last = state.last_fetch_at if state else None
            if last is None or (now - last).total_seconds() >= src.poll_seconds - 5:
                due.append(src.id)
    return due


def crawl(rt: Runtime, source_ids: list[str], timeout: int | None = None, log_path: Path | None = None) -> int:
    """Crawl in a child process: Scrapy's reactor cannot restart inside a long-lived one."""
    from yuqing.crawler.runner import crawl_in_subprocess

    if not source_ids:
        return 0
    env = dict(os.environ)
    env.setdefault("YUQING_DATABASE_URL", rt.store.url)
    now = None if isinstance(rt.clock, SystemClock) else rt.clock.now()  # the demo's and tests' time
    log.info("crawling %s", ", ".join(source_ids))
    return crawl_in_subprocess(rt.cfg.config_dir, source_ids, env=env, timeout=timeout, now=now,
                               log_path=log_path)


def analyze(rt: Runtime, progress: Callable[[int, int], None] | None = None, wait: float = 0.0) -> Any:
    """Analyse new mentions, then open or raise incidents for the events they touched: one run at a time
    across every process sharing the database (StageBusy after `wait` seconds if another holds it)."""
    from yuqing.alerts.incidents import sync_incidents
    from yuqing.analysis.pipeline import analyze_new
    from yuqing.locks import stage_lease

    with stage_lease(rt.store, "analysis", wait=wait) as lease:
        renewed = [time.monotonic()]

        def step(done: int, total: int) -> None:
            if time.monotonic() - renewed[0] > 60:  # a long backfill keeps its lease
                lease.renew()
                renewed[0] = time.monotonic()
            if progress is not None:
                progress(done, total)

        report = analyze_new(rt.store, rt.cfg, rt.clock, models=rt.analysis_models(), progress=step)
        changes = sync_incidents(rt.store, rt.cfg, rt.clock)
    return report, changes


def correct(rt: Runtime, mention_id: int, verdict: Any, by: str, category: str | None = None,
            note: str = "") -> tuple[Any, list[Any]]:
    """A person's correction of a mention, applied at once: mention, event, and incident (a false alarm
    is closed, a missed crisis opens one), all in one transaction."""
    from yuqing.alerts.incidents import review_events
    from yuqing.analysis.corrections import apply_correction
    from yuqing.locks import stage_lease
    from yuqing.risk_categories import RISK_CATEGORIES

    now = rt.clock.now()
    categories = tuple(RISK_CATEGORIES)
    with stage_lease(rt.store, "analysis", wait=120), rt.store.session() as sess:
        result = apply_correction(sess, rt.cfg, now, mention_id, verdict, by, category=category,
                                  categories=categories, note=note)
        why = note or f"{by} 将提及 {mention_id} 更正为{VERDICT_WORDS.get(str(verdict), str(verdict))}"
        changes = review_events(sess, rt.cfg, now, result.event_ids, by, why)
    return result, changes


VERDICT_WORDS = {"crisis": "危机", "not_crisis": "非危机", "not_about_us": "与本院无关", "category": "指定类别"}


def retrain(rt: Runtime) -> Any:
    """Fold the hospital's corrections into the crisis model; analysis picks it up at its next run."""
    from yuqing.analysis.corrections import retrain as retrain_model

    with rt.store.session() as sess:
        return retrain_model(sess, rt.cfg)


def escalate(rt: Runtime) -> Any:
    """Escalate unacknowledged incidents and report sources that keep failing."""
    from yuqing.alerts.escalation import check_escalations
    from yuqing.alerts.operators import check_source_health
    from yuqing.alerts.rollup import release_quiet
    from yuqing.locks import stage_lease

    with stage_lease(rt.store, "escalation", wait=30):
        release_quiet(rt.store, rt.cfg, rt.clock)  # level IV held in quiet hours: one morning roll-up
        escalations = check_escalations(rt.store, rt.cfg, rt.clock)
        health = check_source_health(rt.store, rt.cfg, rt.clock)
    return escalations, health


def dispatch(rt: Runtime) -> Any:
    """Send what is due in the outbox."""
    from yuqing.alerts.outbox import dispatch as dispatch_outbox

    return dispatch_outbox(rt.store, rt.cfg, rt.clock, rt.channel_senders())


def digest(rt: Runtime, period_end: datetime | None = None) -> Any:
    """Build the weekly digest for the period ending at period_end (once per period)."""
    from yuqing.alerts.digest import build_digest

    return build_digest(rt.store, rt.cfg, rt.clock, period_end=period_end)


SKIPPED = "skipped"


def run_guarded(name: str, job: Callable[[], Any]) -> Any:
    """Run one job; a crash is logged with its name and the caller goes on with the next. A stage another
    process is running is skipped (SKIPPED), not a failure: that process does the work."""
    from yuqing.locks import StageBusy

    try:
        return job()
    except StageBusy as busy:
        log.info("job %s skipped: %s", name, busy)
        return SKIPPED
    except Exception:
        log.exception("job %s failed; the other jobs go on", name)
        return None

"""Helpers the crawler tests share: a config directory per scenario, a crawl subprocess, store queries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from yuqing.models import Mention, MentionURL, SourceState
from yuqing.store import Store

from .conftest import REPO, SHARED

CORPORA = SHARED / "corpora"
NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
FAST_CRAWL = {
    "user_agent": "yuqing-monitor/0.1 (test)",
    "contact": "it@hospital.example",
    "obey_robots": True,
    "timeout_seconds": 1,
    "max_page_bytes": 2_000_000,
    "per_domain_concurrency": 8,
    "download_delay_seconds": 0,
}
PLAN = {"levels": [{"level": "IV", "notify": ["duty"], "channels": ["wecom"], "ack_minutes": 60}]}
CHANNELS = {"recipients": [{"id": "duty", "name": "值班员"}]}


def write_config(root: Path, hospital: dict[str, Any], sources: list[dict[str, Any]],
                 crawl: dict[str, Any] | None = None) -> Path:
    """A complete config directory for one scenario; data_dir (locks) inside it."""
    cfg_dir = root / "config"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "settings": {"data_dir": "data", "crawl": {**FAST_CRAWL, **(crawl or {})}},
        "hospital": hospital,
        "sources": {"sources": sources},
        "plan": PLAN,
        "channels": CHANNELS,
    }
    for name, data in files.items():
        (cfg_dir / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return cfg_dir


def run_crawl(cfg_dir: Path, store: Store, ids: list[str] | None = None, now: datetime = NOW,
              timeout: float = 60) -> dict[str, Any]:
    """`python -m yuqing.crawler` in a subprocess against the test store; returns the JSON report by source."""
    env = {**os.environ, "YUQING_DATABASE_URL": store.url, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "yuqing.crawler", str(cfg_dir), *(ids or []), "--now", now.isoformat(), "--json"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"_log": proc.stderr, **{r["source_id"]: r for r in report["runs"]}}


def mentions(store: Store, source_id: str | None = None) -> list[Mention]:
    """Stored mentions (with their URLs loaded), optionally of one source."""
    with store.session() as sess:
        query = select(Mention).order_by(Mention.id)
        if source_id:
            query = query.where(Mention.source_id == source_id)
        found = list(sess.scalars(query))
        for m in found:
            _ = [u.url for u in m.urls]
        return found


def urls(store: Store) -> list[MentionURL]:
    """Every stored MentionURL."""
    with store.session() as sess:
        return list(sess.scalars(select(MentionURL).order_by(MentionURL.id)))


def state(store: Store, source_id: str) -> SourceState:
    """A source's stored state and health."""
    with store.session() as sess:
        found = sess.get(SourceState, source_id)
        assert found is not None, f"no state row for {source_id}"
        return found


def source(sid: str, kind: str, url: str, **extra: Any) -> dict[str, Any]:
    """A sources.yaml entry."""
    return {"id": sid, "name": sid, "kind": kind, "url": url, **extra}

"""Rebuild the README's screenshots of the phone incident page and the console.

Runs the demo's sample hospital through one crisis in a temporary database, serves the console on
127.0.0.1 and photographs it in Debian's headless Chromium (Playwright), then shrinks the PNGs to a
small palette. Usage: .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image

from yuqing.alerts.incidents import sync_incidents, tick
from yuqing.alerts.links import IncidentLinks
from yuqing.app.demo.servers import free_port
from yuqing.app.jobs import Runtime
from yuqing.app.web import auth
from yuqing.app.web.server import build, running
from yuqing.clock import ManualClock
from yuqing.config import load_config
from yuqing.models import Event, Mention, Role, SourceState

ENV = {"YUQING_SMTP_USER": "demo", "YUQING_SMTP_PASSWORD": "demo", "YUQING_WECOM_CRISIS_KEY": "demo",
       "YUQING_WEB_SECRET": "screenshot-secret-" + "0" * 40}
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
STORY = ["网曝江城一院产妇剖宫产后死亡 家属质疑抢救延误", "江城一院回应产妇死亡：已成立调查组", "产妇家属在江城一院门口拉横幅",
         "江城一院产妇死亡事件追踪：卫健委介入调查", "江城一院新门诊楼正式启用"]


def _seed(rt: Runtime) -> int:
    """One crisis event across sources, as analysis would leave it; returns the incident id."""
    now = rt.clock.now()
    with rt.store.session() as sess:
        for s in rt.cfg.sources.sources:
            sess.add(SourceState(id=s.id, kind=s.kind, name=s.name, url=s.url, tier=s.tier))
        event = Event(headline=STORY[0], first_seen=now - timedelta(hours=5), last_seen=now, mention_count=23,
                      negative_count=19, crisis_count=6, source_count=4, repost_count=11, velocity=6.0, baseline=1.5,
                      top_tier=2, risk_categories=["death_injury"], keywords=[], updated_at=now)
        sess.add(event)
        sess.flush()
        sources = rt.cfg.sources.sources
        for i, title in enumerate(STORY * 5):
            crisis = "新门诊楼" not in title
            sess.add(Mention(url=f"https://news.example/{i}", source_id=sources[i % len(sources)].id, title=title,
                             text="", fetched_at=now - timedelta(minutes=13 * i), content_hash=f"{i}",
                             negative=crisis, crisis=crisis, risk_score=0.93 if crisis else 0.02,
                             risk_categories=["death_injury"] if crisis else [], analyzed_at=now,
                             event_id=event.id if crisis else None))
    changes = sync_incidents(rt.store, rt.cfg, rt.clock)
    return changes[-1].incident_id


def _shrink(path: Path) -> None:
    Image.open(path).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cfg = load_config(REPO / "config", env=ENV)
        web = cfg.settings.web.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
        settings = cfg.settings.model_copy(update={"web": web, "data_dir": Path(tmp),
                                                   "database_url": f"sqlite:///{tmp}/shot.db"})
        cfg = cfg.model_copy(update={"settings": settings})
        from yuqing.store import Store

        clock = ManualClock(datetime(2026, 12, 5, 1, 30, tzinfo=UTC))
        rt = Runtime(cfg=cfg, store=Store.migrated(cfg.database_url), clock=clock)
        incident_id = _seed(rt)
        tick(rt.store, cfg, incident_id, cfg.plan.rule("II").checklist[0], "刘洋", clock)
        auth.set_password(rt.store, cfg, clock, "duty-officer", "screenshot-pass", Role.DUTY)
        link = IncidentLinks(ENV["YUQING_WEB_SECRET"], web.public_url or "", 7).url(incident_id, "duty-officer",
                                                                                     clock.now())
        args.out.mkdir(parents=True, exist_ok=True)
        with running(rt, build(rt, ENV), port=port), sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True)
            phone.goto(link)
            phone.screenshot(path=str(args.out / "incident-phone.png"))
            desk = browser.new_page(viewport={"width": 1100, "height": 700})
            desk.goto(f"http://127.0.0.1:{port}/login")
            desk.fill("input[name=username]", "duty-officer")
            desk.fill("input[name=password]", "screenshot-pass")
            desk.click("button[type=submit]")
            desk.goto(f"http://127.0.0.1:{port}/mentions?" + urllib.parse.urlencode({"negative": "yes"}))
            desk.screenshot(path=str(args.out / "console-mentions.png"))
            browser.close()
        for name in ("incident-phone.png", "console-mentions.png"):
            _shrink(args.out / name)
            print(f"{args.out / name}: {(args.out / name).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()

"""`yuqing demo`: the whole pipeline against a sample hospital served on 127.0.0.1.

It serves a sample web (RSS feed, news list with articles, patient reviews, a news
search), a local SMTP server and a WeCom-compatible robot endpoint; writes a config
for them from the shipped examples; and walks through a crisis that develops over
simulated hours: crawl → analyse → incidents → messages, then escalation when nobody
acknowledges, the acknowledgement, and the weekly digest.
"""

from __future__ import annotations

import http.server
import logging
import os
import re
import secrets
import shutil
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
import yaml
from sqlalchemy import func, select

from yuqing.alerts.plan import level_label, risk_name
from yuqing.app import jobs, reports
from yuqing.app.demo import site
from yuqing.app.demo.servers import free_port
from yuqing.app.jobs import Runtime
from yuqing.clock import ManualClock
from yuqing.config import DEFAULT_CONFIG_DIR, level_rank, load_config
from yuqing.models import Event, Incident, IncidentStatus, Mention, MessageStatus, OutboxMessage, SourceState
from yuqing.store import Store

log = logging.getLogger(__name__)
DEMO_WECOM_KEY = "demo-robot-key-not-secret"
PHASES = [
    (0, 2.0, "An ordinary morning: publicity, a free clinic, an award, and a look-alike hospital"),
    (1, 4.2, "A forum post: a mother died after a caesarean, the family accuses the hospital"),
    (2, 6.2, "The story spreads: reposts on local sites, a banner protest, angry patient reviews"),
    (3, 7.8, "Provincial media reports it: the health commission investigates"),
]


class SampleWeb:
    """The sample web on 127.0.0.1; `phase` decides what has been published so far."""

    def __init__(self, t0: datetime):
        self.t0 = t0
        self.phase = 0
        web = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, ctype, body = site.respond(self.path, web.phase, web.t0, web.base)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_demo_config(workdir: Path, web: str, smtp_port: int, wecom_url: str, console_port: int) -> Path:
    """The shipped example config, pointed at the local peers, with the demo's own sources."""
    cfg_dir = workdir / "config"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    for name in ("hospital.yaml", "plan.yaml"):
        shutil.copy(DEFAULT_CONFIG_DIR / name, cfg_dir / name)
    channels = yaml.safe_load((DEFAULT_CONFIG_DIR / "channels.yaml").read_text(encoding="utf-8"))
    channels["email"] = {"host": "127.0.0.1", "port": smtp_port, "sender": "yuqing@jcyy.example"}
    for robot in channels["wecom_robots"].values():
        robot["base_url"] = wecom_url
    settings = {
        "timezone": "Asia/Shanghai",
        "database_url": f"sqlite:///{workdir / 'yuqing.db'}",
        "data_dir": str(workdir),
        "digest_dir": str(workdir / "digests"),
        "crawl": {"contact": "it@jcyy.example", "download_delay_seconds": 0, "timeout_seconds": 10},
        "operators": ["it-oncall"],
        "web": {"public_url": f"http://127.0.0.1:{console_port}", "port": console_port},
    }
    sources = {"sources": [
        {"id": "jiangcheng-daily", "name": "江城日报 RSS", "kind": "rss", "url": f"{web}/jcdaily/rss.xml",
         "tier": 3, "interval_minutes": 15},
        {"id": "province-health", "name": "省健康报", "kind": "web", "url": f"{web}/province/",
         "tier": 2, "interval_minutes": 30},
        {"id": "news-search", "name": "新闻搜索", "kind": "search", "url": f"{web}/search?q={{query}}",
         "tier": 3, "interval_minutes": 20, "max_pages": 1},
        {"id": "patient-reviews", "name": "患者点评", "kind": "reviews", "url": f"{web}/reviews/jcyy",
         "tier": 4, "interval_minutes": 60, "max_pages": 3},
    ]}
    for name, data in (("channels", channels), ("settings", settings), ("sources", sources)):
        (cfg_dir / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                                              encoding="utf-8")
    return cfg_dir


class Narrator:
    """Prints what happened since the last phase, as the crisis team would see it."""

    def __init__(self, rt: Runtime, smtp: Any, wecom: Any):
        self.rt, self.smtp, self.wecom = rt, smtp, wecom
        self.last_mention = 0
        self.mails_seen = 0
        self.wecom_seen = 0
        self.tz = ZoneInfo(rt.cfg.settings.timezone)

    def heading(self, text: str) -> None:
        click.echo("\n" + click.style(text, bold=True))
        click.echo(click.style("─" * 78, dim=True))

    def mentions(self) -> None:
        """New mentions with their scores; and what the filter and dedup kept out."""
        with self.rt.store.session() as sess:
            new = sess.scalars(select(Mention).where(Mention.id > self.last_mention).order_by(Mention.id)).all()
            for m in new:
                if m.crisis:
                    tag = click.style("危机", fg="red", bold=True)
                else:
                    tag = click.style("负面", fg="red") if m.negative else click.style("非负面", fg="green")
                risk = f"  类别：{'、'.join(risk_name(c) for c in m.risk_categories)}" if m.crisis else ""
                urls = f"  ({len(m.urls)} URLs)" if len(m.urls) > 1 else ""
                score = f"{m.risk_score:.2f}" if m.risk_score is not None else "-"
                click.echo(f"  + [{m.source_id}] {m.title[:40]}  P(危机) {score} {tag}{risk}{urls}")
                self.last_mention = m.id
            total = sess.scalar(select(func.count(Mention.id)))
        click.echo(f"  {len(new)} new mention(s) stored; {total} in all")

    def events(self) -> None:
        with self.rt.store.session() as sess:
            for ev in sess.scalars(select(Event).order_by(Event.last_seen.desc()).limit(5)):
                click.echo(f"  event {ev.id}: {ev.headline[:40]} — {ev.mention_count} mentions, "
                           f"{ev.negative_count} negative, {ev.source_count} sources, {ev.repost_count} reposts, "
                           f"top tier {ev.top_tier}, {ev.velocity:.1f}/h vs usual {ev.baseline:.2f}/h"
                           + (f", risk {', '.join(ev.risk_categories)}" if ev.risk_categories else ""))

    def incidents(self) -> None:
        with self.rt.store.session() as sess:
            for inc in sess.scalars(select(Incident).order_by(Incident.id)):
                click.echo(click.style(f"  INCIDENT {inc.id}: {level_label(inc.level)} {inc.status}", fg="red",
                                       bold=True) + f" — {inc.reason}")

    def messages(self) -> None:
        """Every message delivered since the last phase, as its recipient sees it."""
        mails: list[EmailMessage] = self.smtp.messages[self.mails_seen:]
        posts: list[dict[str, Any]] = self.wecom.messages[self.wecom_seen:]
        self.mails_seen += len(mails)
        self.wecom_seen += len(posts)
        for post in posts:
            body = post.get("markdown", post.get("text", {})).get("content", "")
            click.echo(click.style("  ┌ WeCom group robot message", fg="cyan"))
            click.echo(textwrap.indent(body.strip(), "  │ "))
        for mail in mails:
            text = mail.get_body(preferencelist=("plain",))
            click.echo(click.style(f"  ┌ e-mail to {mail['To']}: {mail['Subject']}", fg="yellow"))
            if text is not None and mail is mails[0]:
                click.echo(textwrap.indent(text.get_content().strip(), "  │ "))
        if len(mails) > 1:
            click.echo(f"  (the other {len(mails) - 1} e-mails carry the same text to their recipients)")
        if not mails and not posts:
            click.echo("  no messages: nothing crossed a level of the plan")


def _start_peers(stack: ExitStack, t0: datetime) -> tuple[SampleWeb, Any, Any]:
    from yuqing.app.demo.servers import LocalSMTPServer, WeComEndpoint

    web = SampleWeb(t0)
    stack.callback(web.close)
    smtp = stack.enter_context(LocalSMTPServer())
    wecom = stack.enter_context(WeComEndpoint(valid_keys={DEMO_WECOM_KEY}))
    return web, smtp, wecom


@contextmanager
def _demo_env() -> Iterator[None]:
    """The demo robot's key and the console's signing key, given the way real secrets are: through the
    environment (the signing key is new for every run)."""
    given = {"YUQING_WECOM_CRISIS_KEY": DEMO_WECOM_KEY, "YUQING_WEB_SECRET": secrets.token_hex(32)}
    old = {name: os.environ.get(name) for name in given}
    os.environ.update(given)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _start_console(stack: ExitStack, rt: Runtime) -> str:
    """`yuqing serve` in a thread: the incident page the alerts link to, as a phone would open it."""
    from yuqing.app.web.server import build, running

    stack.enter_context(running(rt, build(rt), port=rt.cfg.settings.web.port))
    return str(rt.cfg.settings.web.public_url)


@dataclass
class DemoRuntime(Runtime):
    """The demo's runtime: its clock is moved by hand."""

    clock: ManualClock


@dataclass
class DemoSession:
    """The running demo: its runtime and the local peers, for the story and for tests."""

    rt: DemoRuntime
    web: SampleWeb
    smtp: Any
    wecom: Any
    workdir: Path
    t0: datetime
    console: str = ""


@contextmanager
def demo_session(workdir: Path) -> Iterator[DemoSession]:
    """Start the sample web and peers, write the demo config, open a fresh database."""
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = (datetime.now(UTC) - timedelta(hours=9)).replace(minute=0, second=0, microsecond=0)
    with ExitStack() as stack:
        stack.enter_context(_demo_env())
        web, smtp, wecom = _start_peers(stack, t0)
        cfg_dir = write_demo_config(workdir, web.base, smtp.port, wecom.url, free_port())
        cfg = load_config(cfg_dir)
        rt = DemoRuntime(cfg=cfg, store=Store.migrated(cfg.database_url), clock=ManualClock(t0))
        wecom.clock = rt.clock  # the endpoint's per-minute window runs on demo time too
        stack.callback(rt.store.dispose)
        console = _start_console(stack, rt)
        yield DemoSession(rt, web, smtp, wecom, workdir, t0, console)


def run_story(demo: DemoSession) -> None:
    """Every phase of the crisis, then escalation, acknowledgement and the digest."""
    narrator = Narrator(demo.rt, demo.smtp, demo.wecom)
    _intro(demo.rt, demo.web, demo.smtp, demo.wecom, demo.workdir)
    for phase, hour, caption in PHASES:
        _run_phase(demo.rt, demo.web, narrator, phase, demo.t0 + timedelta(hours=hour), caption)
        if phase == 0:
            _morning_ack(demo.rt, narrator)
    _escalation_and_ack(demo.rt, narrator, demo.smtp)
    _digest(demo.rt, narrator, demo.workdir)


def run_demo(keep: Path | None = None) -> int:
    """Run the demo and print the story; returns the exit code."""
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="yuqing-demo-"))
    logging.getLogger().setLevel(logging.WARNING)  # the story is the output; warnings still show
    logging.getLogger("yuqing.alerts.escalation").setLevel(logging.ERROR)  # escalations are narrated instead
    with demo_session(workdir) as demo:
        run_story(demo)
    return 0


def _intro(rt: Runtime, web: SampleWeb, smtp: Any, wecom: Any, workdir: Path) -> None:
    click.echo(click.style(f"yuqing demo — monitoring {rt.cfg.hospital.name} (a fictional hospital)", bold=True))
    click.echo(f"  sample web   {web.base}  (RSS feed, provincial news list, patient reviews, news search)")
    click.echo(f"  e-mail       SMTP on 127.0.0.1:{smtp.port}")
    click.echo(f"  WeCom robot  {wecom.url}")
    click.echo(f"  console      {rt.cfg.settings.web.public_url}  (`yuqing serve`: the page each alert links to)")
    click.echo(f"  config       {rt.cfg.config_dir}  (the shipped hospital.yaml and plan.yaml)")
    click.echo(f"  database     {workdir / 'yuqing.db'}")
    click.echo("  plan levels  " + "; ".join(f"{r.level} ack within {r.ack_minutes} min" for r in rt.cfg.plan.levels))


def _run_phase(rt: DemoRuntime, web: SampleWeb, narrator: Narrator, phase: int, when: datetime, caption: str) -> None:
    web.phase = phase
    rt.clock.set(when)
    narrator.heading(f"{when.astimezone(narrator.tz):%H:%M}  {caption}")
    jobs.sync_sources(rt)
    jobs.crawl(rt, [s.id for s in rt.cfg.sources.sources if s.enabled], timeout=300,
               log_path=Path(rt.cfg.settings.data_dir) / "crawl.log")
    _source_problems(rt)
    jobs.analyze(rt)
    jobs.escalate(rt)
    jobs.dispatch(rt)
    narrator.mentions()
    narrator.events()
    narrator.incidents()
    narrator.messages()


def _source_problems(rt: Runtime) -> None:
    with rt.store.session() as sess:
        for state in sess.scalars(select(SourceState).where(SourceState.consecutive_failures > 0)):
            click.echo(click.style(f"  source {state.id} failed: {state.last_error}", fg="red"))


def _acknowledge(rt: Runtime, narrator: Narrator, inc: Incident, note: str) -> None:
    """The duty officer acknowledges, as they would with `yuqing incidents ack`."""
    from yuqing.alerts.incidents import acknowledge

    duty = rt.cfg.channels.recipients[0].name
    narrator.heading(f"{rt.clock.now().astimezone(narrator.tz):%H:%M}  {duty} acknowledges incident {inc.id}: "
                     f"yuqing incidents ack {inc.id} --by {duty}")
    click.echo("  " + str(acknowledge(rt.store, inc.id, duty, rt.clock, note=note, cfg=rt.cfg,
                                        actor_id=rt.cfg.channels.recipients[0].id)))


def _open_incidents(rt: Runtime) -> list[Incident]:
    with rt.store.session() as sess:
        found = sess.scalars(select(Incident).where(Incident.status == IncidentStatus.OPEN)).all()
    return sorted(found, key=lambda i: (level_rank(i.level), i.id), reverse=True)


def _morning_ack(rt: DemoRuntime, narrator: Narrator) -> None:
    """A minor complaint in the morning is acknowledged at once, so it stops escalating."""
    for inc in _open_incidents(rt):
        rt.clock.advance(minutes=5)
        _acknowledge(rt, narrator, inc, note="已转门诊部核实处理")


def _link_in_mail(smtp: Any, address: str, incident_id: int) -> str:
    """The incident link in the newest e-mail to this address about this incident."""
    for mail in reversed(smtp.messages):
        if address in str(mail["To"]):
            part = mail.get_body(preferencelist=("plain",)) if mail.is_multipart() else mail
            found = re.search(rf"http://127\.0\.0\.1:\d+/i/{incident_id}/\S+", part.get_content() if part else "")
            if found:
                return found.group(0)
    raise LookupError(f"no incident link for {incident_id} in mail to {address}")


def _ack_by_link(rt: Runtime, narrator: Narrator, smtp: Any, inc: Incident, note: str) -> None:
    """The duty officer taps the link in her e-mail and acknowledges on the incident page, as on a phone."""
    import http.cookiejar
    import urllib.parse
    import urllib.request

    duty = rt.cfg.channels.recipients[0]
    link = _link_in_mail(smtp, str(duty.email), inc.id)
    narrator.heading(f"{rt.clock.now().astimezone(narrator.tz):%H:%M}  {duty.name} taps the link in her e-mail "
                     f"and acknowledges incident {inc.id} on her phone")
    click.echo(f"  {link[:72]}…")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(link, timeout=20).read().decode("utf-8")
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None, "the incident page has no form"
    form = urllib.parse.urlencode({"csrf": token.group(1), "note": note}).encode()
    answer = opener.open(f"{link}/ack", data=form, timeout=20).read().decode("utf-8")
    flash = re.search(r'<p class="flash [a-z]+" role="status">([^<]+)</p>', answer)
    click.echo(f"  the page says: {flash.group(1) if flash else '(no answer)'}")


def _escalation_and_ack(rt: DemoRuntime, narrator: Narrator, smtp: Any) -> None:
    """Nobody acknowledges the crisis in time: the plan escalates; then the duty officer answers from
    the link in her alert."""
    open_now = _open_incidents(rt)
    if not open_now:
        return
    inc = open_now[0]
    assert inc.ack_deadline is not None  # an open incident always has one
    late = max(rt.clock.now(), inc.ack_deadline) + timedelta(minutes=1)
    rt.clock.set(late)
    narrator.heading(f"{late.astimezone(narrator.tz):%H:%M}  Nobody acknowledged incident {inc.id} "
                     f"({level_label(inc.level)}) in time: the plan escalates")
    jobs.escalate(rt)
    jobs.dispatch(rt)
    narrator.messages()
    rt.clock.advance(minutes=4)
    _ack_by_link(rt, narrator, smtp, inc, note="已联系家属，正在准备情况通报")
    jobs.escalate(rt)
    jobs.dispatch(rt)
    narrator.messages()
    click.echo(reports.incident_detail(rt, inc.id))


def _digest(rt: DemoRuntime, narrator: Narrator, workdir: Path) -> None:
    rt.clock.advance(minutes=30)
    narrator.heading("The weekly digest for Monday's meeting")
    run = jobs.digest(rt, period_end=rt.clock.now())
    jobs.dispatch(rt)
    narrator.messages()
    with rt.store.session() as sess:
        pending = sess.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.status != MessageStatus.SENT))
    click.echo(f"\n  digest written to {run.path}")
    click.echo(f"  outbox: {pending} message(s) not delivered")
    click.echo(f"  everything is kept in {workdir}. To look around, try:")
    click.echo(f"    YUQING_WECOM_CRISIS_KEY={DEMO_WECOM_KEY} .venv/bin/yuqing -c {workdir / 'config'} incidents list")

"""The `yuqing` command: every stage by hand, the daemon, one cron tick, and the demo."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from yuqing.config import ConfigError, load_config
from yuqing.models import MessageStatus
from yuqing.vocabulary import Role

log = logging.getLogger("yuqing")


class _QuietThirdParty(logging.Filter):
    """Scrapy prints its banner and settings at INFO and a traceback for every refused connection; the
    operator needs one line per problem (each source's own line says which failed and why). -v shows
    Scrapy's INFO lines, -vv its debug lines and tracebacks."""

    def __init__(self, verbose: int) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(("scrapy", "twisted")):
            return True
        if (record.levelno < logging.WARNING or record.name in _SAID_BY_THE_SOURCE) and self.verbose < 1:
            return False
        if self.verbose < 2:
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


# download failures the source's own line already reports ("source X: ConnectionRefused … (url)")
_SAID_BY_THE_SOURCE = frozenset({"scrapy.downloadermiddlewares.retry", "scrapy.downloadermiddlewares.robotstxt"})


def _setup_logging(verbose: int, quiet: bool) -> None:
    """Log lines to stderr so stdout stays clean for JSON contracts; -q: warnings and errors only, -v:
    more detail, -vv: debug with tracebacks. The handler's level holds whatever Scrapy does to its loggers."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
        handler.addFilter(_QuietThirdParty(verbose))
    for noisy in ("scrapy", "jieba", "apscheduler.executors", "twisted", "alembic"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING) if verbose < 1 else level)


class Ctx:
    """Lazily loaded config, store and runtime: commands that need none of them start fast."""

    def __init__(self, config_dir: Path | None, quiet: bool = False):
        self.config_dir = config_dir
        self.quiet = quiet  # -q: no progress bars either
        self._cfg: Any = None
        self._rt: Any = None

    @property
    def cfg(self) -> Any:
        if self._cfg is None:
            try:
                self._cfg = load_config(self.config_dir)
            except ConfigError as err:
                raise click.ClickException(f"config is not valid ({len(err.problems)} problem(s)):\n  "
                                           + "\n  ".join(err.problems)) from None
            if self._cfg.example:
                log.warning("no config named: using the shipped example in %s (give -c DIR or set "
                            "YUQING_CONFIG_DIR; `yuqing init DIR` writes one for your hospital)", self._cfg.config_dir)
            for problem in self._cfg.degraded:
                log.error("%s", problem)
        return self._cfg

    def runtime(self) -> Any:
        """Config, migrated store and clock; refuses an un-migrated database."""
        if self._rt is None:
            from yuqing.app.jobs import Runtime
            from yuqing.store import NotMigrated, Store

            try:
                store = Store(self.cfg.database_url)
            except NotMigrated as err:
                raise click.ClickException(str(err)) from None
            self._rt = Runtime(cfg=self.cfg, store=store)
        return self._rt


pass_ctx = click.make_pass_decorator(Ctx)
ANALYSIS_WAIT = 600  # seconds `yuqing analyze` waits for a run already in progress (the daemon's, say)
# local times as people type them: 2026-12-01, "2026-12-01 08:00", 2026-12-01T08:00:00
LOCAL_TIME = click.DateTime(["%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"])


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-c", "--config", "config_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="YUQING_CONFIG_DIR", help="Config directory (default: ./config, or $YUQING_CONFIG_DIR).")
@click.option("-v", "--verbose", count=True, help="More log detail (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="yuqing")
@click.pass_context
def main(ctx: click.Context, config_dir: Path | None, verbose: int, quiet: bool) -> None:
    """yuqing (舆情): public-opinion monitoring and crisis response for a hospital.

    Collect mentions (crawl), score and group them (analyze), alert the crisis group by
    its contingency plan (dispatch, incidents), and send the weekly digest. Run it as a
    daemon (run) or from system cron (tick). Try `yuqing demo` first.
    """
    _setup_logging(verbose, quiet)
    ctx.obj = Ctx(config_dir, quiet)


# --- setup ----------------------------------------------------------------------


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the database, digests and retrained model go (default: ~/.local/share/yuqing, "
                   "or data/ of a checkout).")
def init(directory: Path, data_dir: Path | None) -> None:
    """Write a commented config for a new hospital into DIRECTORY (never over an existing one)."""
    import shutil

    from yuqing.resources import EXAMPLE_CONFIG, default_data_dir

    examples = sorted(EXAMPLE_CONFIG.glob("*.yaml"))
    clashes = [directory / p.name for p in examples if (directory / p.name).exists()]
    if clashes:
        raise click.ClickException(f"{', '.join(map(str, clashes))} already exist(s); nothing was written")
    directory.mkdir(parents=True, exist_ok=True)
    for path in examples:
        shutil.copyfile(path, directory / path.name)
    data = (data_dir or default_data_dir()).resolve()
    settings = directory / "settings.yaml"
    settings.write_text(settings.read_text(encoding="utf-8").rstrip("\n")
                        + f"\n\n# Where the database, the weekly digests and the retrained crisis model are kept.\n"
                          f"data_dir: {data}\n", encoding="utf-8")
    click.echo(f"wrote {len(examples)} commented files to {directory}:")
    click.echo("  hospital.yaml  the hospital's name, aliases, departments and doctors (start here)")
    click.echo("  sources.yaml   what to monitor; plan.yaml  the contingency plan; channels.yaml  who is told")
    click.echo(f"  settings.yaml  schedules and crawling; data_dir: {data}")
    click.echo(f"next: export YUQING_CONFIG_DIR={directory.resolve()}; set the secrets channels.yaml names; "
               "yuqing check-config; yuqing migrate")


@main.command("check-config")
@pass_ctx
def check_config(c: Ctx) -> None:
    """Validate every config file; list each problem with its file and field; exit 1 if any."""
    cfg = c.cfg
    from yuqing.analysis.risk import load_lexicon

    problems = list(cfg.degraded)
    try:
        load_lexicon(extra=cfg.hospital.risk_terms)
    except ValueError as err:
        problems.append(f"{cfg.config_dir / 'hospital.yaml'}: risk_terms: {err}")
    problems += _web_problems(cfg)
    if problems:
        raise click.ClickException(f"config is not valid ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    enabled = [s for s in cfg.sources.sources if s.enabled]
    click.echo(f"config OK: {cfg.config_dir}" + ("  (the shipped example: give -c DIR or set YUQING_CONFIG_DIR)"
                                                 if cfg.example else ""))
    click.echo(f"  hospital: {cfg.hospital.name} ({len(cfg.hospital.names)} names, "
               f"{len(cfg.hospital.excluded)} excluded look-alikes)")
    click.echo(f"  sources: {len(enabled)} enabled of {len(cfg.sources.sources)}")
    click.echo(f"  plan: {cfg.plan.name}: levels {', '.join(r.level for r in cfg.plan.levels)}")
    click.echo(f"  recipients: {len(cfg.channels.recipients)}, groups: {len(cfg.channels.groups)}, "
               f"WeCom robots: {len(cfg.channels.wecom_robots)}, e-mail: {'yes' if cfg.channels.email else 'no'}")
    from yuqing.alerts.channels import REGISTRY

    click.echo(f"  channels: {', '.join(p.channel for p in REGISTRY.values() if p.configured(cfg))}")
    click.echo(f"  database: {_shown_url(cfg.database_url)}")
    web = cfg.settings.web
    click.echo(f"  console: {web.public_url or 'no public_url: alerts show the command instead of a link'} "
               f"(listens on {web.host}:{web.port})")


def _web_problems(cfg: Any) -> list[str]:
    """A public address without the signing key would send alerts without links: say so before it happens."""
    from yuqing.alerts.links import WebSecretMissing, web_secret

    if not cfg.settings.web.public_url:
        return []
    try:
        web_secret()
    except WebSecretMissing as err:
        return [f"{cfg.config_dir / 'settings.yaml'}: web.public_url is set, but {err}"]
    return []


def _shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.command()
@pass_ctx
def migrate(c: Ctx) -> None:
    """Create or upgrade the database schema (run after every upgrade of yuqing)."""
    from yuqing.store import make_engine, schema_status, upgrade

    url = c.cfg.database_url
    upgrade(url)
    current, head = schema_status(make_engine(url))
    click.echo(f"database {_shown_url(url)} is at schema revision {current} (head {head})")


# --- stages ---------------------------------------------------------------------


@main.command()
@click.argument("source_ids", nargs=-1)
@click.option("--due", is_flag=True, help="Only sources whose interval has passed.")
@pass_ctx
def crawl(c: Ctx, source_ids: tuple[str, ...], due: bool) -> None:
    """Crawl sources now (all enabled ones, or the SOURCE_IDS given) and store new mentions."""
    from yuqing.app.jobs import due_sources, sync_sources
    from yuqing.crawler.runner import crawl_sources

    rt = c.runtime()
    sync_sources(rt)
    for sid in source_ids:
        try:
            rt.cfg.source(sid)
        except KeyError as err:
            raise click.ClickException(str(err.args[0])) from None
    ids = list(source_ids) or (due_sources(rt) if due else [s.id for s in rt.cfg.sources.sources if s.enabled])
    if not ids:
        click.echo("no sources to crawl")
        return
    with click.progressbar(length=len(ids), label=f"crawling {len(ids)} source(s)", file=sys.stderr,
                           item_show_func=lambda sid: sid or "", hidden=c.quiet) as bar:
        report = crawl_sources(rt.cfg, ids, store_url=rt.store.url, progress=lambda sid, _: bar.update(1, sid))
    from yuqing.app.reports import strip_controls

    click.echo(strip_controls(str(report)))
    failed = [r.source_id for r in report.runs if r.outcome == "failed"]
    if failed:
        click.echo(f"{len(failed)} of {len(report.runs)} source(s) failed: {', '.join(failed)} "
                   "(yuqing sources shows their health)", err=True)
        sys.exit(1)


@main.command()
@pass_ctx
def analyze(c: Ctx) -> None:
    """Score new mentions, group them into events, and open or raise incidents."""
    from yuqing.app.jobs import analyze as run_analysis
    from yuqing.locks import StageBusy

    rt = c.runtime()
    with click.progressbar(length=1, label="analysing", file=sys.stderr, hidden=c.quiet) as bar:
        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        try:
            report, changes = run_analysis(rt, progress=progress, wait=ANALYSIS_WAIT)
        except StageBusy as busy:
            raise click.ClickException(f"{busy}; try again when it has finished") from None
    click.echo(str(report))
    for change in changes:
        click.echo(str(change))


@main.group()
def channels() -> None:
    """The channels people are reached by (channels.yaml)."""


@channels.command("test")
@click.argument("names", nargs=-1)
@pass_ctx
def channels_test(c: Ctx, names: tuple[str, ...]) -> None:
    """Send a test message on each configured channel (or the NAMES given) and print what it answered."""
    from yuqing.alerts.channels.probe import probe_channels
    from yuqing.clock import SystemClock

    try:
        results = probe_channels(c.cfg, SystemClock(), names)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    for result in results:
        click.echo(str(result))
    if not all(r.ok for r in results):
        sys.exit(1)


@main.command()
@pass_ctx
def dispatch(c: Ctx) -> None:
    """Escalate overdue incidents, then send everything due in the outbox."""
    from yuqing.app.jobs import dispatch as run_dispatch
    from yuqing.app.jobs import escalate
    from yuqing.locks import StageBusy

    rt = c.runtime()
    try:
        escalate(rt)
    except StageBusy as busy:
        click.echo(f"escalation skipped: {busy}", err=True)
    report = run_dispatch(rt)
    click.echo(str(report))
    if report.retried or report.dead:  # queued messages are kept and retried; the operator should know now
        click.echo(f"{len(report.retried) + len(report.dead)} message(s) could not be delivered "
                   "(yuqing outbox list shows why)", err=True)
        sys.exit(1)


@main.command()
@click.option("--period-end", type=LOCAL_TIME, help="End of the week (local time); default: the last digest time.")
@pass_ctx
def digest(c: Ctx, period_end: datetime | None) -> None:
    """Build the weekly digest (once per week) and queue it for its recipients."""
    from yuqing.app.jobs import digest as run_digest

    rt = c.runtime()
    end = _local(rt.cfg, period_end) if period_end else None
    run = run_digest(rt, period_end=end)
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(rt.cfg.settings.timezone)
    start, stop = run.period_start.astimezone(tz), run.period_end.astimezone(tz)
    period = f"{start:%Y-%m-%d %H:%M} – {stop:%Y-%m-%d %H:%M} ({rt.cfg.settings.timezone})"
    if not run.path:
        click.echo(f"no digest for {period}: {run.summary.get('skipped', 'skipped')}")
    else:
        click.echo(f"digest for {period} written to {run.path}")


def _local(cfg: Any, naive: datetime) -> datetime:
    from zoneinfo import ZoneInfo

    return naive.replace(tzinfo=ZoneInfo(cfg.settings.timezone))


# --- incidents -----------------------------------------------------------------------


@main.group()
def incidents() -> None:
    """List, show, acknowledge and resolve incidents."""


@incidents.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include resolved incidents.")
@pass_ctx
def incidents_list(c: Ctx, show_all: bool) -> None:
    """Open incidents, highest level first."""
    from yuqing.app import reports

    rt = c.runtime()
    click.echo(reports.incident_table(rt, include_resolved=show_all))


@incidents.command("show")
@click.argument("incident_id", type=int)
@pass_ctx
def incidents_show(c: Ctx, incident_id: int) -> None:
    """One incident: its event, its level and why, its history, and its messages."""
    from yuqing.app import reports

    rt = c.runtime()
    click.echo(reports.incident_detail(rt, incident_id))


def _incident_action(c: Ctx, action: str, incident_id: int, by: str, note: str, **extra: Any) -> None:
    """One incident action as the person named (a recipient's id or name from channels.yaml when it is one)."""
    from yuqing.alerts import incidents as inc

    rt = c.runtime()
    try:
        person = rt.cfg.channels.person(by)
        name, actor_id = (person.name, person.id) if person else (by, None)
        if action == "declare_false_alarm":
            result = inc.declare_false_alarm(rt.store, rt.cfg, incident_id, name, rt.clock, note)
        elif action == "add_note":
            result = inc.add_note(rt.store, incident_id, name, rt.clock, note)
        else:
            result = getattr(inc, action)(rt.store, incident_id, name, rt.clock, note=note, cfg=rt.cfg,
                                          actor_id=actor_id, **extra)
    except (LookupError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(str(result))


@incidents.command("ack")
@click.argument("incident_id", type=int)
@click.option("--by", required=True, help="Who acknowledges (recorded in the audit log).")
@click.option("--note", default="", help="What is being done.")
@pass_ctx
def incidents_ack(c: Ctx, incident_id: int, by: str, note: str) -> None:
    """Acknowledge an incident: stops escalation."""
    _incident_action(c, "acknowledge", incident_id, by, note)


@incidents.command("respond")
@click.argument("incident_id", type=int)
@click.option("--by", required=True)
@click.option("--note", default="", help="Where and how the hospital responded publicly.")
@click.option("--url", default="", help="Link to the public statement.")
@pass_ctx
def incidents_respond(c: Ctx, incident_id: int, by: str, note: str, url: str) -> None:
    """Record the hospital's first public response (for time-to-respond)."""
    _incident_action(c, "mark_responded", incident_id, by, note, url=url)


@incidents.command("note")
@click.argument("incident_id", type=int)
@click.option("--by", required=True)
@click.option("--note", required=True, help="What was found, who was called, what was decided.")
@pass_ctx
def incidents_note(c: Ctx, incident_id: int, by: str, note: str) -> None:
    """Add a line to the incident's record."""
    _incident_action(c, "add_note", incident_id, by, note)


@incidents.command("false-alarm")
@click.argument("incident_id", type=int)
@click.option("--by", required=True)
@click.option("--note", default="", help="Why it is a false alarm.")
@pass_ctx
def incidents_false_alarm(c: Ctx, incident_id: int, by: str, note: str) -> None:
    """Close an incident as a false alarm: history kept, unsent alerts cancelled, those alerted told."""
    _incident_action(c, "declare_false_alarm", incident_id, by, note)


@incidents.command("resolve")
@click.argument("incident_id", type=int)
@click.option("--by", required=True)
@click.option("--note", default="")
@pass_ctx
def incidents_resolve(c: Ctx, incident_id: int, by: str, note: str) -> None:
    """Close an incident; it reopens if its event flares up again."""
    _incident_action(c, "resolve", incident_id, by, note)


# --- mentions and corrections ----------------------------------------------------------


@main.group()
def mentions() -> None:
    """Browse stored mentions and correct their crisis judgement."""


@mentions.command("list")
@click.option("--since", type=LOCAL_TIME,
              help="Only mentions from this local time on (e.g. 2026-12-01 or '2026-12-01 08:00').")
@click.option("--source", help="Only mentions found by this source id.")
@click.option("--crisis/--not-crisis", default=None, help="Only crises, or only non-crises.")
@click.option("--negative/--not-negative", default=None, help="Only negative mentions, or only the rest.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@pass_ctx
def mentions_list(c: Ctx, since: datetime | None, source: str | None, crisis: bool | None,
                  negative: bool | None, limit: int) -> None:
    """Mentions, newest first, with their judgement, score, category and event."""
    from yuqing.app import reports

    rt = c.runtime()
    click.echo(reports.mention_table(rt, since=_local(rt.cfg, since) if since else None, source=source,
                                     crisis=crisis, negative=negative, limit=limit))


@mentions.command("correct")
@click.argument("mention_id", type=int)
@click.option("--crisis", "verdict", flag_value="crisis", help="It is a crisis the team must act on.")
@click.option("--not-crisis", "verdict", flag_value="not_crisis", help="It is not a crisis (a false alarm).")
@click.option("--not-about-us", "verdict", flag_value="not_about_us", help="It is about another hospital.")
@click.option("--category", help="The crisis category it is (implies --crisis), e.g. violence.")
@click.option("--by", required=True, help="Who corrects it (recorded with the correction).")
@click.option("--note", default="", help="Why, for the record.")
@pass_ctx
def mentions_correct(c: Ctx, mention_id: int, verdict: str | None, category: str | None, by: str, note: str) -> None:
    """Correct a mention's judgement; the mention, its event and its incident change at once, and
    `yuqing retrain` folds the correction into the model."""
    from yuqing.analysis.corrections import CorrectionError
    from yuqing.app.jobs import correct
    from yuqing.models import Verdict

    if verdict is None and category is None:
        raise click.UsageError("say what it is: --crisis, --not-crisis, --not-about-us or --category NAME")
    if category is not None and verdict not in (None, "crisis"):
        raise click.UsageError("--category goes with --crisis only (a category is a kind of crisis)")
    chosen = Verdict(verdict) if verdict else Verdict.CATEGORY
    rt = c.runtime()
    try:
        result, changes = correct(rt, mention_id, chosen, by, category=category, note=note)
    except CorrectionError as err:
        raise click.ClickException(str(err)) from None
    click.echo(str(result))
    for change in changes:
        click.echo(str(change))
    click.echo("运行 yuqing retrain 把更正纳入模型（守护进程下次分析时自动载入）")


@main.command()
@pass_ctx
def retrain(c: Ctx) -> None:
    """Fold the hospital's corrections into the crisis model (the daemon reloads it at its next analysis)."""
    from yuqing.app.jobs import retrain as run_retrain

    rt = c.runtime()
    with click.progressbar(length=1, label="retraining", file=sys.stderr, hidden=c.quiet) as bar:
        result = run_retrain(rt)
        bar.update(1)
    click.echo(str(result))
    for text, before, after in result.changed:
        if (before >= 0.5) != (after >= 0.5):
            click.echo(f"  P(crisis) {before:.2f} → {after:.2f}  {text[:60]}")


# --- operations ------------------------------------------------------------------


@main.command()
@pass_ctx
def sources(c: Ctx) -> None:
    """Each source's health: last success, consecutive failures, last error."""
    from yuqing.app import reports

    click.echo(reports.source_table(c.runtime()))


@main.group()
def outbox() -> None:
    """Messages waiting, sent, or dead-lettered."""


@outbox.command("list")
@click.option("--status", type=click.Choice([*(s.value for s in MessageStatus), "all"]), default=MessageStatus.PENDING.value)
@pass_ctx
def outbox_list(c: Ctx, status: str) -> None:
    """Messages by status."""
    from yuqing.app import reports

    click.echo(reports.outbox_table(c.runtime(), status))


@outbox.command("requeue")
@click.argument("message_ids", nargs=-1, type=int)
@pass_ctx
def outbox_requeue(c: Ctx, message_ids: tuple[int, ...]) -> None:
    """Put dead-lettered messages back in the queue (all of them if no ids are given)."""
    from yuqing.alerts.outbox import requeue_dead

    rt = c.runtime()
    count = requeue_dead(rt.store, rt.clock, list(message_ids) or None)
    click.echo(f"requeued {count} message(s)")


@main.command()
@pass_ctx
def run(c: Ctx) -> None:
    """Run the daemon: every job on its schedule until SIGTERM or Ctrl-C."""
    from yuqing.app.daemon import run_daemon

    sys.exit(run_daemon(c.runtime()))


@main.command()
@pass_ctx
def tick(c: Ctx) -> None:
    """One pass of everything that is due, for system cron (e.g. every 5 minutes)."""
    from yuqing.app.daemon import run_tick

    sys.exit(run_tick(c.runtime()))


# --- contracts other tools rely on ---------------------------------------------------


@main.command()
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), help="Another model file.")
def sentiment(file: Any, model: Path | None) -> None:
    """Score sentiment: one document per line in, one JSON {"score", "label"} per line out."""
    from yuqing.analysis.sentiment_cli import run_sentiment

    sys.exit(run_sentiment(file, sys.stdout, model_path=model))


@main.command()
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--lexicon", type=click.Path(dir_okay=False, path_type=Path), help="Another lexicon file.")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), help="Another crisis model file.")
@click.option("--kind", type=click.Choice(["news", "post", "review"]), default="news", show_default=True,
              help="news: each line is a title; post/review: each line is a post's or review's text.")
def risk(file: Any, lexicon: Path | None, model: Path | None, kind: str) -> None:
    """Crisis judgement: one document per line in, one JSON {"crisis", "score", "negative", "categories",
    "terms"} per line out."""
    from yuqing.analysis.risk_cli import run_risk

    sys.exit(run_risk(file, sys.stdout, lexicon_path=lexicon, model_path=model, kind=kind))


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def extract(file: Path) -> None:
    """Extract an article from an HTML file (any encoding): JSON {"title", "author", "published_at", "text"}."""
    from yuqing.crawler.extract_cli import run_extract

    sys.exit(run_extract(file, sys.stdout))


# --- the console -----------------------------------------------------------------


@main.command()
@click.option("--host", help="Listen address (default: settings.yaml web.host).")
@click.option("--port", type=int, help="Port (default: settings.yaml web.port).")
@pass_ctx
def serve(c: Ctx, host: str | None, port: int | None) -> None:
    """Serve the incident page that alerts link to, and the console (needs YUQING_WEB_SECRET)."""
    from yuqing.alerts.links import WebSecretMissing
    from yuqing.app.web.server import build, server

    rt = c.runtime()
    try:
        app = build(rt)
    except WebSecretMissing as err:
        raise click.ClickException(str(err)) from None
    srv = server(rt, app, host, port)
    log.info("console on http://%s:%s (public address %s)", srv.config.host, srv.config.port,
             rt.cfg.settings.web.public_url or "not set")
    srv.run()
    if not srv.started:
        raise click.ClickException(f"could not listen on {srv.config.host}:{srv.config.port}")


@main.group()
def users() -> None:
    """Console accounts, one per recipient in channels.yaml."""


@users.command("set-password")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]),
              help="viewer (leadership), duty (publicity office) or admin (IT); new accounts default to viewer.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@pass_ctx
def users_set_password(c: Ctx, name: str, role: str | None, password_stdin: bool) -> None:
    """Create NAME's account or change its password (NAME: recipient id or name in channels.yaml)."""
    from yuqing.app.web import auth

    rt = c.runtime()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("new password", hide_input=True, confirmation_prompt=True)
    try:
        account = auth.set_password(rt.store, rt.cfg, rt.clock, name, password, Role(role) if role else None)
    except auth.AccountError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"password set for {account.recipient_id} ({account.name}), role {account.role}; "
               "earlier logins of this account are signed out")


@users.command("list")
@pass_ctx
def users_list(c: Ctx) -> None:
    """Console accounts, their roles and when their password was set."""
    from yuqing.app import reports
    from yuqing.app.web import auth

    rt = c.runtime()
    rows = [[rid, name, role, reports.local(rt, at), "disabled" if off else ""]
            for rid, name, role, at, off in auth.accounts(rt.store, rt.cfg)]
    click.echo(reports.table(["id", "name", "role", "password set", ""], rows) if rows else "no console accounts yet")


@users.command("disable")
@click.argument("name")
@pass_ctx
def users_disable(c: Ctx, name: str) -> None:
    """Lock NAME out of the console at once (their sessions end)."""
    from yuqing.app.web import auth

    rt = c.runtime()
    try:
        auth.disable(rt.store, rt.cfg, rt.clock, name)
    except auth.AccountError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{name}: console access disabled")


@main.command()
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the demo's database and digest (default: a new temporary one).")
def demo(keep: Path | None) -> None:
    """Run the whole pipeline against a local sample hospital and show what happens."""
    from yuqing.app.demo.run import run_demo

    sys.exit(run_demo(keep))


if __name__ == "__main__":
    main()

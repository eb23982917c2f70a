"""Typed configuration: the hospital, its sources, its contingency plan and channels.

Config is a directory of YAML files, validated once into frozen pydantic objects and
passed to whatever needs it. Errors name the file, the field and what was expected.
Secrets never sit in the files: a secret field must be written as ``${ENV_VAR}``.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from yuqing.channel_config import CHANNEL_SECTIONS, RECIPIENT_REFERENCES, ChannelSections, RecipientAddresses
from yuqing.resources import EXAMPLE_CONFIG, default_data_dir
from yuqing.vocabulary import Channel

DEFAULT_CONFIG_DIR = EXAMPLE_CONFIG
DATA_DIR = default_data_dir()

CONFIG_FILES = ("settings", "hospital", "sources", "plan", "channels")
ENV_REF = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")
LEVELS = ("IV", "III", "II", "I")  # lowest to highest: 一般, 较大, 重大, 特别重大
LEVEL_NAMES = {"IV": "一般", "III": "较大", "II": "重大", "I": "特别重大"}


class ConfigError(Exception):
    """A config problem a hospital's IT staff can fix from the message alone."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def level_rank(level: str) -> int:
    """Order levels so IV < III < II < I."""
    return LEVELS.index(level)


# --- settings.yaml ---------------------------------------------------------------


class Schedules(_Model):
    analysis_minutes: int = Field(default=5, ge=1, description="How often new mentions are analysed.")
    dispatch_seconds: int = Field(default=30, ge=5, description="How often the outbox is flushed.")
    escalation_minutes: int = Field(default=1, ge=1, description="How often ack deadlines are checked.")
    digest_cron: str = Field(default="0 8 * * mon", description="Weekly digest, crontab syntax.")


class CrawlSettings(_Model):
    user_agent: str = "yuqing-monitor/0.1 (+hospital public-opinion monitor)"
    contact: str = Field(default="", description="E-mail or URL site owners can reach you at.")
    obey_robots: bool = True
    timeout_seconds: int = Field(default=30, ge=1)
    max_page_bytes: int = Field(default=5 * 1024 * 1024, ge=10_000)
    per_domain_concurrency: int = Field(default=2, ge=1)
    download_delay_seconds: float = Field(default=1.0, ge=0)
    robots_cache_minutes: int = Field(default=60, ge=1, description="How long a site's robots.txt is reused across polls.")
    source_failure_alert_minutes: int = Field(
        default=360, ge=1, description="Alert the operators when a source has failed this long."
    )


class WebSettings(_Model):
    """`yuqing serve`: where it listens, the address staff reach it at, and how long links and logins last.
    The signing key is never here: it is the environment variable YUQING_WEB_SECRET."""

    public_url: str | None = Field(default=
        None, description="How staff phones reach the console (https through the reverse proxy); alerts link here.")
    host: str = "127.0.0.1"
    port: int = Field(default=8600, ge=1, le=65535)
    link_days: int = Field(default=7, ge=1, le=90, description="How long an alert's incident link stays valid.")
    session_hours: int = Field(default=12, ge=1, le=720, description="How long a console login lasts.")
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1"], description="Reverse proxies whose X-Forwarded-* headers are believed.")
    login_attempts: int = Field(default=5, ge=1, description="Failed logins per name or address before a pause.")
    login_pause_minutes: int = Field(default=15, ge=1)

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("write the address staff open, e.g. https://yuqing.hospital.example (no query)")
        return value.rstrip("/")


class Settings(_Model):
    timezone: str = "Asia/Shanghai"
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default is a SQLite file in data/."
    )
    data_dir: Path = DATA_DIR
    digest_dir: Path | None = None
    schedules: Schedules = Schedules()
    crawl: CrawlSettings = CrawlSettings()
    event_window_hours: int = Field(72, ge=1)
    operators: list[str] = Field(
        default_factory=list, description="Recipient ids told about broken sources."
    )
    web: WebSettings = WebSettings()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


# --- hospital.yaml ---------------------------------------------------------------


class Hospital(_Model):
    name: str = Field(min_length=2, description="Official name, e.g. 江城市第一人民医院.")
    aliases: list[str] = Field(default_factory=list, description="Other names and abbreviations.")
    departments: list[str] = Field(default_factory=list)
    doctors: list[str] = Field(default_factory=list)
    excluded: list[str] = Field(
        default_factory=list, description="Look-alikes that are not us, e.g. 外市 的 '一院'."
    )
    context_words: list[str] = Field(
        default_factory=list,
        description="Words one of which must appear near a short, ambiguous alias.",
    )
    ambiguous_aliases: list[str] = Field(
        default_factory=list,
        description="Aliases (like 市一院) that only count with a context word nearby.",
    )
    risk_terms: dict[str, list[str]] = Field(
        default_factory=dict, description="Extra crisis terms per risk category id."
    )

    @property
    def names(self) -> list[str]:
        """Every name that identifies the hospital, longest first so matches are greedy."""
        return sorted({self.name, *self.aliases}, key=len, reverse=True)

    @model_validator(mode="after")
    def _ambiguous_are_aliases(self) -> Hospital:
        unknown = [a for a in self.ambiguous_aliases if a not in self.aliases]
        if unknown:
            raise ValueError(f"ambiguous_aliases {unknown} must also be listed in aliases")
        return self


# --- sources.yaml ----------------------------------------------------------------

SourceKind = Literal["rss", "search", "web", "reviews", "hotlist", "rsshub"]
#: The national hot lists a `hotlist` source can read (crawler/hotlists.py knows each one's format).
HotListPlatform = Literal["weibo", "baidu", "douyin", "zhihu", "toutiao", "bilibili"]
#: What each hot list is called, for reasons, digests and reports.
HOT_LIST_NAMES = {"weibo": "微博热搜", "baidu": "百度热搜", "douyin": "抖音热榜", "zhihu": "知乎热榜",
                  "toutiao": "头条热榜", "bilibili": "B站热门"}
#: Platforms an RSSHub route may stand for; kept on each mention so every platform counts as a source.
SocialPlatform = Literal["weibo", "wechat", "douyin", "xiaohongshu", "zhihu", "bilibili", "other"]


class RsshubRoute(_Model):
    """One route of the hospital's RSSHub: `{query}` is filled with each hospital name, else fetched as is."""

    path: str = Field(pattern=r"^/", description="e.g. /weibo/keyword/{query} or /weibo/user/1234567890.")
    platform: SocialPlatform
    name: str = ""


class Selectors(_Model):
    """Per-site CSS/XPath overrides, only for sites the extractor gets wrong."""

    links: str | None = None
    next_page: str | None = None
    title: str | None = None
    body: str | None = None
    author: str | None = None
    published_at: str | None = None
    item: str | None = None
    rating: str | None = None


#: The shortest poll interval a source may ask for: politeness to the site, and headroom for the crawler.
MIN_POLL_SECONDS = 30


class Source(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Stable id, e.g. people-health.")
    name: str
    kind: SourceKind
    url: str = Field(description="Feed, list page, review page, or search template with {query}.")
    tier: int = Field(3, ge=1, le=4, description="1 central media, 2 provincial, 3 local, 4 forums/reviews.")
    interval_minutes: int = Field(30, ge=1)
    interval_seconds: int | None = Field(
        None, ge=MIN_POLL_SECONDS, description="Poll interval in seconds (30 and up); instead of interval_minutes.")
    enabled: bool = True
    allowed_domains: list[str] = Field(default_factory=list)
    obey_robots: bool | None = None
    max_pages: int = Field(3, ge=1, le=100)
    selectors: Selectors = Selectors()
    fetch_articles: Literal["auto", "always", "never"] = Field(
        "auto", description="rss: read the linked article (own domains only): auto = summary-only entries.")
    platform: HotListPlatform | None = Field(None, description="hotlist: which platform's list the url serves.")
    routes: list[RsshubRoute] = Field(default_factory=list, description="rsshub: route templates under the url.")

    @model_validator(mode="after")
    def _search_template(self) -> Source:
        if self.kind == "search" and "{query}" not in self.url:
            raise ValueError("a search source's url must contain {query}")
        if self.kind == "hotlist" and self.platform is None:
            raise ValueError("a hotlist source needs platform: one of weibo, baidu, douyin, zhihu, toutiao, bilibili")
        if self.kind == "rsshub" and not self.routes:
            raise ValueError("an rsshub source needs routes (e.g. - {path: /weibo/keyword/{query}, platform: weibo})")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if self.interval_seconds is not None and "interval_minutes" in self.model_fields_set:
            raise ValueError("give interval_seconds or interval_minutes, not both")
        return self

    @property
    def poll_seconds(self) -> int:
        """How often the source is polled, in seconds, whichever field set it."""
        return self.interval_seconds if self.interval_seconds is not None else self.interval_minutes * 60


class Sources(_Model):
    sources: list[Source] = Field(default_factory=list)

    @field_validator("sources")
    @classmethod
    def _unique(cls, value: list[Source]) -> list[Source]:
        seen: set[str] = set()
        for src in value:
            if src.id in seen:
                raise ValueError(f"duplicate source id {src.id!r}")
            seen.add(src.id)
        return value


# --- plan.yaml -------------------------------------------------------------------


# The response steps every level goes through unless the plan names its own.
DEFAULT_CHECKLIST = ("核实：核实事实与信息来源", "研判：研判影响与风险走向", "口径：拟定并审定回应口径",
                     "发布：发布回应并留存链接", "复盘：事后复盘与整改")


def _both_channels() -> list[Channel]:
    """A level's default channels: e-mail and WeCom group robots."""
    return [Channel.EMAIL, Channel.WECOM]


class LevelRule(_Model):
    """When an event reaches this level: any one of the thresholds that is set suffices."""

    level: Literal["IV", "III", "II", "I"]
    name: str = ""
    min_negative_mentions: int | None = Field(None, ge=1)
    min_mentions: int | None = Field(None, ge=1)
    min_velocity_ratio: float | None = Field(None, gt=0)
    min_source_tier: int | None = Field(None, ge=1, le=4, description="Reached tier this high (1 = central).")
    on_hot_list: bool = Field(False, description="The event is on a national hot list (kind: hotlist) at any rank.")
    hot_list_top: int | None = Field(None, ge=1, description="The event reached this rank or better on a hot list.")
    risk_categories: list[str] = Field(default_factory=list)
    require_crisis: bool = Field(True, description="Only events with at least one crisis mention.")
    notify: list[str] = Field(description="Recipient or group ids.")
    channels: list[Channel] = Field(default_factory=_both_channels)
    ack_minutes: int = Field(ge=1, description="Acknowledgement deadline.")
    respond_minutes: int = Field(240, ge=1, description="Deadline for the first public response, from opening.")
    escalate_to: list[str] = Field(default_factory=list, description="Told when nobody acknowledges.")
    repeat_minutes: int = Field(30, ge=1, description="Gap between escalation rounds.")
    checklist: list[str] = Field(default_factory=lambda: list(DEFAULT_CHECKLIST), min_length=1,
                                 description="The steps the incident page ticks off for this level.")


class Plan(_Model):
    name: str = "舆情应急预案"
    levels: list[LevelRule]

    @field_validator("levels")
    @classmethod
    def _one_per_level(cls, value: list[LevelRule]) -> list[LevelRule]:
        names = [rule.level for rule in value]
        if len(set(names)) != len(names):
            raise ValueError("each level may appear only once")
        if not value:
            raise ValueError("at least one level is required")
        return sorted(value, key=lambda r: level_rank(r.level))

    def rule(self, level: str) -> LevelRule:
        """The rule for one level."""
        return next(r for r in self.levels if r.level == level)


# --- channels.yaml ---------------------------------------------------------------


class Recipient(RecipientAddresses):
    """A person; how each channel reaches them is in RecipientAddresses (yuqing/channel_config.py)."""

    id: str
    name: str
    role: str = ""


class Group(_Model):
    id: str
    name: str
    members: list[str]


class Channels(ChannelSections):
    """channels.yaml: each channel's section (ChannelSections, yuqing/channel_config.py), then people."""

    recipients: list[Recipient] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
    digest_to: list[str] = Field(default_factory=list, description="Recipient or group ids.")

    def expand(self, ids: list[str]) -> list[Recipient]:
        """Recipient and group ids to distinct recipients, in the order given."""
        people = {r.id: r for r in self.recipients}
        groups = {g.id: g for g in self.groups}
        out: dict[str, Recipient] = {}
        for ident in ids:
            for member in groups[ident].members if ident in groups else [ident]:
                out.setdefault(member, people[member])
        return list(out.values())

    def person(self, id_or_name: str) -> Recipient | None:
        """The recipient with this id or this name, if exactly one."""
        key = " ".join(id_or_name.split())
        found = [r for r in self.recipients if key in (r.id, r.name)]
        return found[0] if len(found) == 1 else None

    def known_ids(self) -> set[str]:
        """Every id a plan may name."""
        return {r.id for r in self.recipients} | {g.id for g in self.groups}


# --- the whole ---------------------------------------------------------------------


class AppConfig(_Model):
    settings: Settings
    hospital: Hospital
    sources: Sources
    plan: Plan
    channels: Channels
    config_dir: Path
    degraded: tuple[str, ...] = Field(
        (), description="Problems that disable one feature, never alerting (a bad digest_cron): "
                        "check-config fails on them, the daemon runs without that feature and says so.")
    example: bool = Field(False, description="Loaded from the shipped example because no config was named.")

    @property
    def database_url(self) -> str:
        """Environment beats file beats the SQLite default in data/."""
        url = os.environ.get("YUQING_DATABASE_URL") or self.settings.database_url
        return url or f"sqlite:///{self.settings.data_dir / 'yuqing.db'}"

    def source(self, source_id: str) -> Source:
        """One source by id, or a KeyError that names it."""
        for src in self.sources.sources:
            if src.id == source_id:
                return src
        raise KeyError(f"no source {source_id!r} in {self.config_dir / 'sources.yaml'}")


def _interpolate(node: Any, env: dict[str, str], where: str, problems: list[str]) -> Any:
    """Replace ${VAR} with the environment's value; a missing variable is a problem."""
    if isinstance(node, dict):
        return {k: _interpolate(v, env, f"{where}.{k}" if where else str(k), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env, f"{where}[{i}]", problems) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        match = ENV_REF.match(node.strip())
        if not match:
            problems.append(f"{where}: write a secret or variable as exactly ${{NAME}}, got {node!r}")
            return node
        name = match.group(1)
        if name not in env:
            problems.append(f"{where}: environment variable {name} is not set")
            return ""
        return env[name]
    return node


SECRET_FIELDS = {"password", "username", "key", "secret", "access_token", "access_key_id", "access_key_secret"}
URL_SECRET = re.compile(r"[?&](key|access_token|secret|sign)=", re.IGNORECASE)


def _literal_secrets(node: Any, where: str, problems: list[str]) -> Any:
    """Secrets must be ${ENV} references, so they never end up in a file or a repo. A literal secret
    (a string or a number) is reported without its value and blanked, so no later error echoes it; so
    is a key pasted into a URL (WeCom's ...?key=...)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            path = f"{where}.{k}" if where else str(k)
            if k in SECRET_FIELDS and v is not None and not isinstance(v, (dict, list)) and not (
                    isinstance(v, str) and (not v or ENV_REF.match(v.strip()))):
                problems.append(f"{path}: secrets must come from the environment, write ${{SOME_VAR}} "
                                f"(the value written here is not shown)")
                out[k] = ""
            elif isinstance(v, str) and (secret := URL_SECRET.search(v)):
                problems.append(f"{path}: the URL carries a secret ({secret.group(1)}=…); keep only the "
                                f"endpoint here and write the key as key: ${{SOME_VAR}} (the value is not shown)")
                out[k] = URL_SECRET.split(v, maxsplit=1)[0]
            else:
                out[k] = _literal_secrets(v, path, problems)
        return out
    if isinstance(node, list):
        return [_literal_secrets(v, f"{where}[{i}]", problems) for i, v in enumerate(node)]
    return node


def _read_yaml(path: Path, problems: list[str]) -> dict[str, Any]:
    """One YAML file as a mapping; syntax errors name the line."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problems.append(f"{path}{line}: not valid YAML: {getattr(exc, 'problem', exc)}")
        return {}
    except UnicodeDecodeError:
        problems.append(f"{path}: not UTF-8 text")
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(f"{path}: expected a mapping of fields at the top level")
        return {}
    return data


def _shown(path: Path, err: Any) -> str:
    """The offending value, unless it may be a secret: never for an unknown field (a misspelt
    `pasword:` holds one), a secret field, or a long string in channels.yaml (a pasted key)."""
    got = err.get("input")
    if isinstance(got, (dict, list)) or got is None or err.get("type") == "extra_forbidden":
        return ""
    if any(str(p) in SECRET_FIELDS for p in err["loc"]):
        return ""
    if path.name == "channels.yaml" and isinstance(got, str) and len(got) > 12:
        return ""
    return f" (got {got!r})"


def _describe(path: Path, error: ValidationError, prefix: tuple[Any, ...] = ()) -> list[str]:
    """Pydantic errors as 'file: field.path: what was expected (got ...)'."""
    lines = []
    for err in error.errors():
        loc = ".".join(str(p) for p in (*prefix, *err["loc"]))
        lines.append(f"{path}: {loc or '(top level)'}: {err['msg']}{_shown(path, err)}")
    return lines


def _validate(model: type[BaseModel], data: dict[str, Any], path: Path, problems: list[str]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(_describe(path, exc))
        return None


def _strings(value: Any) -> list[str]:
    """The strings of a YAML list (anything else is a schema problem, reported elsewhere)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v if isinstance(v, dict) else {} for v in value] if isinstance(value, list) else []


def _cross_check(directory: Path, raw: dict[str, dict[str, Any]]) -> list[str]:
    """References between files, read from the files as written, so a schema error elsewhere in a file
    does not hide them: plan recipients, groups, robots and risk categories exist."""
    from yuqing.risk_categories import RISK_CATEGORIES

    problems: list[str] = []
    plan, channels, settings, hospital = (raw.get(k) or {} for k in ("plan", "channels", "settings", "hospital"))
    plan_file, chan_file = directory / "plan.yaml", directory / "channels.yaml"
    known_categories = ", ".join(RISK_CATEGORIES)
    people = {r.get("id") for r in _dicts(channels.get("recipients"))}
    known = people | {g.get("id") for g in _dicts(channels.get("groups"))}
    have_channels = "channels" in raw
    for i, rule in enumerate(_dicts(plan.get("levels"))):
        for field in ("notify", "escalate_to"):
            for ident in _strings(rule.get(field)):
                if have_channels and ident not in known:
                    problems.append(f"{plan_file}: levels[{i}].{field}: unknown recipient or group {ident!r}")
        for used in _strings(rule.get("channels", _both_channels())):
            section = CHANNEL_SECTIONS.get(used)
            if have_channels and section and used != Channel.WECOM and not channels.get(section):  # robots optional
                problems.append(f"{plan_file}: levels[{i}].channels: {used} is used but {chan_file} has no {section} section")
        for cat in _strings(rule.get("risk_categories")):
            if cat not in RISK_CATEGORIES:
                problems.append(f"{plan_file}: levels[{i}].risk_categories: unknown risk category {cat!r} "
                                f"(known: {known_categories})")
    terms = hospital.get("risk_terms")
    for cat in (terms if isinstance(terms, dict) else {}):
        if cat not in RISK_CATEGORIES:
            problems.append(f"{directory / 'hospital.yaml'}: risk_terms: unknown risk category {cat!r} "
                            f"(known: {known_categories})")
    for ident in _strings(channels.get("digest_to")):
        if ident not in known:
            problems.append(f"{chan_file}: digest_to: unknown recipient or group {ident!r}")
    for i, group in enumerate(_dicts(channels.get("groups"))):
        for member in _strings(group.get("members")):
            if member not in people:
                problems.append(f"{chan_file}: groups[{i}].members: unknown recipient {member!r}")
    for i, person in enumerate(_dicts(channels.get("recipients"))):
        for field, (section, what) in RECIPIENT_REFERENCES.items():
            named, known_ids = person.get(field), channels.get(section)
            if named and named not in (known_ids if isinstance(known_ids, dict) else {}):
                problems.append(f"{chan_file}: recipients[{i}].{field}: unknown {what} {named!r}")
    if have_channels:
        for ident in _strings(settings.get("operators")):
            if ident not in known:
                problems.append(f"{directory / 'settings.yaml'}: operators: unknown recipient or group {ident!r}")
    return problems


def _schedule_problems(directory: Path, settings: Settings | None) -> list[str]:
    """The digest schedule, parsed by the scheduler's own crontab parser."""
    if settings is None:
        return []
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(settings.schedules.digest_cron, timezone=settings.timezone)
    except ValueError as err:
        return [f"{directory / 'settings.yaml'}: schedules.digest_cron: {err} (got "
                f"{settings.schedules.digest_cron!r}; crontab: minute hour day month day_of_week, e.g. '0 8 * * mon'); "
                f"the weekly digest is off until this is fixed, alerts are not affected"]
    return []


REQUIRED_FILES = {
    "hospital": "it names the hospital to monitor",
    "sources": "it lists what to monitor",
    "plan": "it holds the contingency plan levels",
    "channels": "it says who is told and how",
}


def load_config(config_dir: Path | str | None = None, env: dict[str, str] | None = None) -> AppConfig:
    """Read and validate every file in the config directory, reporting all problems at once.

    Raises ConfigError with every problem (file, field, what was expected) when any would stop the
    monitor; problems that only disable one feature (a bad digest schedule) are in `degraded`."""
    named = config_dir or os.environ.get("YUQING_CONFIG_DIR")
    directory = Path(named or DEFAULT_CONFIG_DIR)
    env = dict(os.environ if env is None else env)
    problems: list[str] = []
    if not directory.is_dir():
        raise ConfigError([f"{directory}: config directory does not exist"])
    for name, why in REQUIRED_FILES.items():
        if not (directory / f"{name}.yaml").exists():
            problems.append(f"{directory / f'{name}.yaml'}: missing; {why} (`yuqing init DIR` writes a commented one)")
    parsed: dict[str, Any] = {}
    raws: dict[str, dict[str, Any]] = {}
    models: dict[str, type[BaseModel]] = {
        "settings": Settings, "hospital": Hospital, "sources": Sources, "plan": Plan, "channels": Channels}
    for name in CONFIG_FILES:
        path = directory / f"{name}.yaml"
        if not path.exists() and name in REQUIRED_FILES:
            continue
        raw = _read_yaml(path, problems)
        file_problems: list[str] = []
        raw = _literal_secrets(raw, "", file_problems)
        raw = _interpolate(raw, env, "", file_problems)
        problems.extend(f"{path}: {p}" for p in file_problems)
        if name == "settings" and "data_dir" in raw:
            raw["data_dir"] = (directory / raw["data_dir"]).resolve()
        raws[name] = raw
        parsed[name] = _validate(models[name], raw, path, problems)
    problems.extend(_cross_check(directory, raws))
    degraded = _schedule_problems(directory, parsed.get("settings"))
    if problems or any(v is None for v in parsed.values()):
        raise ConfigError(problems + degraded)
    return AppConfig(config_dir=directory, degraded=tuple(degraded), example=not named, **parsed)

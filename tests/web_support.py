"""A real `yuqing serve` (uvicorn on 127.0.0.1, in a thread) over a real SQLite store, and a small HTTP
client that keeps cookies and does not follow redirects, so tests see exactly what a browser is sent."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from yuqing.alerts.incidents import sync_incidents
from yuqing.alerts.links import IncidentLinks
from yuqing.app.demo.servers import free_port as free_port  # the tests import it from here
from yuqing.app.jobs import Runtime
from yuqing.app.web import auth
from yuqing.app.web.server import build, running
from yuqing.clock import ManualClock
from yuqing.config import AppConfig
from yuqing.models import Role
from yuqing.store import Store

from .alerts_support import make_event

WEB_SECRET = "test-web-secret-" + "0123456789abcdef" * 3
PASSWORDS = {"duty-officer": "duty-pass-123", "vp": "viewer-pass-123", "it-oncall": "admin-pass-123"}
ROLES = {"duty-officer": Role.DUTY, "vp": Role.VIEWER, "it-oncall": Role.ADMIN}


@dataclass
class Reply:
    status: int
    headers: Any
    text: str

    def header(self, name: str) -> str:
        return str(self.headers.get(name, ""))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Client:
    """Cookies kept, redirects not followed, errors returned as replies."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def request(self, method: str, path: str, data: dict[str, Any] | list[tuple[str, str]] | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with self.opener.open(req, timeout=20) as resp:
                return Reply(resp.status, resp.headers, resp.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.headers, err.read().decode("utf-8", "replace"))

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, data: dict[str, Any] | list[tuple[str, str]], **kw: Any) -> Reply:
        return self.request("POST", path, data=data, **kw)

    def csrf(self, path: str) -> str:
        """The CSRF token the page at path hands out."""
        found = re.search(r'name="csrf" value="([^"]+)"', self.get(path).text)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def login(self, recipient_id: str) -> Reply:
        token = self.csrf("/login")
        return self.post("/login", {"csrf": token, "username": recipient_id, "password": PASSWORDS[recipient_id],
                                    "next": "/"})


@dataclass
class Console:
    """A running console: its address, runtime and the links it accepts."""

    base: str
    rt: Runtime
    links: IncidentLinks

    @property
    def store(self) -> Store:
        return self.rt.store

    @property
    def clock(self) -> ManualClock:
        assert isinstance(self.rt.clock, ManualClock)
        return self.rt.clock

    def client(self) -> Client:
        return Client(self.base)

    def link_path(self, incident_id: int, recipient_id: str) -> str:
        return urllib.parse.urlsplit(self.links.url(incident_id, recipient_id, self.clock.now())).path


def console_config(cfg: AppConfig, port: int) -> AppConfig:
    web = cfg.settings.web.model_copy(update={"public_url": f"http://127.0.0.1:{port}", "port": port})
    return cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"web": web})})


def run_console(cfg: AppConfig, store: Store, clock: ManualClock, port: int) -> Iterator[Console]:
    """uvicorn serving the console in a thread until the test ends."""
    rt = Runtime(cfg=cfg, store=store, clock=clock)
    links = IncidentLinks(WEB_SECRET, cfg.settings.web.public_url or "", cfg.settings.web.link_days)
    with running(rt, build(rt, {"YUQING_WEB_SECRET": WEB_SECRET}), port=port):
        yield Console(f"http://127.0.0.1:{port}", rt, links)


def add_accounts(cfg: AppConfig, store: Store, clock: ManualClock) -> None:
    for rid, password in PASSWORDS.items():
        auth.set_password(store, cfg, clock, rid, password, ROLES[rid])


def open_incident(cfg: AppConfig, store: Store, clock: ManualClock, headline: str = "江城一院产妇死亡 家属质疑手术",
                  **event: Any) -> int:
    """An event that meets the plan, and the incident it opens; returns the incident id."""
    make_event(store, clock, headline=headline, **event)
    changes = sync_incidents(store, cfg, clock)
    assert changes, "the event should open an incident"
    return changes[-1].incident_id


@pytest.fixture
def console(cfg: AppConfig, store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    """The console on a free port, its config's public address pointing at itself, three accounts."""
    port = free_port()
    local = console_config(cfg, port)
    monkeypatch.setenv("YUQING_WEB_SECRET", WEB_SECRET)
    add_accounts(local, store, clock)
    yield from run_console(local, store, clock, port)

"""Fixtures every stage's tests share: a real SQLite store, a clock, a local HTTP server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from yuqing.clock import ManualClock
from yuqing.config import AppConfig, load_config
from yuqing.store import Store

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SECRETS = {
    "YUQING_SMTP_USER": "monitor",
    "YUQING_SMTP_PASSWORD": "s3cret-smtp",
    "YUQING_WECOM_CRISIS_KEY": "test-key-0001",
}


@pytest.fixture
def shared_dir() -> Path:
    """../shared with the real corpora; tests that need it skip where it is absent."""
    if not (SHARED / "corpora").is_dir():
        pytest.skip(f"needs the shared corpora at {SHARED} (absent on this machine)")
    return SHARED


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves by hand, starting on a Monday morning."""
    return ManualClock(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite file in the test's own directory."""
    st = Store.migrated(f"sqlite:///{tmp_path / 'yuqing.db'}")
    yield st
    st.dispose()


@pytest.fixture
def config() -> AppConfig:
    """The shipped example config, with test secrets in the environment."""
    return load_config(REPO / "config", env=SECRETS)


Route = Callable[[http.server.BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


class LocalHTTPServer:
    """A real HTTP server on 127.0.0.1 whose routes a test sets; it records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route | tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path, dict(self.headers)))
                route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if route is None:
                    status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
                else:
                    status, headers, body = route(self) if callable(route) else route
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def handle_error(self, request: object, client_address: object) -> None:
                """A client hanging up mid-body (the crawler's size cap) is expected, not noise."""

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8",
              status: int = 200, headers: dict[str, str] | None = None) -> str:
        """Serve fixed bytes at a path and return its full URL."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = (status, {"Content-Type": content_type, **(headers or {})}, data)
        return self.base + path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    """A local HTTP server; nothing in tests reaches the internet."""
    srv = LocalHTTPServer()
    yield srv
    srv.close()


def write_config_dir(tmp_path: Path, sources: list[dict] | None = None, **settings: object) -> Path:
    """The shipped example config in a temp dir, with its own database and data dir."""
    import shutil

    import yaml

    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target, dirs_exist_ok=True)
    base = {"data_dir": str(tmp_path / "data"), "database_url": f"sqlite:///{tmp_path / 'data' / 'yuqing.db'}"}
    (target / "settings.yaml").write_text(yaml.safe_dump({**base, **settings}, allow_unicode=True), encoding="utf-8")
    (target / "sources.yaml").write_text(yaml.safe_dump({"sources": sources or []}, allow_unicode=True),
                                         encoding="utf-8")
    return target


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A writable config directory with no sources and its own SQLite file."""
    return write_config_dir(tmp_path)


@pytest.fixture(scope="session", autouse=True)
def no_generic_top_level_imports() -> Iterator[None]:
    """The stage packages are yuqing.crawler, yuqing.analysis and yuqing.alerts: a wheel installs nothing
    else. The checkout's root is on sys.path in tests, so an import of the bare name would work here and
    fail in an installed wheel; this fails the run instead."""
    import sys

    yield
    leaked = sorted(name for name in ("analysis", "alerts", "crawler") if name in sys.modules)
    assert not leaked, f"imported by their bare names (use yuqing.{leaked[0]}): {leaked}"

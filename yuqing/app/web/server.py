"""Run the console under uvicorn, a production ASGI server, behind the hospital's reverse proxy."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator, Mapping

import uvicorn
from starlette.applications import Starlette

from yuqing.alerts.links import IncidentLinks, web_secret
from yuqing.app.jobs import Runtime
from yuqing.app.web.app import create_app

log = logging.getLogger(__name__)


def build(rt: Runtime, environ: Mapping[str, str] | None = None) -> Starlette:
    """The application, or WebSecretMissing when the signing key is not in the environment."""
    secret = web_secret(environ)
    web = rt.cfg.settings.web
    public = web.public_url or f"http://{web.host}:{web.port}"
    if not web.public_url:
        log.warning("settings.yaml web.public_url is not set: alerts carry no incident link until it is")
    return create_app(rt, IncidentLinks(secret, public, web.link_days), secret)


class _Server(uvicorn.Server):
    """uvicorn, stopping gracefully on SIGTERM/SIGINT and then exiting 0 (systemd reads that as a clean stop)
    rather than re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@contextlib.contextmanager
def running(rt: Runtime, app: Starlette, host: str = "127.0.0.1", port: int | None = None) -> Iterator[uvicorn.Server]:
    """The console served from a thread until the block ends (the demo, tests, benches, screenshots)."""
    srv = server(rt, app, host, port)
    thread = threading.Thread(target=srv.run, daemon=True, name="yuqing-console")
    thread.start()
    while not srv.started:
        if not thread.is_alive():
            raise RuntimeError(f"the console could not listen on {srv.config.host}:{srv.config.port}")
        threading.Event().wait(0.02)
    try:
        yield srv
    finally:
        srv.should_exit = True
        thread.join(10)


def server(rt: Runtime, app: Starlette, host: str | None = None, port: int | None = None) -> uvicorn.Server:
    """A uvicorn server that believes X-Forwarded-* only from the configured proxies."""
    web = rt.cfg.settings.web
    config = uvicorn.Config(app, host=host or web.host, port=port if port is not None else web.port,
                            proxy_headers=True, forwarded_allow_ips=",".join(web.trusted_proxies),
                            server_header=False, log_config=None, access_log=False, timeout_graceful_shutdown=5)
    return _Server(config)

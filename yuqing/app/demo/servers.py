"""Local peers for the demo and tests: an SMTP server and a WeCom group-robot endpoint on 127.0.0.1.

Both are real servers on real sockets, so the senders are exercised exactly as in
production; nothing here reaches the internet.
"""

from __future__ import annotations

import email.policy
import http.server
import json
import logging
import socket
import threading
import urllib.parse
import warnings
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from yuqing.clock import Clock, SystemClock

log = logging.getLogger(__name__)

WECOM_PATH = "/cgi-bin/webhook/send"
MARKDOWN_LIMIT, TEXT_LIMIT = 4096, 2048


def free_port() -> int:
    """A port nobody on 127.0.0.1 is listening on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_in_thread(port: int, handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    """A threaded HTTP server on 127.0.0.1:port (0: any free port), serving from a daemon thread."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return httpd


def stop_serving(httpd: http.server.ThreadingHTTPServer | None) -> None:
    """Stop a server from serve_in_thread and free its port (None: nothing to stop)."""
    if httpd is not None:
        httpd.shutdown()
        httpd.server_close()


class _Collector:
    """aiosmtpd handler keeping every accepted message, parsed."""

    def __init__(self, sink: list[EmailMessage], envelopes: list[tuple[str, list[str]]]):
        self.sink, self.envelopes = sink, envelopes

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        self.sink.append(message_from_bytes(data, policy=email.policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class LocalSMTPServer:
    """aiosmtpd on 127.0.0.1 collecting parsed e-mails; stop() and start() again keep the port."""

    def __init__(self, port: int = 0, logins: dict[str, str] | None = None):
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins = dict(logins or {})
        self._controller: Controller | None = None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        """Accept the configured login/password pairs (plain text is fine on 127.0.0.1)."""
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            return AuthResult(success=self.logins.get(user) == password, handled=False)
        return AuthResult(success=False, handled=False)

    def start(self) -> LocalSMTPServer:
        """Listen (again) on the same port."""
        if self._controller is None:
            extra: dict[str, Any] = {}
            if self.logins:
                extra = dict(authenticator=self._authenticate, auth_require_tls=False)
            with warnings.catch_warnings():  # AUTH without TLS is what we want on 127.0.0.1
                warnings.simplefilter("ignore", UserWarning)
                self._controller = Controller(_Collector(self.messages, self.envelopes), hostname=self.host,
                                              port=self.port, **extra)
            self._controller.start()
            log.info("local SMTP server on %s:%s", self.host, self.port)
        return self

    def stop(self) -> None:
        """Stop listening: senders now get 'connection refused', as with a mail server that is down."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> LocalSMTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WeComEndpoint:
    """Answers like WeCom's group-robot webhook: errcode in an HTTP-200 body, 20 messages/min per key."""

    def __init__(self, valid_keys: Iterable[str] = (), clock: Clock | None = None, per_minute: int = 20):
        self.valid_keys = set(valid_keys)
        self.clock = clock or SystemClock()
        self.per_minute = per_minute
        self.messages: list[dict[str, Any]] = []
        self.accepted: list[tuple[str, dict[str, Any]]] = []
        self.replies: list[dict[str, Any]] = []
        self.windows: dict[str, deque[datetime]] = {}
        self.lock = threading.Lock()
        self.httpd: http.server.ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The webhook base URL, without ?key= (that is the robot's secret)."""
        return f"http://127.0.0.1:{self.port}{WECOM_PATH}"

    def answer(self, path: str, body: bytes) -> dict[str, Any]:
        """WeCom's reply to one POST."""
        parsed = urllib.parse.urlsplit(path)
        key = urllib.parse.parse_qs(parsed.query).get("key", [""])[0]
        if parsed.path != WECOM_PATH or key not in self.valid_keys:
            return {"errcode": 93000, "errmsg": "invalid webhook url, hint: [local], "
                    "more info at https://open.work.weixin.qq.com/devtool/query?e=93000"}
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return {"errcode": 40035, "errmsg": "invalid parameter, request body is not json"}
        problem = self._invalid(payload)
        if problem:
            return problem
        with self.lock:
            return self._admit(key, payload)

    def _invalid(self, payload: Any) -> dict[str, Any] | None:
        """The checks WeCom makes on a message body; None if it is fine."""
        if not isinstance(payload, dict) or payload.get("msgtype") not in ("text", "markdown"):
            return {"errcode": 40008, "errmsg": "invalid message type"}
        kind = payload["msgtype"]
        content = (payload.get(kind) or {}).get("content")
        if not isinstance(content, str) or not content:
            return {"errcode": 44004, "errmsg": "empty content"}
        limit = MARKDOWN_LIMIT if kind == "markdown" else TEXT_LIMIT
        if len(content.encode("utf-8")) > limit:
            return {"errcode": 40058, "errmsg": f"{kind}.content exceed max length {limit}"}
        return None

    def _admit(self, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The rolling-minute limit per key, on this endpoint's own clock."""
        now = self.clock.now()
        window = self.windows.setdefault(key, deque())
        while window and window[0] <= now - timedelta(minutes=1):
            window.popleft()
        if len(window) >= self.per_minute:
            return {"errcode": 45009, "errmsg": "api freq out of limit"}
        window.append(now)
        self.messages.append(payload)
        self.accepted.append((key, payload))
        return {"errcode": 0, "errmsg": "ok"}

    def start(self) -> WeComEndpoint:
        """Serve on 127.0.0.1 in a background thread."""
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                reply = endpoint.answer(self.path, self.rfile.read(length))
                endpoint.replies.append(reply)
                data = json.dumps(reply).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = serve_in_thread(self.port, Handler)
        self.port = self.httpd.server_address[1]
        log.info("local WeCom robot endpoint at %s", self.url)
        return self

    def stop(self) -> None:
        stop_serving(self.httpd)
        self.httpd = None

    def __enter__(self) -> WeComEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

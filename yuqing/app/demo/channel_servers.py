"""Local stand-ins for the channels beyond e-mail and WeCom robots, on 127.0.0.1, answering as the real
APIs document: WeCom application messages (gettoken + message/send), DingTalk signed robots, Alibaba
Cloud SMS (SendSms, signature v1 checked), a signed webhook receiver, and a peer that accepts a
connection and never answers (for tests that one hung channel holds up no other).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import logging
import re
import secrets
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from yuqing.app.demo.servers import serve_in_thread, stop_serving
from yuqing.clock import Clock, SystemClock

log = logging.getLogger(__name__)

Reply = tuple[int, dict[str, str], bytes]


def _json_reply(payload: dict[str, Any], status: int = 200) -> Reply:
    return status, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(payload).encode("utf-8")


class _Endpoint:
    """A threaded HTTP server whose answer() a subclass writes; it records every request it saw."""

    name = "endpoint"

    def __init__(self, clock: Clock | None = None):
        self.clock = clock or SystemClock()
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.arrived: list[float] = []  # time.monotonic() of every request, for ordering checks
        self.httpd: http.server.ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    def start(self) -> Any:
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()}
                with endpoint.lock:
                    endpoint.requests.append((method, self.path, headers, body))
                    endpoint.arrived.append(time.monotonic())
                status, out_headers, data = endpoint.answer(method, self.path, headers, body)
                self.send_response(status)
                for key, value in out_headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = serve_in_thread(self.port, Handler)
        self.port = self.httpd.server_address[1]
        log.info("local %s at %s", self.name, self.base)
        return self

    def stop(self) -> None:
        stop_serving(self.httpd)
        self.httpd = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _per_minute(windows: dict[str, deque[datetime]], key: str, now: datetime, limit: int) -> bool:
    """Admit one more in the rolling minute for key; False when the limit is reached."""
    window = windows.setdefault(key, deque())
    while window and window[0] <= now - timedelta(minutes=1):
        window.popleft()
    if len(window) >= limit:
        return False
    window.append(now)
    return True


class WeComAppEndpoint(_Endpoint):
    """WeCom's gettoken and message/send: tokens live expires_in seconds (on this clock), 40014 for an
    unknown token, 42001 for an expired one, 81013 + invaliduser for an unknown user, 45009 past the
    per-minute limit, 40058 for markdown over 2048 bytes; always HTTP 200."""

    name = "WeCom application API"

    def __init__(self, corp_id: str, secret: str, agent_id: int, users: Iterable[str], clock: Clock | None = None,
                 per_minute: int = 30, expires_in: int = 7200):
        super().__init__(clock)
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.users = set(users)
        self.per_minute, self.expires_in = per_minute, expires_in
        self.tokens: dict[str, datetime] = {}
        self.tokens_issued = 0
        self.messages: list[dict[str, Any]] = []
        self.windows: dict[str, deque[datetime]] = {}

    @property
    def url(self) -> str:
        return f"{self.base}/cgi-bin"

    def expire_tokens(self) -> None:
        """Make every token issued so far expired (as after two hours)."""
        with self.lock:
            self.tokens = {t: self.clock.now() - timedelta(seconds=1) for t in self.tokens}

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        parsed = urllib.parse.urlsplit(path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        if parsed.path == "/cgi-bin/gettoken":
            return _json_reply(self._gettoken(query))
        if parsed.path == "/cgi-bin/message/send" and method == "POST":
            with self.lock:
                return _json_reply(self._send(query.get("access_token", ""), body))
        return _json_reply({"errcode": 404, "errmsg": "not found"}, 404)

    def _gettoken(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("corpid") != self.corp_id:
            return {"errcode": 40013, "errmsg": "invalid corpid"}
        if query.get("corpsecret") != self.secret:
            return {"errcode": 40001, "errmsg": "invalid credential"}
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = self.clock.now() + timedelta(seconds=self.expires_in)
            self.tokens_issued += 1
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in}

    def _send(self, token: str, body: bytes) -> dict[str, Any]:
        if token not in self.tokens:
            return {"errcode": 40014, "errmsg": "invalid access_token"}
        if self.tokens[token] <= self.clock.now():
            return {"errcode": 42001, "errmsg": "access_token expired"}
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return {"errcode": 40035, "errmsg": "invalid parameter"}
        if payload.get("agentid") != self.agent_id:
            return {"errcode": 40056, "errmsg": "invalid agentid"}
        kind = payload.get("msgtype")
        if kind not in ("text", "markdown"):
            return {"errcode": 40008, "errmsg": "invalid message type"}
        content = (payload.get(kind) or {}).get("content") or ""
        if not content:
            return {"errcode": 44004, "errmsg": "empty content"}
        if len(content.encode("utf-8")) > 2048:
            return {"errcode": 40058, "errmsg": f"{kind}.content exceed max length 2048"}
        users = [u for u in str(payload.get("touser", "")).split("|") if u]
        unknown = [u for u in users if u not in self.users]
        if users and len(unknown) == len(users):
            return {"errcode": 81013, "errmsg": "user & party & tag all invalid", "invaliduser": "|".join(unknown)}
        if not _per_minute(self.windows, str(self.agent_id), self.clock.now(), self.per_minute):
            return {"errcode": 45009, "errmsg": "api freq out of limit"}
        self.messages.append(payload)
        return {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(unknown), "msgid": f"m{len(self.messages)}"}


class DingTalkEndpoint(_Endpoint):
    """DingTalk's robot/send: 300001 unknown token, 310000 sign mismatch or a timestamp over an hour
    off, 130101 past 20 messages a minute; always HTTP 200."""

    name = "DingTalk robot API"

    def __init__(self, robots: dict[str, str | None], clock: Clock | None = None, per_minute: int = 20):
        super().__init__(clock)
        self.robots = robots  # access_token -> signing secret (None: robot without 加签)
        self.per_minute = per_minute
        self.messages: list[dict[str, Any]] = []
        self.windows: dict[str, deque[datetime]] = {}

    @property
    def url(self) -> str:
        return f"{self.base}/robot/send"

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        query = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).items()}
        with self.lock:
            return _json_reply(self._send(query, body))

    def _send(self, query: dict[str, str], body: bytes) -> dict[str, Any]:
        token = query.get("access_token", "")
        if token not in self.robots:
            return {"errcode": 300001, "errmsg": "token is not exist"}
        secret = self.robots[token]
        if secret is not None:
            stamp = query.get("timestamp", "")
            if not stamp.isdigit() or abs(int(stamp) / 1000 - self.clock.now().timestamp()) > 3600:
                return {"errcode": 310000, "errmsg": "invalid timestamp"}
            expected = base64.b64encode(hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256)
                                        .digest()).decode()
            if query.get("sign") != expected:  # parse_qs has already undone the URL-encoding
                return {"errcode": 310000, "errmsg": "sign not match"}
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return {"errcode": 40035, "errmsg": "缺少参数 json"}
        if payload.get("msgtype") not in ("text", "markdown"):
            return {"errcode": 40008, "errmsg": "invalid msgtype"}
        if not _per_minute(self.windows, token, self.clock.now(), self.per_minute):
            return {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
        self.messages.append(payload)
        return {"errcode": 0, "errmsg": "ok"}


class AliyunSmsEndpoint(_Endpoint):
    """dysmsapi SendSms: the signature recomputed (SignatureDoesNotMatch, HTTP 400), the key known
    (InvalidAccessKeyId.NotFound, HTTP 404), the approved signature and template, every template
    variable present and at most 35 characters, a mainland mobile, and one SMS per number a minute
    (isv.BUSINESS_LIMIT_CONTROL); business errors come with HTTP 200."""

    name = "Alibaba Cloud SMS API"

    def __init__(self, key_id: str, key_secret: str, sign_name: str, template_code: str, variables: Iterable[str],
                 clock: Clock | None = None, per_number_per_minute: int = 1):
        super().__init__(clock)
        self.key_id, self.key_secret = key_id, key_secret
        self.sign_name, self.template_code, self.variables = sign_name, template_code, set(variables)
        self.per_number = per_number_per_minute
        self.messages: list[dict[str, str]] = []
        self.windows: dict[str, deque[datetime]] = {}

    @property
    def url(self) -> str:
        return f"{self.base}/"

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        from yuqing.alerts.channels.sms import rpc_signature

        params = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(path).query,
                                                            keep_blank_values=True).items()}
        request_id = secrets.token_hex(8).upper()
        signature = params.pop("Signature", "")
        if params.get("AccessKeyId") != self.key_id:
            return _json_reply({"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found.",
                                "RequestId": request_id}, 404)
        if signature != rpc_signature(params, self.key_secret, method):
            return _json_reply({"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched "
                                "with our calculation.", "RequestId": request_id}, 400)
        with self.lock:
            code, message = self._check(params)
            if code == "OK":
                self.messages.append(params)
        reply = {"Code": code, "Message": message, "RequestId": request_id}
        if code == "OK":
            reply["BizId"] = f"{len(self.messages)}^0"
        return _json_reply(reply)

    def _check(self, params: dict[str, str]) -> tuple[str, str]:
        if params.get("Action") != "SendSms" or params.get("Version") != "2017-05-25":
            return "InvalidAction.NotFound", "Specified api is not found"
        if params.get("SignName") != self.sign_name:
            return "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名"
        if params.get("TemplateCode") != self.template_code:
            return "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板"
        try:
            variables = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值"
        if not self.variables <= set(variables):
            return "isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值"
        if any(len(str(v)) > 35 for v in variables.values()):
            return "isv.PARAM_LENGTH_LIMIT", "参数超出长度限制"
        number = params.get("PhoneNumbers", "")
        if not re.fullmatch(r"1\d{10}", number):
            return "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"
        if not _per_minute(self.windows, number, self.clock.now(), self.per_number):
            return "isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控Permits:1"
        return "OK", "OK"


class WebhookReceiver(_Endpoint):
    """The hospital's side of the webhook: checks the HMAC-SHA256 signature (401 if wrong), records
    what it accepted, and can be told to answer another status for a while."""

    name = "webhook receiver"

    def __init__(self, secret: str, clock: Clock | None = None):
        super().__init__(clock)
        self.secret = secret
        self.messages: list[dict[str, Any]] = []
        self.status_queue: deque[tuple[int, dict[str, str]]] = deque()

    @property
    def url(self) -> str:
        return f"{self.base}/duty/alerts"

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        from yuqing.alerts.channels.webhook import webhook_signature

        if self.status_queue:
            status, extra = self.status_queue.popleft()
            return status, extra, b'{"ok":false}'
        stamp = headers.get("X-Yuqing-Timestamp", "")
        if not stamp.isdigit() or headers.get("X-Yuqing-Signature") != webhook_signature(self.secret, int(stamp), body):
            return 401, {"Content-Type": "application/json"}, b'{"ok":false,"error":"bad signature"}'
        with self.lock:
            self.messages.append(json.loads(body.decode("utf-8")))
        return 200, {"Content-Type": "application/json"}, b'{"ok":true}'


class HungPeer:
    """Accepts TCP connections and never answers: an SMTP server or API that hangs. Records when each
    connection was accepted and when the client gave up on it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[float] = []
        self.closed: list[float] = []
        self.stopping = threading.Event()
        self.conns: list[socket.socket] = []

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(time.monotonic())
            self.conns.append(conn)
            threading.Thread(target=self._wait_for_close, args=(conn,), daemon=True).start()

    def _wait_for_close(self, conn: socket.socket) -> None:
        """Read nothing but the client's hang-up."""
        conn.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                if conn.recv(4096) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        self.closed.append(time.monotonic())

    def start(self) -> HungPeer:
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for conn in self.conns:
            conn.close()
        self.sock.close()

    def __enter__(self) -> HungPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(predicate: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Poll until predicate holds or the time is up (stand-ins answer on their own threads)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()

"""`yuqing serve`: the incident page an alert links to, and the console of the publicity office.

Starlette routes over the same store, config and clock the daemon uses. The incident page needs no
password: its signed link is its recipient's identity. The console needs a login; every form carries a
CSRF token; every action lands in the incident's trail or the audit log.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from yuqing.alerts import incidents as actions
from yuqing.alerts.escalation import duration_text
from yuqing.alerts.links import IncidentLinks, LinkRefused
from yuqing.alerts.messages import local_time, oneline, safe_url, source_names
from yuqing.alerts.plan import level_label, risk_name, tier_name
from yuqing.app.jobs import Runtime
from yuqing.app.web import auth, queries
from yuqing.app.web.security import DIGEST_POLICY, SecurityHeaders, new_token, same
from yuqing.models import DigestRun, Mention, MessageStatus, Role, Verdict
from yuqing.risk_categories import RISK_CATEGORIES
from yuqing.store import audit

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
INCIDENT_ACTIONS = ("ack", "note", "respond", "resolve", "false_alarm", "tick")
STATUS_NAMES = {"open": "待确认", "acknowledged": "处置中", "resolved": "已结案"}
ACTION_NAMES = {"opened": "开启", "raised": "升级", "reopened": "重开", "acknowledged": "确认", "escalated": "超时通报",
                "responded": "公开回应", "resolved": "结案", "false_alarm": "误报关闭", "note": "备注", "checklist": "完成步骤"}


class Web:
    """The application's state: runtime, links, templates; handlers are its methods."""

    def __init__(self, rt: Runtime, links: IncidentLinks):
        self.rt, self.links = rt, links
        self.tz = ZoneInfo(rt.cfg.settings.timezone)
        env = Environment(loader=PackageLoader("yuqing.app.web", "templates"), autoescape=True,
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        env.filters.update(local=self.local, short=self.short, safe_url=safe_url, oneline=oneline, duration=duration_text,
                           level=level_label, risk=risk_name, tier=tier_name)
        env.globals.update(status_names=STATUS_NAMES, action_names=ACTION_NAMES, hospital=rt.cfg.hospital.name,
                           categories=RISK_CATEGORIES)
        self.templates = Jinja2Templates(env=env)

    # --- helpers -------------------------------------------------------------------------------

    def local(self, dt: datetime | None) -> str:
        return local_time(dt, self.rt.cfg.settings.timezone)

    def short(self, dt: datetime | None) -> str:
        return "—" if dt is None else f"{dt.astimezone(self.tz):%m-%d %H:%M}"

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        account = request.scope.get("account")
        context.setdefault("csrf", request.session.get("csrf", ""))
        flash = request.session.pop("flash", None)
        return self.templates.TemplateResponse(request, name, {"account": account, "flash": flash, **context},
                                               status_code=status)

    def error(self, request: Request, status: int, message: str) -> Response:
        return self.page(request, "error.html.j2", status=status, message=message)

    @staticmethod
    def address(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    async def form(self, request: Request, csrf: str) -> Any:
        """The posted form, after its CSRF token is checked against what the page was given."""
        form = await request.form()
        if not same(str(form.get("csrf", "")), csrf):
            raise HTTPException(403, "表单已失效（CSRF 校验未通过），请刷新页面后重试")
        return form

    def require(self, request: Request, act: bool = False, admin: bool = False) -> auth.Account:
        """The logged-in account, or a redirect to the login page; a 403 when its role may not."""
        account: auth.Account | None = request.scope.get("account")
        if account is None:
            raise HTTPException(303, headers={"Location": f"/login?next={request.url.path}"})
        if (act and not account.role.can_act) or (admin and account.role != Role.ADMIN):
            raise HTTPException(403, "您的账号角色无权执行此操作")
        return account

    def load_account(self, request: Request) -> None:
        """Who the session cookie names, if it is still valid."""
        who = request.session.get("user")
        if isinstance(who, dict):
            account = auth.current(self.rt.store, self.rt.cfg, str(who.get("id")), str(who.get("key", "")))
            if account is None:
                request.session.pop("user", None)
            request.scope["account"] = account
        else:
            request.scope["account"] = None
        if "csrf" not in request.session:
            request.session["csrf"] = new_token()

    # --- login ---------------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if request.method == "GET":
            return self.page(request, "login.html.j2", next=_next(request.query_params.get("next", "/")))
        form = await self.form(request, request.session.get("csrf", ""))
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        target = _next(str(form.get("next", "/")))
        now, address = self.rt.clock.now(), self.address(request)
        if auth.paused(self.rt.store, self.rt.cfg, now, username, address):
            log.warning("console login paused for %r from %s after repeated failures", oneline(username, 60), address)
            return self.page(request, "login.html.j2", status=429, next=target,
                             message=f"登录失败次数过多，请 {self.rt.cfg.settings.web.login_pause_minutes} 分钟后再试")
        account = auth.login(self.rt.store, self.rt.cfg, self.rt.clock, username, password, address)
        if account is None:
            return self.page(request, "login.html.j2", status=401, next=target, message="用户名或密码不正确")
        request.session.clear()
        request.session.update(user={"id": account.recipient_id, "key": account.session_key},
                               csrf=new_token())
        return RedirectResponse(target, status_code=303)

    async def logout(self, request: Request) -> Response:
        await self.form(request, request.session.get("csrf", ""))
        account = request.scope.get("account")
        if account is not None:
            with self.rt.store.session() as sess:
                audit(sess, self.rt.clock.now(), "console.logout", f"user:{account.recipient_id}", actor=account.name)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # --- the incident page from an alert's link --------------------------------------------------

    def claim(self, request: Request) -> tuple[int, str, str]:
        """(incident id, recipient id, recipient name) of a valid link for the incident in the path."""
        token = request.path_params["token"]
        try:
            claim = self.links.read(token, self.rt.clock.now())
        except LinkRefused as refused:
            log.warning("incident link refused from %s: %s", self.address(request), refused)
            raise HTTPException(403, str(refused)) from None
        if claim.incident_id != request.path_params["incident_id"]:
            raise HTTPException(403, "此链接属于另一起事件，请使用该事件预警消息中的链接")
        person = next((r for r in self.rt.cfg.channels.recipients if r.id == claim.recipient_id), None)
        if person is None:
            raise HTTPException(403, "此链接的收件人已不在预案通讯录中")
        return claim.incident_id, person.id, person.name

    async def link_page(self, request: Request) -> Response:
        incident_id, _, name = self.claim(request)
        token = request.path_params["token"]
        return self.incident_view(request, incident_id, actor=name, can_act=True,
                                  action_base=f"/i/{incident_id}/{token}", csrf=self.links.csrf(token))

    async def link_action(self, request: Request) -> Response:
        incident_id, recipient_id, name = self.claim(request)
        token = request.path_params["token"]
        form = await self.form(request, self.links.csrf(token))
        self.act(request, incident_id, request.path_params["action"], form, name, recipient_id, via="link")
        return RedirectResponse(f"/i/{incident_id}/{token}", status_code=303)

    def incident_view(self, request: Request, incident_id: int, **context: Any) -> Response:
        with self.rt.store.session() as sess:
            data = queries.incident_detail(sess, self.rt.cfg, incident_id)
            if data is None:
                return self.error(request, 404, f"没有编号为 {incident_id} 的事件")
            return self.page(request, "incident.html.j2", now=self.rt.clock.now(), **data, **context)

    def act(self, request: Request, incident_id: int, action: str, form: Any, name: str, recipient_id: str | None,
            via: str) -> None:
        """Carry out one button of the incident page as this person; the result is flashed."""
        rt, note = self.rt, str(form.get("note", "")).strip()[:2000]
        common: dict[str, Any] = {"cfg": rt.cfg, "actor_id": recipient_id}
        try:
            if action == "ack":
                result = actions.acknowledge(rt.store, incident_id, name, rt.clock, note=note, **common)
            elif action == "note":
                result = actions.add_note(rt.store, incident_id, name, rt.clock, note)
            elif action == "respond":
                result = actions.mark_responded(rt.store, incident_id, name, rt.clock, note=note,
                                                url=str(form.get("url", "")), **common)
            elif action == "resolve":
                result = actions.resolve(rt.store, incident_id, name, rt.clock, note=note, **common)
            elif action == "false_alarm":
                result = actions.declare_false_alarm(rt.store, rt.cfg, incident_id, name, rt.clock, note)
            elif action == "tick":
                result = actions.tick(rt.store, rt.cfg, incident_id, str(form.get("item", "")), name, rt.clock)
            else:
                raise HTTPException(404, "没有这个操作")
        except actions.IncidentError as err:
            request.session["flash"] = {"kind": "error", "text": str(err)}
            return
        with rt.store.session() as sess:
            audit(sess, rt.clock.now(), f"web.{action}", f"incident:{incident_id}", actor=name, via=via,
                  address=self.address(request), changed=result.changed)
        request.session["flash"] = {"kind": "ok" if result.changed else "info", "text": str(result)}

    # --- console ---------------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        self.require(request)
        with self.rt.store.session() as sess:
            data = queries.overview(sess, self.rt.cfg, self.rt.clock.now())
            return self.page(request, "overview.html.j2", **data)

    async def incidents(self, request: Request) -> Response:
        self.require(request)
        show_all = request.query_params.get("all") == "1"
        with self.rt.store.session() as sess:
            rows = queries.incidents_page(sess, show_all)
            return self.page(request, "incidents.html.j2", rows=rows, show_all=show_all)

    async def incident(self, request: Request) -> Response:
        account = self.require(request)
        incident_id = request.path_params["incident_id"]
        return self.incident_view(request, incident_id, actor=account.name, can_act=account.role.can_act,
                                  action_base=f"/incidents/{incident_id}")

    async def incident_action(self, request: Request) -> Response:
        account = self.require(request, act=True)
        form = await self.form(request, request.session.get("csrf", ""))
        incident_id = request.path_params["incident_id"]
        self.act(request, incident_id, request.path_params["action"], form, account.name, account.recipient_id,
                 via="console")
        return RedirectResponse(f"/incidents/{incident_id}", status_code=303)

    async def mentions(self, request: Request) -> Response:
        self.require(request)
        filters = queries.MentionFilters.from_query(request.query_params)
        with self.rt.store.session() as sess:
            rows, total = queries.mentions_page(sess, self.rt.cfg, filters)
            return self.page(request, "mentions.html.j2", rows=rows, total=total, f=filters,
                             sources=source_names(sess, self.rt.cfg), page_size=queries.PAGE_SIZE,
                             count_cap=queries.COUNT_CAP)

    async def correct(self, request: Request) -> Response:
        account = self.require(request, act=True)
        form = await self.form(request, request.session.get("csrf", ""))
        from yuqing.app import jobs

        mention_id = request.path_params["mention_id"]
        verdict_name, category = str(form.get("verdict", "")), str(form.get("category", "")) or None
        try:
            verdict = Verdict(verdict_name)
            result, changes = jobs.correct(self.rt, mention_id, verdict, account.name, category=category)
        except (ValueError, LookupError) as err:
            request.session["flash"] = {"kind": "error", "text": str(err)}
        else:
            with self.rt.store.session() as sess:
                audit(sess, self.rt.clock.now(), "web.correct", f"mention:{mention_id}", actor=account.name,
                      verdict=verdict, category=category, address=self.address(request))
            request.session["flash"] = {"kind": "ok", "text": "；".join([str(result), *map(str, changes)])}
        back = str(form.get("back", ""))
        return RedirectResponse(back if back.startswith("/mentions") else "/mentions", status_code=303)

    async def events(self, request: Request) -> Response:
        self.require(request)
        page = _page(request)
        with self.rt.store.session() as sess:
            rows, total = queries.events_page(sess, page)
            return self.page(request, "events.html.j2", rows=rows, total=total, page=page,
                             page_size=queries.PAGE_SIZE)

    async def event(self, request: Request) -> Response:
        self.require(request)
        with self.rt.store.session() as sess:
            data = queries.event_detail(sess, self.rt.cfg, request.path_params["event_id"])
            if data is None:
                return self.error(request, 404, "没有这个舆情")
            return self.page(request, "event.html.j2", sources=source_names(sess, self.rt.cfg), **data)

    async def sources(self, request: Request) -> Response:
        self.require(request)
        from yuqing.alerts.hot_lists import hot_list_appearances
        from yuqing.crawler.health import source_health

        rows = sorted(source_health(self.rt.cfg, self.rt.store), key=lambda h: (-h.consecutive_failures, h.id))
        week = hot_list_appearances(self.rt.store, self.rt.clock.now() - timedelta(days=7))
        return self.page(request, "sources.html.j2", rows=rows, hot_lists=week)

    async def outbox(self, request: Request) -> Response:
        self.require(request)
        with self.rt.store.session() as sess:
            boxes = queries.outbox_page(sess)
            return self.page(request, "outbox.html.j2", pending=boxes[MessageStatus.PENDING],
                             dead=boxes[MessageStatus.DEAD])

    async def requeue(self, request: Request) -> Response:
        account = self.require(request, admin=True)
        form = await self.form(request, request.session.get("csrf", ""))
        from yuqing.alerts.outbox import requeue_dead

        ids = [int(v) for v in form.getlist("id") if str(v).isdigit()]
        n = requeue_dead(self.rt.store, self.rt.clock, ids or None, by=account.name)
        request.session["flash"] = {"kind": "ok", "text": f"已重新排队 {n} 条消息"}
        return RedirectResponse("/outbox", status_code=303)

    async def digests(self, request: Request) -> Response:
        self.require(request)
        with self.rt.store.session() as sess:
            return self.page(request, "digests.html.j2", rows=queries.digests(sess))

    async def digest(self, request: Request) -> Response:
        return self.digest_file(request, download=False)

    async def digest_download(self, request: Request) -> Response:
        return self.digest_file(request, download=True)

    def digest_file(self, request: Request, download: bool) -> Response:
        """A week's report as it was sent: shown sandboxed (nothing runs), or downloaded."""
        self.require(request)
        with self.rt.store.session() as sess:
            run = sess.get(DigestRun, request.path_params["digest_id"])
            path = Path(run.path) if run is not None and run.path else None
        if path is None or not path.is_file():
            return self.error(request, 404, "这一周的周报文件不存在（可能那周没有数据，或文件已被移走）")
        if download:
            return FileResponse(path, media_type="text/html; charset=utf-8", filename=path.name,
                                content_disposition_type="attachment")
        return HTMLResponse(path.read_text(encoding="utf-8"), headers={"content-security-policy": DIGEST_POLICY})

    async def healthz(self, request: Request) -> Response:
        with self.rt.store.session() as sess:
            sess.scalar(Mention.__table__.select().limit(1).with_only_columns(Mention.id))
        return PlainTextResponse("ok")


def _next(target: str) -> str:
    """Only a path of this site, never an open redirect."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _page(request: Request) -> int:
    try:
        return max(1, min(int(request.query_params.get("page", 1)), 100_000))
    except ValueError:
        return 1


def _with_account(web: Web, handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        web.load_account(request)
        return await handler(request)

    return wrapped


def create_app(rt: Runtime, links: IncidentLinks, secret: str) -> Starlette:
    """The ASGI application: routes, sessions signed with a key derived from the web secret, headers."""
    web = Web(rt, links)
    settings = rt.cfg.settings.web
    secure = bool(settings.public_url and settings.public_url.startswith("https://"))

    def route(path: str, handler: Handler, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, _with_account(web, handler), methods=list(methods))

    routes = [
        route("/healthz", web.healthz),
        route("/login", web.login_page, ("GET", "POST")),
        route("/logout", web.logout, ("POST",)),
        route("/", web.overview),
        route("/incidents", web.incidents),
        route("/incidents/{incident_id:int}", web.incident),
        route("/incidents/{incident_id:int}/{action}", web.incident_action, ("POST",)),
        route("/i/{incident_id:int}/{token}", web.link_page),
        route("/i/{incident_id:int}/{token}/{action}", web.link_action, ("POST",)),
        route("/mentions", web.mentions),
        route("/mentions/{mention_id:int}/correct", web.correct, ("POST",)),
        route("/events", web.events),
        route("/events/{event_id:int}", web.event),
        route("/sources", web.sources),
        route("/outbox", web.outbox),
        route("/outbox/requeue", web.requeue, ("POST",)),
        route("/digests", web.digests),
        route("/digests/{digest_id:int}", web.digest),
        route("/digests/{digest_id:int}/download", web.digest_download),
        Mount("/static", StaticFiles(packages=[("yuqing.app.web", "static")]), name="static"),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code in (301, 302, 303, 307) and exc.headers:
            return RedirectResponse(exc.headers["Location"], status_code=exc.status_code)
        if "account" not in request.scope:
            request.scope["account"] = None
        return web.error(request, exc.status_code, exc.detail)

    session_key = hashlib.sha256(f"session:{secret}".encode()).hexdigest()
    middleware = [
        Middleware(SecurityHeaders, hsts=secure),
        Middleware(SessionMiddleware, secret_key=session_key, session_cookie="yuqing_session",
                   max_age=settings.session_hours * 3600, same_site="lax", https_only=secure),
    ]
    return Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error})

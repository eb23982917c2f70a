"""`yuqing serve` over real HTTP: signed incident links, the phone page's actions, the console's login,
roles, CSRF, pages and headers. The server is uvicorn on 127.0.0.1 over a real SQLite file."""

from __future__ import annotations

import re
import urllib.parse
from datetime import timedelta

import pytest
from sqlalchemy import select

from yuqing.alerts.digest import build_digest
from yuqing.alerts.escalation import check_escalations
from yuqing.alerts.links import IncidentLinks, LinkRefused
from yuqing.models import AuditEntry, ChecklistTick, Incident, IncidentTransition, Mention, MessageStatus, OutboxMessage

from .alerts_support import add_sources, cfg, outbox, smtp, wecom  # noqa: F401  (fixtures used by name)
from .web_support import WEB_SECRET, Console, console, open_incident  # noqa: F401  (console is a fixture)

XSS_TITLE = '江城一院<script>window.pwned=1</script><img src=x onerror="window.pwned=2">护士打人'


def _incident(console: Console, incident_id: int) -> Incident:
    with console.store.session() as sess:
        found = sess.get(Incident, incident_id)
        assert found is not None
        sess.expunge(found)
        return found


def _links_in(text: str) -> list[str]:
    return re.findall(r"http://127\.0\.0\.1:\d+/i/\d+/[A-Za-z0-9_.\-]+", text)


# --- links in alerts ---------------------------------------------------------------------------


def test_each_recipient_gets_their_own_signed_link(console: Console) -> None:
    incident_id = open_incident(console.rt.cfg, console.store, console.clock)
    emails = outbox(console.store, channel="email", purpose="alert")
    assert {m.recipient for m in emails} == {"duty-officer", "head-publicity"}
    for message in emails:
        (link,) = set(_links_in(message.body))
        claim = console.links.read(link.rsplit("/", 1)[1], console.clock.now())
        assert (claim.incident_id, claim.recipient_id) == (incident_id, message.recipient)
        assert "yuqing incidents ack" not in message.body
        assert message.body_html is not None and link in message.body_html
    robot = outbox(console.store, channel="wecom", purpose="alert")[0].body
    assert "[张敏](" in robot and "[刘洋](" in robot  # each member taps their own name in the group


def test_without_public_address_alerts_keep_the_command(cfg, store, clock, monkeypatch) -> None:
    monkeypatch.setenv("YUQING_WEB_SECRET", WEB_SECRET)
    open_incident(cfg, store, clock)
    body = outbox(store, channel="email", purpose="alert")[0].body
    assert "yuqing incidents ack" in body and "/i/" not in body


def test_a_short_secret_is_refused_and_never_signs(cfg, store, clock, monkeypatch) -> None:
    from .web_support import console_config

    monkeypatch.setenv("YUQING_WEB_SECRET", "short")
    open_incident(console_config(cfg, 8600), store, clock)
    assert "/i/" not in outbox(store, channel="email", purpose="alert")[0].body


def test_link_tokens_reject_tampering_expiry_and_another_key() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 1, tzinfo=UTC)
    links = IncidentLinks(WEB_SECRET, "https://yuqing.example", days=7)
    token = links.token(3, "duty-officer", now)
    assert links.read(token, now + timedelta(days=6)).recipient_id == "duty-officer"
    with pytest.raises(LinkRefused, match="过期"):
        links.read(token, now + timedelta(days=7, seconds=1))
    with pytest.raises(LinkRefused, match="无效"):
        links.read(token[:-2] + ("AA" if not token.endswith("AA") else "BB"), now)
    with pytest.raises(LinkRefused):
        IncidentLinks("another-secret-" + "x" * 40, "https://yuqing.example", 7).read(token, now)


# --- the phone page ------------------------------------------------------------------------------


def test_link_page_shows_the_incident_and_acknowledges_as_its_recipient(console: Console) -> None:
    incident_id = open_incident(console.rt.cfg, console.store, console.clock)
    path = console.link_path(incident_id, "duty-officer")
    client = console.client()
    page = client.get(path)
    assert page.status == 200
    assert "江城一院产妇死亡 家属质疑手术" in page.text and "定级依据" in page.text
    assert "核实" in page.text and "复盘" in page.text and "确认，由我处理" in page.text
    assert "操作人：张敏" in page.text
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]

    reply = client.post(path + "/ack", {"csrf": token, "note": "正在核实", "by": "院长"})  # a typed name is ignored
    assert reply.status == 303 and reply.header("location") == path
    incident = _incident(console, incident_id)
    assert incident.status == "acknowledged" and incident.acknowledged_by == "张敏"
    assert incident.next_escalation_at is None
    console.clock.advance(hours=5)
    assert check_escalations(console.store, console.rt.cfg, console.clock) == []

    notices = outbox(console.store, purpose="ack")
    assert {(m.channel, m.recipient) for m in notices} == {("email", "head-publicity"), ("wecom", "crisis-room")}
    assert all(m.subject.startswith("张敏 已确认 Ⅳ级") and m.subject.endswith(f"事件 {incident_id}") for m in notices)
    robot = next(m for m in notices if m.channel == "wecom").body
    assert "[刘洋](" in robot and "[张敏](" not in robot
    after = client.get(path).text
    assert "已确认" in after and "张敏" in after and "确认，由我处理" not in after


def test_every_button_lands_in_the_trail(console: Console) -> None:
    incident_id = open_incident(console.rt.cfg, console.store, console.clock)
    path = console.link_path(incident_id, "head-publicity")
    client = console.client()
    token = client.csrf(path)
    for action, form in [("tick", {"item": console.rt.cfg.plan.rule("IV").checklist[0]}),
                         ("note", {"note": "已联系产科主任"}),
                         ("respond", {"url": "https://weibo.example/statement", "note": "官方微博情况说明"}),
                         ("resolve", {"note": "家属已接受调查结论"})]:
        assert client.post(f"{path}/{action}", {"csrf": token, **form}).status == 303
    incident = _incident(console, incident_id)
    assert incident.status == "resolved" and incident.resolved_by == "刘洋"
    assert incident.response_url == "https://weibo.example/statement"
    with console.store.session() as sess:
        actions = [(t.action, t.actor) for t in sess.scalars(select(IncidentTransition).where(
            IncidentTransition.incident_id == incident_id).order_by(IncidentTransition.id))]
        ticks = list(sess.scalars(select(ChecklistTick)))
        web_audit = {a.action for a in sess.scalars(select(AuditEntry).where(AuditEntry.action.like("web.%")))}
    assert actions[1:] == [("checklist", "刘洋"), ("note", "刘洋"), ("acknowledged", "刘洋"), ("responded", "刘洋"),
                           ("resolved", "刘洋")]
    assert [(t.item, t.done_by) for t in ticks] == [(console.rt.cfg.plan.rule("IV").checklist[0], "刘洋")]
    assert web_audit == {"web.tick", "web.note", "web.respond", "web.resolve"}
    page = client.get(path).text
    assert 'href="https://weibo.example/statement" rel="noopener noreferrer"' in page


def test_false_alarm_from_the_page_cancels_unsent_alerts(console: Console) -> None:
    incident_id = open_incident(console.rt.cfg, console.store, console.clock)
    path = console.link_path(incident_id, "duty-officer")
    client = console.client()
    assert client.post(path + "/false_alarm", {"csrf": client.csrf(path), "note": "说的是另一家医院"}).status == 303
    incident = _incident(console, incident_id)
    assert incident.status == "resolved" and incident.resolution == "false_alarm" and incident.resolved_by == "张敏"
    assert {m.status for m in outbox(console.store, purpose="alert")} == {MessageStatus.CANCELLED}


def test_links_that_are_altered_expired_or_for_another_incident_are_refused(console: Console) -> None:
    first = open_incident(console.rt.cfg, console.store, console.clock)
    second = open_incident(console.rt.cfg, console.store, console.clock, headline="江城一院医生收红包被曝光")
    client = console.client()
    path = console.link_path(first, "duty-officer")
    token = path.rsplit("/", 1)[1]
    tampered = path[:-3] + ("xyz" if not path.endswith("xyz") else "abc")
    assert client.get(tampered).status == 403
    other = client.get(f"/i/{second}/{token}")
    assert other.status == 403 and "另一起事件" in other.text
    csrf = client.csrf(path)
    assert client.post(f"/i/{second}/{token}/ack", {"csrf": csrf}).status == 403
    assert _incident(console, second).status == "open"
    console.clock.advance(days=8)
    expired = client.get(path)
    assert expired.status == 403 and "过期" in expired.text
    assert client.post(path + "/ack", {"csrf": csrf}).status == 403
    assert _incident(console, first).status == "open"


def test_a_post_without_the_pages_token_changes_nothing(console: Console) -> None:
    incident_id = open_incident(console.rt.cfg, console.store, console.clock)
    path = console.link_path(incident_id, "duty-officer")
    client = console.client()
    assert client.post(path + "/ack", {"note": "forged"}).status == 403
    assert client.post(path + "/ack", {"csrf": "not-the-token"}).status == 403
    assert _incident(console, incident_id).status == "open"


# --- the console ------------------------------------------------------------------------------------


def test_console_needs_a_login_and_pauses_guessing(console: Console) -> None:
    client = console.client()
    first = client.get("/mentions")
    assert first.status == 303 and first.header("location").startswith("/login")
    token = client.csrf("/login")
    wrong = client.post("/login", {"csrf": token, "username": "duty-officer", "password": "nope-nope-nope"})
    assert wrong.status == 401 and "不正确" in wrong.text
    for _ in range(4):
        client.post("/login", {"csrf": token, "username": "duty-officer", "password": "still-wrong"})
    paused = client.login("duty-officer")  # right password, but guessing has paused the name
    assert paused.status == 429
    console.clock.advance(minutes=16)
    ok = client.login("duty-officer")
    assert ok.status == 303 and ok.header("location") == "/"
    assert "张敏" in client.get("/").text
    with console.store.session() as sess:
        actions = [a.action for a in sess.scalars(select(AuditEntry).where(AuditEntry.action.like("console.%")))]
    assert actions.count("console.login_failed") == 5 and actions[-1] == "console.login"


def test_login_logout_and_a_changed_password_end_the_session(console: Console) -> None:
    from yuqing.app.web import auth

    client = console.client()
    assert client.login("duty-officer").status == 303
    assert client.get("/incidents").status == 200
    assert client.post("/logout", {"csrf": client.csrf("/")}).status == 303
    assert client.get("/incidents").status == 303
    assert client.login("duty-officer").status == 303
    auth.set_password(console.store, console.rt.cfg, console.clock, "duty-officer", "a-brand-new-pass")
    assert client.get("/incidents").status == 303


def test_roles_decide_who_may_act(console: Console) -> None:
    incident_id = open_incident(console.rt.cfg, console.store, console.clock)
    viewer, duty = console.client(), console.client()
    viewer.login("vp")
    duty.login("duty-officer")
    page = viewer.get(f"/incidents/{incident_id}")
    assert page.status == 200 and "确认，由我处理" not in page.text
    refused = viewer.post(f"/incidents/{incident_id}/ack", {"csrf": viewer.csrf("/")})
    assert refused.status == 403 and _incident(console, incident_id).status == "open"
    assert duty.post(f"/incidents/{incident_id}/ack", {"csrf": duty.csrf("/")}).status == 303
    assert _incident(console, incident_id).acknowledged_by == "张敏"
    assert duty.post("/outbox/requeue", {"csrf": duty.csrf("/")}).status == 403  # the outbox is IT's


def test_console_forms_need_the_sessions_token(console: Console) -> None:
    incident_id = open_incident(console.rt.cfg, console.store, console.clock)
    duty = console.client()
    duty.login("duty-officer")
    assert duty.post(f"/incidents/{incident_id}/ack", {}).status == 403
    other = console.client()
    other_token = other.csrf("/login")  # a token from another visitor's session is no good either
    assert duty.post(f"/incidents/{incident_id}/ack", {"csrf": other_token}).status == 403
    assert _incident(console, incident_id).status == "open"


def test_scraped_markup_is_shown_as_text_with_only_web_links(console: Console) -> None:
    incident_id = open_incident(console.rt.cfg, console.store, console.clock, headline=XSS_TITLE,
                                titles=[XSS_TITLE, "江城一院 javascript 链接"])
    with console.store.session() as sess:
        rows = list(sess.scalars(select(Mention).order_by(Mention.id)))
        rows[1].url = "javascript:alert(document.cookie)"
        event_id = rows[0].event_id
    client = console.client()
    client.login("duty-officer")
    pages = [console.link_path(incident_id, "duty-officer"), "/", "/incidents", f"/incidents/{incident_id}",
             "/mentions", "/events", f"/events/{event_id}", "/sources", "/outbox", "/digests"]
    for path in pages:
        reply = client.get(path)
        assert reply.status == 200, path
        assert "<script>window.pwned" not in reply.text and "<img src=x" not in reply.text, path
        assert not re.search(r"<script(?![^>]*\bsrc=)", reply.text), f"inline script on {path}"
        assert not re.search(r"\son[a-z]+\s*=", reply.text.replace("onerror=&#34;", "")), f"handler on {path}"
        assert 'href="javascript:' not in reply.text, path
        csp = reply.header("content-security-policy")
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert reply.header("referrer-policy") == "no-referrer" and reply.header("x-frame-options") == "DENY"
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in client.get("/mentions").text
    anchors = re.findall(r'<a href="https?://[^"]*"[^>]*>', client.get("/mentions").text)
    assert anchors, "the mentions page shows the headlines' web links"
    for anchor in anchors:
        assert 'rel="noopener noreferrer"' in anchor


def test_mentions_filter_page_and_correct(console: Console) -> None:
    open_incident(console.rt.cfg, console.store, console.clock, mentions=120, negative=70, crisis=30,
                  risks=["death_injury"])
    client = console.client()
    client.login("duty-officer")
    everything = client.get("/mentions")
    assert "共 120 条" in everything.text and "第 1 / 3 页" in everything.text
    assert "共 70 条" in client.get("/mentions?negative=yes").text
    assert "共 30 条" in client.get("/mentions?crisis=yes").text
    assert "共 50 条" in client.get("/mentions?negative=no").text
    assert "共 120 条" in client.get("/mentions?category=death_injury").text
    assert "共 0 条" in client.get("/mentions?category=violence").text
    assert "共 40 条" in client.get("/mentions?source=jiangcheng-daily").text
    assert "共 40 条" in client.get("/mentions?tier=2").text
    assert "第 3 / 3 页" in client.get("/mentions?page=3").text
    assert "日期格式" in client.get("/mentions?since=yesterday").text
    with console.store.session() as sess:
        target = sess.scalar(select(Mention.id).where(Mention.crisis.is_(True)).order_by(Mention.id))
    reply = client.post(f"/mentions/{target}/correct", {"csrf": client.csrf("/mentions"), "verdict": "not_about_us",
                                                        "back": "/mentions?crisis=yes"})
    assert reply.status == 303 and reply.header("location") == "/mentions?crisis=yes"
    with console.store.session() as sess:
        corrected = sess.get(Mention, target)
        assert corrected is not None and corrected.about_us is False and corrected.corrected_by == "张敏"
    assert "共 29 条" in client.get("/mentions?crisis=yes").text


def test_events_sources_outbox_and_digest_pages(console: Console) -> None:
    incident_id = open_incident(console.rt.cfg, console.store, console.clock)
    with console.store.session() as sess:
        event_id = sess.scalar(select(Incident.event_id).where(Incident.id == incident_id))
        dead = sess.scalars(select(OutboxMessage)).first()
        assert dead is not None
        dead.status, dead.last_error = MessageStatus.DEAD, "smtp refused"
        dead_id = dead.id
    admin = console.client()
    admin.login("it-oncall")
    event = admin.get(f"/events/{event_id}")
    assert event.status == 200 and "<svg" in event.text and "每小时提及量" in event.text
    assert "江城日报 RSS" in admin.get("/sources").text
    outbox_page = admin.get("/outbox")
    assert "smtp refused" in outbox_page.text
    assert admin.post("/outbox/requeue", [("csrf", admin.csrf("/outbox")), ("id", str(dead_id))]).status == 303
    with console.store.session() as sess:
        assert sess.get(OutboxMessage, dead_id).status == MessageStatus.PENDING  # type: ignore[union-attr]

    console.clock.advance(days=8)
    run = build_digest(console.store, console.rt.cfg, console.clock)
    listing = admin.get("/digests")
    assert f"/digests/{run.id}" in listing.text
    shown = admin.get(f"/digests/{run.id}")
    assert shown.status == 200 and "sandbox" in shown.header("content-security-policy")
    assert "script-src" not in shown.header("content-security-policy")
    download = admin.get(f"/digests/{run.id}/download")
    assert download.status == 200 and "attachment" in download.header("content-disposition")
    assert admin.get("/digests/999").status == 404


def test_forwarded_headers_from_the_proxy_name_the_real_address(console: Console) -> None:
    client = console.client()
    token = client.csrf("/login")
    client.post("/login", {"csrf": token, "username": "duty-officer", "password": "wrong-wrong"},
                headers={"X-Forwarded-For": "10.8.0.23", "X-Forwarded-Proto": "https"})
    with console.store.session() as sess:
        failure = sess.scalar(select(AuditEntry).where(AuditEntry.action == "console.login_failed"))
        assert failure is not None and failure.detail["address"] == "10.8.0.23"


def test_login_never_redirects_off_site(console: Console) -> None:
    client = console.client()
    token = client.csrf("/login")
    reply = client.post("/login", {"csrf": token, "username": "duty-officer", "password": "duty-pass-123",
                                   "next": "//evil.example/"})
    assert reply.status == 303 and reply.header("location") == "/"
    assert urllib.parse.urlsplit(reply.header("location")).netloc == ""


def test_a_huge_match_is_counted_up_to_a_cap_and_still_pages(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    from yuqing.app.web import queries

    monkeypatch.setattr(queries, "COUNT_CAP", 100)
    open_incident(console.rt.cfg, console.store, console.clock, mentions=120, negative=70, crisis=30)
    client = console.client()
    client.login("duty-officer")
    first = client.get("/mentions")
    assert "共 100+ 条" in first.text and "page=2" in first.text
    assert "共 70 条" in client.get("/mentions?negative=yes").text
    third = client.get("/mentions?page=3")
    assert "共 100+ 条" in third.text and "page=4" not in third.text  # 20 left on page 3: no next page

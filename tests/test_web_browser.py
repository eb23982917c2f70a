"""The incident page and the console in a real headless Chromium (Debian's package, driven by
Playwright): acknowledging from a phone, logging in and out, a forged form refused, a bad link refused,
and scraped markup that never runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from yuqing.models import Incident

from .alerts_support import cfg, smtp, wecom  # noqa: F401  (fixtures used by name)
from .test_digest_render import ARGS, CHROMIUM, _skip_reason
from .test_web import XSS_TITLE
from .web_support import PASSWORDS, Console, console, open_incident  # noqa: F401  (console is a fixture)

pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _status(console: Console, incident_id: int) -> tuple[str, str | None]:
    with console.store.session() as sess:
        incident = sess.get(Incident, incident_id)
        assert incident is not None
        return incident.status, incident.acknowledged_by


def _watch(page: Any) -> list[str]:
    """Dialogs and page errors: a scraped script that ran would show up here."""
    seen: list[str] = []
    page.on("dialog", lambda d: (seen.append(f"dialog {d.message}"), d.dismiss()))
    page.on("pageerror", lambda e: seen.append(f"error {e}"))
    return seen


def test_duty_officer_acknowledges_from_a_phone(console: Console, browser: Any) -> None:
    incident_id = open_incident(console.rt.cfg, console.store, console.clock)
    page = browser.new_context(**PHONE).new_page()
    seen = _watch(page)
    page.goto(console.base + console.link_path(incident_id, "duty-officer"))
    assert page.locator("h1").inner_text() == "江城一院产妇死亡 家属质疑手术"
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390  # no sideways scrolling on a phone
    button = page.locator("#ack")
    assert button.is_visible() and button.bounding_box()["width"] > 300  # type: ignore[index]
    page.fill("input[name=note]", "正在核实")
    button.tap()
    page.wait_for_url("**/i/**")
    assert "已确认事件" in page.locator(".flash").inner_text()
    assert page.locator("#ack").count() == 0
    assert _status(console, incident_id) == ("acknowledged", "张敏")
    assert seen == []


def test_login_and_logout(console: Console, browser: Any) -> None:
    page = browser.new_page()
    page.goto(console.base + "/incidents")
    assert page.url.endswith("/login?next=/incidents")
    page.fill("input[name=username]", "duty-officer")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "用户名或密码不正确" in page.content()
    page.fill("input[name=username]", "张敏")
    page.fill("input[name=password]", PASSWORDS["duty-officer"])
    page.click("button[type=submit]")
    page.wait_for_url(console.base + "/incidents")
    assert "张敏（值班）" in page.locator("header").inner_text()
    page.click("text=退出")
    page.wait_for_url("**/login")
    page.goto(console.base + "/")
    assert "/login" in page.url


def test_a_forged_form_is_refused(console: Console, browser: Any) -> None:
    incident_id = open_incident(console.rt.cfg, console.store, console.clock)
    page = browser.new_page()
    page.goto(console.base + console.link_path(incident_id, "duty-officer"))
    page.eval_on_selector("#ack", "b => b.form.querySelector('input[name=csrf]').value = 'forged'")
    page.click("#ack")
    assert "CSRF" in page.locator("main").inner_text()
    assert _status(console, incident_id) == ("open", None)


def test_an_altered_or_expired_link_is_refused(console: Console, browser: Any) -> None:
    incident_id = open_incident(console.rt.cfg, console.store, console.clock)
    link = console.base + console.link_path(incident_id, "duty-officer")
    page = browser.new_page()
    response = page.goto(link[:-4] + "AAAA")
    assert response.status == 403 and "链接无效" in page.locator("main").inner_text()
    console.clock.advance(days=8)
    response = page.goto(link)
    assert response.status == 403 and "已过期" in page.locator("main").inner_text()
    assert page.locator("#ack").count() == 0


def test_scraped_script_and_onerror_never_run(console: Console, browser: Any) -> None:
    incident_id = open_incident(console.rt.cfg, console.store, console.clock, headline=XSS_TITLE,
                                titles=[XSS_TITLE, XSS_TITLE, XSS_TITLE])
    context = browser.new_context()
    page = context.new_page()
    seen = _watch(page)
    page.goto(console.base + console.link_path(incident_id, "duty-officer"))
    assert "<script>window.pwned=1</script>" in page.locator("h1").inner_text()  # shown as text
    page.goto(console.base + "/login")
    page.fill("input[name=username]", "duty-officer")
    page.fill("input[name=password]", PASSWORDS["duty-officer"])
    page.click("button[type=submit]")
    for path in ("/", "/mentions", f"/incidents/{incident_id}", "/events"):
        page.goto(console.base + path)
        page.wait_for_load_state("load")
        assert page.evaluate("window.pwned === undefined"), path
    assert seen == []

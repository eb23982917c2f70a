"""Alert storms and quiet hours: a backfill pages nobody about old stories, many incidents at once make
one roll-up per recipient and channel (highest level first), and level IV waits for the morning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from yuqing.alerts.incidents import _cancel_pending, sync_incidents
from yuqing.alerts.outbox import dispatch
from yuqing.alerts.rollup import QUIET, release_quiet
from yuqing.channel_config import QuietHours
from yuqing.clock import ManualClock
from yuqing.config import AppConfig
from yuqing.models import Event, Incident
from yuqing.store import Store

from .alerts_support import cfg, make_event, outbox, senders, smtp, wecom  # noqa: F401 - fixtures


def _with_delivery(cfg: AppConfig, **changes: Any) -> AppConfig:
    delivery = cfg.channels.delivery.model_copy(update=changes)
    return cfg.model_copy(update={"channels": cfg.channels.model_copy(update={"delivery": delivery})})


def test_an_event_of_old_mentions_opens_no_incident_until_a_fresh_one_comes(store: Store, clock: ManualClock,
                                                                            cfg: AppConfig) -> None:
    event_id = make_event(store, clock)
    with store.session() as sess:
        event = sess.get(Event, event_id)
        event.first_seen, event.last_seen = clock.now() - timedelta(days=40), clock.now() - timedelta(days=30)
    assert sync_incidents(store, cfg, clock) == []  # a backfill of a month-old story pages nobody
    assert outbox(store) == []
    with store.session() as sess:
        assert sess.get(Event, event_id).mention_count == 3  # still counted
        sess.get(Event, event_id).last_seen = clock.now() - timedelta(minutes=5)
    assert [c.action for c in sync_incidents(store, cfg, clock)] == ["opened"]
    assert sync_incidents(store, _with_delivery(cfg, max_alert_age_hours=None), clock) == []  # opened already


def test_many_incidents_at_once_make_one_rollup_per_recipient_and_channel(store: Store, clock: ManualClock,
                                                                          cfg: AppConfig, senders: Any, smtp: Any,
                                                                          wecom: Any) -> None:
    for i in range(3):
        make_event(store, clock, headline=f"一般事件{i}")
    for i in range(2):
        make_event(store, clock, headline=f"较大事件{i}", negative=5, mentions=5, crisis=2)
    changes = sync_incidents(store, cfg, clock)
    assert len(changes) == 5 and {c.to_level for c in changes} == {"IV", "III"}
    rows = outbox(store)
    assert not [r for r in rows if r.dedup_key.endswith(":open:email:duty-officer")]  # no alert each
    emails = [r for r in rows if r.channel == "email"]
    assert sorted(r.recipient for r in emails) == ["duty-officer", "head-publicity"]  # one each
    body = emails[0].body
    assert all(f"事件{i}" in body for i in range(2)) and body.index("Ⅲ级") < body.index("Ⅳ级")
    assert len([r for r in rows if r.channel == "wecom" and ":mention" not in r.dedup_key]) == 1
    assert all(len(r.dedup_key) <= 200 for r in rows)
    with store.session() as sess:  # a false alarm of the incident a roll-up is filed under cancels not the others' alert
        top = sess.get(Incident, emails[0].incident_id)
        assert top.level == "III" and _cancel_pending(sess, top, "误报") == 0
    assert len(dispatch(store, cfg, clock, senders).sent) == len(rows)
    assert sync_incidents(store, cfg, clock) == []  # nothing said twice


def test_a_few_incidents_at_once_still_get_one_alert_each(store: Store, clock: ManualClock, cfg: AppConfig) -> None:
    for i in range(3):
        make_event(store, clock, headline=f"事件{i}")
    sync_incidents(store, cfg, clock)
    assert len([r for r in outbox(store) if r.channel == "email"]) == 6  # three alerts to two people


def test_level_iv_waits_for_the_morning_rollup_and_level_iii_goes_at_once(store: Store, clock: ManualClock,
                                                                          cfg: AppConfig, senders: Any, smtp: Any,
                                                                          wecom: Any) -> None:
    quiet = _with_delivery(cfg, quiet_hours=QuietHours(start="22:00", end="07:30"))
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))  # 23:00 in Shanghai
    make_event(store, clock, headline="夜间一般事件")
    make_event(store, clock, headline="夜间较大事件", negative=5, mentions=5, crisis=2)
    sync_incidents(store, quiet, clock)
    held = outbox(store, purpose=QUIET)
    assert held and all(r.incident_id == 1 for r in held)
    with store.session() as sess:
        assert sess.get(Incident, 1).ack_deadline.replace(tzinfo=UTC) == datetime(2026, 11, 23, 23, 30, tzinfo=UTC) + \
            timedelta(minutes=120)  # the clock starts when people are told
    report = dispatch(store, quiet, clock, senders)
    assert {r.incident_id for r in outbox(store, status="sent")} == {2}  # III at once, IV waits
    assert len(report.sent) == len(outbox(store, incident_id=2))
    assert release_quiet(store, quiet, clock) == 0  # still night
    clock.set(datetime(2026, 11, 23, 23, 31, tzinfo=UTC))  # 07:31
    assert release_quiet(store, quiet, clock) > 0
    assert all(r.status == "cancelled" for r in outbox(store, purpose=QUIET))
    dispatch(store, quiet, clock, senders)
    morning = [m for m in smtp.messages if "夜间舆情汇总" in m["Subject"]]
    assert len(morning) == 2 and "夜间一般事件" in morning[0].get_body(("plain",)).get_content()
    assert release_quiet(store, quiet, clock) == 0  # once

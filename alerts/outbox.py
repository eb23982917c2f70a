"""The outbox: every message is written with the change that caused it, then sent, retried, never lost.

Delivery is at-least-once. A message is claimed by pushing its next_attempt_at one lease
ahead (an atomic UPDATE, so two dispatchers never send it at once), sent outside any
transaction, then marked sent. A crash after the send but before the mark leaves the row
pending; once the lease runs out (a minute, renewed while a send is under way) it is sent
again. So a crash can cause a duplicate (e-mails carry an X-Yuqing-Key header so people can
tell), never a loss. Each channel is sent on its own thread, so one channel's trouble (a peer
that hangs, a rate limit) never delays another's messages; alerts/delivery.py pauses a channel
that keeps failing, sends overdue alerts by the level's next channel and tells operators once.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from yuqing.clock import Clock
from yuqing.config import AppConfig
from yuqing.models import MessageStatus, OutboxMessage
from yuqing.store import Store, audit

if TYPE_CHECKING:
    from yuqing.alerts.delivery import Trouble

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the outbox tries: exponential backoff with a cap, then a dead letter."""

    first_delay_seconds: float = 30
    max_delay_seconds: float = 30 * 60
    max_attempts: int = 12
    lease_seconds: float = 300
    batch: int = 500

    def backoff(self, attempts: int) -> timedelta:
        """30 s, 1 min, 2 min, 4 min … up to the cap, after the given number of failed attempts."""
        exponent = max(attempts - 1, 0)
        delay = self.first_delay_seconds * (2 ** min(exponent, 30))
        return timedelta(seconds=min(delay, self.max_delay_seconds))


@dataclass(frozen=True)
class InlineImage:
    """A picture an e-mail's HTML shows by Content-ID (<img src="cid:…">), sent inside the message."""

    cid: str
    data: bytes
    subtype: str = "png"

    def stored(self) -> dict[str, str]:
        return {"cid": self.cid, "subtype": self.subtype, "data": base64.b64encode(self.data).decode("ascii")}

    @classmethod
    def from_stored(cls, item: Mapping[str, str]) -> InlineImage:
        return cls(item["cid"], base64.b64decode(item["data"]), item.get("subtype", "png"))


@dataclass(frozen=True)
class Outgoing:
    """A claimed message as plain data, so sending needs no database session."""

    id: int
    dedup_key: str
    channel: str
    recipient: str
    address: str
    purpose: str
    subject: str
    body: str
    body_html: str | None
    attempts: int
    images: tuple[InlineImage, ...] = ()


class SendError(Exception):
    """A send failed; permanent ones (bad key, refused mailbox) are not retried."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class RateLimited(SendError):
    """The channel asked us to wait; retried at retry_at without counting an attempt."""

    def __init__(self, message: str, retry_at: datetime):
        super().__init__(message)
        self.retry_at = retry_at


class Sender(Protocol):
    """One channel's way of delivering an Outgoing message; raises SendError on failure."""

    def send(self, message: Outgoing) -> str | None: ...


@dataclass
class DispatchReport:
    """What one dispatch pass did, for logs and the CLI."""

    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    dead: list[int] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)  # channels whose circuit breaker holds them back
    fallbacks: int = 0
    unfinished: list[str] = field(default_factory=list)  # channels still sending when the pass ended

    def __str__(self) -> str:
        extra = f", paused {','.join(sorted(self.paused))}" if self.paused else ""
        extra += f", fallbacks {self.fallbacks}" if self.fallbacks else ""
        extra += f", still sending on {','.join(sorted(self.unfinished))}" if self.unfinished else ""
        return (f"sent {len(self.sent)}, retry later {len(self.retried)}, "
                f"rate-limited {len(self.deferred)}, dead {len(self.dead)}{extra}")


@dataclass(frozen=True)
class DeadLetter:
    """A message the outbox gave up on, for `yuqing outbox dead`."""

    id: int
    channel: str
    recipient: str
    address: str
    purpose: str
    subject: str
    attempts: int
    created_at: datetime
    last_error: str | None


def enqueue(sess: Session, now: datetime, *, dedup_key: str, channel: str, recipient: str, address: str,
            purpose: str, subject: str, body: str, body_html: str | None = None,
            incident_id: int | None = None, images: Sequence[InlineImage] = ()) -> OutboxMessage | None:
    """Add a message in the caller's transaction; a dedup_key already there adds nothing."""
    existing = sess.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key))
    if existing is not None:
        log.debug("outbox already holds %s", dedup_key)
        return None
    msg = OutboxMessage(dedup_key=dedup_key, channel=channel, recipient=recipient, address=address,
                        purpose=purpose, subject=subject, body=body, body_html=body_html,
                        incident_id=incident_id, status=MessageStatus.PENDING, attempts=0,
                        inline_images=[img.stored() for img in images],
                        created_at=now, next_attempt_at=now)
    sess.add(msg)
    sess.flush()
    return msg


def secrets_of(cfg: AppConfig) -> list[str]:
    """Every secret value in the channels config, so errors can be scrubbed of them."""
    from yuqing.alerts.channels import REGISTRY

    return [v for plugin in REGISTRY.values() for v in plugin.secrets(cfg) if v]


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace any secret inside an error text, in case a library echoed one."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _due_ids(store: Store, now: datetime, limit: int) -> dict[str, list[int]]:
    """Pending messages whose time has come, oldest first, by channel."""
    with store.session() as sess:
        query = (select(OutboxMessage.id, OutboxMessage.channel)
                 .where(OutboxMessage.status == MessageStatus.PENDING, OutboxMessage.next_attempt_at <= now)
                 .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit))
        due: dict[str, list[int]] = {}
        for message_id, channel in sess.execute(query):
            due.setdefault(channel, []).append(message_id)
        return due


def _claim(store: Store, message_id: int, now: datetime, policy: RetryPolicy) -> Outgoing | None:
    """Take a lease on one message; None if another dispatcher got it first."""
    with store.session() as sess:
        result = sess.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == MessageStatus.PENDING,
                   OutboxMessage.next_attempt_at <= now)
            .values(next_attempt_at=now + timedelta(seconds=policy.lease_seconds))
            .execution_options(synchronize_session=False))
        # Session.execute() is typed as Result, but an UPDATE returns a CursorResult, which has rowcount
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = sess.get(OutboxMessage, message_id)
        assert row is not None
        return Outgoing(id=row.id, dedup_key=row.dedup_key, channel=row.channel, recipient=row.recipient,
                        address=row.address, purpose=row.purpose, subject=row.subject, body=row.body,
                        body_html=row.body_html, attempts=row.attempts,
                        images=tuple(InlineImage.from_stored(i) for i in row.inline_images or ()))


def _send(senders: Mapping[str, Sender], message: Outgoing) -> SendError | None:
    """Send one message; any failure comes back as a SendError, never raised."""
    sender = senders.get(message.channel)
    if sender is None:
        return SendError(f"no sender configured for channel {message.channel!r}")
    try:
        sender.send(message)
    except SendError as exc:
        return exc
    except Exception as exc:  # a bug or an unforeseen library error: retry like any failure
        log.exception("outbox message %s: unexpected error from the %s sender", message.id, message.channel)
        return SendError(f"{type(exc).__name__}: {exc}")
    return None


def _mark_sent(sess: Session, row: OutboxMessage, now: datetime) -> None:
    """Record a delivery."""
    row.status, row.sent_at, row.attempts = MessageStatus.SENT, now, row.attempts + 1
    audit(sess, now, "outbox.sent", f"outbox:{row.id}", channel=row.channel, recipient=row.recipient,
          purpose=row.purpose)


def _mark_dead(sess: Session, row: OutboxMessage, now: datetime, error: str, trouble: Trouble | None) -> None:
    """Give up on a message: dead letter and audit entry; the channel's one operator notice lists it."""
    row.status, row.last_error = MessageStatus.DEAD, error
    audit(sess, now, "outbox.dead", f"outbox:{row.id}", channel=row.channel, recipient=row.recipient,
          purpose=row.purpose, attempts=row.attempts, error=error)
    log.error("outbox message %s (%s to %s, %s) is dead after %s attempt(s): %s",
              row.id, row.channel, row.recipient, row.purpose, row.attempts, error)
    if row.purpose != "operator" and trouble is not None:
        trouble.dead.append(row.id)
        trouble.errors.append(error[:300])


def _record(store: Store, cfg: AppConfig, message: Outgoing, failure: SendError | None, now: datetime,
            policy: RetryPolicy, report: DispatchReport, trouble: Trouble | None = None) -> None:
    """Write the outcome of one send: sent, deferred, retry later, or dead."""
    with store.session() as sess:
        row = sess.get(OutboxMessage, message.id)
        if row is None or row.status != MessageStatus.PENDING:
            return
        if failure is None:
            _mark_sent(sess, row, now)
            report.sent.append(row.id)
            return
        error = scrub(str(failure), secrets_of(cfg))
        if isinstance(failure, RateLimited):
            row.last_error, row.next_attempt_at = error, max(failure.retry_at, now)
            report.deferred.append(row.id)
            log.info("outbox message %s rate-limited; next try at %s", row.id, row.next_attempt_at)
            held = now - row.created_at
            if trouble is not None and row.purpose != "operator" and held >= timedelta(
                    minutes=cfg.channels.delivery.rate_limited_report_minutes):
                trouble.held.append(row.id)
                trouble.errors.append(error[:300])
            return
        row.attempts += 1
        if failure.permanent or row.attempts >= policy.max_attempts:
            _mark_dead(sess, row, now, error, trouble)
            report.dead.append(row.id)
            return
        row.last_error, row.next_attempt_at = error, now + policy.backoff(row.attempts)
        report.retried.append(row.id)
        log.warning("outbox message %s (%s to %s) failed, attempt %s; retry at %s: %s",
                    row.id, row.channel, row.recipient, row.attempts, row.next_attempt_at, error)


@dataclass
class _Pass:
    """One dispatch pass: what the channel threads share."""

    store: Store
    cfg: AppConfig
    clock: Clock
    senders: Mapping[str, Sender]
    policy: RetryPolicy
    report: DispatchReport
    in_flight: set[int] = field(default_factory=set)
    crashes: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _channel_worker(run: _Pass, channel: str, ids: list[int], breaker: Any, trouble: Trouble) -> None:
    """Send one channel's due messages in order until done, paused by its breaker, or out of time."""
    delivery = run.cfg.channels.delivery
    deadline = time.monotonic() + delivery.channel_pass_seconds
    busy: set[str] = getattr(run.senders, "busy", set())
    busy.add(channel)
    try:
        for message_id in ids:
            if time.monotonic() > deadline or not breaker.allows(run.clock.now()):
                break
            message = _claim(run.store, message_id, run.clock.now(), run.policy)
            if message is None:
                continue
            with run.lock:
                run.in_flight.add(message_id)
            try:
                failure = _send(run.senders, message)
            finally:
                with run.lock:
                    run.in_flight.discard(message_id)
            now = run.clock.now()
            _record(run.store, run.cfg, message, failure, now, run.policy, run.report, trouble)
            if breaker.record(failure, now, delivery):
                trouble.paused_until = breaker.paused_until
                trouble.errors.append(scrub(str(failure), secrets_of(run.cfg))[:300])
                log.error("channel %s paused until %s after %s failures in a row", channel, breaker.paused_until,
                          breaker.failures)
    except BaseException as exc:  # noqa: BLE001 - a crash in this thread is the pass's crash: dispatch re-raises it
        run.crashes.append(exc)
    finally:
        busy.discard(channel)


def _renew_leases(run: _Pass, workers: list[threading.Thread], every: float, limit: float) -> None:
    """While sends are under way (up to `limit` seconds), keep their claims alive: a live dispatcher's slow
    send is not retried by another, a dead one's is retried one lease later."""
    give_up = time.monotonic() + limit
    while any(w.is_alive() for w in workers) and time.monotonic() < give_up:
        for worker in workers:
            worker.join(every / max(len(workers), 1))
        with run.lock:
            ids = list(run.in_flight)
        if ids:
            with run.store.session() as sess:
                sess.execute(update(OutboxMessage)
                             .where(OutboxMessage.id.in_(ids), OutboxMessage.status == MessageStatus.PENDING)
                             .values(next_attempt_at=run.clock.now() + timedelta(seconds=run.policy.lease_seconds))
                             .execution_options(synchronize_session=False))


def dispatch(store: Store, cfg: AppConfig, clock: Clock, senders: Mapping[str, Sender],
             policy: RetryPolicy | None = None) -> DispatchReport:
    """Send every due pending message once, each channel on its own thread: claim, send, mark; failures
    back off, then die; a channel that keeps failing is paused; overdue alerts also go by a fallback."""
    from yuqing.alerts.delivery import Breaker, Trouble, notify_trouble, queue_fallbacks

    delivery = cfg.channels.delivery
    policy = policy or RetryPolicy(lease_seconds=delivery.lease_seconds)
    report = DispatchReport()
    health: dict[str, Any] = getattr(senders, "health", {})
    busy: set[str] = getattr(senders, "busy", set())
    now = clock.now()
    paused = {c for c, b in health.items() if not b.allows(now)}
    report.fallbacks = queue_fallbacks(store, cfg, now, paused)
    run = _Pass(store, cfg, clock, senders, policy, report)
    troubles: dict[str, Trouble] = {}
    workers = []
    for channel, ids in _due_ids(store, now, policy.batch).items():
        breaker = health.setdefault(channel, Breaker())
        if channel in busy:  # an earlier pass's thread is still stuck in a send on this channel
            report.unfinished.append(channel)
            continue
        if not breaker.allows(now):
            report.paused.append(channel)
            continue
        troubles[channel] = Trouble()
        workers.append(threading.Thread(target=_channel_worker, args=(run, channel, ids, breaker, troubles[channel]),
                                        name=f"dispatch-{channel}", daemon=True))
    for worker in workers:
        worker.start()
    _renew_leases(run, workers, every=max(policy.lease_seconds / 3, 0.05), limit=delivery.channel_pass_seconds + 60)
    report.unfinished += [w.name.removeprefix("dispatch-") for w in workers if w.is_alive()]
    if run.crashes:
        raise run.crashes[0]
    notify_trouble(store, cfg, clock.now(), troubles)
    for ids in (report.sent, report.retried, report.deferred, report.dead):
        ids.sort()
    if report.sent or report.retried or report.dead or report.deferred or report.paused or report.fallbacks:
        log.info("outbox dispatch: %s", report)
    return report


def list_dead_letters(store: Store, limit: int = 100) -> list[DeadLetter]:
    """Messages the outbox gave up on, newest first."""
    with store.session() as sess:
        rows = sess.scalars(select(OutboxMessage).where(OutboxMessage.status == MessageStatus.DEAD)
                            .order_by(OutboxMessage.id.desc()).limit(limit))
        return [DeadLetter(id=r.id, channel=r.channel, recipient=r.recipient, address=r.address,
                           purpose=r.purpose, subject=r.subject, attempts=r.attempts,
                           created_at=r.created_at, last_error=r.last_error) for r in rows]


def requeue_dead_letters(store: Store, clock: Clock, ids: Iterable[int] | None = None,
                         by: str = "operator") -> list[int]:
    """Give dead letters (all, or the ids given) a fresh set of attempts, due now."""
    now = clock.now()
    with store.session() as sess:
        query = select(OutboxMessage).where(OutboxMessage.status == MessageStatus.DEAD)
        if ids is not None:
            query = query.where(OutboxMessage.id.in_(list(ids)))
        requeued = []
        for row in sess.scalars(query):
            row.status, row.attempts, row.next_attempt_at = MessageStatus.PENDING, 0, now
            audit(sess, now, "outbox.requeued", f"outbox:{row.id}", actor=by, last_error=row.last_error)
            requeued.append(row.id)
    log.info("requeued dead letters %s", requeued)
    return requeued


def requeue_dead(store: Store, clock: Clock, ids: Iterable[int] | None = None, by: str = "operator") -> int:
    """How many dead letters were given a fresh set of attempts (the CLI's `outbox requeue`)."""
    return len(requeue_dead_letters(store, clock, ids, by=by))

"""Stage leases: one analysis (or escalation) at a time across every process and machine that shares
the database, on SQLite and PostgreSQL alike.

A lease is a row of `stage_locks` claimed with one conditional UPDATE (free, or its holder's lease has
run out), so two claimers can never both win: SQLite serialises the writes, PostgreSQL's row lock makes
the second UPDATE re-check after the first commits. A holder that crashes leaves a lease that expires;
a long run renews it. Lease times are wall-clock time, never a test's or the demo's manual clock.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from yuqing.models import StageLock
from yuqing.store import Store

log = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(minutes=15)
POLL_SECONDS = 0.5


class StageBusy(RuntimeError):
    """Another process holds the stage; the message says who and since when."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Lease:
    """A held stage: renew it during long work so it does not expire under the holder."""

    store: Store
    name: str
    holder: str
    ttl: timedelta

    def renew(self) -> None:
        """Push the expiry out by the lease's time to live."""
        with self.store.session() as sess:
            sess.execute(update(StageLock).where(StageLock.name == self.name, StageLock.holder == self.holder)
                         .values(expires_at=_now() + self.ttl))


def _ensure_row(store: Store, name: str) -> None:
    """The stage's row exists (created by whoever gets there first)."""
    try:
        with store.session() as sess:
            if sess.get(StageLock, name) is None:
                sess.add(StageLock(name=name))
    except IntegrityError:
        pass  # another process created it at the same moment


def _try_claim(store: Store, name: str, holder: str, ttl: timedelta) -> bool:
    now = _now()
    with store.session() as sess:
        result = sess.execute(
            update(StageLock)
            .where(StageLock.name == name, or_(StageLock.holder.is_(None), StageLock.expires_at < now))
            .values(holder=holder, acquired_at=now, expires_at=now + ttl)
        )
        return (result.rowcount or 0) == 1  # type: ignore[attr-defined]


def _current(store: Store, name: str) -> str:
    with store.session() as sess:
        row = sess.scalar(select(StageLock).where(StageLock.name == name))
        if row is None or row.holder is None:
            return "a moment ago"
        since = row.acquired_at.strftime("%Y-%m-%d %H:%M:%S UTC") if row.acquired_at else "?"
        return f"by {row.holder.rsplit(':', 1)[0]} since {since}"


@contextmanager
def stage_lease(store: Store, name: str, *, ttl: timedelta = DEFAULT_TTL, wait: float = 0.0) -> Iterator[Lease]:
    """Hold the stage for the block; wait up to `wait` seconds for it, else raise StageBusy."""
    holder = f"{socket.gethostname()} pid {os.getpid()}:{uuid.uuid4().hex[:8]}"
    _ensure_row(store, name)
    deadline = time.monotonic() + wait
    waited = False
    while not _try_claim(store, name, holder, ttl):
        if time.monotonic() >= deadline:
            raise StageBusy(f"{name} is already running ({_current(store, name)})")
        if not waited:
            log.info("%s is already running (%s); waiting up to %.0f s", name, _current(store, name), wait)
            waited = True
        time.sleep(POLL_SECONDS)
    try:
        yield Lease(store, name, holder, ttl)
    finally:
        with store.session() as sess:
            sess.execute(update(StageLock).where(StageLock.name == name, StageLock.holder == holder)
                         .values(holder=None, expires_at=None))

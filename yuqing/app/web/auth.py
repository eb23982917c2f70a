"""Console accounts: Argon2id password hashes, roles, paused guessing, and who a session speaks for.

Accounts belong to recipients in channels.yaml, so a name shown in the console is the name alerts use.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, or_, select

from yuqing.clock import Clock
from yuqing.config import AppConfig, Recipient
from yuqing.models import LoginFailure, Role, User
from yuqing.store import Store, audit

log = logging.getLogger(__name__)

MIN_PASSWORD_CHARS = 10
_hasher = PasswordHasher()


class AccountError(ValueError):
    """A password or account request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Account:
    """Who is logged in: the recipient, their role, and when their password was last set."""

    recipient_id: str
    name: str
    role: Role
    password_set_at: datetime
    session_key: str


def _recipient(cfg: AppConfig, id_or_name: str) -> Recipient:
    person = cfg.channels.person(id_or_name)
    if person is None:
        known = "、".join(f"{r.id}（{r.name}）" for r in cfg.channels.recipients)
        raise AccountError(f"channels.yaml 中没有唯一的收件人 {id_or_name!r}；可用：{known}")
    return person


def set_password(store: Store, cfg: AppConfig, clock: Clock, id_or_name: str, password: str,
                 role: Role | None = None) -> Account:
    """Create the account or change its password (and role); earlier sessions stop working."""
    person = _recipient(cfg, id_or_name)
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"密码至少 {MIN_PASSWORD_CHARS} 个字符")
    now = clock.now()
    with store.session() as sess:
        user = sess.get(User, person.id)
        if user is None:
            user = User(recipient_id=person.id, created_at=now, role=role or Role.VIEWER, disabled=False,
                        password_hash="", password_set_at=now, session_key="")
            sess.add(user)
        elif role is not None:
            user.role = role
        user.password_hash, user.password_set_at, user.disabled = _hasher.hash(password), now, False
        user.session_key = secrets.token_hex(16)
        audit(sess, now, "user.password_set", f"user:{person.id}", role=user.role)
        account = Account(person.id, person.name, Role(user.role), now, user.session_key)
    log.info("console password set for %s (%s)", person.id, account.role)
    return account


def disable(store: Store, cfg: AppConfig, clock: Clock, id_or_name: str) -> None:
    """Lock an account out (someone left the crisis group); its sessions end at once."""
    person = _recipient(cfg, id_or_name)
    now = clock.now()
    with store.session() as sess:
        user = sess.get(User, person.id)
        if user is None:
            raise AccountError(f"{person.name} 没有控制台账号")
        user.disabled, user.session_key = True, secrets.token_hex(16)
        audit(sess, now, "user.disabled", f"user:{person.id}")


def accounts(store: Store, cfg: AppConfig) -> list[tuple[str, str, str, datetime, bool]]:
    """(id, name, role, password set, disabled) for every account."""
    names = {r.id: r.name for r in cfg.channels.recipients}
    with store.session() as sess:
        return [(u.recipient_id, names.get(u.recipient_id, "（已不在 channels.yaml）"), u.role, u.password_set_at,
                 u.disabled) for u in sess.scalars(select(User).order_by(User.recipient_id))]


def paused(store: Store, cfg: AppConfig, now: datetime, username: str, address: str) -> bool:
    """Too many recent failures for this name or from this address: refuse without checking."""
    web = cfg.settings.web
    since = now - timedelta(minutes=web.login_pause_minutes)
    with store.session() as sess:
        by_name = sess.scalar(select(func.count()).select_from(LoginFailure).where(
            LoginFailure.at >= since, LoginFailure.username == username)) or 0
        by_address = sess.scalar(select(func.count()).select_from(LoginFailure).where(
            LoginFailure.at >= since, LoginFailure.address == address)) or 0
    return by_name >= web.login_attempts or by_address >= web.login_attempts * 4


def login(store: Store, cfg: AppConfig, clock: Clock, username: str, password: str, address: str) -> Account | None:
    """The account for a right name and password, else None (and the failure counted and audited)."""
    now = clock.now()
    username = " ".join(username.split())[:200]
    person = cfg.channels.person(username)
    with store.session() as sess:
        user = sess.get(User, person.id) if person else None
        ok = False
        if user is not None and not user.disabled:
            try:
                ok = _hasher.verify(user.password_hash, password)
            except (VerificationError, InvalidHashError):
                ok = False
        if not ok or person is None or user is None:
            sess.add(LoginFailure(at=now, username=username, address=address[:100]))
            audit(sess, now, "console.login_failed", f"user:{username}", address=address)
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        sess.execute(delete(LoginFailure).where(or_(LoginFailure.username == username,
                                                    LoginFailure.at < now - timedelta(days=1))))
        audit(sess, now, "console.login", f"user:{person.id}", actor=person.name, address=address)
        return Account(person.id, person.name, Role(user.role), user.password_set_at, user.session_key)


def current(store: Store, cfg: AppConfig, recipient_id: str, session_key: str) -> Account | None:
    """The account a session names, if it still exists, is enabled and its password was not changed since."""
    person = next((r for r in cfg.channels.recipients if r.id == recipient_id), None)
    with store.session() as sess:
        user = sess.get(User, recipient_id)
        if person is None or user is None or user.disabled or not secrets.compare_digest(user.session_key, session_key):
            return None
        return Account(person.id, person.name, Role(user.role), user.password_set_at, user.session_key)

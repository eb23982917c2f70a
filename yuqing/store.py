"""Engine, sessions and migrations: the one place that knows how to reach the database."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from yuqing.models import AuditEntry

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class NotMigrated(RuntimeError):
    """The database schema is behind the code; the message says what to run."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL and a busy timeout, because crawl subprocesses and the daemon write at once."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for any SQLAlchemy URL; SQLite files get their directory made."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config(url: str) -> AlembicConfig:
    """Alembic pointed at our migrations, without an alembic.ini to keep in sync."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema up to date (safe to run on every upgrade)."""
    command.upgrade(alembic_config(url), revision)


def schema_status(engine: Engine) -> tuple[str | None, str]:
    """The database's revision and the code's head revision."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head or ""


def require_migrated(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not the code's."""
    current, head = schema_status(engine)
    if current != head:
        shown = engine.url.render_as_string(hide_password=True)
        raise NotMigrated(
            f"database {shown} is at schema revision {current or 'none (empty)'}, "
            f"the code needs {head}. Run: yuqing migrate"
        )


class Store:
    """Sessions on one database; passed into whatever reads or writes."""

    def __init__(self, url: str, *, check: bool = True):
        self.url = url
        self.engine = make_engine(url)
        if check:
            require_migrated(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, future=True)

    @classmethod
    def migrated(cls, url: str) -> Store:
        """Upgrade the schema, then open: for tests, the demo and `yuqing migrate`."""
        upgrade(url)
        return cls(url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        with self._sessions() as sess:
            try:
                yield sess
                sess.commit()
            except BaseException:
                sess.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def database_label(url: str) -> str:
    """A short, readable, stable name for a database (its file or database name and a hash of the URL,
    password left out): what is made from one database (digests, the retrained crisis model) is kept
    apart from another's in a shared data directory."""
    parsed = make_url(url)
    name = Path(parsed.database or "db").stem or "db"
    digest = hashlib.sha256(parsed.render_as_string(hide_password=True).encode("utf-8")).hexdigest()[:8]
    return f"{name}-{digest}"


def audit(sess: Session, at: datetime, action: str, target: str = "", actor: str = "system", **detail: Any) -> None:
    """Add an audit entry in the caller's transaction, so it commits with the change it records."""
    sess.add(AuditEntry(at=at, actor=actor, action=action, target=target, detail=detail))

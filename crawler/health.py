"""Rows for `yuqing sources`: each configured source's health as the crawler recorded it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from yuqing.config import AppConfig
from yuqing.models import SourceState
from yuqing.store import Store


@dataclass(frozen=True)
class SourceHealth:
    """One source's line in `yuqing sources`."""

    id: str
    kind: str
    name: str
    enabled: bool
    last_success_at: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    mentions_found: int
    pages_fetched: int
    not_modified: int
    last_fetch_at: datetime | None

    @property
    def status(self) -> str:
        """'ok', 'failing', or 'never polled', for a quick look."""
        if self.last_fetch_at is None:
            return "never polled"
        return "failing" if self.consecutive_failures else "ok"


def source_health(cfg: AppConfig, store: Store) -> list[SourceHealth]:
    """Every configured source in config order, joined with its stored state (zeros if never polled)."""
    with store.session() as sess:
        states = {s.id: s for s in sess.scalars(select(SourceState))}
    rows = []
    for src in cfg.sources.sources:
        st = states.get(src.id)
        rows.append(SourceHealth(
            id=src.id, kind=src.kind, name=src.name, enabled=src.enabled,
            last_success_at=st.last_success_at if st else None,
            consecutive_failures=(st.consecutive_failures or 0) if st else 0,
            failing_since=st.failing_since if st else None,
            last_error=st.last_error if st else None,
            last_error_at=st.last_error_at if st else None,
            mentions_found=(st.mentions_found or 0) if st else 0,
            pages_fetched=(st.pages_fetched or 0) if st else 0,
            not_modified=(st.not_modified or 0) if st else 0,
            last_fetch_at=st.last_fetch_at if st else None,
        ))
    return rows

"""Hot-list appearances, for the digest, `yuqing sources` and the web console: which list, best rank, how long.

`hot_list_appearances` is the one query: every entry naming the hospital that was on a list at some
time in [since, until), best rank first. Titles are scraped text: callers escape them for their medium.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yuqing.alerts.escalation import duration_text
from yuqing.config import HOT_LIST_NAMES
from yuqing.models import HotListEntry, Mention
from yuqing.store import Store


@dataclass(frozen=True)
class HotListAppearance:
    """One entry's time on one hot list."""

    platform: str
    list_name: str  # 微博热搜, ...
    title: str
    url: str
    source_id: str
    mention_id: int
    event_id: int | None
    rank: int  # at the last poll that saw it
    best_rank: int
    heat: int | None
    peak_heat: int | None
    first_seen_at: datetime
    last_seen_at: datetime
    polls: int

    @property
    def time_on_list(self) -> timedelta:
        """From the first poll that found it to the last one (0 when seen once)."""
        return self.last_seen_at - self.first_seen_at

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON (the console): times as ISO 8601, time on list in seconds."""
        out = asdict(self)
        out["first_seen_at"], out["last_seen_at"] = self.first_seen_at.isoformat(), self.last_seen_at.isoformat()
        out["time_on_list_seconds"] = int(self.time_on_list.total_seconds())
        return out


def appearances_in(sess: Session, since: datetime, until: datetime | None = None, *,
                   event_id: int | None = None) -> list[HotListAppearance]:
    """Entries on a list at some time in [since, until) (optionally of one event), best rank first."""
    query = (select(HotListEntry, Mention.url, Mention.event_id).join(Mention, Mention.id == HotListEntry.mention_id)
             .where(HotListEntry.last_seen_at >= since, Mention.about_us.is_not(False))
             .order_by(HotListEntry.best_rank, HotListEntry.first_seen_at, HotListEntry.id))
    if until is not None:
        query = query.where(HotListEntry.first_seen_at < until)
    if event_id is not None:
        query = query.where(Mention.event_id == event_id)
    return [HotListAppearance(
        platform=e.platform, list_name=HOT_LIST_NAMES.get(e.platform, e.platform), title=e.title, url=url,
        source_id=e.source_id, mention_id=e.mention_id, event_id=event, rank=e.rank, best_rank=e.best_rank,
        heat=e.heat, peak_heat=e.peak_heat, first_seen_at=e.first_seen_at, last_seen_at=e.last_seen_at, polls=e.polls,
    ) for e, url, event in sess.execute(query)]


def hot_list_appearances(store: Store, since: datetime, until: datetime | None = None, *,
                         event_id: int | None = None) -> list[HotListAppearance]:
    """The console's query: hot-list appearances in [since, until), best rank first."""
    with store.session() as sess:
        return appearances_in(sess, since, until, event_id=event_id)


def time_on_list_text(appearance: HotListAppearance) -> str:
    """'2 小时 5 分钟', or '1 次抓取' for an entry seen by one poll only."""
    if appearance.polls <= 1:
        return "1 次抓取"
    return duration_text(appearance.time_on_list)

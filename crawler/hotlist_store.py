"""Hot-list entries in the store: stored once as a mention, then each poll moves rank, heat and last seen.

HotListUpdatePipeline runs after the mention filter: an entry this source already has on file is not
stored again; its row in hot_list_entries takes this poll's rank and heat, its best rank and peak
heat, and its last-seen time (rose_at moves when it climbed, so analysis re-measures its event and
the plan can raise the incident). HotListRecordPipeline runs after the store: a new entry gets its row,
first seen = last seen = this poll. An entry whose page another source stored already (a search source
found the same URL) gets its row on that mention, so its time on the list is never lost to dedup.
"""

from __future__ import annotations

from datetime import datetime

from scrapy.exceptions import DropItem
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yuqing.crawler.canonical import canonical_url, url_key
from yuqing.crawler.items import MentionItem
from yuqing.crawler.pipelines import _Pipeline
from yuqing.models import HotListEntry, MentionURL


def _key(item: MentionItem) -> str:
    """The entry's canonical URL key, as the dedup pipeline computes it."""
    return item.url_key or url_key(canonical_url(item.url))


def _peak(old: int | None, new: int | None) -> int | None:
    """The higher of two heat figures, either of which may be missing."""
    return max(v for v in (old, new) if v is not None) if (old, new) != (None, None) else None


def move(entry: HotListEntry, rank: int, heat: int | None, seen_at: datetime) -> bool:
    """One more poll that found the entry: rank, heat, best, peak and last seen; True when it climbed."""
    climbed = rank < entry.best_rank or (heat is not None and (entry.peak_heat is None or heat > entry.peak_heat))
    entry.rank, entry.heat = rank, heat
    entry.best_rank = min(entry.best_rank, rank)
    entry.peak_heat = _peak(entry.peak_heat, heat)
    entry.last_seen_at = max(entry.last_seen_at, seen_at)
    entry.polls = (entry.polls or 0) + 1
    if climbed:
        entry.rose_at = seen_at
    return climbed


class HotListUpdatePipeline(_Pipeline):
    """An entry already on file is updated in place, never stored twice."""

    def process_item(self, item: MentionItem) -> MentionItem:
        if item.hot_rank is None:
            return item
        with self.store().session() as sess:  # committed before the item is dropped: DropItem inside would roll back
            outcome = self._on_file(sess, item)
        if outcome is None:
            return item  # new: stored by the pipelines that follow, recorded by HotListRecordPipeline
        self.count(outcome)
        raise DropItem(f"{outcome} (rank {item.hot_rank}): {item.title}")

    @staticmethod
    def _on_file(sess: Session, item: MentionItem) -> str | None:
        """Move the entry on file, or start one on a page another source stored; None for a new entry."""
        assert item.hot_rank is not None
        key = _key(item)
        entry = sess.scalar(select(HotListEntry).where(HotListEntry.source_id == item.source_id,
                                                       HotListEntry.url_key == key))
        if entry is not None:
            return "hot_list_climbed" if move(entry, item.hot_rank, item.hot_heat, item.fetched_at) else "hot_list_still"
        stored = sess.scalar(select(MentionURL.mention_id).where(MentionURL.url_key == key))
        if stored is None:
            return None
        record(sess, item, stored, key)  # a search source found the page first: its time on the list starts now
        return "hot_list_new"


class HotListRecordPipeline(_Pipeline):
    """A newly stored entry starts its time on the list."""

    def process_item(self, item: MentionItem) -> MentionItem:
        if item.hot_rank is None:
            return item
        try:
            with self.store().session() as sess:
                self._record(sess, item)
        except IntegrityError:  # another crawl of the same list recorded it first
            self.count("duplicates")
        return item

    def _record(self, sess: Session, item: MentionItem) -> None:
        key = _key(item)
        mention_id = sess.scalar(select(MentionURL.mention_id).where(MentionURL.url_key == key))
        if mention_id is None:
            raise RuntimeError(f"hot-list entry stored without its URL row: {item.url}")
        record(sess, item, mention_id, key)
        self.count("hot_list_new")


def record(sess: Session, item: MentionItem, mention_id: int, key: str) -> None:
    """An entry's first poll on the list: first seen = last seen = now, best = current."""
    assert item.platform is not None and item.hot_rank is not None  # set by the hotlist spider
    sess.add(HotListEntry(
        mention_id=mention_id, source_id=item.source_id, platform=item.platform, title=item.title, url_key=key,
        rank=item.hot_rank, best_rank=item.hot_rank, heat=item.hot_heat, peak_heat=item.hot_heat,
        first_seen_at=item.fetched_at, last_seen_at=item.fetched_at, polls=1, rose_at=item.fetched_at,
    ))

"""One story across platforms: a hot-list entry and the posts and reports that name its topic share a tag.

A hot-search title is a handful of words, too few for keyword grouping to tie it to the posts and news
about it. Weibo posts carry the topic as a hashtag (#江城市第一人民医院回应产妇死亡#) and reports often
quote the title itself, so each mention gets a topic tag among its keywords: a hot-list entry its own
title, any mention the hashtags naming the hospital it carries and the titles of hot-list entries (seen
within the event window) it quotes. The tag is a rare word to the keyword vocabulary, so mentions sharing it group into
one event through the ordinary rule (analysis/events.py), and it is stored with the keywords, so the
event index rebuilt from the store keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from yuqing.analysis.text import normalize
from yuqing.models import HotListEntry

HASHTAG = re.compile(r"#([^#\n]{2,60})#")
#: A hot-list title shorter than this is not matched inside other texts (two words match too much).
MIN_TOPIC_CHARS = 6
#: Topic tags one mention may carry; a post stuffed with hashtags is not about every one of them.
MAX_TAGS = 3


def tag(topic: str) -> str:
    """The keyword a topic is grouped by."""
    return f"#{normalize(topic).strip()}#"


def active_topics(sess: Session, since: datetime) -> list[str]:
    """Titles of hot-list entries on a list since the given time, normalised, longest first."""
    titles = sess.scalars(select(HotListEntry.title).where(HotListEntry.last_seen_at >= since).distinct())
    return sorted({normalize(t).strip() for t in titles if len(t.strip()) >= MIN_TOPIC_CHARS}, key=len, reverse=True)


def hot_list_mentions(sess: Session, ids: Sequence[int]) -> set[int]:
    """Which of these mentions are hot-list entries."""
    if not ids:
        return set()
    return set(sess.scalars(select(HotListEntry.mention_id).where(HotListEntry.mention_id.in_(list(ids)))))


def topic_tags(title: str, text: str, topics: Iterable[str], *, names: Iterable[str] = (),
               on_hot_list: bool = False) -> list[str]:
    """The topic tags of one mention (title and text already normalised): its own title if it is a
    hot-list entry, its hashtags that name the hospital (#每日健康# ties no two stories together), and the
    hot-list titles it quotes. A hot-list entry is only stored when it names the hospital, so no topic is lost."""
    found: dict[str, None] = {}
    if on_hot_list and title:
        found[tag(title)] = None
    body = f"{title}\n{text}"
    ours = [normalize(n) for n in names]
    for hashtag in HASHTAG.findall(body):
        if any(name in hashtag for name in ours):
            found[tag(hashtag)] = None
    for topic in topics:
        if topic in body:
            found[tag(topic)] = None
    return list(found)[:MAX_TAGS]

"""The typed record spiders hand to the pipelines: one page, post or review that may name the hospital."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

MentionKind = Literal["news", "post", "review"]


@dataclass
class MentionItem:
    """What a spider parsed; the pipelines fill in the match, the canonical URL and the hash."""

    source_id: str
    kind: MentionKind
    url: str
    title: str
    text: str
    author: str | None
    published_at: datetime | None  # aware UTC, or None when the page does not say
    rating: float | None
    fetched_at: datetime
    platform: str | None = None  # hotlist / rsshub: weibo, douyin, ... (each platform counts as a source)
    hot_rank: int | None = None  # hotlist: rank on the list at this poll (1 = top)
    hot_heat: int | None = None  # hotlist: the list's heat figure, where it gives one
    # Set by the pipelines, never by spiders.
    matched_names: list[str] = field(default_factory=list)
    match_context: str = ""
    canonical_url: str = ""
    url_key: str = ""
    content_hash: str = ""
    same_as_mention_id: int | None = None  # an exact copy already stored (a repost)

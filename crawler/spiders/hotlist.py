"""Hot-list sources: one platform's public list per source, every entry naming the hospital a mention.

The list is read by crawler.hotlists; a list whose format changed fails the source with the missing
key in its last error (never zero mentions in silence). Entries carry rank and heat; the hot-list
pipelines store an entry once and update its rank, heat and last-seen time on later polls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from scrapy.http import Request, Response

from yuqing.crawler.hotlists import HotListFormatError, parse_hot_list
from yuqing.crawler.items import MentionItem
from yuqing.crawler.spiders.base import SourceSpider, request_of

#: Headers the platforms' own web pages send with these requests.
REFERERS = {"weibo": "https://weibo.com/", "douyin": "https://www.douyin.com/", "zhihu": "https://www.zhihu.com/hot",
            "toutiao": "https://www.toutiao.com/", "bilibili": "https://www.bilibili.com/", "baidu": "https://top.baidu.com/"}


class HotListSpider(SourceSpider):
    """One platform's hot list (Source.platform), polled every few minutes."""

    kind = "hotlist"
    mention_kind = "news"  # an entry is a headline: judged by its title, as news is

    @property
    def platform(self) -> str:
        assert self.source.platform is not None  # the config requires it for kind hotlist
        return self.source.platform

    def entry_requests(self) -> Iterable[Request]:
        headers = {"Accept": "application/json, text/html;q=0.9, */*;q=0.5",
                   "Referer": REFERERS.get(self.platform, self.source.url)}
        yield self.request(self.source.url, self.parse_list, entry=True, headers=headers)

    def parse_list(self, response: Response) -> Iterator[MentionItem]:
        if not self.usable(response):
            return
        try:
            entries = parse_hot_list(self.platform, response.body)
        except HotListFormatError as err:
            self.fault(request_of(response), str(err))
            return
        self.entry_succeeded()
        self.count("hot_list_entries", len(entries))
        for entry in entries:
            item = self.item(url=entry.url, title=entry.title, text=entry.text, author=entry.author,
                             published_at=entry.published_at)
            item.platform, item.hot_rank, item.hot_heat = self.platform, entry.rank, entry.heat
            yield item

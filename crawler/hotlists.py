"""The national hot lists as their platforms serve them today, read into ranked entries.

Each platform has its own shape (endpoints and structures as public monitors such as newsnow and
TrendRadar read them; tests/data/hotlists/ holds recorded examples and says where each comes from):

- weibo     https://weibo.com/ajax/side/hotSearch            JSON data.realtime[]: word, num, realpos/rank, is_ad
- baidu     https://top.baidu.com/board?tab=realtime         HTML, JSON in <!--s-data:...-->: data.cards[0].content[]
- douyin    https://www.douyin.com/aweme/v1/web/hot/search/list/?device_platform=webapp&aid=6383&channel=channel_pc_web&detail_list=1
                                                              JSON data.word_list[]: word, hot_value, position, sentence_id
- zhihu     https://www.zhihu.com/api/v3/feed/topstory/hot-lists/total?limit=50&desktop=true
                                                              JSON data[]: target.title/url/excerpt, detail_text "N 万热度"
- toutiao   https://www.toutiao.com/hot-event/hot-board/?origin=toutiao_pc
                                                              JSON data[]: Title, HotValue, Url, ClusterIdStr
- bilibili  https://api.bilibili.com/x/web-interface/popular  JSON code, data.list[]: title, bvid, desc, owner.name, stat.view

A list whose shape changed (a key we rely on is gone, or the list is empty) raises HotListFormatError
naming the platform and the missing key, so the source fails visibly in `yuqing sources` instead of
reporting zero mentions; a platform that answers with a refusal (weibo ok != 1, bilibili code != 0,
douyin status_code != 0) raises it too, with the platform's own message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

#: How many characters of a refusal message or unexpected body go into the source's last error.
ERROR_SNIPPET = 120
_S_DATA = re.compile(rb"<!--s-data:(.*?)-->", re.S)
_ZHIHU_HEAT = re.compile(r"([\d.]+)\s*(万|亿)?\s*热度")


class HotListFormatError(ValueError):
    """The list is not in the shape its platform served when this reader was written, or was refused."""


@dataclass(frozen=True)
class HotEntry:
    """One entry of a hot list: where it ranks, how hot it is, and what it says."""

    title: str
    url: str
    rank: int  # 1 = top of the list
    heat: int | None = None
    text: str = ""
    author: str | None = None
    published_at: datetime | None = None


def _need(node: Any, path: str, platform: str) -> Any:
    """node[a][b]... for path 'a.b', or a HotListFormatError naming the first missing key."""
    where = []
    for key in path.split("."):
        where.append(key)
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise HotListFormatError(f"{platform} hot list format changed: no {'.'.join(where)} in the response")
    return node


def _entries(node: Any, path: str, platform: str) -> list[dict[str, Any]]:
    """The list of entries at path; an empty or non-list value is a format change, not an empty list."""
    found = _need(node, path, platform)
    if not isinstance(found, list):
        raise HotListFormatError(f"{platform} hot list format changed: {path} is {type(found).__name__}, not a list")
    if not found:
        raise HotListFormatError(f"{platform} hot list is empty ({path} has no entries); the format may have changed")
    return [e for e in found if isinstance(e, dict)]


def _field(entry: dict[str, Any], key: str, platform: str, path: str) -> Any:
    """A key (dotted for nested ones) every entry must carry."""
    node: Any = entry
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise HotListFormatError(f"{platform} hot list format changed: entries of {path} have no {key!r}")
        node = node[part]
    return node


def _listed(data: Any, platform: str, path: str, title_key: str) -> Iterator[tuple[int, dict[str, Any], str]]:
    """(position, entry, title) for each entry with a title; the list's shape is checked as it is read."""
    for i, item in enumerate(_entries(data, path, platform)):
        title = str(_field(item, title_key, platform, path)).strip()
        if title:
            yield i, item, title


def _number(value: Any) -> int | None:
    """Heat as an int: platforms send numbers or digit strings ("4960316")."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    digits = str(value).strip()
    return int(digits) if digits.isdigit() else None


def _json(body: bytes, platform: str) -> Any:
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        head = body[:ERROR_SNIPPET].decode("utf-8", "replace").strip()
        raise HotListFormatError(f"{platform} hot list is not JSON ({err.__class__.__name__}): {head!r}") from None


def _answered(data: Any, platform: str, key: str, ok: Any, message_key: str) -> None:
    """A platform's own status field: anything but ok (or no field at all) is a refusal, in its own words."""
    if isinstance(data, dict) and data.get(key) not in (ok, None):
        said = data.get(message_key)
        why = f"{key}={data.get(key)}" + (f" {said}" if said else "")
        raise HotListFormatError(f"{platform} refused the hot list: {str(why)[:ERROR_SNIPPET]}")


def parse_weibo(body: bytes) -> list[HotEntry]:
    """微博热搜: data.realtime; ads (is_ad) are not part of the ranking."""
    data = _json(body, "weibo")
    _answered(data, "weibo", "ok", 1, "msg")
    return [HotEntry(title=word, url=f"https://s.weibo.com/weibo?q={quote(item.get('word_scheme') or f'#{word}#')}",
                     rank=_number(item.get("realpos")) or ((_number(item.get("rank")) or i) + 1),
                     heat=_number(item.get("num")), text=str(item.get("note") or ""))
            for i, item, word in _listed(data, "weibo", "data.realtime", "word") if not item.get("is_ad")]


def parse_baidu(body: bytes) -> list[HotEntry]:
    """百度热搜: the page's embedded s-data JSON, data.cards[0].content; the pinned entry (isTop) is not ranked."""
    match = _S_DATA.search(body)
    if match is None:
        raise HotListFormatError("baidu hot list format changed: the page has no <!--s-data:...--> block")
    ranked = [(item, word) for _, item, word in _listed(_json(match.group(1), "baidu"), "baidu", "data.cards.0.content", "word")
              if not item.get("isTop")]
    return [HotEntry(title=word, url=str(item.get("rawUrl") or item.get("url") or f"https://www.baidu.com/s?wd={quote(word)}"),
                     rank=(index if (index := _number(item.get("index"))) is not None else n) + 1,
                     heat=_number(item.get("hotScore")), text=str(item.get("desc") or ""))
            for n, (item, word) in enumerate(ranked)]


def parse_douyin(body: bytes) -> list[HotEntry]:
    """抖音热榜: data.word_list with position and hot_value."""
    data = _json(body, "douyin")
    _answered(data, "douyin", "status_code", 0, "status_msg")
    return [HotEntry(title=word, rank=_number(item.get("position")) or i + 1, heat=_number(item.get("hot_value")),
                     url=f"https://www.douyin.com/hot/{item['sentence_id']}" if item.get("sentence_id")
                     else f"https://www.douyin.com/search/{quote(word)}")
            for i, item, word in _listed(data, "douyin", "data.word_list", "word")]


def _zhihu_heat(detail: str) -> int | None:
    """'1234 万热度' → 12340000."""
    match = _ZHIHU_HEAT.search(detail or "")
    if not match:
        return None
    scale = {"万": 10_000, "亿": 100_000_000}.get(match.group(2) or "", 1)
    return int(float(match.group(1)) * scale)


def parse_zhihu(body: bytes) -> list[HotEntry]:
    """知乎热榜: data[].target (a question), heat in detail_text."""
    return [HotEntry(title=title, url=f"https://www.zhihu.com/question/{item['target'].get('id')}", rank=i + 1,
                     heat=_zhihu_heat(str(item.get("detail_text") or "")), text=str(item["target"].get("excerpt") or ""))
            for i, item, title in _listed(_json(body, "zhihu"), "zhihu", "data", "target.title")]


def parse_toutiao(body: bytes) -> list[HotEntry]:
    """头条热榜: data[] with Title and HotValue (a digit string). Its Url carries ?rank=…&log_from=…, which
    change every poll; the cluster's own page does not, so that is the entry's URL."""
    data = _json(body, "toutiao")
    _answered(data, "toutiao", "status", "success", "message")
    return [HotEntry(title=title, rank=i + 1, heat=_number(item.get("HotValue")),
                     url=f"https://www.toutiao.com/trending/{cluster}/" if (cluster := item.get("ClusterIdStr")
                                                                            or item.get("ClusterId"))
                     else str(item.get("Url") or ""))
            for i, item, title in _listed(data, "toutiao", "data", "Title")]


def _bilibili_entry(i: int, item: dict[str, Any], title: str) -> HotEntry:
    """One popular video: heat is its view count, the uploader its author."""
    owner: dict[str, Any] = item.get("owner") or {}
    stat: dict[str, Any] = item.get("stat") or {}
    pubdate = _number(item.get("pubdate"))
    return HotEntry(title=title, url=f"https://www.bilibili.com/video/{item['bvid']}", rank=i + 1,
                    heat=_number(stat.get("view")), text=str(item.get("desc") or ""), author=owner.get("name") or None,
                    published_at=datetime.fromtimestamp(pubdate, tz=UTC) if pubdate else None)


def parse_bilibili(body: bytes) -> list[HotEntry]:
    """B站热门: data.list of videos."""
    data = _json(body, "bilibili")
    _answered(data, "bilibili", "code", 0, "message")
    return [_bilibili_entry(i, item, title) for i, item, title in _listed(data, "bilibili", "data.list", "title")
            if _field(item, "bvid", "bilibili", "data.list")]


PARSERS: dict[str, Callable[[bytes], list[HotEntry]]] = {
    "weibo": parse_weibo, "baidu": parse_baidu, "douyin": parse_douyin,
    "zhihu": parse_zhihu, "toutiao": parse_toutiao, "bilibili": parse_bilibili,
}

def parse_hot_list(platform: str, body: bytes) -> list[HotEntry]:
    """The ranked entries of one platform's list; HotListFormatError when its shape changed or it refused."""
    return PARSERS[platform](body)

"""Top keywords of a mention (TF-IDF with jieba's IDF table, over the shared tokenizer), for grouping and display.

Every mention names the hospital, most say 医院 and 患者, and local ones name the city: such
words are in every mention, so they would glue unrelated stories into one event. They are
excluded, together with the fragments the hospital's names split into and words with digits
(dates, counts). What is left is what a story is about: 产妇, 剖宫产, 大出血, a doctor's name.

For grouping, keywords also say how much they weigh: a department (产科, or any …科) says where
but not which story, so it weighs little; only *distinctive* words — rarer in general Chinese
than DISTINCTIVE_IDF, like 剖宫产 or 红包, not 死亡 or 不错 — count as evidence of one story.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import jieba
import numpy as np

from yuqing.analysis.text import normalize
from yuqing.config import Hospital

log = logging.getLogger(__name__)

TOP_K = 8  # keywords kept per mention
TITLE_WEIGHT = 2  # title words count twice: a headline says what the story is
EXPANSION_CACHE_MAX = 200_000  # a long-running daemon sees unbounded vocabulary
DISTINCTIVE_IDF = 8.5  # rarer than this in general Chinese: 剖宫产, 红包, 殴打, 患儿 — not 死亡, 家属, 不错, 态度
CONTEXT_WEIGHT = 0.3  # the hospital's departments: in many stories and reviews, so weak evidence of one story
MAX_BODY_CHARS = 300  # the lede carries the story; the rest costs tokenizer time for little gain

# Words in nearly every mention about any hospital, or news filler: no evidence two mentions share a story.
GENERIC_WORDS = frozenset(
    """
    医院 人民医院 第一人民医院 中医院 附属医院 一院 二院 院方 我院 该院 本院 医院方 涉事 涉事医院
    患者 病人 病患 就诊 看病 治疗 医生 大夫 医护 医护人员 医务人员 医务 工作人员
    记者 报道 报讯 本报讯 消息 新闻 转载 来源 编辑 责任编辑 原标题 作者 通讯员 网友 市民 群众 读者
    表示 介绍 称 认为 相关 有关 工作 情况 问题 进行 开展 发生 出现 已经 目前 今天 昨天 今年 去年
    近日 日前 当天 此前 昨日 今日 上午 下午 晚上 凌晨 时间 期间 一名 一位 一个 这个 那个 我们 他们
    记者从 据悉 获悉 了解到 据了解 发布 回应 情况通报 通报 视频 图片 链接 点击 关注 微信 微博 网页
    非常 真的 觉得 还是 没有 就是 可以 一下 一些 这样 什么 因为 所以 但是 而且 如果 以后 之后
    家属 质疑 要求 希望 事件 医疗 服务 成功 完成 及时 有点 大大 数名 多名 方面 表示 方面表示
    """.split()
)

_HAS_DIGIT = re.compile(r"\d")
_DEPARTMENT = re.compile(r"^[\u4e00-\u9fff]{1,6}科$")  # 产科, 急诊科, 心血管内科, 耳鼻喉科 …
_NAMED_PERSON = re.compile(r"^[\u4e00-\u9fff]{1,2}(?:某某|某|先生|女士)$")  # 彭某, 刘先生: how news names people
NOT_DEPARTMENTS = frozenset("学科 本科 专科 百科 文科 理科 工科 科科 前科 商科 医科 教科 农科 预科 分科 全科 外科 内科".split())
_CONTENT = re.compile(r"\w", re.UNICODE)


IDF_FILE = Path(jieba.__file__).resolve().parent / "analyse" / "idf.txt"


class IdfTable:
    """jieba's IDF of 270,000 words, held as sorted string hashes and float32 values: 3 MB, where a dict
    of the same words is about 40 MB and `import jieba.analyse` (which loads one) costs about 95 MB.
    Python's string hash is fixed for the life of a process, which is all a lookup table needs."""

    def __init__(self, path: Path = IDF_FILE) -> None:
        keys: list[int] = []
        values: list[float] = []
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                word, _, value = line.rstrip("\n").rpartition(" ")
                if word:
                    keys.append(hash(word))
                    values.append(float(value))
        order = np.argsort(np.array(keys, dtype=np.int64), kind="stable")
        self.keys = np.array(keys, dtype=np.int64)[order]
        self.values = np.array(values, dtype=np.float32)[order]
        self.median = float(np.median(self.values))

    def get(self, word: str, default: float) -> float:
        """The word's IDF, or the default for a word jieba does not know."""
        h = hash(word)
        i = int(self.keys.searchsorted(h))
        return float(self.values[i]) if i < len(self.keys) and self.keys[i] == h else default


@lru_cache(maxsize=1)
def idf_table() -> IdfTable:
    """The one IDF table of the process, read on first use."""
    return IdfTable()


def hospital_words(hospital: Hospital, tokenizer: jieba.Tokenizer) -> set[str]:
    """The hospital's names, its city and the dictionary words its names split into: in every mention."""
    words: set[str] = set()
    for name in [*hospital.names, *hospital.excluded, *hospital.context_words]:
        name = normalize(name).replace(" ", "")
        if not name:
            continue
        words.add(name)
        words.update(w for w in tokenizer.cut_for_search(name, HMM=False) if len(w) >= 2)
    return words


class KeywordExtractor:
    """TF-IDF keywords from jieba's IDF table, cut by the shared tokenizer, minus excluded words."""

    def __init__(
        self,
        tokenizer: jieba.Tokenizer,
        excluded: Iterable[str] = (),
        context: Iterable[str] = (),
        top_k: int = TOP_K,
        hmm: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.top_k = top_k
        self.hmm = hmm  # HMM finds unknown names (people, places): the most story-specific words
        self.idf_table = idf_table()
        self.median_idf = self.idf_table.median
        self.excluded = frozenset(w.lower() for w in (*GENERIC_WORDS, *excluded))
        self.context = frozenset(normalize(w).replace(" ", "").lower() for w in context)
        self._expansions: dict[str, tuple[str, ...]] = {}

    @classmethod
    def for_hospital(cls, hospital: Hospital, tokenizer: jieba.Tokenizer, **kwargs: object) -> KeywordExtractor:
        """An extractor that never returns the hospital's names, city or generic words, and knows its departments."""
        return cls(tokenizer, excluded=hospital_words(hospital, tokenizer), context=hospital.departments,
                   **kwargs)  # type: ignore[arg-type]

    def idf(self, word: str) -> float:
        """How rare a word is in general Chinese text (unknown words: the median)."""
        return self.idf_table.get(word, self.median_idf)

    def department(self, word: str) -> bool:
        """Whether a word names a department (the config's, or any …科 such as 耳鼻喉科): where a story happened."""
        return word in self.context or (_DEPARTMENT.match(word) is not None and word not in NOT_DEPARTMENTS)

    def particular(self, word: str) -> bool:
        """A department or a named person (彭某, 刘先生): which story of a kind this is."""
        return self.department(word) or _NAMED_PERSON.match(word) is not None

    def weight(self, word: str) -> float:
        """How much a shared word says two mentions tell one story: its idf, less for departments."""
        return self.idf(word) * (CONTEXT_WEIGHT if self.department(word) else 1.0)

    def distinctive(self, word: str) -> bool:
        """A word rare enough to tie two mentions to one story (a department or 不错 is not)."""
        return self.idf(word) >= DISTINCTIVE_IDF and not self.department(word)

    def expand(self, word: str) -> tuple[str, ...]:
        """A keyword and the usable dictionary words inside it (产妇死亡 → 产妇, 死亡): how stories are matched."""
        found = self._expansions.get(word)
        if found is None:
            subwords = (w for w in self.tokenizer.cut_for_search(word, HMM=False) if w != word and self.usable(w))
            found = (word, *dict.fromkeys(subwords))
            if len(self._expansions) >= EXPANSION_CACHE_MAX:
                self._expansions.clear()
            self._expansions[word] = found
        return found

    def usable(self, word: str) -> bool:
        """Whether a token may be a keyword: two or more characters, content, no digits, not excluded."""
        return (
            len(word) >= 2
            and _CONTENT.search(word) is not None
            and not _HAS_DIGIT.search(word)
            and word.lower() not in self.excluded
        )

    def weighted(self, title: str, text: str) -> list[tuple[str, float]]:
        """(keyword, TF-IDF weight) pairs, best first, from the title (counted twice) and the lede."""
        counts: dict[str, float] = {}
        for part, weight in ((normalize(title), TITLE_WEIGHT), (normalize(text)[:MAX_BODY_CHARS], 1)):
            for word in self.tokenizer.cut(part, HMM=self.hmm):
                if self.usable(word):
                    counts[word] = counts.get(word, 0.0) + weight
        total = sum(counts.values()) or 1.0
        scored = [(w, c * self.idf(w) / total) for w, c in counts.items()]
        scored.sort(key=lambda p: (-p[1], p[0]))
        return scored[: self.top_k]

    def extract(self, title: str, text: str) -> list[str]:
        """Top keywords of one mention, best first."""
        return [w for w, _ in self.weighted(title, text)]

    def extract_many(self, titles: Sequence[str], texts: Sequence[str]) -> list[list[str]]:
        """Top keywords of each (title, text) pair."""
        return [self.extract(t, x) for t, x in zip(titles, texts)]

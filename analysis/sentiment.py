"""Hospital-grade sentiment: NB-scaled linear model over jieba word n-grams, negation and char n-grams.

The model is NBSVM-style (Wang & Manning 2012): SnowNLP's Naive Bayes idea supplies per-feature
log-count ratios r, a logistic regression is trained on the NB-scaled binary features r∘x, and
the shipped weight of each feature is w∘r, so scoring is one sparse dot product per document.
Features are stable 32-bit hashes (zlib.crc32 + a 64-bit mixer) looked up in a sorted,
pruned vocabulary: unseen features score 0 instead of borrowing a colliding weight.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import multiprocessing.pool
import os
import threading
import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import jieba
import numpy as np

from yuqing.analysis.simhash import fmix64
from yuqing.analysis.text import make_tokenizer, normalize, strip_replies
from yuqing.resources import DATA

log = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = DATA / "sentiment_model.npz"
FORMAT_VERSION = 1
THRESHOLD = 0.5

# Words that flip the next few tokens' features (NOT_ prefix), up to punctuation or a contrast word.
NEGATORS = frozenset(
    "不 没 没有 未 别 无 非 勿 莫 不是 不会 不能 不要 不用 不必 并不 并非 并没有 从不 从没 从未 绝不 "
    "毫无 不太 不够 不怎么 不算 不大 木有 没什么 一点也不 一点都不 根本不 根本没有 再也不 永远不".split()
)
SCOPE_ENDERS = frozenset("但 但是 可是 却 不过 然而 只是 就是 而且 并且 所以 因为 虽然 还是".split())

# Polarity lexicon: each hit also fires one shared LEX_POS / LEX_NEG feature (NOT_-marked inside a
# negation scope). Its weight is learned from the reviews, where the general words are frequent, and
# carries over to hospital terms that reviews never contain (医疗事故, 误诊, 医术高明 ...).
LEXICON_NEG = frozenset(
    """差 很差 太差 较差 极差 最差 脏 脏乱 脏乱差 吵 臭 贵 太贵 慢 太慢 难吃 难用 恶劣 糟糕 失望 很失望 垃圾
    后悔 坑 坑人 骗 骗人 欺骗 忽悠 投诉 差评 恶心 敷衍 冷漠 傲慢 粗暴 不耐烦 不负责 不负责任 不专业 态度差
    态度恶劣 态度冷漠 态度生硬 服务态度差 推诿 刁难 乱收费 宰客 黑心 气愤 愤怒 郁闷 崩溃 心寒 寒心 痛苦
    可怕 离谱 坑爹 不值 无语 生气 拖延 耽误 故障 损坏 霉 发霉 蟑螂 死亡 身亡 猝死 致死 致残 医疗事故 医疗纠纷
    医疗差错 医疗过错 医疗损害 误诊 漏诊 误治 延误治疗 延误诊断 延误病情 抢救无效 救治无效 不治身亡 并发症
    后遗症 院感 院内感染 交叉感染 医闹 伤医 杀医 袭医 暴力伤医 打砸 收红包 吃回扣 拿回扣 回扣 受贿 行贿
    索贿 贿赂 骗保 套保 欺诈骗保 黄牛 号贩子 医托 倒号 天价 天价医药费 过度医疗 过度检查 过度治疗 大处方
    非法行医 无证行医 假药 劣药 问题疫苗 假疫苗 泄露隐私 隐私泄露 信息泄露 见死不救 拒诊 草菅人命 漠视生命
    踢皮球 冷言冷语 停职 免职 撤职 立案调查 涉嫌 丑闻 违规 违法 食物中毒 中毒 事故 纠纷 维权 讨说法 索赔
    看病难 看病贵 一号难求 挂号难 害怕 担心 担忧 紧张 焦虑 恐惧 恐慌""".split()
)
LEXICON_POS = frozenset(
    """好 很好 挺好 非常好 不错 很不错 满意 很满意 推荐 值得 专业 耐心 细心 热情 周到 贴心 暖心 负责 认真
    认真负责 尽职尽责 尽心尽力 干净 整洁 舒适 方便 及时 感谢 谢谢 感激 点赞 棒 优秀 完美 放心 安心 信赖 靠谱
    给力 和蔼 和蔼可亲 亲切 温柔 医术高明 医德高尚 妙手回春 华佗再世 救死扶伤 仁心仁术 技术精湛 医术精湛
    耐心细致 耐心解答 态度好 态度和蔼 服务周到 热情周到 细心周到 康复出院 顺利出院 痊愈 治愈 手术成功 转危为安
    起死回生 脱离危险 化险为夷 锦旗 感谢信 白衣天使 最美医生 最美护士 好医生 好护士 无私奉献 表彰""".split()
)



def lexicon_fingerprint() -> int:
    """crc32 of the word lists above: a model trained with other lists would score differently."""
    parts = [" ".join(sorted(s)) for s in (NEGATORS, SCOPE_ENDERS, LEXICON_NEG, LEXICON_POS)]
    return zlib.crc32("|".join(parts).encode("utf-8"))


# Batches bound the memory of the per-batch numpy arrays; parallelism pays only for big inputs.
BATCH_DOCS = 2000
PARALLEL_MIN_CHARS = 200_000
TOKEN_CACHE_MAX = 500_000

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_SALT = {  # one salt per feature family, so a word "好" and a character "好" never share a key
    "w1": np.uint64(0x51ED270B27C5A4D1),
    "w2": np.uint64(0xA0761D6478BD642F),
    "w3": np.uint64(0xE7037ED1A0B428DC),
    "c1": np.uint64(0xE7037ED1A0B428DB),
    "c2": np.uint64(0x8EBC6AF09C88C6E3),
    "c3": np.uint64(0x589965CC75374CC3),
    "lex": np.uint64(0x2D358DCCAA6C78A5),
}
_HASH_BIT = 1 << 32  # set on every token code so that 0 can mark a clause boundary
_NEG_BIT = 1 << 33  # token inside a negation scope (the "NOT_" prefix)
_LEX_POS = 1 << 34  # lexicon polarity, kept in the token sequence but not in the word's own key
_LEX_NEG = 1 << 35
_NEGATOR_FLAG = 1 << 40  # cache-only flags, stripped before the sequence
_ENDER_FLAG = 1 << 41
_CODE_MASK = (1 << 36) - 1
_WORD_MASK = np.uint64((1 << 34) - 1)


@dataclass(frozen=True)
class FeatureConfig:
    """Which feature families a model uses; stored in the model so training and scoring agree."""

    word_ngrams: int = 2  # 1: unigrams; 2: + bigrams (within a clause)
    char_ngrams: tuple[int, ...] = (2,)  # character n-gram orders over letters/digits/CJK/symbols
    negation_scope: int = 3  # tokens after a negator that get the NOT_ mark; 0 disables
    hmm: bool = False  # jieba's HMM for unknown words: ~30% slower, char n-grams cover most of it
    length_power: float = 0.5  # logit = Σ weights / n_features**p + bias: long texts don't saturate
    lexicon: bool = True  # shared LEX_POS / LEX_NEG features for LEXICON_* hits
    strip_replies: bool = True  # score the reviewer, not the business's reply appended to the review

    def to_json(self) -> str:
        """Serialised form kept inside the .npz."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> FeatureConfig:
        """Inverse of to_json."""
        d = json.loads(raw)
        d["char_ngrams"] = tuple(d.get("char_ngrams", ()))
        return cls(**d)


def length_scale(doc: np.ndarray, n_docs: int, power: float) -> np.ndarray:
    """Per-document factor 1 / n_features**power (n_features counts known and unknown features)."""
    if not power:
        return np.ones(n_docs)
    return 1.0 / np.maximum(np.bincount(doc, minlength=n_docs), 1) ** power


def _to_key(mixed: np.ndarray) -> np.ndarray:
    """Final 32-bit feature key from a mixed 64-bit value."""
    return (mixed >> np.uint64(32)).astype(np.uint32)


def _ngram_keys(seq: np.ndarray, valid: np.ndarray, n: int, salt: np.uint64) -> tuple[np.ndarray, np.ndarray]:
    """Keys of all n-grams of seq whose n items are all valid; returns (start positions, keys)."""
    if len(seq) < n:
        return np.empty(0, np.int64), np.empty(0, np.uint32)
    ok = valid[: len(seq) - n + 1].copy()
    for j in range(1, n):
        ok &= valid[j : len(seq) - n + 1 + j]
    pos = np.flatnonzero(ok)
    acc = seq[pos] ^ salt
    for j in range(1, n):
        acc = fmix64(acc * _GOLD + seq[pos + j])
    return pos, _to_key(fmix64(acc))


def _content_table() -> np.ndarray:
    """BMP lookup: True for letters, numbers, marks and symbols; False for punctuation, spaces, controls."""
    cats = (unicodedata.category(chr(cp))[0] in "LNMS" for cp in range(0x10000))
    return np.fromiter(cats, dtype=bool, count=0x10000)


_CONTENT: np.ndarray | None = None
_content_lock = threading.Lock()


def content_mask(cps: np.ndarray) -> np.ndarray:
    """Which code points carry content (astral ones, mostly emoji, count as content)."""
    global _CONTENT
    if _CONTENT is None:
        with _content_lock:
            if _CONTENT is None:
                _CONTENT = _content_table()
    out = np.ones(len(cps), dtype=bool)
    bmp = cps < 0x10000
    out[bmp] = _CONTENT[cps[bmp]]
    return out


class Featurizer:
    """Turns texts into per-document sets of 32-bit feature keys; shared by training and scoring."""

    def __init__(self, tokenizer: jieba.Tokenizer, config: FeatureConfig) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self._codes: dict[str, int] = {}

    def _code(self, token: str) -> int:
        """Cache entry for a token: 0 for punctuation/space, else crc32 | flags (computed once per token)."""
        if not any(ch.isalnum() or unicodedata.category(ch)[0] in "MS" for ch in token):
            code = 0
        else:
            low = token.lower()
            code = zlib.crc32(low.encode("utf-8")) | _HASH_BIT
            if low in NEGATORS:
                code |= _NEGATOR_FLAG
            if low in SCOPE_ENDERS:
                code |= _ENDER_FLAG
            if low in LEXICON_POS:
                code |= _LEX_POS
            elif low in LEXICON_NEG:
                code |= _LEX_NEG
        if len(self._codes) >= TOKEN_CACHE_MAX:  # a long-running daemon sees unbounded vocabulary
            self._codes.clear()
        self._codes[token] = code
        return code

    def token_codes(self, text: str, out: list[int]) -> None:
        """Append a normalised text's token codes (negation applied, 0 at clause ends) to out."""
        codes = self._codes
        scope = self.config.negation_scope
        neg = 0
        for tok in self.tokenizer.cut(text, HMM=self.config.hmm):
            code = codes.get(tok)
            if code is None:
                code = self._code(tok)
            if code == 0:
                if out and out[-1] != 0:
                    out.append(0)
                neg = 0
                continue
            if code & _ENDER_FLAG:
                neg = 0
            h = code & _CODE_MASK
            if neg:
                h |= _NEG_BIT
                neg -= 1
            out.append(h)
            if scope and code & _NEGATOR_FLAG:
                neg = scope
        out.append(0)

    def _word_features(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(doc index, key) pairs of word unigrams/bigrams for a batch of normalised texts."""
        codes: list[int] = []
        lengths = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            start = len(codes)
            self.token_codes(text, codes)
            lengths[i] = len(codes) - start
        full = np.array(codes, dtype=np.uint64)
        seq = full & _WORD_MASK
        doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        valid = seq != 0
        docs, keys = [], []
        for n in range(1, self.config.word_ngrams + 1):
            pos, k = _ngram_keys(seq, valid, n, _SALT[f"w{n}"])
            docs.append(doc[pos])
            keys.append(k)
        if self.config.lexicon:  # key from (negated, pos, neg) bits: LEX_POS, NOT_LEX_POS, LEX_NEG, NOT_LEX_NEG
            polarity = (full >> np.uint64(33)) & np.uint64(0b111)
            pos, k = _ngram_keys(polarity, polarity > 1, 1, _SALT["lex"])
            docs.append(doc[pos])
            keys.append(k)
        return np.concatenate(docs), np.concatenate(keys)

    def _char_features(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(doc index, key) pairs of character n-grams, computed on the whole batch at once."""
        if not self.config.char_ngrams:
            return np.empty(0, np.int64), np.empty(0, np.uint32)
        joined = "\x00".join(t.lower() for t in texts) + "\x00"
        cps = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
        sep = cps == 0
        doc = np.cumsum(sep) - sep  # index of the document each position belongs to
        valid = content_mask(cps) & ~sep
        seq = cps.astype(np.uint64)
        docs, keys = [], []
        for n in self.config.char_ngrams:
            pos, k = _ngram_keys(seq, valid, n, _SALT[f"c{n}"])
            docs.append(doc[pos])
            keys.append(k)
        return np.concatenate(docs), np.concatenate(keys)

    def features(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Binary features of a batch: unique (doc index int64, key uint32) pairs sorted by document."""
        norm = [normalize(t) for t in texts]
        if self.config.strip_replies:
            norm = [strip_replies(t) for t in norm]
        d1, k1 = self._word_features(norm)
        d2, k2 = self._char_features(norm)
        packed = np.concatenate([d1, d2]).astype(np.uint64) << np.uint64(32)
        packed |= np.concatenate([k1, k2]).astype(np.uint64)
        packed = np.unique(packed)
        return (packed >> np.uint64(32)).astype(np.int64), (packed & np.uint64(0xFFFFFFFF)).astype(np.uint32)


@dataclass
class _Weights:
    """Sorted feature keys with their weights and the bias."""

    keys: np.ndarray  # uint32, sorted, unique
    weights: np.ndarray  # float32 (stored as float16)
    bias: float


# Fork-inherited models for worker processes, keyed by id(model).
_FORK_MODELS: dict[int, SentimentModel] = {}


def _usable_cpus() -> int:
    """CPUs this process may run on (cgroup/affinity aware where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _score_chunk(args: tuple[int, Sequence[str]]) -> list[float]:
    """Worker entry point: score a chunk with the model inherited from the parent at fork time."""
    model_id, texts = args
    return _FORK_MODELS[model_id]._score_serial(texts)


class SentimentModel:
    """P(positive) for Chinese text; load once, score many."""

    def __init__(self, featurizer: Featurizer, weights: _Weights, meta: dict | None = None) -> None:
        self.featurizer = featurizer
        self._w = weights
        self.meta = meta or {}

    @classmethod
    def load(cls, path: Path | None = None, extra_words: Sequence[str] = ()) -> SentimentModel:
        """Load the shipped model (data/sentiment_model.npz) with a tokenizer knowing extra_words."""
        path = Path(path) if path is not None else DEFAULT_MODEL_PATH
        with np.load(path, allow_pickle=False) as z:
            version = int(z["format_version"])
            if version != FORMAT_VERSION:
                raise ValueError(f"{path}: model format {version}, this code reads {FORMAT_VERSION}")
            config = FeatureConfig.from_json(str(z["config"]))
            weights = _Weights(z["keys"].astype(np.uint32), z["weights"].astype(np.float32), float(z["bias"]))
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
            trained_fp = int(z["lexicon_fingerprint"]) if "lexicon_fingerprint" in z.files else None
        if trained_fp != lexicon_fingerprint():
            log.warning("%s was trained with other negator/lexicon lists; rerun scripts/train_sentiment.py", path)
        featurizer = Featurizer(make_tokenizer(extra_words), config)
        log.debug("loaded sentiment model %s: %d features", path, len(weights.keys))
        return cls(featurizer, weights, meta)

    def save(self, path: Path, meta: dict | None = None) -> None:
        """Write the compact .npz (float16 weights, uint32 keys)."""
        np.savez_compressed(
            path,
            format_version=np.array(FORMAT_VERSION),
            config=np.array(self.featurizer.config.to_json()),
            keys=self._w.keys.astype(np.uint32),
            weights=self._w.weights.astype(np.float16),
            bias=np.array(self._w.bias, dtype=np.float64),
            lexicon_fingerprint=np.array(lexicon_fingerprint(), dtype=np.int64),
            meta=np.array(json.dumps(meta if meta is not None else self.meta, ensure_ascii=False)),
        )

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw linear scores (log-odds of positive) for one batch, in one process."""
        doc, keys = self.featurizer.features(texts)
        table = self._w.keys
        idx = np.searchsorted(table, keys)
        idx[idx == len(table)] = 0
        hit = table[idx] == keys
        contrib = np.where(hit, self._w.weights[idx], np.float32(0))
        total = np.bincount(doc, weights=contrib, minlength=len(texts))
        z = total * length_scale(doc, len(texts), self.featurizer.config.length_power) + self._w.bias
        z[np.bincount(doc, minlength=len(texts)) == 0] = 0.0  # no text, no evidence: exactly 0.5, not the bias
        return z

    def _score_serial(self, texts: Sequence[str]) -> list[float]:
        """Score in this process, in bounded batches."""
        out: list[float] = []
        for i in range(0, len(texts), BATCH_DOCS):
            z = self.logits(texts[i : i + BATCH_DOCS])
            out.extend((1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))).tolist())
        return out

    def score(self, text: str) -> float:
        """P(positive) of one text."""
        return self._score_serial([text])[0]

    def score_many(
        self, texts: Sequence[str], workers: int | None = None, pool: mp.pool.Pool | None = None
    ) -> list[float]:
        """P(positive) of each text, order preserved; forks workers only when the batch is big enough to pay.

        workers=None decides by size, 1 forces this process; pool (from worker_pool()) reuses warm workers.
        """
        texts = list(texts)
        if workers is None:
            workers = min(_usable_cpus(), 4) if sum(map(len, texts)) >= PARALLEL_MIN_CHARS else 1
        if workers <= 1 or len(texts) < 2:
            return self._score_serial(texts)
        if pool is not None:
            return self._score_in_pool(pool, texts, workers)
        with self.worker_pool(workers) as own:
            if own is None:
                return self._score_serial(texts)
            return self._score_in_pool(own, texts, workers)

    def _score_in_pool(self, pool: mp.pool.Pool, texts: list[str], workers: int) -> list[float]:
        """Split texts into contiguous chunks (a few per worker, for balance) and score them in pool."""
        size = -(-len(texts) // (workers * 4))
        chunks = [(id(self), texts[i : i + size]) for i in range(0, len(texts), size)]
        parts = pool.map(_score_chunk, chunks, chunksize=1)
        return [s for part in parts for s in part]

    @contextmanager
    def worker_pool(self, workers: int | None = None) -> Iterator[mp.pool.Pool | None]:
        """Forked workers that inherit this loaded model (None where fork is unavailable); reuse it across calls."""
        workers = workers or min(_usable_cpus(), 4)
        if workers <= 1 or "fork" not in mp.get_all_start_methods():
            yield None
            return
        _FORK_MODELS[id(self)] = self
        try:
            with mp.get_context("fork").Pool(workers) as pool:
                yield pool
        finally:
            _FORK_MODELS.pop(id(self), None)


def label(score: float) -> Literal["pos", "neg"]:
    """Label for a P(positive) score, threshold 0.5."""
    return "pos" if score >= THRESHOLD else "neg"


def stock_snownlp_scores(texts: Sequence[str]) -> list[float]:
    """Stock SnowNLP sentiment (the baseline we replace), for benches and comparisons."""
    from snownlp import SnowNLP

    return [float(SnowNLP(t).sentiments) if t.strip() else 0.5 for t in texts]

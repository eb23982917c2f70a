"""Simhash fingerprints of reposts, their storage as int64, and the block index that finds them."""

from __future__ import annotations

import random

import pytest

from tests.test_analysis_pipeline import (
    CLINIC_BODY,
    CLINIC_TITLE,
    DEATH_BODY,
    DEATH_TITLE,
    REBUTTAL_BODY,
    REBUTTAL_TITLE,
    RUMOUR_BODY,
    RUMOUR_TITLE,
    VIOLENCE_BODY,
    VIOLENCE_TITLE,
    repost_copies,
)
from yuqing.analysis.simhash import (
    MAX_DISTANCE,
    SimhashIndex,
    content_of,
    hamming,
    simhash,
    simhash_many,
    strip_boilerplate,
    to_signed,
    to_unsigned,
)


def test_fingerprints_are_stable_across_runs_and_machines():
    # pinned: a change here silently splits every stored story from its future reposts
    assert simhash(DEATH_TITLE, DEATH_BODY) == 0x2FFD6D0D91C64EDB
    assert simhash_many([DEATH_TITLE, CLINIC_TITLE], [DEATH_BODY, CLINIC_BODY])[0] == simhash(DEATH_TITLE, DEATH_BODY)


def test_copies_with_other_headers_footers_and_titles_are_near():
    original = simhash(DEATH_TITLE, DEATH_BODY)
    copies = repost_copies(DEATH_TITLE, DEATH_BODY, 30)
    distances = [hamming(original, h) for h in simhash_many([t for t, _, _ in copies], [b for _, b, _ in copies])]
    assert max(distances) <= MAX_DISTANCE, distances


def test_boilerplate_is_stripped_but_the_story_is_kept():
    text = "本文转载自江城日报，" + DEATH_BODY + "（来源：江城热线）责任编辑：刘芳 原文链接：http://a.example/1.html"
    stripped = strip_boilerplate(text)
    for gone in ("转载自", "来源", "责任编辑", "http"):
        assert gone not in stripped
    assert "延误抢救导致产妇死亡" in stripped


def test_different_stories_are_far_apart():
    stories = [(DEATH_TITLE, DEATH_BODY), (CLINIC_TITLE, CLINIC_BODY), (VIOLENCE_TITLE, VIOLENCE_BODY),
               (RUMOUR_TITLE, RUMOUR_BODY), (REBUTTAL_TITLE, REBUTTAL_BODY)]
    prints = simhash_many([t for t, _ in stories], [b for _, b in stories])
    for i in range(len(prints)):
        for j in range(i + 1, len(prints)):
            assert hamming(prints[i], prints[j]) > 3 * MAX_DISTANCE, (i, j)


def test_short_texts_get_no_fingerprint():
    # one-line reviews share too few shingles for a stable fingerprint: "排队太久" is not a repost of "排队好久"
    assert simhash("", "江城一院排队太久了") is None
    assert simhash_many(["", ""], ["", "服务很好"]) == [None, None]


def test_long_body_is_fingerprinted_without_its_title():
    assert content_of("完全不同的标题", DEATH_BODY) == content_of(DEATH_TITLE, DEATH_BODY)
    assert content_of("标题", "短正文") == "标题短正文"


@pytest.mark.parametrize("value", [0, 1, 2**63 - 1, 2**63, 2**64 - 1, 0x2FFD6D0D91C64EDB])
def test_signed_storage_round_trips(value):
    signed = to_signed(value)
    assert -(2**63) <= signed < 2**63
    assert to_unsigned(signed) == value
    assert hamming(signed, value) == 0
    assert to_signed(None) is None and to_unsigned(None) is None


def _flip(value: int, bits: int, rng: random.Random) -> int:
    for b in rng.sample(range(64), bits):
        value ^= 1 << b
    return value


def test_index_finds_exactly_what_brute_force_finds():
    rng = random.Random(7)
    index: SimhashIndex[int] = SimhashIndex()
    stored = [rng.getrandbits(64) for _ in range(5000)]
    for i, value in enumerate(stored):
        index.add(value, i)
    queries = [_flip(rng.choice(stored), rng.randint(0, 5), rng) for _ in range(500)]
    queries += [rng.getrandbits(64) for _ in range(100)]
    for q in queries:
        expected = sorted(i for i, v in enumerate(stored) if hamming(q, v) <= MAX_DISTANCE)
        assert sorted(n.item for n in index.near(q)) == expected


def test_index_nearest_prefers_the_closest_and_signed_lookups_work():
    index: SimhashIndex[str] = SimhashIndex()
    base = 0xF0F0_F0F0_0F0F_0F0F
    index.add(to_signed(base ^ 0b111), "three bits")
    index.add(base ^ 0b1, "one bit")
    found = index.nearest(to_signed(base))
    assert found is not None and (found.item, found.distance) == ("one bit", 1)
    assert index.nearest(base ^ 0xFFFF) is None


def test_index_keeps_the_first_item_for_a_repeated_fingerprint_and_forgets_on_remove():
    index: SimhashIndex[int] = SimhashIndex()
    assert index.add(42, 1) and not index.add(42, 2)
    assert index.nearest(42).item == 1 and len(index) == 1
    index.remove(42)
    index.remove(42)  # forgetting twice is harmless
    assert index.nearest(42) is None and len(index) == 0 and 42 not in index


def test_index_compares_only_block_sharing_candidates():
    rng = random.Random(3)
    index: SimhashIndex[int] = SimhashIndex()
    for i in range(20000):
        index.add(rng.getrandbits(64), i)
    buckets = [len(b) for table in index._tables for b in table.values()]
    # 20,000 random fingerprints over 65,536 values per 16-bit block: a lookup touches ~1 per table, not 20,000
    assert max(buckets) <= 8 and sum(buckets) == 4 * 20000

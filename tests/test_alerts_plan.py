"""Plan evaluation: the highest level an event meets, and a reason the crisis team can read at 3 a.m."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from yuqing.alerts.plan import assess, level_label
from yuqing.config import LevelRule, Plan
from yuqing.models import Event

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def event(**measures) -> Event:
    base = dict(headline="x", first_seen=NOW, last_seen=NOW, updated_at=NOW, mention_count=1, negative_count=0,
                crisis_count=1, source_count=1, repost_count=0, velocity=1.0, baseline=1.0, top_tier=4,
                risk_categories=[], keywords=[])
    return Event(**{**base, **measures})


def test_reason_names_the_threshold_and_the_risk(config):
    decision = assess(event(negative_count=7, risk_categories=["violence"]), config.plan)
    assert decision is not None
    assert decision.level == "III"
    assert decision.reason == "负面提及 7 条（≥5）；风险类别：暴力事件（伤医、医闹或医护打人）"


def test_highest_level_wins(config):
    decision = assess(event(negative_count=7, top_tier=1), config.plan)
    assert decision.level == "I"
    assert decision.reason == "已见于中央媒体（预案：中央媒体及以上）"


@pytest.mark.parametrize("measures, level", [
    ({"negative_count": 1}, "IV"),
    ({"negative_count": 4}, "IV"),
    ({"negative_count": 5}, "III"),
    ({"velocity": 6.0, "baseline": 2.0, "negative_count": 1}, "III"),
    ({"risk_categories": ["violence"]}, "III"),
    ({"risk_categories": ["bribery"]}, "III"),
    ({"risk_categories": ["death_injury"], "negative_count": 1}, "IV"),  # rises by spread and reach
    ({"top_tier": 2}, "II"),
    ({"negative_count": 15}, "II"),
    ({"negative_count": 50}, "I"),
])
def test_any_threshold_suffices(config, measures, level):
    decision = assess(event(**measures), config.plan)
    assert decision is not None and decision.level == level


def test_no_crisis_mention_means_no_level_when_required(config):
    assert assess(event(negative_count=60, top_tier=1, crisis_count=0), config.plan) is None


def test_nothing_met_is_none(config):
    assert assess(event(negative_count=0, risk_categories=["service_attitude"]), config.plan) is None


def test_velocity_reason_and_rule_without_crisis():
    plan = Plan(levels=[LevelRule(level="IV", min_velocity_ratio=3, min_mentions=10, require_crisis=False,
                                  notify=["x"], ack_minutes=60)])
    decision = assess(event(crisis_count=0, velocity=9.0, baseline=2.0, mention_count=12), plan)
    assert decision.reason == "提及共 12 条（≥10）；传播速度为平时的 4.5 倍（≥3 倍）"


def test_reason_has_no_english(config):
    decision = assess(event(negative_count=20, top_tier=2, velocity=10, baseline=1,
                            risk_categories=["death_injury", "malpractice_dispute"]), config.plan)
    assert decision.level == "II"
    assert not any("a" <= ch.lower() <= "z" for ch in decision.reason), decision.reason


def test_level_label(config):
    assert level_label("III", config.plan.rule("III")) == "Ⅲ级（较大）"
    assert level_label("I") == "Ⅰ级（特别重大）"


def test_every_lexicon_category_has_a_name_in_words():
    import yaml

    from yuqing.config import DATA_DIR
    from yuqing.risk_categories import RISK_CATEGORIES

    lexicon = DATA_DIR / "risk_lexicon.yaml"
    if not lexicon.exists():
        pytest.skip("no risk lexicon shipped yet")
    categories = yaml.safe_load(lexicon.read_text(encoding="utf-8"))["categories"]
    assert set(categories) <= set(RISK_CATEGORIES), set(categories) - set(RISK_CATEGORIES)

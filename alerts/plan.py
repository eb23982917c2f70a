"""The contingency plan applied to one event: which level, and why, in words the crisis team reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from yuqing.config import HOT_LIST_NAMES, LEVEL_NAMES, LevelRule, Plan, level_rank
from yuqing.models import Event
from yuqing.risk_categories import risk_name

ROMAN = {"IV": "Ⅳ", "III": "Ⅲ", "II": "Ⅱ", "I": "Ⅰ"}


TIER_NAMES = {1: "中央媒体", 2: "省级媒体", 3: "地方媒体", 4: "论坛或点评网站"}


@dataclass(frozen=True)
class LevelDecision:
    """The level an event reaches, the rule that put it there and the plain reasons."""

    level: str
    rule: LevelRule
    reasons: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """All reasons on one line, as shown in alerts."""
        return "；".join(self.reasons)


def level_label(level: str, rule: LevelRule | None = None) -> str:
    """'Ⅲ级（较大）': how the plan names a level."""
    name = (rule.name if rule and rule.name else "") or LEVEL_NAMES.get(level, "")
    return f"{ROMAN.get(level, level)}级（{name}）" if name else f"{ROMAN.get(level, level)}级"


def tier_name(tier: int) -> str:
    """A source tier in words."""
    return TIER_NAMES.get(tier, f"第{tier}级来源")


def _number(value: float) -> str:
    """3.0 → '3', 4.25 → '4.2': no trailing zeros in messages."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def hot_list_name(platforms: list[str] | None) -> str:
    """'微博热搜、抖音热榜': the hot lists an event is on, in the hospital's words."""
    return "、".join(HOT_LIST_NAMES.get(p, p) for p in platforms or []) or "热榜"


def hot_list_reasons(event: Event, rule: LevelRule) -> list[str]:
    """The plan's hot-list thresholds this event reaches: on a national hot list, or within its top N."""
    rank = event.hot_rank
    if rank is None:
        return []
    where = hot_list_name(event.hot_platforms)
    if rule.hot_list_top is not None and rank <= rule.hot_list_top:
        return [f"登上全国热榜：{where}第 {rank} 名（预案：前 {rule.hot_list_top} 名）"]
    if rule.on_hot_list:
        return [f"登上全国热榜：{where}第 {rank} 名（预案：上榜即启动）"]
    return []


def rule_reasons(event: Event, rule: LevelRule) -> list[str]:
    """The thresholds of one rule this event reaches, each as a plain sentence; empty if none."""
    if rule.require_crisis and (event.crisis_count or 0) <= 0:
        return []
    reasons: list[str] = []
    negative, mentions = event.negative_count or 0, event.mention_count or 0
    if rule.min_negative_mentions is not None and negative >= rule.min_negative_mentions:
        reasons.append(f"负面提及 {negative} 条（≥{rule.min_negative_mentions}）")
    if rule.min_mentions is not None and mentions >= rule.min_mentions:
        reasons.append(f"提及共 {mentions} 条（≥{rule.min_mentions}）")
    ratio = event.velocity_ratio
    if rule.min_velocity_ratio is not None and ratio >= rule.min_velocity_ratio:
        reasons.append(f"传播速度为平时的 {_number(ratio)} 倍（≥{_number(rule.min_velocity_ratio)} 倍）")
    if rule.min_source_tier is not None and event.top_tier <= rule.min_source_tier:
        reasons.append(f"已见于{tier_name(event.top_tier)}（预案：{tier_name(rule.min_source_tier)}及以上）")
    reasons.extend(hot_list_reasons(event, rule))
    overlap = [c for c in event.risk_categories or [] if c in set(rule.risk_categories)]
    if overlap:
        reasons.append("风险类别：" + "、".join(risk_name(c) for c in overlap))
    return reasons


def assess(event: Event, plan: Plan) -> LevelDecision | None:
    """The highest level whose rule the event meets, with why; None when no rule is met."""
    for rule in sorted(plan.levels, key=lambda r: level_rank(r.level), reverse=True):
        reasons = rule_reasons(event, rule)
        if reasons:
            return LevelDecision(level=rule.level, rule=rule, reasons=reasons)
    return None

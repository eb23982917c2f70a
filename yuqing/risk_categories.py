"""The crisis categories, in one table that analysis (lexicon, model) and alerts (plan, messages,
digest) both read: ids as config and the labelled data write them, names as the hospital reads them."""

from __future__ import annotations

RISK_CATEGORIES: dict[str, str] = {
    "death_injury": "死亡或伤残",
    "malpractice_dispute": "医疗事故与纠纷",
    "violence": "暴力事件（伤医、医闹或医护打人）",
    "bribery": "红包、回扣或受贿",
    "fees_fraud": "乱收费或骗保",
    "infection": "院内感染",
    "privacy": "隐私泄露或偷拍",
    "service_attitude": "服务态度、推诿或拒诊",
    "drug_safety": "假药、过期药或用药错误",
    "misconduct": "违规执业或医德失范",
    "safety_accident": "安全事故（火灾、坠落、设施、失窃）",
    "investigation": "调查、曝光、通报或问责",
}


def risk_name(category: str) -> str:
    """A category id in words; an unknown id as it is."""
    return RISK_CATEGORIES.get(category, category)

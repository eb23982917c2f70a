"""Corrections from the people who use yuqing, and the hospital's own retrained crisis model.

A correction ("this is a crisis", "not a crisis", "not about us", "this category") is stored with who
and when, and applied at once to the mention and its event; the alerts stage then closes an incident
that was only a false alarm (alerts.incidents.review_events). `retrain` folds every correction into
the shipped model (analysis.model_fit.update: a Laplace pull towards the shipped weights, so the
shared training data keep their say without being on the hospital's machine) and writes the result
beside the database; analysis loads it instead of the shipped model while it is current.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yuqing.analysis.events import Reach, recount_events
from yuqing.analysis.headline_model import NOT, HeadlineModel
from yuqing.analysis.judge import (
    REVIEW_KINDS,
    SHIPPED_MODEL,
    fold_names,
    head_and_body,
    main_category,
    names_pattern,
    review_complaint,
)
from yuqing.analysis.model_fit import Example, update
from yuqing.config import AppConfig
from yuqing.models import Correction, Mention, Verdict
from yuqing.store import audit, database_label

log = logging.getLogger(__name__)

CORRECTION_WEIGHT = 3.0  # one correction counts as this many titles of the shared data (chosen by tests/test_corrections.py)


class CorrectionError(ValueError):
    """A correction that cannot be applied; the message says why."""


@dataclass(frozen=True)
class CorrectionResult:
    """What a correction changed: the mention before and after, and the events to review."""

    correction_id: int
    mention_id: int
    verdict: Verdict
    before: dict[str, object]
    after: dict[str, object]
    event_ids: list[int]

    def __str__(self) -> str:
        def show(d: dict[str, object]) -> str:
            listed = d.get("categories")
            cats = "、".join(map(str, listed if isinstance(listed, list) else [])) or "—"
            return (f"{'危机' if d.get('crisis') else '非危机'}，{'负面' if d.get('negative') else '非负面'}，"
                    f"类别 {cats}{'' if d.get('about_us', True) else '，不是本院'}")
        return f"提及 {self.mention_id} 已更正（更正 {self.correction_id}）：{show(self.before)} → {show(self.after)}"


def _snapshot(m: Mention) -> dict[str, object]:
    return {"crisis": bool(m.crisis), "negative": bool(m.negative), "categories": list(m.risk_categories or []),
            "risk_score": m.risk_score, "about_us": m.about_us, "event_id": m.event_id}


def apply_correction(sess: Session, cfg: AppConfig, now: datetime, mention_id: int, verdict: Verdict, by: str,
                     *, category: str | None = None, categories: tuple[str, ...] = (),
                     note: str = "") -> CorrectionResult:
    """Record a person's verdict on a mention and apply it to the mention and its event at once."""
    by = " ".join((by or "").split())[:200]
    if not by:
        raise CorrectionError("请用 --by 写明是谁在更正（姓名）")
    mention = sess.get(Mention, mention_id)
    if mention is None:
        raise CorrectionError(f"没有编号为 {mention_id} 的提及，请用 yuqing mentions list 查看编号")
    if category is not None and categories and category not in categories:
        raise CorrectionError(f"unknown risk category {category!r} (known: {', '.join(categories)})")
    if verdict is Verdict.CATEGORY and category is None:
        raise CorrectionError("--category needs a category name")
    before = _snapshot(mention)
    head, _ = head_and_body(mention.title or "", mention.text or "", mention.kind or "news")
    old_event = mention.event_id
    if verdict in (Verdict.CRISIS, Verdict.CATEGORY):
        main = category or next(iter(mention.risk_categories or []), None)
        rest = [c for c in (mention.risk_categories or []) if c != main] if verdict is Verdict.CRISIS else []
        mention.crisis, mention.negative, mention.about_us = True, True, True
        mention.risk_categories = [main, *rest] if main else []
        category = main
    elif verdict is Verdict.NOT_CRISIS:
        complaint = mention.kind in REVIEW_KINDS and review_complaint(mention.sentiment)
        mention.crisis, mention.negative, mention.risk_categories = False, complaint, []
    else:  # not about us: out of its event, the counts, the digest and the plan
        mention.crisis, mention.negative, mention.risk_categories = False, False, []
        mention.about_us, mention.event_id = False, None
    mention.corrected_by = by
    row = Correction(mention_id=mention.id, at=now, by=by, verdict=verdict.value, category=category,
                     text=head, before=before, note=note)
    sess.add(row)
    sess.flush()
    audit(sess, now, "mention.corrected", f"mention:{mention.id}", actor=by, verdict=verdict.value,
          category=category, note=note)
    events = [e for e in {old_event, mention.event_id} if e is not None]
    recount_events(sess, events, now, Reach.from_sources(cfg.sources.sources))
    log.info("mention %s corrected by %s: %s", mention.id, by, verdict.value)
    return CorrectionResult(row.id, mention.id, verdict, before, _snapshot(mention), sorted(events))


# --- the hospital's retrained model ------------------------------------------------------------------


def hospital_model_path(cfg: AppConfig) -> Path:
    """Where the retrained model lives: beside the database's data, one file per database."""
    return cfg.settings.data_dir / f"risk_model.hospital-{database_label(cfg.database_url)}.npz"


def corrections_signature(sess: Session) -> str:
    """Which corrections a retrained model folded in: their count and the newest id."""
    count, newest = sess.execute(select(func.count(Correction.id), func.max(Correction.id))).one()
    return f"{count}:{newest or 0}"


def training_examples(sess: Session, model: HeadlineModel, own_names: Sequence[str] = ()) -> list[Example]:
    """One example per corrected mention, from its latest correction ("not about us" teaches nothing
    about crises and is left out), with the hospital's names folded as the judge reads them; a crisis
    with no category gets the model's own reading of it."""
    names = names_pattern(own_names)
    latest: dict[int, Correction] = {}
    for row in sess.scalars(select(Correction).order_by(Correction.id)):
        latest[row.mention_id] = row
    out = []
    for row in latest.values():
        verdict = Verdict(row.verdict)
        if verdict is Verdict.NOT_ABOUT_US or not row.text.strip():
            continue
        text = fold_names(row.text, names)
        if verdict is Verdict.NOT_CRISIS:
            label = NOT
        else:
            label = (row.category if row.category in model.categories
                     else main_category(model.predict_proba([text])[0], model.classes, {}))
        out.append(Example(text, label, CORRECTION_WEIGHT))
    return out


@dataclass(frozen=True)
class RetrainResult:
    """What `yuqing retrain` did."""

    path: Path
    examples: int
    signature: str
    changed: list[tuple[str, float, float]]  # (corrected text, P(crisis) before, after)

    def __str__(self) -> str:
        if not self.examples:
            return f"no corrections to fold in; analysis uses the shipped model (removed {self.path.name} if it was there)"
        agree = sum((after >= 0.5) == (before >= 0.5) for _, before, after in self.changed)
        return (f"folded {self.examples} correction(s) into {self.path}; "
                f"{len(self.changed) - agree} of them now judged differently by the model")


def retrain(sess: Session, cfg: AppConfig, shipped_path: Path = SHIPPED_MODEL) -> RetrainResult:
    """Fold every correction into the shipped model and write the hospital's model (or remove it when
    there are none, so the shipped model is used)."""
    shipped = HeadlineModel.load(shipped_path)
    path = hospital_model_path(cfg)
    examples = training_examples(sess, shipped, cfg.hospital.names)
    signature = corrections_signature(sess)
    if not examples:
        path.unlink(missing_ok=True)
        return RetrainResult(path, 0, signature, [])
    before = shipped.crisis_probability([e.text for e in examples])
    model = update(shipped, examples).with_meta(base=shipped.fingerprint(), corrections=signature,
                                                corrections_used=len(examples))
    after = model.crisis_probability([e.text for e in examples])
    model.save(path)
    log.info("retrained crisis model on %d correction(s): %s", len(examples), path)
    return RetrainResult(path, len(examples), signature,
                         [(e.text, float(b), float(a)) for e, b, a in zip(examples, before, after)])


def _fingerprint(path: Path) -> str | None:
    """A model file's fingerprint, read once per version of the file (analysis asks at every run)."""
    return _fingerprint_at(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _fingerprint_at(path: Path, mtime_ns: int) -> str | None:
    return HeadlineModel.read_meta(path).get("fingerprint")


def current_model_path(sess: Session, cfg: AppConfig, shipped_path: Path = SHIPPED_MODEL) -> Path:
    """The model analysis should use now: the hospital's when it folds in every correction on top of
    this shipped model; retrained here first when it is missing or stale (after an upgrade, or a
    correction since); the shipped one when nobody has corrected anything."""
    path = hospital_model_path(cfg)
    signature = corrections_signature(sess)
    if signature.startswith("0:"):
        return shipped_path
    if path.exists():
        try:
            meta = HeadlineModel.read_meta(path)
            if meta.get("corrections") == signature and meta.get("base") == _fingerprint(shipped_path):
                return path
        except ValueError as err:
            log.warning("%s; retraining it", err)
    retrain(sess, cfg, shipped_path)
    return path

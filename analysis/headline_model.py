"""The learned part of the crisis judgement: a multinomial logistic regression over character
n-grams of a headline, with one class for "not a crisis" and one per crisis category.

It reads a title the way the labelled data were read (a Weibo or Baidu hot-search title, a news
headline, a post's opening), and gives P(crisis) = 1 - P(not) and, for a crisis, which category.
Features are TF-IDF weighted character 1-3-grams of `risk.model_text` (sublinear tf, l2-normalised
rows), as chosen by cross-validation (see scripts/train_risk.py). Inference is numpy only.

Retraining on a hospital's machine cannot see the shared training data, so the model file also
carries a Laplace approximation of what that data said: for every weight, the diagonal of the
Hessian of the training loss (its precision). Folding in corrections (`analysis.model_fit.update`)
then minimises the corrections' loss plus a quadratic pull towards the shipped weights with those
precisions, which approximates retraining on the shared data and the corrections together.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from yuqing.analysis.risk import model_text

NOT = "not"  # the class of everything that is not a crisis
ORDERS = (1, 2, 3)


def grams(text: str, orders: Sequence[int] = ORDERS) -> Counter[str]:
    """Character n-gram counts of the model's view of a text (grams of spaces alone are skipped)."""
    folded = model_text(text)
    out: Counter[str] = Counter()
    for n in orders:
        for i in range(len(folded) - n + 1):
            gram = folded[i:i + n]
            if gram.strip():
                out[gram] += 1
    return out


@dataclass(frozen=True)
class Rows:
    """A batch of texts as a sparse matrix in CSR parts: row pointers, column indices, values."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    n_features: int

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def to_scipy(self) -> Any:
        """The same matrix as scipy.sparse.csr_matrix (training only; inference stays numpy)."""
        from scipy.sparse import csr_matrix

        return csr_matrix((self.values, self.indices, self.indptr), shape=(self.n_rows, self.n_features))


@dataclass(frozen=True)
class HeadlineModel:
    """Weights (features x classes), bias, vocabulary with IDF, and the Laplace precisions."""

    classes: tuple[str, ...]
    vocabulary: Mapping[str, int]
    idf: np.ndarray  # float32, one per feature
    weights: np.ndarray  # float32, features x classes
    bias: np.ndarray  # float64, one per class
    precision: np.ndarray | None = None  # float32, features x classes: Hessian diagonal of the training loss
    bias_precision: np.ndarray | None = None
    n_docs: int = 0  # documents the IDF was computed on
    c: float = 30.0  # inverse L2 strength the model was fitted with
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def not_index(self) -> int:
        return self.classes.index(NOT)

    @property
    def categories(self) -> tuple[str, ...]:
        """The crisis categories, in the model's class order."""
        return tuple(c for c in self.classes if c != NOT)

    def unseen_idf(self) -> float:
        """The IDF of a feature no training document had (what a correction's new n-gram gets)."""
        return math.log((1 + self.n_docs) / 1) + 1.0

    def rows(self, texts: Sequence[str]) -> Rows:
        """TF-IDF rows of known n-grams, l2-normalised."""
        indptr = [0]
        indices: list[int] = []
        values: list[float] = []
        vocab, idf = self.vocabulary, self.idf
        for text in texts:
            row: list[tuple[int, float]] = []
            for gram, count in grams(text).items():
                j = vocab.get(gram)
                if j is not None:
                    row.append((j, (1.0 + math.log(count)) * float(idf[j])))
            norm = math.sqrt(sum(v * v for _, v in row)) or 1.0
            row.sort()
            indices.extend(j for j, _ in row)
            values.extend(v / norm for _, v in row)
            indptr.append(len(indices))
        return Rows(np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64),
                    np.asarray(values, dtype=np.float64), len(idf))

    def logits(self, rows: Rows) -> np.ndarray:
        """Class scores before the softmax, one row per text."""
        n = rows.n_rows
        out = np.tile(self.bias, (n, 1))
        if len(rows.indices):
            contrib = self.weights[rows.indices].astype(np.float64) * rows.values[:, None]
            starts = rows.indptr[:-1]
            nonempty = rows.indptr[1:] > starts
            sums = np.add.reduceat(contrib, starts[nonempty], axis=0)
            out[nonempty] += sums
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, one row per text, columns in `classes` order."""
        if not texts:
            return np.zeros((0, len(self.classes)))
        return softmax(self.logits(self.rows(texts)))

    def crisis_probability(self, texts: Sequence[str]) -> np.ndarray:
        """P(crisis) for each text: everything but the "not" class."""
        return 1.0 - self.predict_proba(texts)[:, self.not_index]

    def evidence(self, text: str, limit: int = 4) -> list[str]:
        """The n-grams of a text that push hardest towards a crisis: what a person reads as 'why'."""
        rows = self.rows([text])
        if not len(rows.indices):
            return []
        cats = [i for i, c in enumerate(self.classes) if c != NOT]
        w = self.weights[rows.indices].astype(np.float64)
        push = (w[:, cats].max(axis=1) - w[:, self.not_index]) * rows.values
        inverse = self.grams_by_index
        ranked = sorted(zip(push.tolist(), rows.indices.tolist()), reverse=True)
        out: list[str] = []
        for score, j in ranked:
            gram = inverse[j].strip("^$ ")
            if score <= 0 or len(out) >= limit:
                break
            if len(gram) >= 2 and not any(gram in kept or kept in gram for kept in out):
                out.append(gram)
        return out

    @cached_property
    def grams_by_index(self) -> list[str]:
        """The vocabulary as a list: feature index to n-gram."""
        out = [""] * len(self.idf)
        for g, j in self.vocabulary.items():
            out[j] = g
        return out

    def fingerprint(self) -> str:
        """A short hash of the weights: which model judged a mention, and what a retrain started from."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.weights.astype(np.float16)).tobytes())  # as saved
        h.update(np.ascontiguousarray(self.bias.astype(np.float64)).tobytes())
        return h.hexdigest()[:16]

    def save(self, path: Path) -> None:
        """Write the model as a compressed npz (float16 weights and precisions: about 1 MB)."""
        parts: dict[str, Any] = {
            "format": np.array("yuqing-headline-model/1"),
            "classes": np.array(self.classes), "grams": np.array(self.grams_by_index),
            "idf": self.idf.astype(np.float32), "weights": self.weights.astype(np.float16),
            "bias": self.bias.astype(np.float64), "n_docs": np.int64(self.n_docs), "c": np.float64(self.c),
            "meta": np.array(json.dumps({**self.meta, "fingerprint": self.fingerprint()}, ensure_ascii=False,
                                        sort_keys=True)),
        }
        if self.precision is not None and self.bias_precision is not None:
            parts["precision"] = np.minimum(self.precision, 65000.0).astype(np.float16)
            parts["bias_precision"] = self.bias_precision.astype(np.float64)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")  # two writers never share a temp file
        np.savez_compressed(tmp, **parts)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> HeadlineModel:
        """Read a model file, or a ValueError that names it and says what is wrong."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                if str(npz["format"]) != "yuqing-headline-model/1":
                    raise ValueError(f"unknown format {str(npz['format'])!r}")
                grams_list = [str(g) for g in npz["grams"]]
                model = cls(
                    classes=tuple(str(c) for c in npz["classes"]),
                    vocabulary={g: j for j, g in enumerate(grams_list)},
                    idf=npz["idf"].astype(np.float32), weights=npz["weights"].astype(np.float32),
                    bias=npz["bias"].astype(np.float64),
                    precision=npz["precision"].astype(np.float32) if "precision" in npz else None,
                    bias_precision=npz["bias_precision"].astype(np.float64) if "bias_precision" in npz else None,
                    n_docs=int(npz["n_docs"]), c=float(npz["c"]), meta=json.loads(str(npz["meta"])),
                )
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read crisis model {path}: {err}") from None
        if model.weights.shape != (len(grams_list), len(model.classes)) or NOT not in model.classes:
            raise ValueError(f"cannot read crisis model {path}: weights {model.weights.shape} do not match "
                             f"{len(grams_list)} n-grams x {len(model.classes)} classes")
        return model

    @staticmethod
    def read_meta(path: Path) -> dict[str, Any]:
        """Only the metadata of a model file (cheap: the weights are not read)."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                return dict(json.loads(str(npz["meta"])))
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read crisis model {path}: {err}") from None

    def with_meta(self, **meta: Any) -> HeadlineModel:
        """The same model with more metadata."""
        return replace(self, meta={**self.meta, **meta})


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large scores."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)

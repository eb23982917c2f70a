"""Fitting the headline model: from labelled titles (scripts/train_risk.py), and from the shipped
model plus a hospital's corrections (`yuqing retrain`), with scipy's L-BFGS.

The objective is sklearn's multinomial logistic regression: C * sum of weighted log losses plus
half the squared weights. An update replaces "half the squared weights" by half the squared
distance to the shipped weights, each scaled by its Laplace precision, so the shared data keep
their say without being on the machine.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from yuqing.analysis.headline_model import NOT, HeadlineModel, Rows, grams, softmax

log = logging.getLogger(__name__)

MAX_ITER = 500


@dataclass(frozen=True)
class Example:
    """One labelled text: its class ("not" or a crisis category) and how much it counts."""

    text: str
    label: str
    weight: float = 1.0


def vocabulary(texts: Sequence[str], min_df: int = 2) -> tuple[dict[str, int], np.ndarray]:
    """The n-grams seen in at least min_df texts, and their smoothed IDF (as sklearn computes it)."""
    df: Counter[str] = Counter()
    for text in texts:
        df.update(grams(text).keys())
    kept = sorted(g for g, n in df.items() if n >= min_df)
    n = len(texts)
    idf = np.array([math.log((1 + n) / (1 + df[g])) + 1.0 for g in kept], dtype=np.float32)
    return {g: j for j, g in enumerate(kept)}, idf


def _targets(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """One-hot rows of the labels."""
    index = {c: k for k, c in enumerate(classes)}
    unknown = sorted({lab for lab in labels if lab not in index})
    if unknown:
        raise ValueError(f"unknown class(es) {', '.join(unknown)} (known: {', '.join(classes)})")
    y = np.zeros((len(labels), len(classes)))
    y[np.arange(len(labels)), [index[lab] for lab in labels]] = 1.0
    return y


def _minimise(x: Rows, y: np.ndarray, sample_weight: np.ndarray, c: float, w0: np.ndarray, b0: np.ndarray,
              prec: np.ndarray, bias_prec: np.ndarray, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """L-BFGS on C * weighted log loss + 1/2 sum prec * (W - W0)^2 (+ the same for the bias).

    Solved in the scaled offsets u = sqrt(prec) * (W - W0): the Laplace precisions span five orders of
    magnitude, and unscaled L-BFGS crawls through such a valley; scaled, the prior is a unit ball."""
    from scipy.optimize import minimize

    mat = x.to_scipy()
    mat_t = mat.T.tocsr()
    n_feat, k = w0.shape
    scale_w = np.sqrt(np.maximum(prec, 1e-12))
    scale_b = np.where(bias_prec > 0, np.sqrt(np.maximum(bias_prec, 1e-12)), 1.0)
    penal_b = (bias_prec > 0).astype(float)

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        uw = theta[:n_feat * k].reshape(n_feat, k)
        ub = theta[n_feat * k:]
        return uw, ub, w0 + uw / scale_w, b0 + ub / scale_b

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        uw, ub, w, b = unpack(theta)
        z = mat @ w + b
        z -= z.max(axis=1, keepdims=True)
        logsum = np.log(np.exp(z).sum(axis=1))
        p = np.exp(z - logsum[:, None])
        loss = -float(np.sum(sample_weight * ((z * y).sum(axis=1) - logsum)))
        value = c * loss + 0.5 * float(np.sum(uw * uw)) + 0.5 * float(np.sum(penal_b * ub * ub))
        resid = (p - y) * sample_weight[:, None]
        gw = c * (mat_t @ resid) / scale_w + uw
        gb = c * resid.sum(axis=0) / scale_b + penal_b * ub
        return value, np.concatenate([gw.ravel(), gb])

    res = minimize(objective, np.zeros(n_feat * k + k), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": 1e-5})
    if not res.success:
        log.debug("L-BFGS stopped: %s", res.message)
    _, _, w, b = unpack(res.x)
    return w, b


def laplace(x: Rows, weights: np.ndarray, bias: np.ndarray, sample_weight: np.ndarray, c: float,
            prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal of the objective's Hessian at the fitted weights: how firmly the data hold each weight."""
    mat = x.to_scipy()
    p = softmax(mat @ weights + bias)
    curv = p * (1.0 - p) * sample_weight[:, None]
    prec = prior + c * (mat.multiply(mat)).T @ curv
    return np.asarray(prec), c * curv.sum(axis=0)


def fit(examples: Sequence[Example], classes: Sequence[str], *, c: float = 30.0, min_df: int = 2,
        max_iter: int = MAX_ITER, meta: dict[str, object] | None = None) -> HeadlineModel:
    """A model fitted from scratch on labelled examples, with its Laplace precisions."""
    if NOT not in classes:
        raise ValueError(f"classes must include {NOT!r}")
    texts = [e.text for e in examples]
    vocab, idf = vocabulary(texts, min_df)
    k = len(classes)
    empty = HeadlineModel(tuple(classes), vocab, idf, np.zeros((len(idf), k), np.float32), np.zeros(k),
                          n_docs=len(texts), c=c)
    x = empty.rows(texts)
    y = _targets([e.label for e in examples], classes)
    sw = np.array([e.weight for e in examples], dtype=np.float64)
    ones = np.ones((len(idf), k))
    w, b = _minimise(x, y, sw, c, np.zeros((len(idf), k)), np.zeros(k), ones, np.zeros(k), max_iter)
    prec, bprec = laplace(x, w, b, sw, c, ones)
    return replace(empty, weights=w.astype(np.float32), bias=b, precision=prec.astype(np.float32),
                   bias_precision=bprec, meta=dict(meta or {}))


def _extended(model: HeadlineModel, texts: Sequence[str]) -> HeadlineModel:
    """The model with the corrections' unseen n-grams added as new features (zero weight, prior only)."""
    new = sorted({g for t in texts for g in grams(t)} - set(model.vocabulary))
    if not new:
        return model
    vocab = dict(model.vocabulary)
    for g in new:
        vocab[g] = len(vocab)
    k = len(model.classes)
    assert model.precision is not None  # update() refuses a model without precisions
    pad = np.zeros((len(new), k), np.float32)
    return replace(model, vocabulary=vocab,
                   idf=np.concatenate([model.idf, np.full(len(new), model.unseen_idf(), np.float32)]),
                   weights=np.vstack([model.weights, pad]), precision=np.vstack([model.precision, pad + 1.0]))


def update(model: HeadlineModel, examples: Sequence[Example], *, max_iter: int = MAX_ITER) -> HeadlineModel:
    """The shipped model with corrections folded in: their loss plus a Laplace pull towards the shipped weights."""
    if not examples:
        return model
    if model.precision is None or model.bias_precision is None:
        raise ValueError("this model file has no precisions; it cannot be updated (rebuild it with scripts/train_risk.py)")
    texts = [e.text for e in examples]
    grown = _extended(model, texts)
    assert grown.precision is not None and grown.bias_precision is not None
    x = grown.rows(texts)
    y = _targets([e.label for e in examples], grown.classes)
    sw = np.array([e.weight for e in examples], dtype=np.float64)
    w, b = _minimise(x, y, sw, grown.c, grown.weights.astype(np.float64), grown.bias,
                     grown.precision.astype(np.float64), grown.bias_precision, max_iter)
    return replace(grown, weights=w.astype(np.float32), bias=b)

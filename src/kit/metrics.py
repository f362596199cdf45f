"""Competition metrics: lwlrap (FAT2019) and MAP@k (Quick, Draw!).

lwlrap follows the organisers' reference (Dan Ellis' colab): for every positive (clip, label)
pair, precision = positives ranked at or above it / its rank; a label's score is the mean over its
positives, and the overall score weights each label by its share of all positives.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _positive_precisions(truth: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """N x C array: precision at each positive (clip, label), 0 elsewhere."""
    truth = np.asarray(truth) > 0
    scores = np.asarray(scores, dtype=np.float64)
    if truth.shape != scores.shape or truth.ndim != 2:
        raise ValueError(f"truth {truth.shape} and scores {scores.shape} must be equal N x C arrays")
    n, c = truth.shape
    order = np.argsort(-scores, axis=1, kind="stable")             # labels, best first
    ranked_truth = np.take_along_axis(truth, order, axis=1)
    hits_at_rank = np.cumsum(ranked_truth, axis=1)                  # positives at or above
    ranks = np.arange(1, c + 1)[None, :]
    prec_ranked = np.where(ranked_truth, hits_at_rank / ranks, 0.0)
    prec = np.zeros((n, c))
    np.put_along_axis(prec, order, prec_ranked, axis=1)
    return prec


def per_class_lwlrap(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-label lwlrap and each label's weight (its share of all positives).

    A label without positives scores 0 with weight 0, so it does not move the total.
    """
    truth = np.asarray(truth) > 0
    prec = _positive_precisions(truth, scores)
    positives = truth.sum(axis=0)
    per_class = prec.sum(axis=0) / np.maximum(positives, 1)
    weights = positives / max(positives.sum(), 1)
    return per_class, weights


def lwlrap(truth: np.ndarray, scores: np.ndarray) -> float:
    per_class, weights = per_class_lwlrap(truth, scores)
    return float((per_class * weights).sum())


def apk(actual: str, predicted: Sequence[str], k: int = 3) -> float:
    """Average precision at k for one item with a single true label: 1/rank if in the top k."""
    seen: set = set()
    rank = 0
    for p in predicted:
        if p in seen:            # a repeated guess takes a slot but cannot score again
            rank += 1
            continue
        seen.add(p)
        rank += 1
        if rank > k:
            break
        if p == actual:
            return 1.0 / rank
    return 0.0


def map_at_k(actual: Sequence[str], predicted: Sequence[Sequence[str]], k: int = 3) -> float:
    """Mean average precision at k, as Quick, Draw! scores it (one true word per drawing)."""
    if len(actual) != len(predicted):
        raise ValueError(f"{len(actual)} answers but {len(predicted)} predictions")
    if len(actual) == 0:
        return 0.0
    return float(np.mean([apk(a, p, k) for a, p in zip(actual, predicted)]))


def map_at_k_scores(truth: np.ndarray, scores: np.ndarray, k: int = 3) -> float:
    """MAP@k from a one-hot truth matrix and a score matrix (one true label per row): the same
    number as map_at_k on the top-k labels, without building lists."""
    truth, scores = np.asarray(truth), np.asarray(scores, dtype=np.float64)
    if truth.shape != scores.shape or truth.ndim != 2:
        raise ValueError(f"truth {truth.shape} and scores {scores.shape} must be equal N x C arrays")
    if len(truth) == 0:
        return 0.0
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hit = np.take_along_axis(truth > 0, top, axis=1)
    return float((hit / np.arange(1, top.shape[1] + 1)).sum(axis=1).mean())

"""Combining score matrices: folds of a model, then models. Weighted means; OOF-based weights
plug in here (`weights`)."""
from __future__ import annotations

import numpy as np


def weighted_mean(scores: list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    if not scores:
        raise ValueError("nothing to average")
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(scores),) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"bad weights {weights} for {len(scores)} score matrices")
    stacked = np.stack([np.asarray(s, dtype=np.float64) for s in scores])
    return np.tensordot(w / w.sum(), stacked, axes=1)

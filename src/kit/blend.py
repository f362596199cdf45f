"""Blend weights from out-of-fold scores: non-negative, summing to one, chosen to maximise the
competition metric, and used only when they beat equal weights on samples they were not
chosen on.

With a few hundred validation clips, weights tuned on all of them flatter themselves. The guard:
split the samples into parts; for each part choose the weights on the other parts and blend that
part with them; score the blended out-of-part predictions against the equal-weight blend. Only if
the nested score wins are the weights (chosen on all samples) kept; otherwise the blend stays
equal. The search is a coarse grid on the simplex (step 0.1; 0.2 beyond six runs).

work/<dataset>/blend.json records the weights, the runs, the scores and how they were chosen;
predict uses it when it names exactly the runs being blended.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import atomic
from .errors import warn
from .runs import weighted_mean

BLEND_FILE = "blend.json"

Metric = Callable[[np.ndarray, np.ndarray], float]


def simplex_grid(k: int, step: float) -> np.ndarray:
    """Every weight vector of k non-negative multiples of `step` summing to 1."""
    n = int(round(1 / step))
    rows = [c for c in itertools.product(range(n + 1), repeat=k - 1) if sum(c) <= n]
    return np.array([list(c) + [n - sum(c)] for c in rows], dtype=np.float64) / n


def best_weights(mats: list[np.ndarray], y: np.ndarray, metric: Metric, grid: np.ndarray) -> tuple[np.ndarray, float]:
    best, best_w = -np.inf, grid[0]
    for w in grid:
        s = metric(y, weighted_mean(mats, list(w)))
        if s > best + 1e-12:
            best, best_w = s, w
    return best_w, best


@dataclass
class BlendFit:
    names: list[str]
    weights: np.ndarray          # what predict uses (the tuned weights, or equal ones)
    tuned: np.ndarray            # the weights chosen on all samples
    scores: dict                 # out-of-fold: each run, equal blend, tuned (in-sample), nested, used

    @property
    def as_dict(self) -> dict[str, float]:
        return {n: round(float(w), 4) for n, w in zip(self.names, self.weights)}


def fit(mats: dict[str, np.ndarray], y: np.ndarray, metric: Metric, parts: int = 5, seed: int = 0) -> BlendFit:
    names = list(mats)
    arrays = [mats[n] for n in names]
    k = len(names)
    equal = np.full(k, 1.0 / k)
    scores = {n: metric(y, m) for n, m in mats.items()}
    scores["equal"] = metric(y, weighted_mean(arrays))
    if k == 1:
        return BlendFit(names, equal, equal, {**scores, "used": scores["equal"]})
    grid = simplex_grid(k, 0.1 if k <= 6 else 0.2)
    tuned, scores["tuned_in_sample"] = best_weights(arrays, y, metric, grid)
    part = np.random.default_rng(seed).permutation(len(y)) % parts
    nested = np.zeros_like(arrays[0], dtype=np.float64)
    for p in range(parts):
        inside, out = part != p, part == p
        w, _ = best_weights([a[inside] for a in arrays], y[inside], metric, grid)
        nested[out] = weighted_mean([a[out] for a in arrays], list(w))
    scores["nested"] = metric(y, nested)
    use = tuned if scores["nested"] > scores["equal"] else equal
    scores["used"] = metric(y, weighted_mean(arrays, list(use)))
    return BlendFit(names, use, tuned, scores)


def path(root: str) -> str:
    return os.path.join(root, BLEND_FILE)


def save(root: str, fit_: BlendFit, fold_mean: str, n: int, metric_name: str) -> dict:
    doc = {"weights": fit_.as_dict, "tuned_weights": {n_: round(float(w), 4) for n_, w in zip(fit_.names, fit_.tuned)},
           "fold_mean": fold_mean, "metric": metric_name, "samples": n,
           "scores": {k: round(float(v), 5) for k, v in fit_.scores.items()},
           "method": "simplex grid (step 0.1), kept only if a nested 5-part choice beats equal weights"}
    atomic.write_json(path(root), doc)
    return doc


def load(root: str, names: list[str]) -> tuple[dict[str, float] | None, str]:
    """(weights, fold mean) from blend.json when it names exactly `names`; else (None, 'mean')."""
    p = path(root)
    if not os.path.exists(p):
        return None, "mean"
    doc = atomic.read_json(p)
    if sorted(doc.get("weights", {})) != sorted(names):
        warn(f"{p} blends {', '.join(sorted(doc.get('weights', {})))} but the runs now are {', '.join(sorted(names))}: "
             f"equal weights (re-run the blend to update it)")
        return None, "mean"
    return doc["weights"], doc.get("fold_mean", "mean")

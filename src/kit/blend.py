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

import argparse
import itertools
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import atomic, plots
from .errors import KitError, cli, warn
from .runs import oof_scores, weighted_mean

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
    """(weights, fold mean) from blend.json when it names exactly `names`; else (None, 'mean').
    One run has nothing to blend: blend.json is not read (and not warned about)."""
    p = path(root)
    if len(names) <= 1 or not os.path.exists(p):
        return None, "mean"
    doc = atomic.read_json(p)
    if sorted(doc.get("weights", {})) != sorted(names):
        warn(f"{p} blends {', '.join(sorted(doc.get('weights', {})))} but the runs now are {', '.join(sorted(names))}: "
             f"equal weights (re-run the blend to update it)")
        return None, "mean"
    return doc["weights"], doc.get("fold_mean", "mean")


def main(comp, argv: list[str] | None = None) -> int:
    """`python -m <comp's blend module>`: blend weights for the competition's runs (see run)."""
    return cli(lambda: run(comp, parser(comp).parse_args(argv)))()


def parser(comp) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=f"python -m {comp.modules['blend']}", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"Choose blend weights for the trained {comp.title} runs on their out-of-fold "
                    f"{comp.metric_name} -> work/<dataset>/{BLEND_FILE}.\n\n" + __doc__.split("\n\n", 1)[1] +
                    f"\n`python -m {comp.modules['predict']}` uses {BLEND_FILE} when it names exactly the runs it "
                    f"blends. blend_per_label.png beside it: the blend's out-of-fold score per label, worst first.")
    ap.add_argument("--data-dir", default=None, help="competition data folder (default: as cv finds it)")
    ap.add_argument("--models", default=None, help="comma-separated run names (default: every finished run)")
    ap.add_argument("--fold-mean", choices=["mean", "geo"], default="mean",
                    help="how predict averages a run's folds (recorded in blend.json)")
    ap.add_argument("--strict", action="store_true", help="refuse, instead of leaving out, unfinished or foreign folds")
    ap.add_argument("--work-dir", default="work", help="where cv wrote its runs (default: work)")
    return ap


def run(comp, args: argparse.Namespace) -> int:
    data = comp.open_data(args.data_dir)
    found = comp.find_runs(args.work_dir, data, args.models.split(",") if args.models else None, args.strict)
    known = {w for folds in found.values() for f in folds for w in f.labels}
    labels = [w for w in data.labels if w in known]
    _, ids, mats, y = oof_scores(found, labels, lambda i: comp.truth(data, i, labels), comp.metric)
    if not ids:
        raise KitError(f"runs {', '.join(found)} validated different folds: no sample has out-of-fold scores from "
                       f"all of them to choose weights on (train the same folds, e.g. --fold all)")
    fit_ = fit(mats, y, comp.metric)
    root = os.path.join(args.work_dir, data.name)
    doc = save(root, fit_, args.fold_mean, len(ids), comp.metric_name)
    scores = comp.per_label(y, weighted_mean(list(mats.values()), list(fit_.weights)), labels)
    plots.plot_bars(scores, os.path.join(root, "blend_per_label.png"), f"out-of-fold {comp.metric_name}",
                    f"blend of {', '.join(fit_.names)}: per label")
    print(f"blend: out-of-fold {comp.metric_name} over {len(ids)} {comp.samples}: " +
          ", ".join(f"{k} {v:.4f}" for k, v in doc["scores"].items()))
    how = "tuned" if list(fit_.weights) == list(fit_.tuned) else \
        "equal: tuned weights did not beat them on held-out samples"
    print(f"blend: weights {doc['weights']} ({how}) -> {path(root)}")
    return 0

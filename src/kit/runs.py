"""Trained runs: where they live, which folds to trust, and how they are combined.

work/<dataset>/<run>/fold<K>/ (see fold_runner). A fold counts for prediction, blending and
kernels only when it is finished (metrics.json), has its weights, was trained on the labels the
data has now (aligned by name, never by position) and on the folds file the data has now
(its content hash). Everything else is named once and left out, or refused with `strict`.
"""
from __future__ import annotations

import glob
import os
import re
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .atomic import read_json
from .errors import KitError, list_some, warn

WEIGHTS = "best.weights.h5"


def fold_dir(work_dir: str, dataset: str, run: str, fold: int) -> str:
    return os.path.join(work_dir, dataset, run, f"fold{fold}")


@dataclass
class Fold:
    run: str
    fold: int
    path: str
    config: dict          # config.json: the config fields plus labels, folds_sha1, versions
    metrics: dict
    weights_path: str = ""   # where the weights are when not <path>/best.weights.h5 (a kernel's dataset)

    @property
    def weights(self) -> str:
        return self.weights_path or os.path.join(self.path, WEIGHTS)

    @property
    def key(self) -> str:
        """Names this fold wherever it lives: a kernel's dataset keeps every run's folds in one folder,
        so `path` alone is not unique there (its weights file is)."""
        return self.weights

    @property
    def labels(self) -> list[str]:
        return list(self.config["labels"])


def _why_not(path: str, labels: list[str], folds_sha1: str | None, subset_ok: bool) -> tuple[str | None, dict, dict]:
    """(reason to leave the fold out or None, its config, its metrics)."""
    if path.endswith(".partial"):
        return "unfinished (being trained, or killed: --resume continues it)", {}, {}
    if not os.path.isfile(os.path.join(path, "metrics.json")):
        return "unfinished (no metrics.json)", {}, {}
    if not os.path.isfile(os.path.join(path, WEIGHTS)):
        return f"no {WEIGHTS} (written by an older version of the kit: retrain it)", {}, {}
    try:
        config, metrics = read_json(os.path.join(path, "config.json")), read_json(os.path.join(path, "metrics.json"))
    except (OSError, ValueError) as e:
        return f"unreadable config.json/metrics.json ({e})", {}, {}
    trained = config.get("labels")
    if not trained:
        return "its config.json records no label list (older version of the kit: retrain it)", config, metrics
    missing, extra = [l for l in labels if l not in trained], [l for l in trained if l not in labels]
    if extra or (missing and not subset_ok):
        return (f"trained on other labels ({len(extra)} not in the data: {list_some(extra, 5)}; "
                f"{len(missing)} of the data's not trained: {list_some(missing, 5)})"), config, metrics
    if folds_sha1 is not None and config.get("folds_sha1") != folds_sha1:
        return "trained on another folds file than the data's now (its out-of-fold scores would leak)", config, metrics
    return None, config, metrics


def find_runs(root: str, labels: list[str], folds_sha1: str | None, names: list[str] | None = None,
              strict: bool = False, subset_ok: bool = False, train_hint: str = "") -> dict[str, list[Fold]]:
    """{run: [trusted folds]} under work/<dataset>/ (= `root`); the rest named once, left out.

    `subset_ok`: a run may know a subset of `labels` (Quick Draw models of fewer categories).
    A run with any fold on another folds file is left out whole: its folds do not partition
    the same clips.
    """
    pattern = re.compile(r"^fold(\d+)(\.partial)?$")
    found: dict[str, list[Fold]] = {}
    left_out: list[str] = []
    runs = sorted(r for r in os.listdir(root) if os.path.isdir(os.path.join(root, r))) if os.path.isdir(root) else []
    for run in runs:
        if names is not None and run not in names:
            continue
        folds, reasons = [], {}
        for d in sorted(glob.glob(os.path.join(root, run, "fold*"))):
            m = pattern.match(os.path.basename(d))
            if not m or not os.path.isdir(d):
                continue
            if m.group(2) and os.path.isdir(d[:-len(".partial")]):
                continue                  # a finished fold being retrained: the finished one counts
            why, config, metrics = _why_not(d, labels, folds_sha1, subset_ok)
            if why:
                reasons[os.path.basename(d)] = why
            else:
                folds.append(Fold(run, int(m.group(1)), d, config, metrics))
        if any("another folds file" in r for r in reasons.values()):
            left_out.append(f"{run} (trained on another folds file than the data's now)")
            continue
        left_out += [f"{run}/{f} ({why})" for f, why in reasons.items()]
        if folds:
            found[run] = sorted(folds, key=lambda f: f.fold)
    if left_out:
        msg = f"{root}: left out {list_some(left_out, 10)}"
        if strict:
            raise KitError(msg + " (--strict)")
        warn(msg)
    if names is not None:
        absent = [n for n in names if n not in found]
        if absent:
            raise KitError(f"no finished, matching folds for {', '.join(absent)} under {root}")
    if not found:
        raise KitError(f"no finished runs under {root}" + (f"; train one with {train_hint}" if train_hint else ""))
    return found


def check_consistent(folds: list[Fold], keys: tuple[str, ...]) -> None:
    """Refuse a run whose folds differ in `keys` (labels, feature settings): they cannot ship as one model."""
    for k in keys:
        values = {repr(f.config.get(k)) for f in folds}
        if len(values) > 1:
            raise KitError(f"run {folds[0].run}: its folds were trained with different {k} "
                           f"({', '.join(sorted(values))[:200]}); retrain the odd ones")


def weighted_mean(scores: list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    if not scores:
        raise ValueError("nothing to average")
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(scores),) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"bad weights {weights} for {len(scores)} score matrices")
    stacked = np.stack([np.asarray(s, dtype=np.float64) for s in scores])
    return np.tensordot(w / w.sum(), stacked, axes=1)


def fold_mean(scores: list[np.ndarray], how: str = "mean") -> np.ndarray:
    """Folds of one run: arithmetic mean, or geometric ('geo': rewards agreement between folds)."""
    if how == "geo":
        return np.exp(weighted_mean([np.log(np.clip(s, 1e-7, 1.0)) for s in scores]))
    if how != "mean":
        raise ValueError(f"unknown fold mean {how!r}")
    return weighted_mean(scores)


def aligned(df: pd.DataFrame, labels: list[str]) -> np.ndarray:
    """Score columns in the order of `labels`, by name; labels a model never saw score 0."""
    return df.reindex(columns=labels, fill_value=0.0).to_numpy(dtype=np.float64)


def ensemble(runs: dict[str, list[Fold]], predict: Callable[[Fold], pd.DataFrame], labels: list[str],
             weights: dict[str, float] | None = None, how: str = "mean") -> np.ndarray:
    """Scores of the blend: each fold's scores (`predict(fold)`: one column per label the fold
    knows, rows in the caller's sample order) aligned to `labels` by name, folds of a run
    averaged (`how`), runs combined with `weights` (default equal)."""
    per_run = [fold_mean([aligned(predict(f), labels) for f in folds], how) for folds in runs.values()]
    return weighted_mean(per_run, [weights[n] for n in runs] if weights else None)


def read_oof(folds: list[Fold]) -> pd.DataFrame:
    """The run's out-of-fold scores: one row per validation sample, indexed by its id."""
    parts = []
    for f in folds:
        df = pd.read_csv(os.path.join(f.path, "oof.csv"), dtype={0: str}, keep_default_na=False)
        parts.append(df.set_index(df.columns[0]))
    oof = pd.concat(parts)
    oof.index = oof.index.astype(str)
    return oof


def oof_scores(runs: dict[str, list[Fold]], labels: list[str], truth: Callable[[list[str]], np.ndarray],
               metric: Callable[[np.ndarray, np.ndarray], float], weights: dict[str, float] | None = None
               ) -> tuple[dict[str, float], list[str], dict[str, np.ndarray], np.ndarray]:
    """Out-of-fold score of each run and of their blend, over the samples every run validated.

    `truth(ids)` gives the truth matrix of the ids (rows of ids no longer in the data are NaN,
    and dropped). Returns ({run or 'blend': score}, the ids used, {run: aligned oof matrix}, truth).
    """
    oofs = {name: read_oof(folds) for name, folds in runs.items()}

    def known(ids: list[str]) -> tuple[list[str], np.ndarray]:
        y = truth(ids)
        keep = ~np.isnan(y).any(axis=1)
        return [i for i, k in zip(ids, keep) if k], y[keep]

    ids, y = known(sorted(set.intersection(*(set(o.index) for o in oofs.values()))))
    if not ids:          # the runs validated different folds: each scored alone, no blend score
        scores = {}
        for n, o in oofs.items():
            own, y_own = known(sorted(o.index))
            scores[n] = metric(y_own, aligned(o.loc[own], labels)) if own else float("nan")
        return scores, [], {}, y
    mats = {n: aligned(o.loc[ids], labels) for n, o in oofs.items()}
    scores = {n: metric(y, m) for n, m in mats.items()}
    if len(mats) > 1:
        w = [weights.get(n, 0.0) for n in mats] if weights else None
        scores["blend"] = metric(y, weighted_mean(list(mats.values()), w))
    return scores, ids, mats, y


def report_line(scores: dict[str, float], n: int, metric_name: str, what: str) -> str:
    parts = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
    if n == 0:
        return (f"out-of-fold {metric_name} of each run over its own folds: {parts} (the runs validated "
                f"different folds, so the blend has no out-of-fold score)")
    return f"out-of-fold {metric_name} over {n} {what}: {parts}"


def load_weights_checked(model, path: str) -> None:
    """model.load_weights, refusing the partial loads Keras only warns about ("Skipping ...:
    affected layers will retain their freshly-initialized weights"): a model that predicts
    from random layers must never reach a submission."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(path)
    skipped = [str(w.message) for w in caught if "freshly-initialized" in str(w.message) or "Skipping" in str(w.message)]
    if skipped:
        raise KitError(f"{path}: {len(skipped)} part(s) of the model found no weights in the file "
                       f"({skipped[0][:160]}); it was saved from another architecture or Keras layout")

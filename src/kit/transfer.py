"""Start a fold's network from another run's trained weights (`--init-from`).

Small data learns more from a network that has already seen related data (Quick Draw: the
categories outside the task; FAT2019: another tagging dataset) than from random weights. Layers
are paired in graph order, so the source need not share layer names (Keras numbers them per
process); every pair whose weights have the same shapes is copied, and the rest (a classifier
over other labels) starts fresh, as the fold's first line says.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from . import runs
from .atomic import read_json
from .errors import KitError


def source_fold(path: str) -> runs.Fold:
    """The trained fold `path` names: a fold folder (config.json, metrics.json, best weights), or
    a run folder (then its lowest-numbered finished fold)."""
    if not os.path.isdir(path):
        raise KitError(f"--init-from {path}: no such folder (give a trained fold's folder, "
                       f"e.g. work/<dataset>/<run>/fold0, or its run folder)")
    candidates = [path]
    if not os.path.isfile(os.path.join(path, "metrics.json")):
        candidates = sorted((os.path.join(path, d) for d in os.listdir(path) if d.startswith("fold") and d[4:].isdigit()),
                            key=lambda d: int(os.path.basename(d)[4:]))
    for c in candidates:
        if all(os.path.isfile(os.path.join(c, f)) for f in ("metrics.json", "config.json", runs.WEIGHTS)):
            try:
                metrics, config = read_json(os.path.join(c, "metrics.json")), read_json(os.path.join(c, "config.json"))
                return runs.Fold(metrics["run"], int(metrics["fold"]), c, config, metrics)   # a finished fold's run and fold
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise KitError(f"--init-from {path}: {c}'s metrics.json/config.json unreadable or without its run "
                               f"and fold ({e.__class__.__name__}: {e}): retrain that fold") from None
    raise KitError(f"--init-from {path}: no finished fold there (a fold folder holds metrics.json, config.json "
                   f"and {runs.WEIGHTS}: train it first)")


def check_no_leak(src: runs.Fold, dataset: str, fold: int, folds_sha1: str) -> None:
    """Refuse a source that trained on this fold's validation samples: the same dataset split
    another way, or another fold of the same split (its out-of-fold scores would be optimistic).
    The same data is known by its dataset name or by its folds file (a copy of the data at another
    path has another name but the same folds)."""
    if src.config.get("dataset") != dataset and src.config.get("folds_sha1") != folds_sha1:
        return              # other data: the user vouches that it holds none of these samples (see --help)
    if src.config.get("folds_sha1") != folds_sha1 or src.fold != fold:
        raise KitError(f"--init-from {src.path}: trained on dataset {dataset!r} with "
                       f"{'other folds' if src.config.get('folds_sha1') != folds_sha1 else f'fold {src.fold} held out'}, "
                       f"so it has seen fold {fold}'s validation samples and the out-of-fold score would be "
                       f"optimistic; start from fold {fold} of a run on these folds, or from a run on other data")


def _weighted(model) -> list:
    return [layer for layer in model.layers if layer.weights]


def copy_matching(target, source) -> tuple[int, list[str]]:
    """Copy `source`'s weights into `target` layer by layer in graph order wherever the shapes
    agree; returns (layers copied, descriptions of the layers left fresh). Both must be the same
    architecture up to layer sizes: the same kinds of layers with weights, in the same order."""
    if not hasattr(source, "layers"):
        raise KitError(f"the source is not a network ({type(source).__name__}, e.g. a --model stats run): "
                       f"start from a fold of a network run")
    t_layers, s_layers = _weighted(target), _weighted(source)
    kinds = ([type(la).__name__ for la in t_layers], [type(la).__name__ for la in s_layers])
    if kinds[0] != kinds[1]:
        raise KitError(f"the source network is another architecture ({len(s_layers)} layers with weights: "
                       f"{', '.join(kinds[1][:6])}...; this one has {len(t_layers)}: {', '.join(kinds[0][:6])}...)")
    copied, fresh = 0, []
    for t, s in zip(t_layers, s_layers):
        sw = s.get_weights()
        if [w.shape for w in t.get_weights()] == [np.shape(w) for w in sw]:
            t.set_weights(sw)
            copied += 1
        else:
            fresh.append(f"{type(t).__name__} {tuple(t.weights[0].shape)} (source {tuple(np.shape(sw[0]))})")
    return copied, fresh


def checked_source(path: str, dataset: str, fold: int, folds_sha1: str) -> runs.Fold:
    """The source fold, refused if missing or leaking (called before a fold writes anything)."""
    src = source_fold(path)
    check_no_leak(src, dataset, fold, folds_sha1)
    return src


def init_from(model, src: runs.Fold, load_model: Callable[[runs.Fold], Any]) -> str:
    """Copy the weights of the trained fold `src` (from checked_source) into `model` (see
    copy_matching); returns the line the fold prints. Refuses a source that fits nothing."""
    try:
        copied, fresh = copy_matching(model, load_model(src))
    except KitError as e:
        raise KitError(f"--init-from {src.path}: {e}") from None
    if copied == 0:
        raise KitError(f"--init-from {src.path}: no layer has the same shapes here ({fresh[0]}...)")
    return (f"initialised from {src.path} ({src.config.get('dataset')}, {len(src.labels)} labels): "
            f"{copied} of {copied + len(fresh)} layers copied"
            + (f"; fresh: {', '.join(fresh)}" if fresh else ""))

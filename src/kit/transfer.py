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


def copy_matching(target, source) -> tuple[list, list[str]]:
    """Copy `source`'s weights into `target` layer by layer in graph order wherever the shapes
    agree; returns (the target's layers copied, descriptions of the layers left fresh). Both must be the same
    architecture up to layer sizes: the same kinds of layers with weights, in the same order."""
    if not hasattr(source, "layers"):
        raise KitError(f"the source is not a network ({type(source).__name__}, e.g. a --model stats run): "
                       f"start from a fold of a network run")
    t_layers, s_layers = _weighted(target), _weighted(source)
    kinds = ([type(la).__name__ for la in t_layers], [type(la).__name__ for la in s_layers])
    if kinds[0] != kinds[1]:
        raise KitError(f"the source network is another architecture ({len(s_layers)} layers with weights: "
                       f"{', '.join(kinds[1][:6])}...; this one has {len(t_layers)}: {', '.join(kinds[0][:6])}...)")
    copied, fresh = [], []
    for t, s in zip(t_layers, s_layers):
        sw = s.get_weights()
        if [w.shape for w in t.get_weights()] == [np.shape(w) for w in sw]:
            t.set_weights(sw)
            copied.append(t)
        else:
            fresh.append(f"{type(t).__name__} {tuple(t.weights[0].shape)} (source {tuple(np.shape(sw[0]))})")
    return copied, fresh


def checked_source(path: str, dataset: str, fold: int, folds_sha1: str) -> runs.Fold:
    """The source fold, refused if missing or leaking (called before a fold writes anything)."""
    src = source_fold(path)
    check_no_leak(src, dataset, fold, folds_sha1)
    return src


def check_copied_lr_scale(copied_lr_scale: float, init_from_path: str) -> None:
    """Refuse --copied-lr-scale without --init-from (nothing would be copied to slow)."""
    if copied_lr_scale != 1.0 and not init_from_path:
        raise KitError(f"--copied-lr-scale {copied_lr_scale} slows the layers --init-from copies: give "
                       f"--init-from too")


def init_from(model, src: runs.Fold, load_model: Callable[[runs.Fold], Any],
              copied_lr_scale: float = 1.0) -> tuple[str, list[str]]:
    """Copy the weights of the trained fold `src` (from checked_source) into `model` (see
    copy_matching); returns the line the fold prints (with the copied layers' rate when
    `copied_lr_scale` is not 1) and the paths of the trainable variables copied (for
    --copied-lr-scale, kit.layer_rates). Refuses a source that fits nothing."""
    try:
        copied, fresh = copy_matching(model, load_model(src))
    except KitError as e:
        raise KitError(f"--init-from {src.path}: {e}") from None
    if not copied:
        raise KitError(f"--init-from {src.path}: no layer has the same shapes here ({fresh[0]}...)")
    line = (f"initialised from {src.path} ({src.config.get('dataset')}, {len(src.labels)} labels): "
            f"{len(copied)} of {len(copied) + len(fresh)} layers copied"
            + (f"; fresh: {', '.join(fresh)}" if fresh else "")
            + (f"; the copied layers learn at {copied_lr_scale} x --lr" if copied_lr_scale != 1.0 else ""))
    return line, [w.path for layer in copied for w in layer.trainable_weights]


def fit_probe(features: np.ndarray, targets: np.ndarray, n_out: int, multilabel: bool = False,
              c: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(kernel (d, n_out), bias (n_out,)) of a logistic regression on `features`, in logit space,
    for a Dense head: softmax over classes (`targets` integer classes) or one sigmoid per label
    (`targets` a 0/1 matrix). Fitted on standardised features (C = `c`), the scaling folded into
    the weights. A class absent from `targets` gets zero weights and a bias far below the rest; a
    label that is always 0 (or 1) a constant logit."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, np.float64)
    mu, sd = x.mean(0), x.std(0)
    sd[sd < 1e-8] = 1.0
    z = (x - mu) / sd
    w, b = np.zeros((x.shape[1], n_out)), np.zeros(n_out)
    if multilabel:
        t = np.asarray(targets) > 0.5
        for j in range(n_out):
            if t[:, j].all() or not t[:, j].any():
                b[j] = 6.0 if t[:, j].all() else -6.0
                continue
            clf = LogisticRegression(C=c, max_iter=1000).fit(z, t[:, j])
            w[:, j], b[j] = clf.coef_[0], clf.intercept_[0]
    else:
        y = np.asarray(targets).astype(int)
        present = np.unique(y)
        if len(present) < 2:
            raise KitError(f"a probe head needs at least two classes in the training data (found {len(present)})")
        clf = LogisticRegression(C=c, max_iter=1000).fit(z, y)
        coef, icpt = clf.coef_, clf.intercept_
        if len(present) == 2:          # sklearn's one row for two classes: logits (0, z) -> (-z/2, z/2)
            coef, icpt = np.vstack([-coef / 2, coef / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
        b[:] = icpt.min() - 10.0      # an absent class: far below every present one
        w[:, clf.classes_], b[clf.classes_] = coef.T, icpt
    kernel = w / sd[:, None]
    bias = b - mu @ kernel
    return kernel.astype(np.float32), bias.astype(np.float32)


def probe_head(model, inputs, targets: np.ndarray, multilabel: bool = False, batch_size: int = 256) -> str:
    """Linear probing before fine-tuning (LP-FT): set the model's last layer (a Dense head over
    this task's labels, left fresh by init_from) to a logistic regression fitted on the features
    the copied layers give the training inputs. A random head's first large gradients rewrite
    the pretrained layers; a fitted one starts fine-tuning near a good solution. Returns the line
    the fold prints."""
    import keras

    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense):
        raise KitError(f"--probe-head: the model's last layer is a {type(head).__name__}, not a Dense head")
    body = keras.Model(model.inputs, head.input)
    feats = np.asarray(body.predict(inputs, batch_size=batch_size, verbose=0), np.float32)
    targets = np.asarray(targets)
    kernel, bias = fit_probe(feats, targets, head.units, multilabel)
    head.set_weights([kernel, bias])
    logits = feats @ kernel + bias
    fit = ((logits > 0) == (targets > 0.5)).mean() if multilabel else (logits.argmax(1) == targets).mean()
    return (f"probe head: a logistic regression on {feats.shape[1]} features of {len(feats)} training samples "
            f"starts the classifier (training {'label' if multilabel else 'top-1'} accuracy {fit:.3f})")

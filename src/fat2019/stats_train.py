"""Train one fold of the stats model (`--model stats`) through the kit's fold runner, as the
networks are: the same lock, plan line, config.json, oof.csv, metrics.json, atomic finish and
trust rules, so predict, blend and the kernels take a stats run like any other. One fit is its
one epoch (no early stopping, no schedule); the same clips and weights as the CNN's fold (curated
weight 1, noisy clips --noisy-weight under --noisy weighted, none under --noisy none).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..kit import configio
from ..kit.errors import KitError
from ..kit.fold_runner import EpochScore, FoldRun
from ..kit.metrics import lwlrap
from . import clipstats, data as fat_data, mixval, transforms
from .config import FatConfig
from .infer import predict_clips
from .statsmodel import StatsModel


def check_flags(cfg: FatConfig) -> None:
    """Flags of the networks' training that a stats fit cannot honour, refused rather than ignored."""
    if cfg.noisy == "finetune":
        raise KitError("--model stats --noisy finetune: one fit has no last epochs to fine-tune on curated clips; "
                       "use --noisy weighted, all or none")
    if cfg.init_from:
        raise KitError(f"--model stats --init-from {cfg.init_from}: a stats fit has no network weights to start "
                       f"from; --init-from is for --model cnn and vgg19")
    if cfg.stats_c <= 0:
        raise KitError(f"--stats-c {cfg.stats_c}: the inverse regularisation must be positive")


def mixture_rows(specs, y: np.ndarray, w: np.ndarray, p: float, max_gain_db: float,
                 seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """--mix-clips for the stats model: extra training rows, the statistics of whole-clip mixtures.

    One fit sees every clip once, so a mixture is added beside its clips rather than replacing a
    crop as in the networks' batches: each clip, with probability `p`, is mixed with another
    training clip (any other, as the networks' batches pair them) at a gain uniform in
    +-`max_gain_db`; targets the union, weight the lower of the two. Returns (statistics, targets,
    weights) of the mixtures, in clip order; deterministic for a seed."""
    n = len(specs)
    chosen, partner, gains = transforms.mix_draws(n, p, max_gain_db, np.random.default_rng(seed))
    idx = np.flatnonzero(chosen) if n > 1 else np.zeros(0, int)
    d = clipstats.n_stats(np.asarray(specs[0]).shape[0]) if n else 0
    x = np.zeros((len(idx), d))
    for r, i in enumerate(idx):
        x[r] = clipstats.clip_stats(mixval.mix_whole(np.asarray(specs[i]), np.asarray(specs[partner[i]]), gains[i]))
    return x, np.maximum(y[idx], y[partner[idx]]), np.minimum(w[idx], w[partner[idx]])


def train_stats_fold(run: FoldRun, cfg: FatConfig, data: fat_data.FatData, fold: int, resume: bool,
                     restart: bool) -> dict:
    """Fit and score fold `fold` inside the open `run` (train.train_fold opened it and resolved
    the config); a fit committed but not finished (killed before the move) is finished on --resume."""
    import sklearn

    from .train import fold_inputs, per_label_lwlrap, report_skipped, run_meta

    check_flags(cfg)
    cfg = cfg.replace(epochs=1, min_steps=0, patience=1)       # what the fold does, recorded as such
    inputs = fold_inputs(cfg, data, fold)
    n_train = len(inputs.train)
    plan = run.plan({**configio.to_dict(cfg), **run_meta(data, inputs.folds_sha1)}, 1, resume,
                    f"fold {fold}: stats model (whole-clip statistics, logistic regression C={cfg.stats_c}) on "
                    f"{n_train} clips ({inputs.n_noisy} noisy, --noisy {cfg.noisy}), validate {len(inputs.val)} "
                    f"curated clips, skipped {len(inputs.skipped)} unusable"
                    + (f", plus mixtures of about {cfg.mix_clips:.0%} of them (--mix-clips)" if cfg.mix_clips else ""),
                    restart=restart)
    if plan is None:
        return run.finished_metrics()
    model = StatsModel(cfg.n_features, len(data.labels))
    if run.epoch == 0:
        t0 = time.time()
        keep = inputs.weights > 0                  # --noisy weighted with --noisy-weight 0: left out
        train = inputs.train.take(np.flatnonzero(keep))
        x, y, w = clipstats.stack(train), inputs.y_train[keep], inputs.weights[keep]
        if cfg.mix_clips > 0:
            xm, ym, wm = mixture_rows(train, y, w, cfg.mix_clips, cfg.mix_gain_db, cfg.seed * 1000 + fold)
            x, y, w = np.concatenate([x, xm]), np.concatenate([y, ym]), np.concatenate([w, wm])
        loss = model.fit(x, y, w, cfg.stats_c)
        scores = predict_clips(model, inputs.val, cfg)
        oof = pd.DataFrame(scores, columns=data.labels)
        oof.insert(0, "fname", inputs.val.fnames)
        run.end_epoch(model, EpochScore(lwlrap(inputs.y_val, scores), oof), time.time() - t0, loss)
        print(f"epoch 1/1: loss {loss:.4f} {run.metric} {run.state['best']:.4f} ({x.shape[1]} statistics of "
              f"{x.shape[0]} clips) {time.time() - t0:.1f}s", flush=True)
    metrics = run.finish(model, f"{data.name} {cfg.run_name} fold {fold}", per_label=per_label_lwlrap(data),
                         extra={"fold": fold, "dataset": data.name, "model": cfg.model, "run": cfg.run_name,
                                "n_train": n_train, "n_noisy": inputs.n_noisy, "n_val": len(inputs.val),
                                "skipped_clips": inputs.skipped, "scikit-learn": sklearn.__version__})
    report_skipped(fold, inputs.skipped)
    return metrics

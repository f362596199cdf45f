"""Train one FAT2019 fold: crops of curated (and noisy) clips, whole-clip lwlrap on the held-out
fold after every epoch. The fold's life (checkpoints, early stopping, resume, kill safety, the
folder layout) is the kit's fold runner; this module supplies the data, the model and the score.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import __version__
from . import data as fat_data, features, folds as fat_folds, models
from .config import COMPETITION, FatConfig
from .pipeline import training_dataset
from .features import FeatureSet
from ..kit import configio, runs, transfer
from ..kit.flops import training_gflop
from ..kit import distribute
from ..kit.distribute import quiet_tensorflow
from ..kit.errors import KitError, warn
from ..kit.fold_runner import EpochScore, FoldRun, fit_verbosity
from ..kit.metrics import lwlrap, per_class_lwlrap
from .infer import predict_clips

METRIC = "val_lwlrap"


def fold_dir(cfg: FatConfig, dataset: str, fold: int) -> str:
    return runs.fold_dir(cfg.work_dir, dataset, cfg.run_name, fold)


def load_features(cfg: FatConfig, data: fat_data.FatData, df: pd.DataFrame, subset: str,
                  budget_bytes: float | None = None) -> tuple[pd.DataFrame, FeatureSet, list[str]]:
    """Features of df's clips; unusable clips are dropped, each named in a warning."""
    feats, failed = features.extract(cfg, data.name, subset, data.audio_dir(subset), df["fname"].tolist(),
                                     budget_bytes=budget_bytes)
    for fname, why in failed.items():
        warn(f"{os.path.join(data.audio_dir(subset), fname)}: skipped, {why}")
    keep = df.set_index("fname").loc[feats.fnames].reset_index()
    return keep, feats, sorted(failed)


@dataclass
class FoldInputs:
    train: FeatureSet
    y_train: np.ndarray
    weights: np.ndarray          # per training clip: 1 for curated, noisy_weight for noisy (--noisy weighted)
    noisy: np.ndarray            # per training clip: 1 if from train_noisy
    val: FeatureSet
    y_val: np.ndarray
    n_noisy: int
    skipped: list[str]           # unusable clips, named in warnings
    folds_sha1: str


def fold_inputs(cfg: FatConfig, data: fat_data.FatData, fold: int) -> FoldInputs:
    """Every input check first (missing files, unknown labels), then the features of the fold's
    training clips (curated of other folds, plus noisy ones when asked) and validation clips."""
    if not 0 <= cfg.mix_clips <= 1:
        raise KitError(f"--mix-clips {cfg.mix_clips}: a probability, between 0 and 1")
    if cfg.mix_clips and cfg.feature != "logmel":
        raise KitError("--mix-clips adds the clips' mel powers: it needs --feature logmel (MFCCs do not add up)")
    transfer.check_copied_lr_scale(cfg.copied_lr_scale, cfg.init_from)
    curated, noisy = fat_data.training_frames(data, cfg)
    fold_of, sha1 = fat_folds.load_folds(data, cfg)
    if fold not in set(fold_of):
        raise KitError(f"--fold {fold}: the folds file has folds {sorted(set(fold_of))}")
    is_val = curated["fname"].map(fold_of).to_numpy() == fold
    # One --feature-ram-gb budget for the whole fold, not one per subset: curated + noisy at
    # competition size would otherwise hold twice the budget.
    budget = cfg.feature_ram_gb * 2**30
    train_df, train, skipped = load_features(cfg, data, curated[~is_val], "train_curated", budget)
    budget -= train.nbytes if train.in_memory else 0
    val_df, val, skipped_v = load_features(cfg, data, curated[is_val], "train_curated", budget)
    budget -= val.nbytes if val.in_memory else 0
    if not train.in_memory:
        budget = 0.0                # noisy clips join train's set: loading them into RAM would be wasted
    flags = np.zeros(len(train_df), np.float32)
    if len(noisy):
        noisy_df, noisy_feats, skipped_n = load_features(cfg, data, noisy, "train_noisy", budget)
        train_df = pd.concat([train_df, noisy_df], ignore_index=True)
        train = FeatureSet.concat([train, noisy_feats])
        flags = np.concatenate([flags, np.ones(len(noisy_df), np.float32)])
        skipped_v += skipped_n
    weights = np.where(flags > 0, cfg.noisy_weight if cfg.noisy == "weighted" else 1.0, 1.0).astype(np.float32)
    return FoldInputs(train, fat_data.label_matrix(train_df, data.labels), weights, flags, val,
                      fat_data.label_matrix(val_df, data.labels), int(flags.sum()), skipped + skipped_v, sha1)


def run_meta(data: fat_data.FatData, folds_sha1: str) -> dict:
    """What a fold was trained on, saved in its config.json: predict trusts a fold only when
    these still hold for the data it resolves."""
    return {"competition": COMPETITION, "dataset": data.name, "labels": data.labels,
            "label_prior": [round(float(p), 6) for p in data.prior], "folds_sha1": folds_sha1,
            "kit_version": __version__}


def _schedule(cfg: FatConfig, steps: int, epochs: int):
    import keras  # TensorFlow starts here, on first use: after any feature workers forked

    total = max(1, steps * epochs)
    warm = min(steps * cfg.warmup_epochs, total - 1)
    if cfg.lr_schedule == "constant":
        return cfg.lr
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.lr * 0.1 if warm else cfg.lr, decay_steps=total - warm, alpha=0.01,
        warmup_target=cfg.lr if warm else None, warmup_steps=warm)


def per_label_lwlrap(data: fat_data.FatData):
    def score(oof: pd.DataFrame) -> pd.Series:
        per_class, weights = per_class_lwlrap(fat_data.truth(data, oof["fname"].astype(str).tolist()),
                                              oof[data.labels].to_numpy())
        return pd.Series(per_class, index=data.labels)[weights > 0]
    return score


def train_fold(cfg: FatConfig, data: fat_data.FatData, fold: int, resume: bool = False,
               overrides: dict | None = None, restart: bool = False) -> dict:
    """Train fold `fold`; with `resume`, continue from the fold's saved config (with `overrides`,
    the flags given now, on top), model, optimizer and state."""
    with FoldRun.open(fold_dir(cfg, data.name, fold), METRIC, cfg.strategy, resume, cfg.max_minutes) as run:
        saved = run.saved_config() if resume else None
        if saved is not None:
            cfg = configio.from_dict(FatConfig, saved).replace(**(overrides or {}))
        if cfg.model == "stats":               # one fit, no network: the same fold life (stats_train)
            from .stats_train import train_stats_fold

            return train_stats_fold(run, cfg, data, fold, resume, restart)
        inputs = fold_inputs(cfg, data, fold)          # may stop with a clear error: nothing written yet
        source = transfer.checked_source(cfg.init_from, data.name, fold, inputs.folds_sha1) if cfg.init_from else None
        n_train = len(inputs.train)
        steps = cfg.steps_per_epoch or max(1, n_train // cfg.batch_size)
        plan = run.plan({**configio.to_dict(cfg), **run_meta(data, inputs.folds_sha1)}, steps, resume,
                        f"fold {fold}: train {n_train} clips ({inputs.n_noisy} noisy, --noisy {cfg.noisy}), validate "
                        f"{len(inputs.val)} curated clips, skipped {len(inputs.skipped)} unusable", restart=restart)
        if plan is None:
            return run.finished_metrics()
        epochs, patience = plan

        quiet_tensorflow()          # TF only now: the feature workers forked before it starts its threads
        import keras  # TensorFlow starts here, on first use: after any feature workers forked

        from ..kit import layer_rates  # noqa: F401  (registers its optimizers for loading last.keras)
        from . import losses  # noqa: F401  (registers the loss for loading last.keras)

        def build():
            m, copied = models.build(cfg, len(data.labels), pretrained=True), []
            if source is not None:
                from .competition import load_model

                line, copied = transfer.init_from(m, source, load_model, cfg.copied_lr_scale)
                print(line, flush=True)
            m.compile(optimizer=layer_rates.adam(_schedule(cfg, steps, epochs), cfg.copied_lr_scale, copied,
                                                 weight_decay=cfg.weight_decay),
                      loss=models.loss(cfg))
            return m

        seed = cfg.seed * 1000 + fold
        model, strategy = run.model(cfg.strategy, cfg.batch_size, seed, build, jit=cfg.jit,
                                    mixed_precision=cfg.mixed_precision, eager=cfg.eager)
        val_names = inputs.val.fnames
        gflop = training_gflop(model, cfg.batch_size)
        stem = f", stem stride {cfg.stem_stride}" if cfg.stem_stride != 1 else ""
        print(f"fold {fold}: {gflop:.1f} GFLOP a training step ({cfg.model}, --conv {cfg.conv}, width {cfg.width}"
              f"{stem}, batch {cfg.batch_size})", flush=True)

        def evaluate(m) -> EpochScore:
            scores = predict_clips(m, inputs.val, cfg)
            oof = pd.DataFrame(scores, columns=data.labels)
            oof.insert(0, "fname", val_names)
            return EpochScore(lwlrap(inputs.y_val, scores), oof)

        curated_only_from = epochs - cfg.finetune_epochs if cfg.noisy == "finetune" else None
        callbacks = [run.callback(evaluate, patience, cfg.max_minutes, seed, best_possible=1.0,   # lwlrap <= 1
                                  steps=steps, checkpoint_minutes=cfg.checkpoint_minutes),
                     keras.callbacks.TerminateOnNaN()]

        def dataset_from(epoch: int, step: int):
            return training_dataset(inputs.train, inputs.y_train, inputs.weights, inputs.noisy, cfg, seed, epoch, steps,
                                    curated_only_from, start_step=step)

        for phase_end in _phases(cfg, run, epochs):
            run.fit(model, dataset_from, steps, callbacks, min(phase_end, run.last_epoch), fit_verbosity())
            if phase_end < epochs and run.epoch < epochs and run.state["stopped"] in (None, "early"):
                with strategy.scope():
                    names = models.unfreeze(model, cfg.unfreeze)
                    model.compile(optimizer=keras.optimizers.AdamW(cfg.unfreeze_lr, weight_decay=cfg.weight_decay),
                                  loss=models.loss(cfg), jit_compile=model.jit_compile, run_eagerly=model.run_eagerly)
                distribute.prepare(model)
                run.state.update(unfrozen_at=run.epoch, stopped=None, wait=0)
                print(f"fold {fold}: head converged at epoch {run.epoch}; fine-tuning the last {cfg.unfreeze} VGG19 "
                      f"block(s) ({len(names)} conv layers) at lr {cfg.unfreeze_lr}", flush=True)
        import tensorflow as tf  # TensorFlow starts here, on first use: after any feature workers forked

        metrics = run.finish(model, f"{data.name} {cfg.run_name} fold {fold}", per_label=per_label_lwlrap(data),
                             extra={"fold": fold, "dataset": data.name, "model": cfg.model, "run": cfg.run_name,
                                    "n_train": n_train, "n_noisy": inputs.n_noisy, "gflop_per_step": round(gflop, 3), **run.hardware,
                                    "n_val": len(inputs.val), "skipped_clips": inputs.skipped, "keras": keras.__version__,
                                    "tensorflow": tf.__version__})
    report_skipped(fold, inputs.skipped)
    return metrics


def report_skipped(fold: int, skipped: list[str]) -> None:
    """The fold's last line about unusable clips (each was named in a warning when it was met)."""
    if skipped:
        print(f"fold {fold}: {len(skipped)} clip(s) skipped as unusable: {', '.join(skipped[:10])}", flush=True)


def _phases(cfg: FatConfig, run: FoldRun, epochs: int) -> list[int]:
    """Where each fit call ends: one call, or for VGG19 with --unfreeze the frozen-body phase
    (until the head stops improving, at most half the epochs) and the fine-tuning phase."""
    if cfg.model != "vgg19" or not cfg.unfreeze or "unfrozen_at" in run.state:
        return [epochs]
    return [max(1, epochs // 2), epochs]

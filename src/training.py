"""Train one fold: crops from curated (and noisy) clips, whole-clip lwlrap on the held-out fold
after every epoch, the best epoch kept, early stopping, and resumable after an interruption.

Outputs in work/<dataset>/<name>/fold<K>/ (name: --name, default the model):
  best.keras  the best epoch's model        oof.csv       its out-of-fold clip scores
  last.keras  the latest model + optimizer  state.json    epoch, best score, patience counter
  config.json the config used               history.csv   loss, lwlrap and lr per epoch
  metrics.json the fold's summary            history.png   its training curves
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import data as fat_data, features, folds as fat_folds
from .kit import atomic, configio
from .config import FatConfig
from .datasets import training_dataset
from .kit.distribute import get_strategy, quiet_tensorflow
from .kit.errors import KitError
from .kit.metrics import lwlrap
from .models import build
from .kit.plots import plot_history
from .predictor import predict_clips


def fold_dir(cfg: FatConfig, dataset: str, fold: int) -> str:
    return os.path.join(cfg.work_dir, dataset, cfg.run_name, f"fold{fold}")


def save_keras(model, path: str) -> None:
    with atomic.atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def load_features(cfg: FatConfig, data: fat_data.FatData, df: pd.DataFrame, subset: str):
    """Features of df's clips; unusable clips are dropped, named in one warning each."""
    feats, failed = features.extract(cfg, data.name, subset, data.audio_dir(subset), df["fname"].tolist())
    for fname, why in failed.items():
        warnings.warn(f"{os.path.join(data.audio_dir(subset), fname)}: skipped, {why}", stacklevel=2)
    keep = df[df["fname"].isin(feats.keys())].reset_index(drop=True)
    return keep, [feats[f] for f in keep["fname"]], sorted(failed)


def _monitor_class():
    import keras

    class FoldMonitor(keras.callbacks.Callback):
        """Scores the validation clips whole after each epoch; keeps the best model and its
        out-of-fold scores; writes history and a resumable state atomically; stops early."""

        def __init__(self, out: str, val_feats, val_y, val_names, labels, cfg: FatConfig, state: dict,
                     history: list[dict]):
            super().__init__()
            self.out, self.val_feats, self.val_y = out, val_feats, val_y
            self.val_names, self.labels, self.cfg = val_names, labels, cfg
            self.state, self.history = state, history

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            scores = predict_clips(self.model, self.val_feats, self.cfg)
            score = lwlrap(self.val_y, scores)
            logs["val_lwlrap"] = score
            lr = self.model.optimizer.learning_rate
            row = {"epoch": epoch, "loss": float(logs.get("loss", math.nan)), "val_lwlrap": score,
                   "lr": float(np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr))}
            self.history.append(row)
            st = self.state
            if score > st["best"]:
                st.update(best=score, best_epoch=epoch, wait=0)
                save_keras(self.model, os.path.join(self.out, "best.keras"))
                oof = pd.DataFrame(scores, columns=self.labels)
                oof.insert(0, "fname", self.val_names)
                atomic.write_csv(os.path.join(self.out, "oof.csv"), oof)
            else:
                st["wait"] += 1
            st["epoch"] = epoch
            atomic.write_csv(os.path.join(self.out, "history.csv"), pd.DataFrame(self.history))
            save_keras(self.model, os.path.join(self.out, "last.keras"))
            if st["wait"] >= self.cfg.patience:
                st["stopped_early"] = True
                self.model.stop_training = True
            atomic.write_json(os.path.join(self.out, "state.json"), st)
            print(f"epoch {epoch + 1}: loss {row['loss']:.4f} val lwlrap {score:.4f} "
                  f"(best {st['best']:.4f} at epoch {st['best_epoch'] + 1})", flush=True)

    return FoldMonitor


def _schedule(cfg: FatConfig, steps: int):
    import keras

    total = max(1, steps * cfg.epochs)
    warm = min(steps * cfg.warmup_epochs, total - 1)
    if cfg.lr_schedule == "constant":
        return cfg.lr
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.lr * 0.1 if warm else cfg.lr, decay_steps=total - warm, alpha=0.01,
        warmup_target=cfg.lr if warm else None, warmup_steps=warm)


@dataclass
class FoldInputs:
    train_feats: list
    y_train: np.ndarray
    weights: np.ndarray          # per training clip: 1 for curated, noisy_weight for noisy
    val_feats: list
    y_val: np.ndarray
    val_names: list[str]
    n_noisy: int
    skipped: list[str]           # unusable clips, named in warnings


def fold_inputs(cfg: FatConfig, data: fat_data.FatData, fold: int) -> FoldInputs:
    """Every input check first (missing files, unknown labels), then the features of the fold's
    training clips (curated of other folds, plus noisy ones when asked) and validation clips."""
    curated, noisy = fat_data.training_frames(data, cfg)
    fold_of = fat_folds.load_folds(data, cfg).set_index("fname")["fold"]
    if fold not in set(fold_of):
        raise KitError(f"fold {fold} is not in {fat_folds.folds_path(data.name)} (folds {sorted(set(fold_of))})")
    is_val = curated["fname"].map(fold_of).to_numpy() == fold
    train_df, train_feats, skipped = load_features(cfg, data, curated[~is_val], "train_curated")
    val_df, val_feats, skipped_v = load_features(cfg, data, curated[is_val], "train_curated")
    weights = np.ones(len(train_df), dtype=np.float32)
    if len(noisy):
        noisy, noisy_feats, skipped_n = load_features(cfg, data, noisy, "train_noisy")
        train_df = pd.concat([train_df, noisy], ignore_index=True)
        train_feats += noisy_feats
        weights = np.concatenate([weights, np.full(len(noisy), cfg.noisy_weight, dtype=np.float32)])
        skipped_v += skipped_n
    return FoldInputs(train_feats, fat_data.label_matrix(train_df, data.labels), weights, val_feats,
                      fat_data.label_matrix(val_df, data.labels), val_df["fname"].tolist(), len(noisy),
                      skipped + skipped_v)


def restore(out: str, overrides: dict | None) -> tuple[FatConfig, dict, list[dict]]:
    """A fold's saved config (the flags given now on top), state and the history up to that state."""
    cfg = configio.load(FatConfig, os.path.join(out, "config.json")).replace(**(overrides or {}))
    state = {"epoch": -1, "best": -1.0, "best_epoch": -1, "wait": 0, "done": False}
    with open(os.path.join(out, "state.json")) as f:
        state.update(json.load(f))
    state["done"] = state["done"] and (state.get("stopped_early") or state["epoch"] + 1 >= cfg.epochs)
    history = []
    if os.path.exists(os.path.join(out, "history.csv")):
        history = [h for h in pd.read_csv(os.path.join(out, "history.csv")).to_dict("records")
                   if h["epoch"] <= state["epoch"]]
    return cfg, state, history


def train_fold(cfg: FatConfig, data: fat_data.FatData, fold: int, resume: bool = False,
               overrides: dict | None = None) -> dict:
    """Train fold `fold`; with `resume`, continue from the fold's saved config (with `overrides`,
    the flags given now, on top), model, optimizer and state."""
    out = fold_dir(cfg, data.name, fold)
    state = {"epoch": -1, "best": -1.0, "best_epoch": -1, "wait": 0, "done": False}
    history: list[dict] = []
    resume = resume and all(os.path.exists(os.path.join(out, n)) for n in ("state.json", "last.keras", "config.json"))
    if resume:
        cfg, state, history = restore(out, overrides)
        if state["done"]:
            print(f"fold {fold}: already finished in {out} (--resume)", flush=True)
            with open(os.path.join(out, "metrics.json")) as f:
                return json.load(f)
    inputs = fold_inputs(cfg, data, fold)          # may stop with a clear error: nothing written yet
    if resume:
        print(f"fold {fold}: resuming after epoch {state['epoch'] + 1} (best lwlrap {state['best']:.4f})", flush=True)
    else:
        for name in ("state.json", "last.keras", "best.keras", "history.csv", "oof.csv", "metrics.json"):
            if os.path.exists(os.path.join(out, name)):
                os.remove(os.path.join(out, name))
    os.makedirs(out, exist_ok=True)
    configio.save(cfg, os.path.join(out, "config.json"))
    n_train = len(inputs.train_feats)
    print(f"fold {fold}: train {n_train} clips ({inputs.n_noisy} noisy), validate {len(inputs.val_feats)} "
          f"curated clips, skipped {len(inputs.skipped)} unusable", flush=True)

    steps = cfg.steps_per_epoch or max(1, n_train // cfg.batch_size)
    quiet_tensorflow()          # TF only now: feature workers fork before it starts its threads
    import keras
    import tensorflow as tf

    strategy = get_strategy(cfg.strategy)
    keras.utils.set_random_seed(cfg.seed + fold)
    with strategy.scope():
        if resume:
            model = keras.models.load_model(os.path.join(out, "last.keras"))
        else:
            model = build(cfg, len(data.labels))
            model.compile(
                optimizer=keras.optimizers.AdamW(_schedule(cfg, steps), weight_decay=cfg.weight_decay),
                loss=keras.losses.BinaryCrossentropy(label_smoothing=cfg.label_smoothing))
    ds = training_dataset(inputs.train_feats, inputs.y_train, inputs.weights, cfg,
                          seed=cfg.seed * 1000 + fold * 100 + state["epoch"] + 1)
    monitor = _monitor_class()(out, inputs.val_feats, inputs.y_val, inputs.val_names, data.labels, cfg, state, history)
    t0 = time.time()
    model.fit(ds, epochs=cfg.epochs, initial_epoch=state["epoch"] + 1, steps_per_epoch=steps, shuffle=False,
              callbacks=[monitor, keras.callbacks.TerminateOnNaN()], verbose=1 if sys.stdout.isatty() else 2)
    state["done"] = True
    atomic.write_json(os.path.join(out, "state.json"), state)
    plot_history(pd.DataFrame(history), os.path.join(out, "history.png"), "val_lwlrap",
                 f"{data.name} {cfg.run_name} fold {fold}")
    metrics = {"fold": fold, "dataset": data.name, "model": cfg.model, "run": cfg.run_name,
               "val_lwlrap": state["best"], "best_epoch": state["best_epoch"] + 1, "epochs_run": state["epoch"] + 1,
               "stopped_early": bool(state.get("stopped_early")), "n_train": n_train, "n_noisy": inputs.n_noisy,
               "n_val": len(inputs.val_feats), "skipped_clips": inputs.skipped,
               "train_seconds": round(time.time() - t0, 1), "tensorflow": tf.__version__}
    atomic.write_json(os.path.join(out, "metrics.json"), metrics)
    if inputs.skipped:
        print(f"fold {fold}: {len(inputs.skipped)} clip(s) skipped as unusable: "
              f"{', '.join(inputs.skipped[:10])}", flush=True)
    return metrics

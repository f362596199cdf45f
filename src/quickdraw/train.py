"""Training one fold: batches made on the fly (augmented each epoch), validation MAP@3 and top-1
accuracy after every epoch, best epoch kept, early stopping, outputs written atomically."""
from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..kit import atomic, configio  # noqa: E402
from ..kit.metrics import map_at_k  # noqa: E402
from .config import QDConfig  # noqa: E402
from .data import TrainSet  # noqa: E402
from .strokes import Ink, augment, rasterize, to_stroke3  # noqa: E402

MODEL_FILE = "model.keras"
CLASSES_FILE = "classes.json"


def model_inputs(ink: Ink, cfg: QDConfig) -> np.ndarray:
    """What the model `cfg.model` eats: stroke-3/5 (N, T, F) float32 or rasters (N, S, S, 1) uint8."""
    if cfg.is_sequence:
        return to_stroke3(ink, cfg.max_len, stroke5=cfg.stroke5)
    return rasterize(ink, cfg.raster_size, cfg.line_width, time_colour=cfg.time_colour)[..., None]


def top_k(probs: np.ndarray, k: int = 3) -> np.ndarray:
    """Indices of the k largest per row, best first (ties: lower index first)."""
    return np.argsort(-probs, axis=1, kind="stable")[:, :k]


def scores(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(MAP@3, top-1 accuracy) of class probabilities against integer labels."""
    top = top_k(probs, 3)
    return map_at_k(list(y), [list(t) for t in top], k=3), float(np.mean(top[:, 0] == y))


def make_batches(ink: Ink, y: np.ndarray | None, cfg: QDConfig, train: bool, seed: int = 0):
    """A keras PyDataset: batches converted on the fly; training batches shuffled and, with
    cfg.augment, freshly distorted every epoch (a seeded generator per epoch and batch)."""
    import keras

    class InkBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.order = self._order()

        def _order(self):
            if not train:
                return np.arange(len(ink))
            return np.random.default_rng([seed, self.epoch]).permutation(len(ink))

        def __len__(self):
            return max(1, -(-len(ink) // cfg.batch_size))

        def __getitem__(self, i):
            idx = self.order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            part = ink.take(idx)
            if train and cfg.augment:
                rng = np.random.default_rng([seed, self.epoch, i])
                part = augment(part, rng, cfg.aug_rotate, cfg.aug_scale, cfg.aug_shear,
                               cfg.aug_jitter, cfg.aug_dropout)
            x = model_inputs(part, cfg)
            if y is None:
                return (x,)
            return x, y[idx]

        def on_epoch_end(self):
            self.epoch += 1
            self.order = self._order()

    return InkBatches()


def predict_probs(model, ink: Ink, cfg: QDConfig, batch_size: int = 256, chunk: int = 4096) -> np.ndarray:
    """Class probabilities, inputs converted `chunk` drawings at a time (memory stays bounded)."""
    if len(ink) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    out = []
    for s in range(0, len(ink), chunk):
        x = model_inputs(ink.take(np.arange(s, min(s + chunk, len(ink)))), cfg)
        out.append(model.predict(x, batch_size=batch_size, verbose=0))
    return np.concatenate(out)


def _evaluator(val_ink: Ink, val_y: np.ndarray, cfg: QDConfig, out_rows: list):
    import keras

    class Evaluate(keras.callbacks.Callback):
        """Validation MAP@3 / top-1 after each epoch; keeps the best weights; early stopping;
        stops at cfg.max_minutes."""

        def __init__(self):
            super().__init__()
            self.best = -1.0
            self.best_epoch = 0
            self.best_weights = None
            self.wait = 0
            self.t0 = time.time()
            self.t_epoch = self.t0

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            probs = predict_probs(self.model, val_ink, cfg)
            m, acc = scores(probs, val_y)
            logs["val_map3"], logs["val_top1"] = m, acc
            lr = self.model.optimizer.learning_rate
            now = time.time()
            row = {"epoch": epoch + 1, "loss": float(logs.get("loss", np.nan)),
                   "accuracy": float(logs.get("accuracy", np.nan)), "val_map3": m, "val_top1": acc,
                   "lr": float(np.asarray(lr)), "seconds": round(now - self.t_epoch, 2)}
            self.t_epoch = now
            out_rows.append(row)
            better = m > self.best + 1e-6
            if better:
                self.best, self.best_epoch, self.wait = m, epoch + 1, 0
                self.best_weights = [w.copy() for w in self.model.get_weights()]
            else:
                self.wait += 1
            print(f"epoch {epoch + 1}/{cfg.epochs}: loss {row['loss']:.4f} acc {row['accuracy']:.4f} "
                  f"val map@3 {m:.4f} top1 {acc:.4f}{' *' if better else ''} ({row['seconds']:.1f}s)",
                  flush=True)
            if self.wait >= cfg.patience:
                print(f"early stopping: no better validation MAP@3 for {cfg.patience} epochs", flush=True)
                self.model.stop_training = True
            if cfg.max_minutes and now - self.t0 > 60 * cfg.max_minutes:
                print(f"stopping: --max-minutes {cfg.max_minutes} reached", flush=True)
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return Evaluate()


def setup_tf(cfg: QDConfig):
    import tensorflow as tf

    if cfg.threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
            tf.config.threading.set_inter_op_parallelism_threads(cfg.threads)
        except RuntimeError:           # already initialised (tests run several folds in one process)
            pass


def run_fold(cfg: QDConfig, ts: TrainSet, folds: np.ndarray, fold: int, out_dir: str) -> dict:
    """Train on every fold but `fold`, validate on `fold`; write the run's files to out_dir."""
    import keras

    from ..kit.distribute import get_strategy
    from .models import build_model

    setup_tf(cfg)
    t0 = time.time()
    tr = np.nonzero(folds != fold)[0]
    va = np.nonzero(folds == fold)[0]
    n_classes = len(ts.words)
    print(f"fold {fold}: {cfg.model}, train {len(tr)}, validation {len(va)} drawings, "
          f"{n_classes} categories -> {out_dir}", flush=True)
    keras.utils.set_random_seed(cfg.seed + fold)
    os.makedirs(out_dir, exist_ok=True)
    configio.save(cfg, os.path.join(out_dir, "config.json"))
    train_ink, train_y = ts.ink.take(tr), ts.y[tr]
    val_ink, val_y = ts.ink.take(va), ts.y[va]
    steps = max(1, -(-len(tr) // cfg.batch_size))
    strategy = get_strategy(cfg.strategy)
    with strategy.scope():
        model = build_model(cfg, n_classes)
        sched = keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=cfg.epochs * steps, alpha=0.02)
        model.compile(optimizer=keras.optimizers.Adam(sched),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                      metrics=["accuracy"])
    onehot = np.eye(n_classes, dtype=np.float32)[train_y]
    rows: list = []
    cb = _evaluator(val_ink, val_y, cfg, rows)
    verbose = 1 if sys.stdout.isatty() else 0
    model.fit(make_batches(train_ink, onehot, cfg, train=True, seed=cfg.seed + 1000 * fold),
              epochs=cfg.epochs, callbacks=[cb], verbose=verbose)
    # best weights restored by the callback
    probs = predict_probs(model, val_ink, cfg)
    m, acc = scores(probs, val_y)
    with atomic.atomic_path(os.path.join(out_dir, MODEL_FILE), suffix=".keras") as tmp:
        model.save(tmp)
    atomic.write_json(os.path.join(out_dir, CLASSES_FILE),
                      {"words": ts.words, "train_counts": np.bincount(train_y, minlength=n_classes).tolist()})
    atomic.write_csv(os.path.join(out_dir, "history.csv"), pd.DataFrame(rows))
    top = top_k(probs, 3)
    w = np.asarray(ts.words, dtype=object)
    oof = pd.DataFrame({"key_id": ts.key_ids[va], "word": w[val_y],
                        "pred1": w[top[:, 0]], "pred2": w[top[:, min(1, n_classes - 1)]],
                        "pred3": w[top[:, min(2, n_classes - 1)]]})
    atomic.write_csv(os.path.join(out_dir, "oof.csv"), oof)
    atomic.save_npy(os.path.join(out_dir, "oof_probs.npy"), probs.astype(np.float32))
    metrics = {"fold": fold, "model": cfg.model, "val_map3": m, "val_top1": acc,
               "best_epoch": cb.best_epoch, "epochs_run": len(rows), "n_train": int(len(tr)),
               "n_val": int(len(va)), "n_classes": n_classes, "wall_s": round(time.time() - t0, 1)}
    atomic.write_json(os.path.join(out_dir, "metrics.json"), metrics)
    print(f"fold {fold}: best epoch {cb.best_epoch}, val map@3 {m:.4f}, top1 {acc:.4f}, "
          f"{metrics['wall_s']:.0f}s", flush=True)
    keras.backend.clear_session()
    return metrics


def read_classes(run_dir: str) -> dict:
    with open(os.path.join(run_dir, CLASSES_FILE), encoding="utf-8") as f:
        return json.load(f)

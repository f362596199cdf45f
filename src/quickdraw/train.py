"""Train one Quick, Draw! fold: batches made on the fly (augmented afresh each epoch), validation
MAP@3 and top-1 after every epoch. The fold's life (checkpoints, early stopping, time limit,
resume, kill safety, the folder layout) is the kit's fold runner, as for FAT2019.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import __version__
from ..kit import configio
from ..kit.batches import generator_dataset, signature_of
from ..kit.distribute import quiet_tensorflow
from ..kit.fold_runner import EpochScore, FoldRun, fit_verbosity
from ..kit.metrics import map_at_k_scores
from .config import COMPETITION, QDConfig
from .data import TrainSet
from .strokes import Ink, augment, rasterize, to_stroke3

METRIC = "val_map3"


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
    onehot = np.eye(probs.shape[1])[y]
    return map_at_k_scores(onehot, probs, 3), float(np.mean(top_k(probs, 1)[:, 0] == y))


def make_batches(ink: Ink, y: np.ndarray | None, cfg: QDConfig, train: bool, seed: int = 0, start_epoch: int = 0):
    """A keras PyDataset: batches converted on the fly; training batches shuffled and, with
    cfg.augment, freshly distorted every epoch from a generator seeded by (seed, epoch, batch),
    so a resumed fold sees exactly what an uninterrupted one would have."""
    import keras

    class InkBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = start_epoch
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


def training_dataset(ink: Ink, y: np.ndarray, cfg: QDConfig, seed: int, start_epoch: int):
    """(tf.data of endless training epochs from `start_epoch` on, batches per epoch): make_batches'
    batches through the kit's generator pipeline (kit.batches), as FAT2019's, rather than Keras'
    own PyDataset adapter, whose autotuned prefetch held each fit up to a minute at its end."""
    def epochs():
        batches = make_batches(ink, y, cfg, train=True, seed=seed, start_epoch=start_epoch)
        while True:
            for i in range(len(batches)):
                yield batches[i]
            batches.on_epoch_end()

    first = make_batches(ink, y, cfg, train=True, seed=seed, start_epoch=start_epoch)
    return generator_dataset(epochs, signature_of(first[0])), len(first)


def predict_probs(model, ink: Ink, cfg: QDConfig, batch_size: int = 256, chunk: int = 4096) -> np.ndarray:
    """Class probabilities, inputs converted `chunk` drawings at a time (memory stays bounded)."""
    if len(ink) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    out = []
    for s in range(0, len(ink), chunk):
        x = model_inputs(ink.take(np.arange(s, min(s + chunk, len(ink)))), cfg)
        out.append(model.predict(x, batch_size=batch_size, verbose=0))
    return np.concatenate(out)


def setup_tf(cfg: QDConfig):
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")          # one predict function per fold: retracing is expected
    if cfg.threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
            tf.config.threading.set_inter_op_parallelism_threads(cfg.threads)
        except RuntimeError:           # already initialised (tests run several folds in one process)
            pass


def run_meta(dataset: str, ts: TrainSet, folds_sha1: str) -> dict:
    """What a fold was trained on, saved in its config.json (see kit.runs: what predict trusts)."""
    return {"competition": COMPETITION, "dataset": dataset, "labels": ts.words,
            "label_prior": [round(float(c) / max(len(ts.y), 1), 6) for c in ts.counts],
            "folds_sha1": folds_sha1, "kit_version": __version__}


def run_fold(cfg: QDConfig, ts: TrainSet, folds: np.ndarray, folds_sha1: str, fold: int, out_dir: str,
             dataset: str, resume: bool = False) -> dict:
    """Train on every fold but `fold`, validate on `fold`; the fold's files go to out_dir."""
    with FoldRun.open(out_dir, METRIC, cfg.strategy, resume, cfg.max_minutes) as run:
        tr, va = np.nonzero(folds != fold)[0], np.nonzero(folds == fold)[0]
        n_classes = len(ts.words)
        steps = max(1, -(-len(tr) // cfg.batch_size))
        plan = run.plan({**configio.to_dict(cfg), **run_meta(dataset, ts, folds_sha1)}, steps, resume,
                        f"fold {fold}: {cfg.run_name} ({cfg.model}), train {len(tr)}, validation {len(va)} drawings, "
                        f"{n_classes} categories")
        if plan is None:
            return run.finished_metrics()
        epochs, patience = plan
        quiet_tensorflow()
        import keras

        from . import models

        setup_tf(cfg)

        def build():
            m = models.build_model(cfg, n_classes)
            sched = keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=epochs * steps, alpha=0.02)
            m.compile(optimizer=keras.optimizers.Adam(sched),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing), metrics=["accuracy"])
            return m

        seed = cfg.seed * 1000 + fold
        model, _ = run.model(cfg.strategy, cfg.batch_size, seed, build, jit=cfg.jit)
        train_ink, val_ink, val_y = ts.ink.take(tr), ts.ink.take(va), ts.y[va]
        onehot = np.eye(n_classes, dtype=np.float32)[ts.y[tr]]
        val_keys = ts.key_ids[va].astype(str)

        def evaluate(m) -> EpochScore:
            probs = predict_probs(m, val_ink, cfg)
            m3, acc = scores(probs, val_y)
            oof = pd.DataFrame(probs, columns=ts.words)
            oof.insert(0, "key_id", val_keys)
            return EpochScore(m3, oof, {"val_top1": acc})

        ds, steps = training_dataset(train_ink, onehot, cfg, seed, run.epoch)
        model.fit(ds, steps_per_epoch=steps, epochs=run.last_epoch, initial_epoch=run.epoch, shuffle=False,
                  verbose=fit_verbosity(),
                  callbacks=[run.callback(evaluate, patience, cfg.max_minutes, seed, best_possible=1.0),  # MAP@3 <= 1
                             keras.callbacks.TerminateOnNaN()])
        metrics = run.finish(model, f"{dataset} {cfg.run_name} fold {fold}",
                             extra={"fold": fold, "dataset": dataset, "model": cfg.model, "run": cfg.run_name,
                                    "n_train": int(len(tr)), "n_val": int(len(va)), "n_classes": n_classes,
                                    "keras": keras.__version__},
                             per_label=per_word_map3(ts.words, dict(zip(val_keys, val_y))))
        keras.backend.clear_session()
    print(f"fold {fold}: best epoch {metrics['best_epoch']}, val map@3 {metrics[METRIC]:.4f}, "
          f"top1 {metrics['val_top1']:.4f}, {metrics['train_seconds']:.0f}s", flush=True)
    return metrics


def per_word_map3(words: list[str], truth: dict[str, int]):
    """MAP@3 of each category's validation drawings (the fold's per-label plot)."""
    def score(oof: pd.DataFrame) -> pd.Series:
        y = oof["key_id"].astype(str).map(truth).to_numpy()
        top = top_k(oof[words].to_numpy(), 3)
        ap = ((top == y[:, None]) / np.arange(1, 4)).sum(axis=1)
        return pd.Series(ap).groupby(y).mean().rename(index=dict(enumerate(words)))
    return score

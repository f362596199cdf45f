"""Train one Quick, Draw! fold: batches made on the fly (augmented afresh each epoch), validation
MAP@3 and top-1 after every epoch. The fold's life (checkpoints, early stopping, time limit,
resume, kill safety, the folder layout) is the kit's fold runner, as for FAT2019.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import __version__
from ..kit import configio, runs, transfer
from ..kit.distribute import quiet_tensorflow
from ..kit.errors import KitError
from ..kit.flops import training_gflop
from ..kit.fold_runner import EpochScore, FoldRun, fit_verbosity
from ..kit.metrics import map_at_k_scores
from . import data as qd_data
from .config import COMPETITION, QDConfig
from .data import TrainSet
from .infer import predict_probs, top_k
from .pipeline import model_inputs, training_dataset

METRIC = "val_map3"


def scores(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(MAP@3, top-1 accuracy) of class probabilities against integer labels."""
    onehot = np.eye(probs.shape[1])[y]
    return map_at_k_scores(onehot, probs, 3), float(np.mean(top_k(probs, 1)[:, 0] == y))


def setup_tf(cfg: QDConfig):
    import tensorflow as tf  # TensorFlow starts here, on first use: after any feature workers forked

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
             dataset: str, resume: bool = False, restart: bool = False) -> dict:
    """Train on every fold but `fold`, validate on `fold`; the fold's files go to out_dir."""
    with FoldRun.open(out_dir, METRIC, cfg.strategy, resume, cfg.max_minutes) as run:
        tr, va = np.nonzero(folds != fold)[0], np.nonzero(folds == fold)[0]
        n_classes = len(ts.words)
        steps = max(1, -(-len(tr) // cfg.batch_size))
        # --init-from: its source is refused (missing, leaking) before anything is written
        if cfg.probe_head and not cfg.init_from:
            raise KitError("--probe-head fits the classifier on pretrained features: give --init-from too")
        transfer.check_copied_lr_scale(cfg.copied_lr_scale, cfg.init_from)
        source = transfer.checked_source(cfg.init_from, dataset, fold, folds_sha1) if cfg.init_from else None
        mirror = "on" if cfg.flips_at_test else "off"
        if cfg.tta_flip is None:
            mirror += f" (the default for {'sequence' if cfg.is_sequence else 'raster'} models)"
        plan = run.plan({**configio.to_dict(cfg), **run_meta(dataset, ts, folds_sha1)}, steps, resume,
                        f"fold {fold}: {cfg.run_name} ({cfg.model}), train {len(tr)}, validation {len(va)} drawings, "
                        f"{n_classes} categories; test-time mirror {mirror}", restart=restart)
        if plan is None:
            return run.finished_metrics()
        epochs, patience = plan
        quiet_tensorflow()
        import keras  # TensorFlow starts here, on first use: after any feature workers forked

        from ..kit import layer_rates  # noqa: F401  (registers its optimizers for --resume's last.keras)
        from . import models  # imports Keras (TensorFlow is already up here)

        setup_tf(cfg)

        train_ink, val_ink, val_y = ts.ink.take(tr), ts.ink.take(va), ts.y[va]

        def build():
            m, copied = models.build_model(cfg, n_classes), []
            if source is not None:
                from .competition import load_model

                line, copied = transfer.init_from(m, source, load_model, cfg.copied_lr_scale)
                print(line, flush=True)
                if cfg.probe_head:
                    print(transfer.probe_head(m, model_inputs(train_ink, cfg), ts.y[tr]), flush=True)
            sched = keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=epochs * steps, alpha=0.02)
            m.compile(optimizer=layer_rates.adam(sched, cfg.copied_lr_scale, copied),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing), metrics=["accuracy"])
            return m

        seed = cfg.seed * 1000 + fold
        model, _ = run.model(cfg.strategy, cfg.batch_size, seed, build, jit=cfg.jit,
                             mixed_precision=cfg.mixed_precision, eager=cfg.eager)
        gflop = training_gflop(model, cfg.batch_size)
        print(f"fold {fold}: {gflop:.2f} GFLOP a training step ({cfg.model}, batch {cfg.batch_size})", flush=True)
        onehot = np.eye(n_classes, dtype=np.float32)[ts.y[tr]]
        val_keys = ts.key_ids[va].astype(str)

        def evaluate(m) -> EpochScore:
            probs = predict_probs(m, val_ink, cfg)
            m3, acc = scores(probs, val_y)
            oof = pd.DataFrame(probs, columns=ts.words)
            oof.insert(0, "key_id", val_keys)
            return EpochScore(m3, oof, {"val_top1": acc})

        callbacks = [run.callback(evaluate, patience, cfg.max_minutes, seed, best_possible=1.0,  # MAP@3 <= 1
                                  steps=steps, checkpoint_minutes=cfg.checkpoint_minutes),
                     keras.callbacks.TerminateOnNaN()]
        run.fit(model, lambda epoch, step: training_dataset(train_ink, onehot, cfg, seed, epoch, step)[0], steps,
                callbacks, run.last_epoch, fit_verbosity())
        metrics = run.finish(model, f"{dataset} {cfg.run_name} fold {fold}",
                             extra={"fold": fold, "dataset": dataset, "model": cfg.model, "run": cfg.run_name,
                                    "n_train": int(len(tr)), "n_val": int(len(va)), "n_classes": n_classes,
                                    "gflop_per_step": round(gflop, 3), **run.hardware,
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


def train_folds(cfg: QDConfig, data, folds: list[int], resume: bool = False, overrides: dict | None = None,
                restart: bool = False) -> list[dict]:
    """Train `folds` of `data` (a QDData); with `resume`, each fold continues from its saved config
    (the flags given now on top). The drawings are read once per distinct selection (categories,
    cap, seed, fold count)."""
    loaded: dict = {}
    results = []
    for k in folds:
        out = runs.fold_dir(cfg.work_dir, data.name, cfg.run_name, k)
        fold_cfg = cfg
        saved = FoldRun(out, "").saved_config() if resume else None
        if saved is not None:
            fold_cfg = configio.from_dict(QDConfig, saved).replace(**(overrides or {}))
        key = (fold_cfg.classes, fold_cfg.per_class, fold_cfg.seed, fold_cfg.n_folds)
        if key not in loaded:
            ts = qd_data.load_train(data.root, fold_cfg.classes, fold_cfg.per_class, fold_cfg.seed, fold_cfg.chunk_size)
            loaded[key] = (ts, *qd_data.load_folds(data.name, ts, fold_cfg.n_folds, fold_cfg.seed))
        ts, fold_of, sha1 = loaded[key]
        results.append(run_fold(fold_cfg, ts, fold_of, sha1, k, out, data.name, resume, restart))
    return results

"""Quick, Draw! as the kit's generic path sees it (kit.competition): how to read the data, train
folds, rebuild a fold's network, score the test drawings chunk by chunk and check a
submission's rows (three distinct known words each)."""
from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

from ..kit import configio, runs
from ..kit.competition import Competition
from ..kit.distribute import quiet_tensorflow
from ..kit.errors import KitError, list_some
from ..kit.metrics import map_at_k_scores
from ..kit.progress import progress
from . import data as qd_data
from .config import COMPETITION, QDConfig, word_to_token
from .infer import predict_probs
from .train import train_folds as train


def load_model(fold: runs.Fold):
    """The fold's network rebuilt from its config.json, with its best weights."""
    from . import models  # imports Keras: TensorFlow starts here, on first use

    model = models.build_model(configio.from_dict(QDConfig, fold.config), len(fold.labels))
    runs.load_weights_checked(model, fold.weights)
    return model


def reference_input(config: dict) -> np.ndarray:
    """Fixed inputs whose outputs a shipped fold must reproduce after loading (see src.ship)."""
    cfg = configio.from_dict(QDConfig, config)
    rng = np.random.default_rng(0)
    if cfg.is_sequence:
        x = np.zeros((4, cfg.max_len, 5 if cfg.stroke5 else 3), np.float32)
        x[:, :min(20, cfg.max_len)] = rng.normal(0, 0.1, (4, min(20, cfg.max_len), x.shape[2]))
        return x
    return rng.integers(0, 256, (4, cfg.raster_size, cfg.raster_size, 1)).astype(np.uint8)


def add_predict_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--chunk-size", type=int, default=20000, help="test rows read and predicted at a time")
    ap.add_argument("--batch-size", type=int, default=256, help="prediction batch size")


def check_test(data: qd_data.QDData, args: argparse.Namespace) -> None:
    """Before any model loads: the test file's key_ids are unique, and so are the sample's."""
    qd_data.test_key_ids(data.root)
    data.sample_ids()


def score_test(data: qd_data.QDData, found: dict, ensemble, load, args: argparse.Namespace):
    """Chunks of test_simplified.csv: (key_ids of the readable drawings, their blended
    probabilities, {key_id: why} for the unreadable ones)."""

    quiet_tensorflow()
    configs = {f.key: configio.from_dict(QDConfig, f.config) for folds in found.values() for f in folds}
    with progress(desc="predicting", unit="drawing") as bar:
        for keys, ink, valid, bad in qd_data.iter_test(data.root, args.chunk_size):
            keys = keys.astype(str)

            def predict(fold: runs.Fold) -> pd.DataFrame:
                return pd.DataFrame(predict_probs(load(fold), ink, configs[fold.key], args.batch_size),
                                    columns=fold.labels)

            probs = ensemble(predict) if valid.any() else np.zeros((0, 0))
            yield keys[valid].tolist(), probs, {keys[i]: why for i, why in bad.items()}
            bar.update(len(keys))


def format_rows(ids: list[str], scores: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """key_id, word: the three best words (spaces inside a word as '_'), best first."""
    tokens = np.asarray([word_to_token(w) for w in labels], dtype=object)
    top = np.argsort(-np.asarray(scores), axis=1, kind="stable")[:, :3]
    return pd.DataFrame({"key_id": list(ids), "word": [" ".join(t) for t in tokens[top]] if len(ids) else []})


def check_rows(sub: pd.DataFrame, labels: list[str]) -> None:
    """Every row: three distinct words the models know."""
    known = {word_to_token(w) for w in labels}
    guesses = sub["word"].astype(str).str.split(" ")
    wrong = [k for k, g in zip(sub["key_id"], guesses) if len(g) != 3 or len(set(g)) != 3 or not set(g) <= known]
    if wrong:
        raise KitError(f"{len(wrong)} submission row(s) do not hold three distinct known words "
                       f"({list_some(wrong, 5)}); refusing to write it")


def per_label(truth: np.ndarray, scores: np.ndarray, labels: list[str]) -> pd.Series:
    """MAP@3 of each category's drawings, for the per-label plots."""
    y = np.argmax(truth, axis=1)
    top = np.argsort(-np.asarray(scores), axis=1, kind="stable")[:, :3]
    ap = ((top == y[:, None]) / np.arange(1, 4)).sum(axis=1)
    s = pd.Series(ap).groupby(y).mean()
    return s.rename(index=dict(enumerate(labels)))


def train_folds(cfg: QDConfig, data: qd_data.QDData, folds: list[int], resume: bool, overrides: dict,
                restart: bool = False) -> list[dict]:
    return train(cfg, data, folds, resume, overrides, restart)


QUICKDRAW = Competition(
    name="quickdraw", slug=COMPETITION, title="Quick, Draw!", config_cls=QDConfig, metric_name="map@3",
    samples="drawings", id_column="key_id",
    modules={"cv": "src.quickdraw.cv", "predict": "src.quickdraw.predict", "blend": "src.quickdraw.blend",
             "folds": "src.quickdraw.folds"},
    default_out=os.path.join("submissions", "quickdraw_submission.csv"), code_competition=False,
    labels_subset_ok=True,
    consistent_keys=("labels", "model", "raster_size", "max_len", "stroke5", "time_colour", "line_width"),
    ships_folds=False,            # the folds of the data a kernel sees are made there (numpy only)
    metric=map_at_k_scores, per_label=per_label, open_data=qd_data.open_data, train_folds=train_folds,
    load_model=load_model, reference_input=reference_input, score_test=score_test, format_rows=format_rows,
    check_rows=check_rows, add_predict_args=add_predict_args, check_test=check_test)

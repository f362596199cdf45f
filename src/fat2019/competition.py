"""FAT2019 as the kit's generic path sees it (kit.competition): how to read the data, train
folds, rebuild a fold's network, score the test clips and check a submission's rows."""
from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

from ..kit import configio, runs
from ..kit.competition import Competition
from ..kit.distribute import quiet_tensorflow
from ..kit.errors import KitError, list_some
from ..kit.metrics import lwlrap, per_class_lwlrap
from . import data as fat_data
from . import features, models
from .config import COMPETITION, FatConfig
from .infer import predict_clips
from .train import train_fold


def open_data(data_dir: str | None) -> fat_data.FatData:
    return fat_data.load(FatConfig(data_dir=data_dir))


def train_folds(cfg: FatConfig, data: fat_data.FatData, folds: list[int], resume: bool, overrides: dict,
                restart: bool = False) -> list[dict]:
    return [train_fold(cfg, data, k, resume=resume, overrides=overrides, restart=restart) for k in folds]


def load_model(fold: runs.Fold):
    """The fold's network rebuilt from its config.json, with its best weights."""
    cfg = configio.from_dict(FatConfig, fold.config)
    model = models.build(cfg, len(fold.labels))
    runs.load_weights_checked(model, fold.weights)
    return model


def reference_input(config: dict) -> np.ndarray:
    """Fixed inputs whose outputs a shipped fold must reproduce after loading (see src.ship)."""
    cfg = configio.from_dict(FatConfig, config)
    rng = np.random.default_rng(0)
    if cfg.model == "stats":        # log-mel-like clips (a level per band, small changes): uniform noise's
        level = rng.uniform(-0.8, 0.4, (4, cfg.n_features, 1, 1))      # statistics would saturate every score
        return (level + 0.1 * rng.standard_normal((4, cfg.n_features, cfg.crop_frames, 1))).astype(np.float32)
    return rng.uniform(-1, 1, (4, cfg.n_features, cfg.crop_frames, 1)).astype(np.float32)


def add_predict_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--tta", type=int, default=None, help="shifted window grids per clip (default: each run's config)")
    ap.add_argument("--window-agg", choices=["mean", "max", "meanmax"], default=None,
                    help="a clip's score from its windows' (default: each run's config)")
    ap.add_argument("--allow-missing", action="store_true",
                    help="count missing test clips as unreadable (--max-bad-test) instead of stopping at once")
    ap.add_argument("--batch-size", type=int, default=256, help="windows per model call")
    ap.add_argument("--cache-dir", default=None, help="feature cache of the test clips (default: each run's own "
                                                      "--cache-dir; a kernel uses a fresh temporary folder)")


def check_test(data: fat_data.FatData, args: argparse.Namespace) -> None:
    fnames = data.sample_ids()
    if not fnames:
        raise KitError(f"{data.root}/sample_submission.csv lists no test clips")
    missing = fat_data.missing_files(fnames, data.audio_dir("test"))
    if missing and not getattr(args, "allow_missing", False):
        raise KitError(f"{data.audio_dir('test')}: {len(missing)} of the {len(fnames)} test clips of "
                       f"sample_submission.csv are missing: {list_some(missing)}. --allow-missing counts them as "
                       f"unreadable instead (they get the training label frequencies, up to --max-bad-test)")


def test_features(configs: list[FatConfig], data: fat_data.FatData, fnames: list[str],
                  budget_bytes: float | None = None):
    """{feature key: FeatureSet} of the test clips, and {fname: why} for clips any config could not use
    (`budget_bytes`: how much of them to hold in RAM; default each config's --feature-ram-gb)."""
    feats, failed = {}, {}
    for cfg in configs:
        key = cfg.feature_key()
        if key not in feats:
            feats[key], bad = features.extract(cfg, data.name, "test", data.audio_dir("test"), fnames,
                                               desc=f"features test ({key})", budget_bytes=budget_bytes)
            failed.update(bad)
    return feats, failed


def run_config(fold: runs.Fold, args: argparse.Namespace) -> FatConfig:
    """The fold's config, with the feature cache predict was told to use (--cache-dir)."""
    cfg = configio.from_dict(FatConfig, fold.config)
    return cfg.replace(cache_dir=args.cache_dir) if getattr(args, "cache_dir", None) else cfg


def prepare_test(data: fat_data.FatData, found: dict, args: argparse.Namespace) -> None:
    """The test clips' features, cached (score_test reads them back; none held in RAM here)."""
    test_features([run_config(f, args) for folds in found.values() for f in folds], data, data.sample_ids(),
                  budget_bytes=0)


def score_test(data: fat_data.FatData, found: dict, ensemble, load, args: argparse.Namespace):
    """One chunk: every test clip's features first (the extraction workers fork before
    TensorFlow starts), then every fold's windows, aggregated per clip."""

    fnames = data.sample_ids()
    configs = {f.key: run_config(f, args) for folds in found.values() for f in folds}
    feats, failed = test_features(list(configs.values()), data, fnames)
    usable = [f for f in fnames if f not in failed]
    if not usable:
        yield [], np.zeros((0, 0)), failed
        return
    quiet_tensorflow()

    def predict(fold: runs.Fold) -> pd.DataFrame:
        cfg = configs[fold.key]
        fs = feats[cfg.feature_key()]
        pos = {f: i for i, f in enumerate(fs.fnames)}
        p = predict_clips(load(fold), fs.take([pos[f] for f in usable]), cfg,
                          tta=cfg.tta if args.tta is None else args.tta, batch_size=args.batch_size,
                          progress=f"{fold.run} fold{fold.fold}", window_agg=args.window_agg)
        return pd.DataFrame(p, columns=fold.labels)

    yield usable, ensemble(predict), failed


def format_rows(ids: list[str], scores: np.ndarray, labels: list[str]) -> pd.DataFrame:
    rows = pd.DataFrame(np.asarray(scores, dtype=np.float64).reshape(len(ids), len(labels)), columns=labels)
    rows.insert(0, "fname", ids)
    return rows


def check_rows(sub: pd.DataFrame, labels: list[str]) -> None:
    """One score in [0, 1] per label column, all finite."""
    if list(sub.columns) != ["fname", *labels]:
        raise KitError(f"submission columns {list(sub.columns)[:6]}... are not fname + the data's labels")
    s = sub[labels].to_numpy(dtype=np.float64)
    if not np.isfinite(s).all():
        raise KitError(f"{int((~np.isfinite(s)).sum())} NaN/inf scores in the submission; refusing to write it")
    if s.size and (s.min() < 0 or s.max() > 1):
        raise KitError(f"submission scores outside [0, 1] ({s.min():.3g} .. {s.max():.3g}); refusing to write it")


def groups(truth: np.ndarray) -> dict[str, np.ndarray]:
    """Single- and multi-label clips: the test mixes clips, validation is mostly single labels."""
    n = truth.sum(axis=1)
    return {"single-label": n == 1, "multi-label": n > 1}


def per_label(truth: np.ndarray, scores: np.ndarray, labels: list[str]) -> pd.Series:
    """lwlrap per label (labels without a positive left out), for the per-label plots."""
    per_class, weights = per_class_lwlrap(truth, scores)
    return pd.Series(per_class, index=labels)[weights > 0]


FAT2019 = Competition(
    name="freesound", slug=COMPETITION, title="FAT2019", config_cls=FatConfig, metric_name="lwlrap",
    samples="curated clips", id_column="fname",
    modules={"cv": "src.cv", "predict": "src.predict", "blend": "src.blend", "folds": "src.folds"},
    default_out=os.path.join("submissions", "submission.csv"), code_competition=True, labels_subset_ok=False,
    consistent_keys=("labels", "model", "n_mels", "n_mfcc", "feature", "crop_frames", "sample_rate", "n_fft",
                     "hop_length"),
    ships_folds=True,             # iterative-stratification is not in Kaggle's image
    metric=lwlrap, per_label=per_label, open_data=open_data, train_folds=train_folds, load_model=load_model,
    reference_input=reference_input, score_test=score_test, format_rows=format_rows, check_rows=check_rows,
    add_predict_args=add_predict_args, check_test=check_test, prepare_test=prepare_test,
    groups=groups)

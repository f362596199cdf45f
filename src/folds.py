"""Multilabel-stratified K folds over train_curated -> folds/<dataset>.csv (fname, fold).

Noisy clips never appear here: they are only ever used for training.

    python -m src.folds [--data-dir DIR] [--n-folds 5] [--seed 42]
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

from . import data as fat_data
from .kit import atomic, configio
from .config import FatConfig
from .kit.errors import KitError, cli

FOLDS_DIR = "folds"


def make_folds(y: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold index per row, stratified over every label (iterstrat), shuffled with `seed`."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    if len(y) < n_folds:
        raise KitError(f"{len(y)} curated clips cannot make {n_folds} folds")
    fold = np.full(len(y), -1, dtype=int)
    mskf = MultilabelStratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, val) in enumerate(mskf.split(np.zeros(len(y)), y)):
        fold[val] = k
    return fold


def folds_path(dataset: str) -> str:
    return os.path.join(FOLDS_DIR, f"{dataset}.csv")


def write_folds(data: fat_data.FatData, cfg: FatConfig) -> str:
    y = fat_data.label_matrix(data.curated, data.labels)
    df = pd.DataFrame({"fname": data.curated["fname"], "fold": make_folds(y, cfg.n_folds, cfg.seed)})
    path = folds_path(data.name)
    atomic.write_csv(path, df)
    return path


def load_folds(data: fat_data.FatData, cfg: FatConfig) -> pd.DataFrame:
    """The dataset's fold file, created when missing; refuses one that does not match the data."""
    path = folds_path(data.name)
    if not os.path.exists(path):
        fat_data.check_labels(data.curated, data.labels, os.path.join(data.root, "train_curated.csv"))
        write_folds(data, cfg)
        print(f"folds: wrote {path} ({cfg.n_folds} multilabel-stratified folds, seed {cfg.seed})", flush=True)
    folds = pd.read_csv(path, dtype={"fname": str, "fold": int})
    missing = sorted(set(data.curated["fname"]) - set(folds["fname"]))
    if missing:
        raise KitError(f"{path}: {len(missing)} curated clip(s) have no fold ({', '.join(missing[:5])}...); "
                       f"delete the file or run python -m src.folds to rebuild it")
    if folds["fold"].nunique() != cfg.n_folds:
        raise KitError(f"{path} has {folds['fold'].nunique()} folds but --n-folds is {cfg.n_folds}; "
                       f"rebuild it with python -m src.folds --n-folds {cfg.n_folds} (other runs then no longer match)")
    return folds


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.folds", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    configio.add_config_args(ap, FatConfig)
    cfg = configio.from_args(FatConfig, ap.parse_args(argv))
    data = fat_data.load(cfg)
    fat_data.check_labels(data.curated, data.labels, os.path.join(data.root, "train_curated.csv"))
    path = write_folds(data, cfg)
    counts = pd.read_csv(path)["fold"].value_counts().sort_index()
    print(f"folds: wrote {path}: " + ", ".join(f"fold {k}: {n} clips" for k, n in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

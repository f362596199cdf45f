"""Multilabel-stratified K folds over train_curated -> folds/<dataset>.csv (fname, fold).

Noisy clips never appear here: they are only ever used for training. `src.cv` makes the file
when it is missing; this command (re)builds it explicitly, e.g. for another fold count.

    python -m src.folds [--data-dir DIR] [--n-folds 5] [--seed 42]
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from . import data as fat_data
from .config import FatConfig
from ..kit import configio, foldfile
from ..kit.errors import KitError, cli

REBUILD = "python -m src.folds"


def make_folds(y: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold index per row, stratified over every label (iterstrat), shuffled with `seed`."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold  # not in Kaggle's image: a kernel carries its folds

    if len(y) < n_folds:
        raise KitError(f"{len(y)} curated clips cannot make {n_folds} folds")
    fold = np.full(len(y), -1, dtype=int)
    mskf = MultilabelStratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, val) in enumerate(mskf.split(np.zeros(len(y)), y)):
        fold[val] = k
    return fold


def fold_table(data: fat_data.FatData, cfg: FatConfig) -> pd.DataFrame:
    fat_data.check_labels(data.curated, data.labels, os.path.join(data.root, "train_curated.csv"))
    y = fat_data.label_matrix(data.curated, data.labels)
    return pd.DataFrame({"fname": data.curated["fname"], "fold": make_folds(y, cfg.n_folds, cfg.seed)})


def load_folds(data: fat_data.FatData, cfg: FatConfig) -> tuple[pd.Series, str]:
    """({fname: fold} of every curated clip, the folds file's sha1); the file is made when missing."""
    return foldfile.ensure(data.name, "fname", data.curated["fname"].tolist(), cfg.n_folds,
                           lambda: fold_table(data, cfg), REBUILD)


@cli
def main(argv: list[str] | None = None) -> int:
    cfg, _ = configio.parse(FatConfig, "python -m src.folds", __doc__, argv)
    data = fat_data.load(cfg)
    path = foldfile.write(data.name, fold_table(data, cfg))
    counts = pd.read_csv(path)["fold"].value_counts().sort_index()
    print(f"folds: wrote {path}: " + ", ".join(f"fold {k}: {n} clips" for k, n in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

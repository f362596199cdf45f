"""Stratified K folds over the Quick, Draw! training drawings -> folds/<dataset>.csv (key_id, word, fold).

`src.quickdraw.cv` makes the file when it is missing, over the drawings it loads; a file made
over more drawings serves any subset. This command (re)builds it explicitly: for more
categories, a higher --per-class, or another --n-folds (runs trained on the old file then no
longer count for predict).

    python -m src.quickdraw.folds [--data-dir DIR] [--classes N] [--per-class P] [--n-folds 5] [--seed 0]
"""
from __future__ import annotations

import pandas as pd

from ..kit import configio, foldfile
from ..kit.errors import cli
from . import data
from .config import QDConfig


@cli
def main(argv: list[str] | None = None) -> int:
    cfg, _ = configio.parse(QDConfig, "python -m src.quickdraw.folds", __doc__, argv)

    data_dir, dataset = data.resolve(cfg.data_dir)
    ts = data.load_train(data_dir, cfg.classes, cfg.per_class, cfg.seed, cfg.chunk_size)
    path = foldfile.write(dataset, data.fold_table(ts, cfg.n_folds, cfg.seed))
    counts = pd.read_csv(path)["fold"].value_counts().sort_index()
    print(f"folds: wrote {path}: " + ", ".join(f"fold {k}: {n} drawings" for k, n in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train Quick, Draw! models fold by fold.

    python -m src.quickdraw.cv --fold 0                  # the built-in demo, default model (cnn)
    python -m src.quickdraw.cv --data-dir /tmp/qd-real --model lstm --fold all
    python -m src.quickdraw.cv --fold 0 --resume         # continue an interrupted (or time-limited) fold
    python -m src.quickdraw.cv --fold all --cnn-filters 16 --name cnn16   # a variant, kept as its own run

Outputs per fold in WORK_DIR/<dataset>/<name>/fold<K>/ (name: --name, default the model), the same
layout as FAT2019: config.json, best.weights.h5, best.keras, last.keras, state.json, history.csv,
history.png, oof.csv (out-of-fold probabilities), metrics.json, per_label.png. A fold being
trained lives in fold<K>.partial/ until finished. The last line printed is `fold K map@3 0.xxxx`
(`fold all map@3 ...`: the out-of-fold score over every fold).
"""
from __future__ import annotations

import argparse
import os

from ..kit import configio, foldfile, runs
from ..kit.errors import cli
from ..kit.fold_runner import FoldRun, parse_folds
from ..kit.metrics import map_at_k_scores
from .config import QDConfig


def oof_map3(folds: list[runs.Fold], dataset: str) -> tuple[float, int]:
    """Out-of-fold MAP@3 of a run's folds, truth from the folds file (key_id, word, fold)."""
    import numpy as np
    import pandas as pd

    oof = runs.read_oof(folds)
    words = list(oof.columns)
    truth = pd.read_csv(foldfile.folds_path(dataset), dtype=str, keep_default_na=False).set_index("key_id")["word"]
    y = np.eye(len(words))[truth.loc[oof.index].map({w: i for i, w in enumerate(words)}).to_numpy(int)]
    return map_at_k_scores(y, oof.to_numpy(), 3), len(oof)


def train_folds(cfg: QDConfig, fold_arg: str, resume: bool = False, overrides: dict | None = None
                ) -> tuple[list[dict], float | None]:
    """Train the requested folds; (per-fold metrics, out-of-fold MAP@3 when every fold was run).

    With `resume`, each fold continues from its saved config (the flags given now on top); the
    drawings are read once per distinct selection (categories, cap, seed)."""
    from . import data
    from .train import run_fold

    data_dir, dataset = data.resolve(cfg.data_dir)
    loaded: dict = {}
    results = []
    for k in parse_folds(fold_arg, cfg.n_folds):
        out = runs.fold_dir(cfg.work_dir, dataset, cfg.run_name, k)
        fold_cfg = cfg
        saved = FoldRun(out, "").saved_config() if resume else None
        if saved is not None:
            fold_cfg = configio.from_dict(QDConfig, saved).replace(**(overrides or {}))
        key = (fold_cfg.classes, fold_cfg.per_class, fold_cfg.seed, fold_cfg.n_folds)
        if key not in loaded:
            ts = data.load_train(data_dir, fold_cfg.classes, fold_cfg.per_class, fold_cfg.seed, fold_cfg.chunk_size)
            loaded[key] = (ts, *data.load_folds(dataset, ts, fold_cfg.n_folds, fold_cfg.seed))
        ts, folds, sha1 = loaded[key]
        results.append(run_fold(fold_cfg, ts, folds, sha1, k, out, dataset, resume))
    overall = None
    if fold_arg == "all":
        fold_list = [runs.Fold(cfg.run_name, k, runs.fold_dir(cfg.work_dir, dataset, cfg.run_name, k), {}, {})
                     for k in range(cfg.n_folds)]
        overall, n = oof_map3(fold_list, dataset)
        print(f"overall out-of-fold: map@3 {overall:.4f} over {n} drawings", flush=True)
    return results, overall


@cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.quickdraw.cv", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--fold", default="0", help="fold to validate on, or 'all' (default: 0)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the fold from its last finished epoch (flags given now override its config)")
    ap.add_argument("--config", default=None, help="start from this config.json (flags override it)")
    configio.add_config_args(ap, QDConfig)
    args = ap.parse_args(argv)
    base = configio.load(QDConfig, args.config) if args.config else None
    cfg = configio.from_args(QDConfig, args, base)
    results, overall = train_folds(cfg, args.fold, args.resume, configio.given(QDConfig, args))
    if overall is not None:
        print(f"fold all map@3 {overall:.4f}")
    else:
        print(f"fold {results[0]['fold']} map@3 {results[0]['val_map3']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train one fold (or all) of a model on FAT2019 log-mel features with lwlrap validation.

    python -m src.cv --fold 0                  # the built-in demo data when no data is found
    python -m src.cv --fold all --data-dir /kaggle/input/freesound-audio-tagging-2019
    python -m src.cv --fold 2 --resume         # continue an interrupted (or time-limited) fold
    python -m src.cv --fold all --n-mels 64 --name cnn64   # a variant, kept as its own run

Outputs: work/<dataset>/<name>/fold<K>/ (name: --name, default the model); a fold being trained
lives in fold<K>.partial/ and replaces fold<K>/ only once finished. The last line printed is
'fold K lwlrap 0.xxxx'; with --fold all, the out-of-fold lwlrap over every fold follows.
"""
from __future__ import annotations

import argparse

import numpy as np

from .fat2019 import data as fat_data
from .fat2019.config import FatConfig
from .kit import configio, runs
from .kit.errors import cli
from .kit.fold_runner import parse_folds
from .kit.metrics import lwlrap
from .fat2019.train import fold_dir, train_fold


def oof_lwlrap(cfg: FatConfig, data: fat_data.FatData, folds: list[int]) -> float:
    oof = runs.read_oof([runs.Fold(cfg.run_name, k, fold_dir(cfg, data.name, k), {}, {}) for k in folds])
    return lwlrap(fat_data.truth(data, oof.index.tolist()), oof[data.labels].to_numpy())


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.cv", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fold", default="0", help="fold index, or 'all' (default: 0)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the fold from its last finished epoch (flags given now override its config)")
    configio.add_config_args(ap, FatConfig)
    args = ap.parse_args(argv)
    cfg = configio.from_args(FatConfig, args)
    data = fat_data.load(cfg)
    folds = parse_folds(args.fold, cfg.n_folds)
    overrides = configio.given(FatConfig, args)
    results = [train_fold(cfg, data, k, resume=args.resume, overrides=overrides) for k in folds]
    for r in results:
        print(f"fold {r['fold']} lwlrap {r['val_lwlrap']:.4f}")
    if len(folds) > 1:
        print(f"oof lwlrap {oof_lwlrap(cfg, data, folds):.4f} over folds {','.join(map(str, folds))} "
              f"(mean of folds {np.mean([r['val_lwlrap'] for r in results]):.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
